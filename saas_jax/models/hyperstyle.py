"""HyperStyle: per-style LSTM weights, and the LSTM layer that runs them.

For a style code s, a hypernetwork H turns the shared kernel W of an LSTM
layer into a per-sample kernel W' = W * (1 + H(s)) (input and recurrent
kernels each have their own H), and biases b' = b * (1 + Dense(s)).
H reads s as a 1-channel signal of length S and runs the down path of a
1-D U-Net: DoubleConv(1 -> 64), pool, DoubleConv(64 -> 128), pool,
DoubleConv(128 -> 256), giving [S / 4, 256] = [in, 4 * hidden] at S = 256,
hidden 64: exactly a kernel. Other sizes keep that shape: as many pools as
halve S down to `hidden`, widths 64, 128, ..., and 4 * hidden at the end.

H's convolutions are normalised per batch in the official code
(BatchNorm), so the kernel one style gets depends on the other styles in
its batch during training and on running averages at test time;
`norm="layer"` normalises each code's activations on their own.

H's kernel offsets come out of a ReLU, so they are >= 0 and O(1) from the
first step: at initialisation half the weights keep their value and the
others are scaled by 1 + |N(0, 1)| (99th percentile 3.4), differently for
every style, before anything is learnt; none can shrink. `gate=True` (not
the official model) makes the offsets G * H(s), G a learnt [in, 4H] gate
that starts at 0 (its sign per weight is shared by all styles, the size
per style), and starts the bias offsets' Dense at 0: the style branch
begins as the one without HyperStyle.

The official code writes W' into a module's `.data` per sample, which cuts
autograd, so its H nets never learn. Here W' is an ordinary differentiable
expression, computed for the whole batch at once ([B, in, 4H]) and used
inside one scan over time (einsum per step, no loop over the batch).
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

NORMS = ("batch", "layer")


class DoubleConv(nn.Module):
  features: int
  norm: str = "batch"  # "batch" (official) or "layer" (per sample)

  @nn.compact
  def __call__(self, x, train: bool):  # [B, L, C] -> [B, L, features]
    for _ in range(2):
      x = nn.Conv(self.features, (3,), padding=1, use_bias=False)(x)
      if self.norm == "batch":
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
      elif self.norm == "layer":
        x = nn.LayerNorm(reduction_axes=(-2, -1))(x)  # over [L, C]
      else:
        raise ValueError(f"HyperStyle norm: one of {NORMS}, not {self.norm!r}")
      x = nn.relu(x)
    return x


def kernel_widths(
  style_dim: int, hidden: int, width: float = 1.0
) -> tuple[int, ...]:
  """DoubleConv widths of H: (64, 128, 256) at style 256, hidden 64; width
  scales all but the last (small models for CPU runs)."""
  pools = (style_dim // hidden).bit_length() - 1
  if pools < 0 or hidden << pools != style_dim:
    raise ValueError(
      f"HyperStyle needs the style size ({style_dim}) to be the LSTM size "
      f"({hidden}) times a power of two"
    )
  inner = (max(1, round((64 << i) * width)) for i in range(pools))
  return (*inner, 4 * hidden)


class KernelNet(nn.Module):
  """H: style code [B, S] -> multiplicative kernel offset [B, hidden, 4H]."""

  widths: tuple[int, ...]
  norm: str = "batch"

  @nn.compact
  def __call__(self, s, train: bool):
    h = s[..., None]  # [B, S, 1]
    for i, f in enumerate(self.widths):
      if i:
        h = nn.max_pool(h, (2,), (2,))
      h = DoubleConv(f, self.norm)(h, train)
    return h  # [B, hidden, 4 * hidden]


class HyperStyle(nn.Module):
  """Per-sample offsets for one hidden-to-hidden LSTM layer."""

  hidden: int
  width: float = 1.0
  norm: str = "batch"
  gate: bool = False  # offsets start at 0 (see the module docstring)

  @nn.compact
  def __call__(self, s, train: bool = False):  # [B, S]
    widths = kernel_widths(s.shape[-1], self.hidden, self.width)
    gates = 4 * self.hidden
    kernel = functools.partial(KernelNet, widths, self.norm)
    zero = nn.initializers.zeros
    bias = functools.partial(
      nn.Dense, gates, **(dict(kernel_init=zero) if self.gate else {})
    )
    out = {
      "w_ih": kernel(name="kernel_ih")(s, train),  # [B, H, 4H]
      "w_hh": kernel(name="kernel_hh")(s, train),  # [B, H, 4H]
      "b_ih": bias(name="bias_ih")(s),  # [B, 4H]
      "b_hh": bias(name="bias_hh")(s),  # [B, 4H]
    }
    if self.gate:
      for k in ("w_ih", "w_hh"):
        out[k] = out[k] * self.param(f"gate_{k[2:]}", zero, out[k].shape[1:])
    return out


def _uniform(scale):
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -scale, scale)

  return init


class LSTMLayer(nn.Module):
  """One PyTorch-layout LSTM layer (gates i, f, g, o; two biases).

  `offsets` (HyperStyle's output) modulates the weights per sample. The
  input projection of every step is one batched matmul before the scan; the
  scan carries (h, c), which is returned for streaming.
  """

  hidden: int

  @nn.compact
  def __call__(self, x, carry, offsets=None):
    # x [B, T, in]; carry (h, c) [B, H] each -> y [B, T, H], carry
    g = 4 * self.hidden
    init = _uniform(self.hidden**-0.5)
    w_ih = self.param("w_ih", init, (x.shape[-1], g))
    w_hh = self.param("w_hh", init, (self.hidden, g))
    b = self.param("b_ih", init, (g,)), self.param("b_hh", init, (g,))
    if offsets is None:
      gx = x @ w_ih + (b[0] + b[1])  # [B, T, 4H]

      def recurrent(h):
        return h @ w_hh

    else:
      w_ih = w_ih * (1 + offsets["w_ih"])  # [B, in, 4H]
      w_hh = w_hh * (1 + offsets["w_hh"])  # [B, H, 4H]
      bias = b[0] * (1 + offsets["b_ih"]) + b[1] * (1 + offsets["b_hh"])
      gx = jnp.einsum("bti,big->btg", x, w_ih) + bias[:, None]

      def recurrent(h):
        return jnp.einsum("bh,bhg->bg", h, w_hh)

    def step(carry, gx_t):  # gx_t [B, 4H]
      h, c = carry
      z = gx_t + recurrent(h)
      i, f, gg, o = jnp.split(z, 4, axis=-1)
      c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(gg)
      h = jax.nn.sigmoid(o) * jnp.tanh(c)
      return (h, c), h

    carry, ys = jax.lax.scan(step, carry, jnp.swapaxes(gx, 0, 1))
    return jnp.swapaxes(ys, 0, 1), carry
