"""Building blocks shared by the style and pose codebooks and generators."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp


class Attention(nn.Module):
  """Multi-head self-attention.

  scale="head" is the usual 1/sqrt(head_dim). scale="hidden" reproduces the
  official code's 1/sqrt(hidden) (= 1/16 at hidden 256), needed only to run
  its released weights faithfully.
  """

  dim: int
  heads: int
  scale: str = "head"

  @nn.compact
  def __call__(self, x, mask=None):  # [B, T, D]
    head_dim = self.dim // self.heads
    shape = (self.heads, head_dim)
    q = nn.DenseGeneral(shape, name="query")(x)  # [B, T, H, d]
    # No key bias: it adds the same score to every key, which softmax
    # ignores, so it has no gradient and only collects numerical noise.
    k = nn.DenseGeneral(shape, use_bias=False, name="key")(x)
    v = nn.DenseGeneral(shape, name="value")(x)
    scale = 1 / math.sqrt(head_dim if self.scale == "head" else self.dim)
    out = jax.nn.dot_product_attention(q, k, v, mask=mask, scale=scale)
    return nn.DenseGeneral(self.dim, axis=(-2, -1), name="out")(out)


class TransformerBlock(nn.Module):
  """Pre-LN block: x + Attn(LN(x)); x + MLP(LN(x)) with GELU.

  dropout > 0 drops the attention and MLP outputs before the residual sum
  while training (needs a "dropout" rng); the official models use none.
  official_numerics: the official VQ-VAEs' tanh-approximated GELU and
  LayerNorm epsilon 1e-5 (instead of the exact GELU and 1e-6), for their
  converted weights: tokens differ by ~1e-3 otherwise, enough to flip a
  code near a boundary.
  """

  dim: int
  heads: int
  mlp_dim: int
  attn_scale: str = "head"
  dropout: float = 0.0
  official_numerics: bool = False

  @nn.compact
  def __call__(self, x, mask=None, train: bool = False):
    eps = 1e-5 if self.official_numerics else 1e-6
    drop = nn.Dropout(self.dropout, deterministic=not train)
    h = nn.LayerNorm(eps, name="ln_attn")(x)
    h = Attention(self.dim, self.heads, self.attn_scale, name="attn")(h, mask)
    x = x + drop(h)
    h = nn.LayerNorm(eps, name="ln_mlp")(x)
    h = nn.Dense(self.mlp_dim, name="mlp_in")(h)
    h = nn.gelu(h, approximate=self.official_numerics)
    return x + drop(nn.Dense(self.dim, name="mlp_out")(h))


class Transformer(nn.Module):
  """A stack of pre-LN blocks with learned positions (no final LN)."""

  dim: int
  layers: int
  heads: int
  mlp_dim: int
  max_len: int
  attn_scale: str = "head"
  dropout: float = 0.0
  official_numerics: bool = False

  @nn.compact
  def __call__(self, x, mask=None, train: bool = False):  # [B, T, D]
    pos = self.param(
      "pos_embedding", nn.initializers.zeros, (self.max_len, self.dim)
    )
    x = x + pos[: x.shape[1]]
    for i in range(self.layers):
      x = TransformerBlock(
        self.dim,
        self.heads,
        self.mlp_dim,
        self.attn_scale,
        self.dropout,
        self.official_numerics,
        name=f"block{i}",
      )(x, mask, train)
    return x


def edge_pad(x, left, right):  # [B, T, C], replicate padding on time
  return jnp.pad(x, ((0, 0), (left, right), (0, 0)), mode="edge")


class ConvBlock(nn.Module):
  """Conv1d (replicate padding) -> LeakyReLU(0.2) -> BatchNorm."""

  features: int
  kernel: int = 5
  stride: int = 1

  @nn.compact
  def __call__(self, x, train: bool):
    p = self.kernel // 2
    x = nn.Conv(self.features, (self.kernel,), (self.stride,), "VALID")(
      edge_pad(x, p, p)
    )
    x = nn.leaky_relu(x, 0.2)
    return nn.BatchNorm(
      use_running_average=not train, momentum=0.9, epsilon=1e-5
    )(x)


class Squasher(nn.Module):
  """[B, T, C] -> [B, T / 2**factor, D]: a strided conv then conv + maxpool."""

  features: int
  factor: int = 3

  @nn.compact
  def __call__(self, x, train: bool):
    x = ConvBlock(self.features, stride=2, name="down0")(x, train)
    for i in range(1, self.factor):
      x = ConvBlock(self.features, name=f"down{i}")(x, train)
      x = nn.max_pool(x, (2,), (2,))
    return x


class Expander(nn.Module):
  """[B, N, D] -> [B, N * 2**factor, D]: transposed conv, then conv + repeat."""

  features: int
  factor: int = 3

  @nn.compact
  def __call__(self, x, train: bool):
    # ConvTranspose1d(k5, s2, p2, output_padding 1): out = 2 * in.
    x = nn.ConvTranspose(
      self.features, (5,), (2,), padding=((2, 3),), name="up0"
    )(x)
    x = nn.leaky_relu(x, 0.2)
    x = nn.BatchNorm(
      use_running_average=not train, momentum=0.9, epsilon=1e-5, name="up0_bn"
    )(x)
    for i in range(1, self.factor):
      x = ConvBlock(self.features, name=f"up{i}")(x, train)
      x = jnp.repeat(x, 2, axis=1)
    return x
