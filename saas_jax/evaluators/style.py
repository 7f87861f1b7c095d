"""Is it the style that was asked for? Classifier accuracy, distance of style
codes, and retrieval of a clip's second half by its first."""

import numpy as np


def accuracy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """[N, C], [N] -> [N] 1.0 where the arg-max names the label."""
  return (np.asarray(logits).argmax(-1) == np.asarray(labels)).astype(float)


def code_distance(codes: np.ndarray, targets: np.ndarray) -> np.ndarray:
  """[N, S], [N, S] -> [N] squared L2 distance of each code to its target."""
  return np.sum((np.asarray(codes) - np.asarray(targets)) ** 2, -1)


def retrieval(first: np.ndarray, second: np.ndarray) -> np.ndarray:
  """[N, S], [N, S] -> [N] 1.0 where row i of `first` is nearest (L2) to row
  i of `second` among all rows of `second`."""
  d = ((first[:, None] - second[None]) ** 2).sum(-1)
  return (d.argmin(1) == np.arange(len(first))).astype(float)


def halves(clips) -> list[np.ndarray]:
  """[first half, second half] of every clip, in order (for retrieval)."""
  out = []
  for e in clips:
    mid = len(e) // 2
    out += [e[:mid], e[mid:]]
  return out
