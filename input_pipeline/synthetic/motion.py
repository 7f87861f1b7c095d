"""Expression and head-pose sequences from a phone alignment and a style.

Both renderers take the manifest's phone list ([label, start s, end s]) and a
styles.Style, sample at 25 fps (frame i is time i / 25; each frame averages
four sub-samples 10 ms apart, like a camera's exposure), and take an optional
`rng`: with rng=None only the deterministic part is rendered (what the
style-transfer ground truth uses), with an rng the stochastic parts are added.

Expression [T, 64]:
  0..5    articulators jaw-open, lip-close, round, spread, lower-lip tuck,
          narrow (sibilant); Cohen-Massaro style coarticulation: every phone
          has a viseme target and a dominance per articulator, held over the
          middle half of its interval and decaying as a Gaussian beyond it,
          1.5x wider before (anticipation) than after; the value is the
          dominance-weighted mean of the targets. Bilabials (M, B, P) dominate lip-close and reach
          closure; F/V dominate the tuck, W/UW/OW the rounding. The style's
          `coartic` scales the widths; its `art_gain` g scales the excursion
          around the speech mean mu: a' = mu + g (a - mu) (g^0.3 for close and
          tuck, so that closures stay closures).
  6..9    smile, frown, upper-lip raise, lip press: static (emotion) plus a
          little coupling from the spread articulator.
  10..17  secondary mouth coefficients: a fixed linear mix of the articulators.
  18, 19  blinks (left, right): a Poisson process at the style's blink rate
          with a refractory 0.4 s, fast close and slower opening (stochastic).
  20..26  brows (inner/outer raise, lower), eye widen, squint, cheek raise,
          nose wrinkle: static offsets plus a brow raise and slight eye widening
          on every stressed vowel (pitch accent), scaled by `brow_gain`.
  27..63  generic coefficients: static offsets.
  All static coefficients (6..17, 20..63) add the style's `exp_offset`.
  Stochastic parts: per-clip session offset (std `session_std`), slow
  Ornstein-Uhlenbeck drift (`drift_amp`, `drift_tau`) on 20..63, blinks,
  per-phone target jitter (12 %), per-clip gain jitter (6 %), per-accent brow
  amplitude (log-normal, 35 %), tracking noise (0.025, lightly smoothed).

Pose [T, 6] (pitch, yaw, roll in radians, then translation):
  a second-order low-pass noise process per angle (std `pose_amp`, corner
  frequency `pose_tempo`), fast tremor (`pose_jitter`), and a nod (pitch dip
  and recoil, `nod_amp`) on each stressed vowel with probability `nod_prob`;
  translation follows the free rotation a little plus its own slower noise.
  Angles are soft-clipped to +-0.3 rad. rng=None gives the static pose plus
  the expected nods.
"""

import numpy as np
import scipy.signal

from input_pipeline.synthetic import speech
from input_pipeline.synthetic import styles as st

FPS = 25.0
_SUB_OFFSETS = np.array([-0.015, -0.005, 0.005, 0.015])  # exposure, seconds
NUM_ART = 6

