"""Losses shared by the stages."""

import itertools

import jax
import jax.numpy as jnp
import optax


def grouped_l1(pred, target, splits=(50, 53)):
  """Sum of L1 means over column groups (the official 0:50, 50:53, 53:64).

  With splits=() this is one plain L1 mean.
  """
  edges = (0, *splits, pred.shape[-1])
  return sum(
    jnp.mean(jnp.abs(pred[..., a:b] - target[..., a:b]))
    for a, b in itertools.pairwise(edges)
  )


def sq_dist(a, b):  # [B, D] x [B, D] -> [B] mean squared difference
  return jnp.mean((a - b) ** 2, axis=-1)


def style_triplet(s, pos, neg, other, margin=5.0):
  """mean_b max(2 d(s, pos) - d(s, other) - d(s, neg) + margin, 0), d = MSE.

  The official style stage writes this hinge but never back-propagates it
  (it is added only when it is zero); here it trains, per sample.
  """
  hinge = 2 * sq_dist(s, pos) - sq_dist(s, other) - sq_dist(s, neg) + margin
  return jnp.mean(jnp.maximum(hinge, 0.0))


def cross_entropy(logits, labels):
  return jnp.mean(
    optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  )


def accuracy(logits, labels):
  return jnp.mean(jnp.argmax(logits, -1) == labels)


def soft_dtw(x, y, gamma: float = 1e-3):
  """Soft-DTW (Cuturi and Blondel 2017) between [B, T, C] and [B, U, C].

  Cost: squared Euclidean distance per frame pair; R[i, j] = cost[i, j] +
  softmin_gamma(R[i-1, j-1], R[i-1, j], R[i, j-1]); returns R[T, U] per
  pair, [B]. The recursion runs over anti-diagonals (T + U - 1 scan steps,
  each a vector op over the whole diagonal), and is differentiated by
  autodiff.
  """
  cost = jnp.sum((x[:, :, None] - y[:, None]) ** 2, -1)  # [B, T, U]
  b, t, u = cost.shape
  big = jnp.asarray(1e10, cost.dtype)
  i = jnp.arange(t)

  def softmin(a, b_, c):
    stacked = jnp.stack([a, b_, c])
    return -gamma * jax.nn.logsumexp(-stacked / gamma, axis=0)

  # Diagonal d holds R[i, d - i] for i = 0..T-1 (big where out of range).
  # prev2 = diagonal d-2, prev = diagonal d-1 (also indexed by i).
  def step(carry, d):
    prev2, prev = carry
    j = d - i
    valid = (j >= 0) & (j < u)
    c = jnp.where(valid, cost[:, i, jnp.clip(j, 0, u - 1)], big)
    up_left = jnp.pad(prev2, ((0, 0), (1, 0)), constant_values=big)[:, :-1]
    up = jnp.pad(prev, ((0, 0), (1, 0)), constant_values=big)[:, :-1]
    left = prev  # R[i, j-1] is on diagonal d-1 at index i
    first = d == 0
    r = c + jnp.where(first, 0.0, softmin(up_left, up, left))
    r = jnp.where(valid, r, big)
    return (prev, r), None

  init = jnp.full((b, t), big, cost.dtype)
  (_, last), _ = jax.lax.scan(step, (init, init), jnp.arange(t + u - 1))
  return last[:, t - 1]


def lsgan(pred, target: float):
  """Least-squares GAN term: mean (D(x) - target)^2."""
  return jnp.mean((pred - target) ** 2)
