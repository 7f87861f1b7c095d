"""The sequence VQ-VAE behind both codebooks (style: 64-d expression; pose:
6-d angles + translation).

  encode  [B, T, C] (+ velocity channels) -> Squasher (T -> T / 2**factor
          tokens) -> Dense -> Transformer -> z [B, N, D]
  quantize z -> z_q (VectorQuantizer)
  decode  z_q -> Expander (N -> T) -> Dense -> Transformer -> Conv1d(k5)
          -> [B, T, C]

At paper size (hidden 256, 12 layers, 8 heads, MLP 384, 32 frames -> 4
tokens) this is the official VQModelTransformer.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from saas_jax.models import layers, quantizer

_CONFIG_FIELDS = (
  "hidden",
  "layers",
  "heads",
  "mlp_dim",
  "num_codes",
  "beta",
  "ema",
  "restart_dead",
  "grouping",
  "attn_scale",
)


class SequenceVQVAE(nn.Module):
  in_dim: int = 64
  hidden: int = 256
  layers: int = 12
  heads: int = 8
  mlp_dim: int = 384
  factor: int = 3
  seq_len: int = 32
  num_codes: int = 500
  beta: float = 0.25
  ema: bool = False
  restart_dead: bool = False
  grouping: str = "token"
  attn_scale: str = "head"
  dropout: float = 0.0  # transformer dropout while training (official: 0)
  # > 0: the encoder also reads the frame-to-frame velocity, times this
  # scale (about the ratio of the coefficients' std to their velocities').
  # Official: 0.
  velocity_scale: float = 0.0
  # The official code's GELU form and LayerNorm epsilon (layers.py); only
  # for converted official weights.
  official_numerics: bool = False
  # False: no bottleneck, the tokens pass on continuous (the paper's
  # "without codebook" ablation, trained so from the start). The quantizer
  # still follows them, without pulling them, so that its usage is reported.
  codebook: bool = True

  @classmethod
  def from_config(cls, m, *, in_dim: int, seq_len: int) -> "SequenceVQVAE":
    """From a stage config's `model` block (both codebooks' trainers)."""
    return cls(
      in_dim=in_dim,
      seq_len=seq_len,
      factor=m.get("factor", 3),
      dropout=m.get("dropout", 0.0),
      velocity_scale=m.get("velocity_scale", 0.0),
      official_numerics=m.get("official_numerics", False),
      codebook=m.get("codebook", True),
      **{f: m[f] for f in _CONFIG_FIELDS},
    )

  def setup(self):
    n_tokens = self.seq_len // 2**self.factor
    self.squasher = layers.Squasher(self.hidden, self.factor)
    self.enc_proj = nn.Dense(self.hidden)
    self.encoder = layers.Transformer(
      self.hidden,
      self.layers,
      self.heads,
      self.mlp_dim,
      n_tokens,
      self.attn_scale,
      self.dropout,
      self.official_numerics,
    )
    self.quantizer = quantizer.VectorQuantizer(
      self.num_codes,
      self.hidden,
      self.beta,
      ema=self.ema,
      restart_dead=self.restart_dead,
      grouping=self.grouping,
    )
    self.expander = layers.Expander(self.hidden, self.factor)
    self.dec_proj = nn.Dense(self.hidden)
    self.decoder = layers.Transformer(
      self.hidden,
      self.layers,
      self.heads,
      self.mlp_dim,
      self.seq_len,
      self.attn_scale,
      self.dropout,
      self.official_numerics,
    )
    self.head = nn.Conv(self.in_dim, (5,), padding=((2, 2),))

  def encode(self, x, train: bool = False):  # [B, T, C] -> [B, N, D]
    if self.velocity_scale:
      # Style lives in dynamics as much as in offsets; velocities are ~7x
      # smaller than the coefficients, so the first conv barely sees them
      # unless they come in as their own, rescaled channels.
      v = jnp.diff(x, axis=1, prepend=x[:, :1])  # [B, T, C], v[0] = 0
      x = jnp.concatenate([x, self.velocity_scale * v], -1)  # [B, T, 2C]
    return self.encoder(self.enc_proj(self.squasher(x, train)), train=train)

  def quantize(self, z, train: bool = False):
    if not self.codebook:
      # Its loss, on stopped tokens, trains the codebook alone.
      return z, self.quantizer(jax.lax.stop_gradient(z), train)[1]
    return self.quantizer(z, train)

  def decode(self, zq, train: bool = False):  # [B, N, D] -> [B, T, C]
    h = self.decoder(self.dec_proj(self.expander(zq, train)), train=train)
    return self.head(h)

  def decode_indices(self, idx, train: bool = False):  # [B, N] -> [B, T, C]
    return self.decode(self.quantizer.decode_indices(idx), train)

  def __call__(self, x, train: bool = False):
    zq, aux = self.quantize(self.encode(x, train), train)
    return self.decode(zq, train), zq, aux