# Viseme targets [jaw, close, round, spread, tuck, narrow] and dominances.
# fmt: off
_VOWEL_SHAPES = {
  #      jaw   round spread
  "AA": (1.00, 0.00, 0.10),
  "AE": (0.85, 0.00, 0.40),
  "AH": (0.65, 0.00, 0.10),
  "AO": (0.80, 0.50, 0.00),
  "EH": (0.55, 0.00, 0.40),
  "ER": (0.40, 0.35, 0.00),
  "IH": (0.35, 0.00, 0.50),
  "IY": (0.25, 0.00, 0.80),
  "UH": (0.35, 0.60, 0.00),
  "UW": (0.25, 0.90, 0.00),
  "EY": (0.45, 0.00, 0.60),
  "AY": (0.80, 0.00, 0.40),
  "AW": (0.80, 0.45, 0.05),
  "OW": (0.55, 0.80, 0.00),
  "OY": (0.60, 0.50, 0.20),
}
_CONSONANTS = {
  #        targets                            dominances
  "M":  ((0.08, 1.0, 0.0, 0.0, 0.0, 0.0), (3.0, 15.0, 0.3, 0.3, 1.0, 0.3)),
  "B":  ((0.08, 1.0, 0.0, 0.0, 0.0, 0.0), (3.0, 15.0, 0.3, 0.3, 1.0, 0.3)),
  "P":  ((0.08, 1.0, 0.0, 0.0, 0.0, 0.0), (3.0, 15.0, 0.3, 0.3, 1.0, 0.3)),
  "F":  ((0.12, 0.0, 0.0, 0.1, 1.0, 0.0), (1.5, 2.0, 0.3, 0.3, 10.0, 0.3)),
  "V":  ((0.12, 0.0, 0.0, 0.1, 1.0, 0.0), (1.5, 2.0, 0.3, 0.3, 10.0, 0.3)),
  "TH": ((0.20, 0.0, 0.0, 0.2, 0.0, 0.3), (1.0, 1.0, 0.3, 0.5, 1.0, 1.0)),
  "DH": ((0.20, 0.0, 0.0, 0.2, 0.0, 0.3), (1.0, 1.0, 0.3, 0.5, 1.0, 1.0)),
  "S":  ((0.10, 0.0, 0.0, 0.3, 0.0, 1.0), (2.0, 1.0, 0.4, 0.6, 1.0, 4.0)),
  "Z":  ((0.10, 0.0, 0.0, 0.3, 0.0, 1.0), (2.0, 1.0, 0.4, 0.6, 1.0, 4.0)),
  "SH": ((0.12, 0.0, 0.6, 0.0, 0.0, 0.7), (2.0, 1.0, 2.0, 0.6, 1.0, 3.0)),
  "ZH": ((0.12, 0.0, 0.6, 0.0, 0.0, 0.7), (2.0, 1.0, 2.0, 0.6, 1.0, 3.0)),
  "CH": ((0.12, 0.0, 0.6, 0.0, 0.0, 0.7), (2.0, 1.0, 2.0, 0.6, 1.0, 3.0)),
  "JH": ((0.12, 0.0, 0.6, 0.0, 0.0, 0.7), (2.0, 1.0, 2.0, 0.6, 1.0, 3.0)),
  "T":  ((0.18, 0.0, 0.0, 0.0, 0.0, 0.5), (0.8, 1.0, 0.2, 0.2, 1.0, 1.5)),
  "D":  ((0.18, 0.0, 0.0, 0.0, 0.0, 0.5), (0.8, 1.0, 0.2, 0.2, 1.0, 1.5)),
  "N":  ((0.18, 0.0, 0.0, 0.0, 0.0, 0.5), (0.8, 1.0, 0.2, 0.2, 1.0, 1.5)),
  "K":  ((0.30, 0.0, 0.0, 0.0, 0.0, 0.0), (0.5, 1.0, 0.2, 0.2, 1.0, 0.5)),
  "G":  ((0.30, 0.0, 0.0, 0.0, 0.0, 0.0), (0.5, 1.0, 0.2, 0.2, 1.0, 0.5)),
  "NG": ((0.30, 0.0, 0.0, 0.0, 0.0, 0.0), (0.5, 1.0, 0.2, 0.2, 1.0, 0.5)),
  "L":  ((0.30, 0.0, 0.0, 0.0, 0.0, 0.2), (0.5, 1.0, 0.2, 0.2, 1.0, 0.5)),
  "R":  ((0.25, 0.0, 0.5, 0.0, 0.0, 0.0), (0.6, 1.0, 1.5, 0.3, 1.0, 0.5)),
  "W":  ((0.10, 0.0, 1.0, 0.0, 0.0, 0.0), (1.5, 1.0, 6.0, 1.0, 1.0, 0.5)),
  "Y":  ((0.15, 0.0, 0.0, 0.6, 0.0, 0.0), (1.0, 1.0, 0.5, 2.0, 1.0, 0.5)),
  "HH": ((0.30, 0.0, 0.0, 0.0, 0.0, 0.0), (0.1, 0.3, 0.1, 0.1, 0.3, 0.1)),
  "SIL": ((0.0, 0.35, 0.0, 0.0, 0.0, 0.0), (0.8, 0.8, 0.8, 0.8, 0.8, 0.8)),
}
# fmt: on
_VOWEL_DOMINANCE = (1.0, 2.0, 1.0, 1.0, 1.5, 1.0)
_CORE = 0.5
_WIDTH_HALF = 0.5
_WIDTH0 = 0.015
_ANTICIPATION = 1.5


