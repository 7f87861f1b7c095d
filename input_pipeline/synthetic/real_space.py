"""The synthetic generator's motion laid out in the real coefficient space.

Real files (Deep3DFaceRecon, PIRender, StyleTalk, SAAS) hold expressions in
the Basel basis; the generator's own layout (motion.semantic_expression)
gives each coefficient a meaning of its own. Here the same components
(motion.expression_parts) are placed with the tables that calibrate.py
fitted on real clips (calibration.npz):

  exp = real mean
      + articulators (centred, led by the real lag) @ mouth map, smoothed
        over about a frame
      + blinks (left, right) x the lid-closing directions x BLINK_DEPTH
      + brow bumps x the brow-raising direction
      + static offset (style + session, 58 values) @ Q
      + drift: an OU process along the real within-clip residual
        directions, with their spreads and time constant (x the style's
        drift factor), in bursts (a slow log-normal envelope)
      + tracking noise (Student t) with NOISE_SHARE of the real
        frame-to-frame spread

Q = R L / s maps the generator's static offsets (spread s per value) onto
the real clips' per-clip offsets: L is the square root of their covariance
and R a fixed random orthonormal map, so offsets keep their structure (twin
emotions share theirs) and take the real spread and directions. Head pose is
rescaled per axis: offsets to the real clips' spread of mean poses, motion to
their spread within 32-frame windows, plus white jitter up to their velocity
spread. The constants were chosen by benchmarks/realism.py (README, Data).

Stochastic parts beyond the generator's own are drawn from the same rng
after all of its draws, so phones, blinks and nods are those of the
semantic rendering of the clip.
"""

import functools
import os

import numpy as np
import scipy.ndimage

from input_pipeline.synthetic import motion

CALIBRATION = os.path.join(os.path.dirname(__file__), "calibration.npz")
DRIFT_SHARE = 1.0  # of the real within-clip residual (blinks, brows: rest)
# The second-difference estimate of tracking noise also counts the fast
# part of real motion: this share of it is noise.
NOISE_SHARE = 0.7
BROW_UNIT = 0.9  # a brow bump of this size raises the brows 2 std
# A blink closes the lids this far: tracked real lids rarely close (over
# the 22 real clips the lid gap's 2nd percentile is 0.78 of its median, the
# deepest dip 0.53).
BLINK_DEPTH = 0.4
# Real mouths move more smoothly than the generator's visemes (and the
# tracker smooths them): frames of Gaussian smoothing.
MOUTH_SMOOTH = 1.0
_TYPICAL_DRIFT = 0.1  # the generator's mean drift_amp
ENVELOPE, ENVELOPE_TAU = 0.6, 1.0  # burstiness of the drift: log-std, s


@functools.lru_cache(maxsize=2)
def tables(path: str = CALIBRATION) -> dict:
  with np.load(path) as z:
    t = {k: z[k] for k in z.files}
  w, v = np.linalg.eigh(t["offset_cov"])
  root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T  # [64, 64]
  rng = np.random.default_rng(20261202)  # part of the fixed map
  r, _ = np.linalg.qr(rng.normal(size=(64, 64)))
  n_static = motion._STATIC.size
  t["Q"] = r[:n_static] @ root / float(t["semantic_offset_std"])
  return t


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
  """Gaussian smoothing over time (frames), edges held."""
  if sigma <= 0:
    return x
  return scipy.ndimage.gaussian_filter1d(x, sigma, axis=0, mode="nearest")


def _lead(x: np.ndarray, frames: int) -> np.ndarray:
  """x(t + frames), the last frame held."""
  if frames <= 0:
    return x
  return np.concatenate([x[frames:], np.repeat(x[-1:], frames, 0)])


def expression(parts: dict, style, rng) -> np.ndarray:
  """[T, 64] in the real space from motion.expression_parts."""
  t = tables()
  art = parts["art"] - motion.ART_MEAN
  mouth = _lead(art, -int(t["mouth_lag"])) @ t["mouth_map"]
  exp = t["exp_mean"] + _smooth(mouth, MOUTH_SMOOTH)
  lids = np.stack([t["blink_left"], t["blink_right"]])
  exp = exp + BLINK_DEPTH * parts["blinks"] @ lids
  exp = exp + (parts["brow"] / BROW_UNIT)[:, None] * t["brow_raise"]
  static = style.exp_offset[motion._STATIC] + parts["session"]
  exp = exp + static @ t["Q"]
  if rng is not None:
    n = len(exp)
    a = float(t["residual_lag1"])
    std = t["residual_std"] * np.sqrt(DRIFT_SHARE)
    std = std * style.drift_amp / _TYPICAL_DRIFT
    drift = motion._ou(rng, n, std.size, -1 / np.log(a)) * std
    # Real motion comes in bursts: a slow log-normal envelope (unit mean
    # square) modulates it.
    env = np.exp(ENVELOPE * motion._ou(rng, n, 1, ENVELOPE_TAU * motion.FPS))
    env = env / np.sqrt(np.mean(np.exp(2 * ENVELOPE * rng.normal(size=4096))))
    exp = exp + (drift * env) @ t["residual_pcs"]
    # Heavy-tailed tracking noise (Student t, 3 dof, scaled to unit std).
    noise = rng.standard_t(3, exp.shape) / np.sqrt(3.0)
    exp = exp + noise * NOISE_SHARE * t["noise_std"]
  return exp


def pose(pose_sem: np.ndarray, style, rng) -> np.ndarray:
  """[T, 6] semantic pose -> the real clips' spreads per axis."""
  t = tables()
  offset = np.asarray(style.pose_offset)
  off_scale = t["pose_offset_std"] / t["semantic_pose_offset_std"]
  # Motion matched within 32-frame windows (real heads turn more slowly
  # than the generator's: matched over whole clips, windows move 2x more).
  dyn_scale = t["pose_window_std"] / t["semantic_pose_window_std"]
  out = t["pose_mean"] + offset * off_scale + (pose_sem - offset) * dyn_scale
  if rng is not None:
    moved = t["semantic_pose_window_velocity_std"] * dyn_scale
    real = t["pose_window_velocity_std"]
    extra = np.sqrt(np.clip(real**2 - moved**2, 0, None))
    # White jitter of std e moves a frame's velocity by e * sqrt(2).
    out = out + rng.normal(0, 1, out.shape) * extra / np.sqrt(2)
  return out
