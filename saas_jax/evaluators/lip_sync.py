"""Lip sync without ground truth: does the mouth open when the speech is
loud? The correlation of the mouth opening with the speech envelope, at the
lag where it is highest (the mouth moves a little before the sound)."""

import numpy as np

from input_pipeline import features

MAX_LAG = 6  # frames tried either way (0.24 s at 25 fps)


def correlation(a: np.ndarray, b: np.ndarray, lag: int = 0) -> float:
  """Pearson correlation of a(t + lag) with b(t), over the frames both
  have (0 where either is constant)."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  n = min(len(a), len(b))
  a, b = a[:n], b[:n]
  if lag > 0:
    a, b = a[lag:], b[:-lag]
  elif lag < 0:
    a, b = a[:lag], b[-lag:]
  if len(a) < 2 or a.std() == 0 or b.std() == 0:
    return 0.0
  return float(np.corrcoef(a, b)[0, 1])


def best_lag(a, b, max_lag: int = MAX_LAG) -> tuple[float, int]:
  """(correlation, lag) at the lag in [-max_lag, max_lag] that maximises
  correlation(a, b, lag)."""
  by_lag = {k: correlation(a, b, k) for k in range(-max_lag, max_lag + 1)}
  lag = max(by_lag, key=by_lag.get)
  return by_lag[lag], lag


def mouth_opening(face_model, exp: np.ndarray) -> np.ndarray:
  """[T, 64] -> [T] inner-lip gap through the face model."""
  return np.asarray(face_model.lip_distances(np.asarray(exp)))[:, 1]


def rms_envelope(wav: np.ndarray, num_frames: int) -> np.ndarray:
  """[samples] 16 kHz -> [num_frames] RMS of each frame's samples."""
  hop = round(features.SAMPLE_RATE / features.MODEL_FPS)
  wav = np.pad(wav, (0, max(0, num_frames * hop - len(wav))))
  frames = wav[: num_frames * hop].reshape(num_frames, hop)
  return np.sqrt((frames.astype(np.float64) ** 2).mean(1))


def sync(face_model, exp: np.ndarray, envelope: np.ndarray) -> dict:
  """{"sync_corr", "sync_lag"} of a [T, 64] sequence against its speech's
  [T] envelope (pose.frame_energy of the log-mel, or rms_envelope); lag in
  frames, < 0: the mouth leads."""
  corr, lag = best_lag(mouth_opening(face_model, exp), envelope)
  return {"sync_corr": corr, "sync_lag": float(lag)}
