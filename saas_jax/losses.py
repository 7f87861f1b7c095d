"""Losses shared by the stages."""

import itertools

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
