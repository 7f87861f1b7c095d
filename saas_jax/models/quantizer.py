"""Vector quantizer: nearest code, straight-through gradient, VQ losses.

Reused by the style codebook (500 x 256) and the pose codebook (200 x 256).

  loss = beta * |z - sg(e)|^2 + |sg(z) - e|^2       (beta = commitment, 0.25)
  z_q  = z + sg(e - z)                               (straight-through)

Options:
  ema=True        the codebook is not learned by gradient but as an
                  exponential moving average of the vectors assigned to each
                  code (state in the 'vq_stats' collection; the codebook term
                  drops out of the loss).
  restart_dead    with ema, codes whose average use falls under the threshold
                  are moved onto random encoder outputs of the batch; the
                  statistics start empty, so the first step initialises the
                  codebook from data.
  grouping        "token": each token's vector is quantized (clean form).
                  "channel_major": the official code's grouping, which
                  permutes [B, N, D] to [B, D, N] and cuts the flat result into
                  rows of D, so each quantized vector mixes D/N channels of
                  all N time steps: one code per channel group, a product
                  code (needed to load official weights; README "A product
                  code" for what it changes).

Health metrics: perplexity of code use in the batch, fraction of codes
unused in the batch (dead), and with ema the fraction whose running use is
below the restart threshold.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp


def _group(z, grouping):  # [B, N, D] -> [B, N, D] vectors to quantize
  if grouping == "token":
    return z
  b, n, d = z.shape
  return jnp.swapaxes(z, 1, 2).reshape(b, n, d)


def _ungroup(z, grouping):
  if grouping == "token":
    return z
  b, n, d = z.shape
  return jnp.swapaxes(z.reshape(b, d, n), 1, 2)


class VectorQuantizer(nn.Module):
  num_codes: int
  dim: int
  beta: float = 0.25
  ema: bool = False
  decay: float = 0.99
  restart_dead: bool = False
  # A code is dead when its running use falls under this many assignments per
  # batch; unused for ~230 steps at decay 0.99.
  dead_threshold: float = 0.1
  grouping: str = "token"

  def setup(self):
    lim = 1.0 / self.num_codes
    init = lambda key, shape: jax.random.uniform(  # noqa: E731
      key, shape, jnp.float32, -lim, lim
    )
    if self.ema:
      self.codebook = self.variable(
        "vq_stats",
        "codebook",
        lambda: init(self.make_rng("params"), (self.num_codes, self.dim)),
      )
      # With restarts the statistics start empty, so the first training step
      # moves every code onto an encoder output (a data-driven init).
      fill = 0.0 if self.restart_dead else 1.0
      self.cluster_size = self.variable(
        "vq_stats", "cluster_size", lambda: jnp.full(self.num_codes, fill)
      )
      self.embed_sum = self.variable(
        "vq_stats", "embed_sum", lambda: fill * self.codebook.value
      )
    else:
      self.embedding = self.param("codebook", init, (self.num_codes, self.dim))

  @property
  def codes(self):
    return self.codebook.value if self.ema else self.embedding

  def indices(self, z):  # [..., D] -> [...]
    codes = self.codes
    dist = (
      jnp.sum(z**2, -1, keepdims=True) - 2 * z @ codes.T + jnp.sum(codes**2, -1)
    )
    return jnp.argmin(dist, axis=-1)

  def lookup(self, idx):  # [...] -> [..., D], then back to token layout
    return jnp.take(self.codes, idx, axis=0)

  def decode_indices(self, idx):  # [B, N] -> [B, N, D]
    return _ungroup(self.lookup(idx), self.grouping)

  def __call__(self, z, train: bool = False):  # z: [B, N, D]
    zg = _group(z, self.grouping)
    idx = self.indices(zg)  # [B, N]
    e = self.lookup(idx)
    onehot = jax.nn.one_hot(idx, self.num_codes, dtype=z.dtype)  # [B, N, K]
    commit = jnp.mean((zg - jax.lax.stop_gradient(e)) ** 2)
    if self.ema:
      loss = self.beta * commit
      if train and not self.is_initializing():
        self._ema_update(zg, onehot)
    else:
      codebook = jnp.mean((jax.lax.stop_gradient(zg) - e) ** 2)
      loss = self.beta * commit + codebook
    zq = zg + jax.lax.stop_gradient(e - zg)
    usage = jnp.mean(onehot.reshape(-1, self.num_codes), axis=0)
    entropy = -jnp.sum(usage * jnp.log(usage + 1e-10))
    aux = {
      "vq_loss": loss,
      "indices": idx,
      "perplexity": jnp.exp(entropy),
      "dead_fraction": jnp.mean(usage == 0),
    }
    if self.ema:
      aux["stale_fraction"] = jnp.mean(
        self.cluster_size.value < self.dead_threshold
      )
    return _ungroup(zq, self.grouping), aux

  def _ema_update(self, zg, onehot):
    flat_z = zg.reshape(-1, self.dim)
    flat_oh = onehot.reshape(-1, self.num_codes)
    d = self.decay
    size = d * self.cluster_size.value + (1 - d) * flat_oh.sum(0)
    embed_sum = d * self.embed_sum.value + (1 - d) * flat_oh.T @ flat_z
    n = size.sum()
    smoothed = (size + 1e-5) / (n + self.num_codes * 1e-5) * n
    codebook = embed_sum / smoothed[:, None]
    if self.restart_dead:
      dead = size < self.dead_threshold
      pick = jax.random.randint(
        self.make_rng("vq"), (self.num_codes,), 0, flat_z.shape[0]
      )
      fresh = jax.lax.stop_gradient(flat_z[pick])
      codebook = jnp.where(dead[:, None], fresh, codebook)
      embed_sum = jnp.where(dead[:, None], fresh, embed_sum)
      size = jnp.where(dead, 1.0, size)
    self.cluster_size.value = size
    self.embed_sum.value = jax.lax.stop_gradient(embed_sum)
    self.codebook.value = jax.lax.stop_gradient(codebook)