def _viseme_table():
  targets, dominance = {}, {}
  for name, (jaw, rnd, spread) in _VOWEL_SHAPES.items():
    targets[name] = (jaw, 0.0, rnd, spread, 0.0, 0.0)
    dominance[name] = _VOWEL_DOMINANCE
  for name, (tgt, dom) in _CONSONANTS.items():
    targets[name], dominance[name] = tgt, dom
  missing = set(speech.PHONE_NAMES) - set(targets)
  assert not missing, missing
  return targets, dominance


VISEME_TARGETS, VISEME_DOMINANCE = _viseme_table()
# Mean articulator values over typical speech (gain pivots around them).
ART_MEAN = np.array([0.25, 0.19, 0.18, 0.17, 0.10, 0.22])
_MIX = np.random.default_rng(99).normal(0, 0.35, (NUM_ART, 8))
_GAIN_POWER = np.array([1.0, 0.3, 1.0, 1.0, 0.3, 1.0])
_STATIC = np.r_[6:18, 20:64]
_DRIFT = np.r_[20:64]


def _parse(phones):
  labels = [str(p[0]) for p in phones]
  start = np.array([float(p[1]) for p in phones])
  end = np.array([float(p[2]) for p in phones])
  return labels, start, end


def _times(num_frames: int) -> np.ndarray:
  """[T, 4] sub-sample times of every frame's exposure."""
  return np.arange(num_frames)[:, None] / FPS + _SUB_OFFSETS[None, :]


def articulators(
  phones, style, num_frames: int, rng: np.random.Generator | None = None
) -> np.ndarray:
  """[T, 6] coarticulated articulator tracks (before the style's gain)."""
  labels, start, end = _parse(phones)
  names = [speech.base_phone(label) for label in labels]
  tgt = np.array([VISEME_TARGETS[n] for n in names])  # [P, 6]
  dom = np.array([VISEME_DOMINANCE[n] for n in names])  # [P, 6]
  if rng is not None:
    tgt = tgt * np.exp(rng.normal(0, 0.12, tgt.shape))
    tgt[:, 1] = np.minimum(tgt[:, 1], 1.0)
  for i, label in enumerate(labels):
    if label.endswith("0") and names[i] in _VOWEL_SHAPES:
      tgt[i, 0] *= 0.75  # reduced vowels open less
  centre = 0.5 * (start + end)
  half = 0.5 * (end - start)
  core = _CORE * half  # every phone fully holds the middle of its interval
  width = (_WIDTH_HALF * np.minimum(half, 0.1) + _WIDTH0) * style.coartic
  t = _times(num_frames).reshape(-1)  # [T*4]
  d = t[:, None] - centre[None, :]  # [T*4, P]
  w = np.where(d < 0, _ANTICIPATION, 1.0) * width[None, :]
  outside = np.maximum(np.abs(d) - core[None, :], 0.0)
  shape = np.exp(-0.5 * (outside / w) ** 2)  # [T*4, P]
  weight = shape[:, :, None] * dom[None, :, :]  # [T*4, P, 6]
  num = np.einsum("tpk,pk->tk", weight, tgt)
  den = weight.sum(axis=1) + 1e-6
  rest = np.array(VISEME_TARGETS["SIL"])
  value = (num + 1e-6 * rest) / den
  return value.reshape(num_frames, 4, NUM_ART).mean(axis=1)


def _accents(phones) -> np.ndarray:
  """Centres (s) of the stressed vowels: the pitch accents."""
  labels, start, end = _parse(phones)
  return np.array(
    [
      0.5 * (s + e)
      for lab, s, e in zip(labels, start, end, strict=True)
      if lab[-1] == "1"
    ]
  )


def _bumps(times: np.ndarray, centres, amps, shift: float, sigma: float):
  """[T*4] sum of Gaussian bumps amps_k at centres_k + shift."""
  if len(centres) == 0:
    return np.zeros_like(times)
  d = times[:, None] - (np.asarray(centres)[None, :] + shift)
  return (np.exp(-0.5 * (d / sigma) ** 2) * np.asarray(amps)[None, :]).sum(1)


