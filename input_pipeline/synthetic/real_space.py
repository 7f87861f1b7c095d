"""The synthetic generator's motion laid out in the real coefficient space.

Real files (Deep3DFaceRecon, PIRender, StyleTalk, SAAS) hold expressions in
the Basel basis; the generator's own layout (motion.semantic_expression)
gives each coefficient a meaning of its own. Here the same components
(motion.expression_parts) are placed with the tables that calibrate.py
fitted on real clips (calibration.npz). Each part is centred on its corpus
mean, so that the corpus's mean expression is the real clips':

  exp = real mean
      + articulators (led by the real lag) @ mouth map, smoothed over
        MOUTH_SMOOTH frames
      + blinks (left, right) x the lid-closing directions x BLINK_DEPTH
      + brow bumps x the brow-raising direction
      + static offset (style + session, 56 values) @ Q
      + drift: per real within-clip residual direction an AR(1) process
        with that direction's spread and lag-1 correlation (x the style's
        drift factor), in bursts (a log-normal envelope, its log centred
        within the clip so that a clip's energy is its style's)
      + tracking noise (Student t) with NOISE_SHARE of the real
        frame-to-frame spread
  then the fast band (what FAST_SIGMA smoothing removes) is recoloured to
  the real clips' covariance of it, and the lips are brought into contact
  on bilabials (gap x (1 - close^CONTACT_POWER)).

Q = R L / s maps the generator's static offsets (spread s per value) onto
the real clips' per-clip offsets: L is the square root of their covariance
and R a fixed random orthonormal map, so offsets keep their structure (twin
emotions share theirs) and take the real spread and directions. Head pose is
rescaled per axis: offsets to the real clips' spread of mean poses, motion to
their spread within 32-frame windows, translations half from a faster
process (TRANS_FAST_HZ), plus white jitter up to their velocity spread
(scaled by the style's own jitter). The constants were chosen with
benchmarks/realism.py (README, Data).

Stochastic parts beyond the generator's own are drawn from the same rng
after all of its draws, so phones, blinks and nods are those of the
semantic rendering of the clip.
"""

import functools
import os

import numpy as np
import scipy.ndimage

from input_pipeline.synthetic import motion
from input_pipeline.synthetic import styles as st

CALIBRATION = os.path.join(os.path.dirname(__file__), "calibration.npz")
DRIFT_SHARE = 1.0  # of the real within-clip residual (blinks, brows: rest)
# The second-difference estimate of tracking noise also counts the fast
# part of real motion (which the drift now carries): this share is noise.
NOISE_SHARE = 0.3
BROW_UNIT = 0.9  # a brow bump of this size raises the brows 2 std
# A blink closes the lids this far: tracked real lids rarely close (over
# the 22 real clips the lid gap's 2nd percentile is 0.78 of its median, the
# deepest dip 0.53).
BLINK_DEPTH = 0.4
# Real mouths move more smoothly than the generator's visemes (and the
# tracker smooths them): frames of Gaussian smoothing.
MOUTH_SMOOTH = 2.0
# How a partial closure (the lip-close articulator between 0 and 1) brings
# the lips together: gap x (1 - close^CONTACT_POWER).
CONTACT_POWER = 2.0
_TYPICAL_DRIFT = 0.1  # the generator's mean drift_amp
_TYPICAL_JITTER = 0.003  # and pose_jitter
ENVELOPE, ENVELOPE_TAU = 0.6, 1.0  # burstiness of the drift: log-std, s
# Real translations move faster than the generator's slow drift: this
# share of their within-window variance comes from a process with this
# corner frequency.
TRANS_FAST_SHARE, TRANS_FAST_HZ = 0.5, 2.0
# Frames of Gaussian smoothing that split an expression into its slow part
# and the fast band that calibrate.fit_recolour recolours.
FAST_SIGMA = 1.0


