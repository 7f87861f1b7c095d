"""Generated expression against the ground truth (the synthetic benchmark's
style-transfer targets): where the face model puts the landmarks, the
coefficients, and the mouth's timing (soft-DTW forgives a small shift that
a frame-wise error punishes)."""

import numpy as np

from saas_jax.models.motion_decoder import MOUTH  # coefficients 0-17


def errors(face_model, pred: np.ndarray, target: np.ndarray) -> dict:
  """[T, 64] pair -> mean landmark distances (face-model units) on the
  "mouth" and "face" sets, L1 on mouth / other coefficients, the mouth
  coefficients' soft-DTW per frame, and how the mouth moves against the
  ground truth (mouth_corr, mouth_motion): a still mouth at the right
  place scores well on the errors, not on these."""
  pred, target = np.asarray(pred), np.asarray(target)

  def dist(landmarks):  # [T, K]
    pts = face_model.points(pred, landmarks=landmarks)  # [T, K, 3]
    ref = face_model.points(target, landmarks=landmarks)
    return np.linalg.norm(np.asarray(pts) - np.asarray(ref), axis=-1)

  return {
    "mouth_lmk": float(dist("mouth").mean()),
    "face_lmk": float(dist("face").mean()),
    "exp_mouth": float(np.abs(pred[:, :MOUTH] - target[:, :MOUTH]).mean()),
    "exp_rest": float(np.abs(pred[:, MOUTH:] - target[:, MOUTH:]).mean()),
    "mouth_dtw": soft_dtw(pred[:, :MOUTH], target[:, :MOUTH]) / len(target),
    **mouth_motion(pred, target),
  }


def mouth_motion(pred: np.ndarray, target: np.ndarray) -> dict:
  """The mouth coefficients' motion (each about its clip mean) against the
  ground truth's: their correlation, pooled over the 18 coefficients
  (mouth_corr; 0: unrelated), and the ratio of their spreads (mouth_motion;
  1: as much motion, 0: a still mouth)."""
  a = pred[:, :MOUTH] - pred[:, :MOUTH].mean(0)
  b = target[:, :MOUTH] - target[:, :MOUTH].mean(0)
  aa, bb = float((a * a).sum()), float((b * b).sum())
  if bb <= 1e-12 * max(float((target[:, :MOUTH] ** 2).sum()), 1e-30):
    # a still ground truth (up to rounding): nothing to follow
    return {"mouth_corr": float("nan"), "mouth_motion": float("nan")}
  corr = float((a * b).sum()) / np.sqrt(aa * bb) if aa > 0 else 0.0
  return {"mouth_corr": float(corr), "mouth_motion": float(np.sqrt(aa / bb))}


def soft_dtw(x: np.ndarray, y: np.ndarray, gamma: float = 1e-3) -> float:
  """Soft-DTW (Cuturi & Blondel 2017) of [N, D] and [M, D] sequences with
  squared-Euclidean cost; gamma -> 0 is classic DTW. NumPy, one vectorised
  step per anti-diagonal (any lengths, nothing to compile)."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  cost = ((x[:, None] - y[None]) ** 2).sum(-1)  # [N, M]
  n, m = cost.shape
  r = np.full((n + 1, m + 1), np.inf)
  r[0, 0] = 0.0
  for d in range(2, n + m + 1):  # cells (i, j), i + j = d, 1-based
    i = np.arange(max(1, d - m), min(n, d - 1) + 1)
    j = d - i
    prev = np.stack([r[i - 1, j - 1], r[i - 1, j], r[i, j - 1]])  # [3, k]
    low = prev.min(0)
    soft = low - gamma * np.log(np.exp(-(prev - low) / gamma).sum(0))
    r[i, j] = cost[i - 1, j - 1] + soft
  return float(r[n, m])