def _frame_mean(x: np.ndarray, num_frames: int) -> np.ndarray:
  return x.reshape(num_frames, 4, *x.shape[1:]).mean(axis=1)


def _blinks(style, num_frames: int, rng) -> np.ndarray:
  """[T, 2] blink coefficients (left, right) from a Poisson process."""
  t = _times(num_frames).reshape(-1)
  total = num_frames / FPS
  rate = style.blink_rate / 60.0
  out = np.zeros((t.size, 2))
  time = rng.exponential(1.0 / rate) - 0.5
  while time < total:
    dur = style.blink_dur * rng.uniform(0.8, 1.25)
    close = 0.35 * dur
    amp = rng.uniform(0.85, 1.1)
    x = t - time
    up = np.clip(x / close, 0, 1)
    down = np.clip((x - close) / (dur - close), 0, 1)
    shape = np.where(x < close, np.sin(0.5 * np.pi * up) ** 2, 1.0)
    shape = np.where(x >= close, np.cos(0.5 * np.pi * down) ** 2, shape)
    shape = np.where((x < 0) | (x > dur), 0.0, shape)
    asym = rng.normal(0, 0.04, 2)
    out += amp * shape[:, None] * (1 + asym)[None, :]
    time += max(0.4, rng.exponential(1.0 / rate))
  return _frame_mean(out, num_frames)


def _ou(rng, num_frames: int, dims: int, tau_frames: float) -> np.ndarray:
  """[T, dims] unit-variance stationary Ornstein-Uhlenbeck noise."""
  a = np.exp(-1.0 / tau_frames)
  eps = rng.normal(0, 1, (num_frames, dims))
  x0 = rng.normal(0, 1, dims)
  zi = (a * x0)[None, :]
  y, _ = scipy.signal.lfilter(
    [np.sqrt(1 - a * a)], [1.0, -a], eps, axis=0, zi=zi
  )
  return y


def expression_parts(
  phones, style, num_frames: int, rng: np.random.Generator | None = None
) -> dict:
  """The expression's components, before they are laid out in a
  coefficient space: articulators [T, 6] (after the style's gain), brow
  bumps [T], and with an rng the per-clip session offset [58] (on the
  static coefficients), drift [T, 44], blinks [T, 2] and tracking noise
  [T, 64] (zeros without). The rng is drawn in one fixed order."""
  num_frames = int(num_frames)
  art = articulators(phones, style, num_frames, rng)
  gain = style.art_gain
  if rng is not None:
    gain *= np.exp(rng.normal(0, 0.06))
  art = ART_MEAN + gain**_GAIN_POWER * (art - ART_MEAN)
  centres = _accents(phones)
  amps = np.full(len(centres), style.brow_gain)
  if rng is not None:
    amps = amps * np.exp(rng.normal(0, 0.35, len(centres)))
  t = _times(num_frames).reshape(-1)
  parts = {
    "art": art,
    "brow": _frame_mean(_bumps(t, centres, amps, -0.03, 0.11), num_frames),
    "session": np.zeros(_STATIC.size),
    "drift": np.zeros((num_frames, _DRIFT.size)),
    "blinks": np.zeros((num_frames, 2)),
    "noise": np.zeros((num_frames, st.NUM_EXP)),
  }
  if rng is not None:
    parts["session"] = rng.normal(0, style.session_std, _STATIC.size)
    tau = style.drift_tau * FPS
    parts["drift"] = style.drift_amp * _ou(rng, num_frames, _DRIFT.size, tau)
    parts["blinks"] = _blinks(style, num_frames, rng)
    noise = rng.normal(0, 0.025, (num_frames, st.NUM_EXP))
    parts["noise"] = scipy.signal.lfilter([0.5, 0.5], [1.0], noise, axis=0)
  return parts