def prepare(t: dict) -> dict:
  """Raw calibration tables -> the tables the renderers use (adds Q)."""
  t = dict(t)
  w, v = np.linalg.eigh(t["offset_cov"])
  root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T  # [64, 64]
  rng = np.random.default_rng(20261202)  # part of the fixed map
  r, _ = np.linalg.qr(rng.normal(size=(64, 64)))
  n_static = motion._STATIC.size
  t["Q"] = r[:n_static] @ root / float(t["semantic_offset_std"])
  return t


@functools.lru_cache(maxsize=2)
def tables(path: str = CALIBRATION) -> dict:
  with np.load(path) as z:
    return prepare({k: z[k] for k in z.files})


@functools.lru_cache(maxsize=4)
def _window_std_of_unit(corner_hz: float) -> float:
  """The median std within 32-frame windows of motion._lowpass_noise."""
  x = motion._lowpass_noise(np.random.default_rng(0), 32 * 512, corner_hz)
  return float(np.median(x.reshape(512, 32).std(1)))


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
  """Gaussian smoothing over time (frames), edges held."""
  if sigma <= 0:
    return x
  return scipy.ndimage.gaussian_filter1d(x, sigma, axis=0, mode="nearest")


def fast_band(exp: np.ndarray) -> np.ndarray:
  """[T, 64] what FAST_SIGMA smoothing removes: most of the velocity."""
  return exp - _smooth(exp, FAST_SIGMA)


def _lead(x: np.ndarray, frames: int) -> np.ndarray:
  """x(t + frames), the last frame held."""
  if frames <= 0:
    return x
  return np.concatenate([x[frames:], np.repeat(x[-1:], frames, 0)])


def _ar1(rng, num_frames: int, a: np.ndarray) -> np.ndarray:
  """[T, D] unit-variance stationary AR(1) noise, lag-1 correlation a [D]."""
  eps = rng.normal(0, 1, (num_frames, a.size)) * np.sqrt(1 - a * a)
  out = np.empty_like(eps)
  x = rng.normal(0, 1, a.size)
  for i in range(num_frames):
    x = a * x + eps[i]
    out[i] = x
  return out


def expression(parts: dict, style, rng, calibration=None) -> np.ndarray:
  """[T, 64] in the real space from motion.expression_parts."""
  t = tables() if calibration is None else calibration
  # Every part is centred on its corpus mean: the corpus's mean
  # expression is the real clips' mean.
  art = parts["art"] - t["semantic_art_mean"]
  lead = -int(t["mouth_lag"])
  mouth = _lead(art, lead) @ t["mouth_map"]
  exp = t["exp_mean"] + _smooth(mouth, MOUTH_SMOOTH)
  lids = np.stack([t["blink_left"], t["blink_right"]])
  blinks = parts["blinks"] - t["semantic_blink_mean"]
  exp = exp + BLINK_DEPTH * blinks @ lids
  brow = (parts["brow"] - t["semantic_brow_mean"]) / BROW_UNIT
  exp = exp + brow[:, None] * t["brow_raise"]
  static = style.exp_offset[motion._STATIC] - t["semantic_offset_mean"]
  exp = exp + (static + parts["session"]) @ t["Q"]
  if rng is not None:
    n = len(exp)
    std = t["residual_std"] * np.sqrt(DRIFT_SHARE)
    std = std * style.drift_amp / _TYPICAL_DRIFT
    drift = _ar1(rng, n, t["residual_lag1"]) * std
    # Real motion comes in bursts: a slow log-normal envelope (unit mean
    # square) modulates it.
    # Its log is centred within the clip: the clip's mean energy is the
    # style's (drift_amp), bursts come and go inside it.
    log_env = ENVELOPE * motion._ou(rng, n, 1, ENVELOPE_TAU * motion.FPS)
    env = np.exp(log_env - log_env.mean())
    env = env / np.sqrt(np.mean(env**2))
    exp = exp + (drift * env) @ t["residual_pcs"]
    # Heavy-tailed tracking noise (Student t, 3 dof, scaled to unit std).
    noise = rng.standard_t(3, exp.shape) / np.sqrt(3.0)
    exp = exp + noise * NOISE_SHARE * t["noise_std"]
  # The fast band recoloured to the real clips' covariance of it: the
  # frame-to-frame motion of each coefficient and their mix are the real
  # ones (the generator's parts alone move e.g. the lip-gap coefficients
  # 1.5x too fast and others too slowly).
  fast = fast_band(exp)
  exp = exp - fast + fast @ t["fast_recolour"]
  # Lips in contact: a bilabial takes the inner lip gap to 0 whatever the
  # person's offset or the drift (a linear sum of parts would not).
  close = np.clip(_lead(parts["art"][:, st.CLOSE], lead), 0, 1)  # [T]
  gap = (exp - t["exp_mean"]) @ t["lip_gap_grad"] + t["lip_gap_at_mean"]
  return exp - (close**CONTACT_POWER * gap)[:, None] * t["lip_opening"]


