"""Feature baselines for style recognition on synthetic clips.

The difficulty test of the corpus and the style-stage report use these:
nearest-centroid classifiers on per-clip features, which tell how much of a
style is a static offset (mean expression) and how much lives in dynamics
(temporal statistics of the articulators, blinks, brows and head pose).
"""

import numpy as np

from input_pipeline.synthetic import styles


def clip_features(exp: np.ndarray, pose: np.ndarray, space: str = "real"):
  """[T, 64] expression, [T, 6] pose -> (mean expression [64], temporal).

  Temporal: log std of the signal, of its first and second differences, and
  the lag-3 autocorrelation, for the articulators, blinks, brows and the
  three head angles: read from coefficients 0..5, 18, 20, 21 in the
  semantic layout, read back through real_space.roles in the real one.
  """
  exp, pose = exp.astype(np.float64), pose.astype(np.float64)
  if space == "semantic":
    roles = np.r_[0:6, styles.BLINK_L, styles.BROW_INNER, styles.BROW_OUTER]
    signals = exp[:, roles]
  elif space == "real":
    from input_pipeline.synthetic import real_space

    signals = real_space.roles(exp)
  else:
    raise ValueError(f"space must be 'real' or 'semantic', not {space!r}")
  m = np.concatenate([signals, pose[:, :3]], axis=1)
  d1, d2 = np.diff(m, axis=0), np.diff(m, 2, axis=0)
  c = m - m.mean(0)
  lag3 = (c[3:] * c[:-3]).mean(0) / (c.var(0) + 1e-9)
  temporal = np.concatenate(
    [np.log(m.std(0)), np.log(d1.std(0)), np.log(d2.std(0)), lag3]
  )
  return exp.mean(0), temporal


def nearest_centroid(x, labels, train) -> np.ndarray:
  """Predictions for the rows where train is False.

  Features are scaled by the pooled within-class std of the training rows,
  so noisy features weigh less.
  """
  classes = sorted(set(labels[train]))
  var = np.mean([x[train & (labels == c)].var(0) for c in classes], axis=0)
  x = x / (np.sqrt(var) + 1e-9)
  cent = np.stack([x[train & (labels == c)].mean(0) for c in classes])
  dist = ((x[~train][:, None] - cent[None]) ** 2).sum(-1)
  return np.array(classes)[np.argmin(dist, axis=1)]