def semantic_expression(parts: dict, style) -> np.ndarray:
  """The corpus's own coefficient layout (see the module docstring)."""
  art = parts["art"]
  exp = np.zeros((len(art), st.NUM_EXP))
  exp[:, :NUM_ART] = art
  centred = art - ART_MEAN
  exp[:, st.MOUTH_SECONDARY] = np.einsum("tk,km->tm", centred, _MIX)
  exp[:, st.SMILE] += 0.15 * centred[:, st.SPREAD]
  exp[:, _STATIC] += style.exp_offset[_STATIC]
  brow = parts["brow"]
  exp[:, st.BROW_INNER] += 0.9 * brow
  exp[:, st.BROW_OUTER] += 0.6 * brow
  exp[:, st.EYE_WIDEN] += 0.2 * brow
  exp[:, _STATIC] += parts["session"]
  exp[:, _DRIFT] += parts["drift"]
  exp[:, [st.BLINK_L, st.BLINK_R]] += parts["blinks"]
  exp += parts["noise"]
  return exp


def render_expression(
  phones,
  style,
  num_frames: int,
  *,
  rng: np.random.Generator | None = None,
  space: str = "semantic",
) -> np.ndarray:
  """[T, 64] float32 expression coefficients; see the module docstring.
  space="real": in Deep3DFaceRecon's expression space (real_space.py)."""
  parts = expression_parts(phones, style, num_frames, rng)
  if space == "semantic":
    exp = semantic_expression(parts, style)
  elif space == "real":
    from input_pipeline.synthetic import real_space

    exp = real_space.expression(parts, style, rng)
  else:
    raise ValueError(f"space must be 'semantic' or 'real', not {space!r}")
  return exp.astype(np.float32)


def _lowpass_noise(rng, n: int, corner_hz: float) -> np.ndarray:
  """[n] unit-variance noise through two cascaded one-pole low-passes."""
  a = np.exp(-2 * np.pi * corner_hz / FPS)
  burn = int(5 / (1 - a)) + 10
  eps = rng.normal(0, 1, n + burn)
  y = scipy.signal.lfilter([1 - a], [1, -a], eps)
  y = scipy.signal.lfilter([1 - a], [1, -a], y)
  # Exact stationary std of the cascade for unit white noise.
  var = (1 - a) ** 4 * (1 + a * a) / ((1 - a * a) ** 3)
  return y[burn:] / np.sqrt(var)


def render_pose(
  phones,
  style,
  num_frames: int,
  *,
  rng: np.random.Generator | None = None,
  space: str = "semantic",
) -> np.ndarray:
  """[T, 6] float32 head pose (angles in radians, translation);
  space="real": scaled to real clips' statistics (real_space.py)."""
  if space not in ("semantic", "real"):
    raise ValueError(f"space must be 'semantic' or 'real', not {space!r}")
  num_frames = int(num_frames)
  t = _times(num_frames).reshape(-1)
  centres = _accents(phones)
  pose = np.tile(style.pose_offset, (num_frames, 1))
  if rng is None:
    amps = np.full(len(centres), style.nod_amp * style.nod_prob)
  else:
    keep = rng.random(len(centres)) < style.nod_prob
    amps = style.nod_amp * rng.uniform(0.6, 1.4, len(centres)) * keep
  nod = _bumps(t, centres, amps, -0.04, 0.09)
  nod -= 0.35 * _bumps(t, centres, amps, 0.18, 0.12)
  pose[:, 0] += _frame_mean(nod, num_frames)
  if rng is not None:
    free = np.stack(
      [
        style.pose_amp[k]
        * _lowpass_noise(rng, num_frames, style.pose_tempo * f)
        for k, f in enumerate((1.0, 0.8, 0.6))
      ],
      axis=1,
    )  # [T, 3]
    tremor = rng.normal(0, 1, (num_frames, 3)) * style.pose_jitter
    tremor = scipy.signal.lfilter([0.5, 0.5], [1.0], tremor, axis=0)
    pose[:, :3] += free + tremor
    slow = np.stack(
      [
        style.trans_amp[k] * _lowpass_noise(rng, num_frames, 0.3)
        for k in range(3)
      ],
      axis=1,
    )
    pose[:, 3] += 0.15 * free[:, 1] + slow[:, 0]
    pose[:, 4] -= 0.15 * free[:, 0] + slow[:, 1]
    pose[:, 5] += slow[:, 2]
  pose[:, :3] = 0.3 * np.tanh(pose[:, :3] / 0.3)
  if space == "real":
    from input_pipeline.synthetic import real_space

    pose = real_space.pose(pose, style, rng)
  return pose.astype(np.float32)
