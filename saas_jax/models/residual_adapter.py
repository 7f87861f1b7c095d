"""The residual motion generator's core: canonical + style branches, summed.

  canonical  phi_c(z):      4-layer LSTM over the content z, learned initial
                            state; style-independent, it carries lip sync.
  style      phi_s(z, s_t): 6-layer LSTM over [z ++ s_t], initial state from
                            s_t; layers 1-4 run HyperStyle's per-style
                            weights (layer 0 reads 64 + S inputs and the
                            last layer is shared by all styles).
  y = phi_c(z) + phi_s(z, s_t)

Everything is a recurrence over time, so a long input can be run in chunks:
pass the returned carry back in and the output equals the one-pass output.
Ablations: `hyperstyle=False` (the style branch's weights are shared by all
styles), `style_branch=False` (canonical branch alone).
"""

import flax.linen as nn
import jax.numpy as jnp

from saas_jax.models import hyperstyle


class LSTMStack(nn.Module):
  hidden: int
  layers: int

  @nn.compact
  def __call__(self, x, carry, offsets=None):
    # x [B, T, in]; carry: per layer (h, c) [B, H]; offsets: {layer: dict}
    offsets = offsets or {}
    new_carry = []
    for i in range(self.layers):
      x, c = hyperstyle.LSTMLayer(self.hidden, name=f"layer{i}")(
        x, carry[i], offsets.get(i)
      )
      new_carry.append(c)
    return x, tuple(new_carry)


class ResidualAdapter(nn.Module):
  hidden: int = 64
  canonical_layers: int = 4
  style_layers: int = 6
  modulated: tuple[int, ...] = (1, 2, 3, 4)
  hyperstyle: bool = True
  style_branch: bool = True
  hyper_width: float = 1.0  # HyperStyle's inner conv widths (CPU runs)
  hyper_norm: str = "batch"  # HyperStyle's normalisation (hyperstyle.NORMS)
  hyper_gate: bool = False  # HyperStyle's offsets start at 0 (hyperstyle.py)
  content_skip: bool = False  # y also gets W z, past the LSTM stacks

  def initial_carry(self, s_t):
    """(canonical, style) LSTM states at the start of a sequence."""
    b, h = s_t.shape[0], self.hidden
    zeros = nn.initializers.zeros
    h0 = self.param("canonical_h0", zeros, (self.canonical_layers, h))
    c0 = self.param("canonical_c0", zeros, (self.canonical_layers, h))
    canonical = tuple(
      (jnp.broadcast_to(h0[i], (b, h)), jnp.broadcast_to(c0[i], (b, h)))
      for i in range(self.canonical_layers)
    )
    if not self.style_branch:
      return canonical, ()
    n = self.style_layers
    sh = nn.Dense(n * h, name="style_h0")(s_t).reshape(b, n, h)
    sc = nn.Dense(n * h, name="style_c0")(s_t).reshape(b, n, h)
    return canonical, tuple((sh[:, i], sc[:, i]) for i in range(n))

  @nn.compact
  def __call__(
    self, z, s_t, carry=None, train: bool = False, canonical_only=False
  ):
    # z [B, T, 64], s_t [B, S] -> y [B, T, hidden], carry.
    # canonical_only: phi_c alone (an evaluation reference point).
    if carry is None:
      carry = self.initial_carry(s_t)
    canonical = LSTMStack(self.hidden, self.canonical_layers, name="canonical")
    y, c_carry = canonical(z, carry[0])
    if self.content_skip:
      y = y + nn.Dense(self.hidden, name="content_skip")(z)
    if not self.style_branch or canonical_only:
      return y, (c_carry, carry[1])
    offsets = None
    if self.hyperstyle:
      offsets = {
        i: hyperstyle.HyperStyle(
          self.hidden,
          self.hyper_width,
          self.hyper_norm,
          self.hyper_gate,
          name=f"hyperstyle{i}",
        )(s_t, train)
        for i in self.modulated
      }
    s = jnp.broadcast_to(s_t[:, None], (*z.shape[:2], s_t.shape[-1]))
    style = LSTMStack(self.hidden, self.style_layers, name="style")
    ys, s_carry = style(jnp.concatenate([z, s], -1), carry[1], offsets)
    return y + ys, (c_carry, s_carry)