def pose(pose_sem: np.ndarray, style, rng, calibration=None) -> np.ndarray:
  """[T, 6] semantic pose -> the real clips' spreads per axis."""
  t = tables() if calibration is None else calibration
  offset = np.asarray(style.pose_offset)
  off_scale = t["pose_offset_std"] / t["semantic_pose_offset_std"]
  # Motion matched within 32-frame windows (real heads turn more slowly
  # than the generator's: matched over whole clips, windows move 2x more).
  dyn_scale = t["pose_window_std"] / t["semantic_pose_window_std"]
  offset = offset - t["semantic_pose_offset_mean"]
  swing = pose_sem - style.pose_offset - t["semantic_pose_motion_mean"]
  swing = swing * dyn_scale
  if rng is not None:
    fast = np.stack(
      [motion._lowpass_noise(rng, len(swing), TRANS_FAST_HZ) for _ in range(3)],
      axis=1,
    )  # [T, 3], unit variance
    fast *= t["pose_window_std"][3:] / _window_std_of_unit(TRANS_FAST_HZ)
    swing[:, 3:] = (
      np.sqrt(1 - TRANS_FAST_SHARE) * swing[:, 3:]
      + np.sqrt(TRANS_FAST_SHARE) * fast
    )
  out = t["pose_mean"] + offset * off_scale + swing
  if rng is not None:
    moved = t["semantic_pose_window_velocity_std"] * dyn_scale
    real = t["pose_window_velocity_std"]
    extra = np.sqrt(np.clip(real**2 - moved**2, 0, None))
    extra = extra * style.pose_jitter / _TYPICAL_JITTER  # a person's own
    # White jitter of std e moves a frame's velocity by e * sqrt(2).
    out = out + rng.normal(0, 1, out.shape) * extra / np.sqrt(2)
  return out


def roles(exp: np.ndarray, calibration=None) -> np.ndarray:
  """[T, 64] real-space expression -> [T, 8] the generator's roles read
  back (least squares on their directions): six articulators (centred),
  blink (both eyes) and brow raise. What the feature baselines look at."""
  t = tables() if calibration is None else calibration
  blink = (t["blink_left"] + t["blink_right"]) * BLINK_DEPTH / 2
  brow = t["brow_raise"] / BROW_UNIT
  d = np.concatenate([t["mouth_map"], blink[None], brow[None]])  # [8, 64]
  # Generalised least squares: the drift's directions weigh less.
  var = t["residual_std"] ** 2 + (NOISE_SHARE * t["noise_std"]).mean() ** 2
  prec = (t["residual_pcs"].T / var) @ t["residual_pcs"]  # [64, 64]
  read = prec @ d.T @ np.linalg.inv(d @ prec @ d.T)  # [64, 8]
  return (np.asarray(exp, np.float64) - t["exp_mean"]) @ read
