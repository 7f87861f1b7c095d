"""Speaking styles: the (person, emotion, level) parameters of every clip.

A style is everything that stays fixed while one person says many sentences
in one emotion at one intensity: their voice, how far they move their mouth,
how often they blink, how their head moves, and the static expression they
hold. It derives from (seed, person, emotion, level) alone, so any part of the
project can rebuild the style of any clip id without reading the corpus.

Three layers multiply:
  person   a voice (f0, vocal-tract scale, speaking rate, glottal tilt) and a
           motor habit (articulation gain, coarticulation smoothness, blink
           rate, brow activity, head-motion amplitude/tempo, nods) plus an
           identity-like static expression bias; identity, texture, lighting
           and crop are the person's too.
  emotion  multiplicative modifiers of those habits (EMOTION_DYNAMICS), each
           perturbed per person, and a static expression offset shared by
           the emotion's *twin* (OFFSET_GROUP): angry/disgusted,
           happy/surprised, fear/sad and neutral/contempt hold the same face
           for a given person and differ only in dynamics and prosody.
  level    intensity lambda = LEVEL_INTENSITY[level] in (0, 1]: the static
           offset is scaled by lambda and the dynamic modifiers are raised to
           the power lambda; level also adds a mild, emotion-independent
           emphasis (louder, larger mouth and head motion at higher levels),
           so the three levels of `neutral` differ too.
"""

import dataclasses
import functools
import hashlib

import numpy as np

EMOTIONS = (
  "angry",
  "contempt",
  "disgusted",
  "fear",
  "happy",
  "neutral",
  "sad",
  "surprised",
)
LEVELS = (1, 2, 3)
LEVEL_INTENSITY = {1: 0.4, 2: 0.7, 3: 1.0}

# Twins share their static expression offset (per person); only dynamics and
# prosody tell them apart.
OFFSET_GROUP = {
  "angry": "tense",
  "disgusted": "tense",
  "happy": "bright",
  "surprised": "bright",
  "fear": "low",
  "sad": "low",
  "neutral": "rest",
  "contempt": "rest",
}

# Expression coefficient roles (0..17 are the mouth, as the official decoder
# assumes; see motion.py for how each is driven).
JAW, CLOSE, ROUND, SPREAD, TUCK, NARROW = 0, 1, 2, 3, 4, 5
SMILE, FROWN, UPPER_LIP_RAISE, LIP_PRESS = 6, 7, 8, 9
MOUTH_SECONDARY = slice(10, 18)
BLINK_L, BLINK_R = 18, 19
BROW_INNER, BROW_OUTER, BROW_LOWER = 20, 21, 22
EYE_WIDEN, SQUINT, CHEEK_RAISE, NOSE_WRINKLE = 23, 24, 25, 26
GENERIC = slice(27, 64)
NUM_EXP = 64

# Modifiers at full intensity (level 3), multiplicative unless noted:
# rate (speaking rate), f0, pitch_range, energy_db (additive dB), tilt
# (glottal tilt corner: higher = brighter, tenser voice), art_gain
# (articulation), coartic (coarticulation time constants), blink (rate),
# brow (accent brow raises), pose_amp, pose_tempo, pose_jitter, nod (nod
# amplitude), drift (slow expression drift).
_DYNAMIC_FIELDS = (
  "rate",
  "f0",
  "pitch_range",
  "energy_db",
  "tilt",
  "art_gain",
  "coartic",
  "blink",
  "brow",
  "pose_amp",
  "pose_tempo",
  "pose_jitter",
  "nod",
  "drift",
)
# fmt: off
EMOTION_DYNAMICS = {
  #             rate  f0    range en_db tilt  gain  coart blink brow  p_amp tempo jitt  nod   drift
  "angry":     (1.15, 1.12, 1.5,  6.0,  1.8,  1.35, 0.75, 0.45, 1.3,  1.5,  1.7,  1.6,  1.7,  1.2),
  "disgusted": (0.85, 0.95, 0.8,  0.0,  1.0,  0.70, 1.45, 1.90, 0.6,  0.75, 0.55, 0.7,  0.6,  0.8),
  "happy":     (1.10, 1.20, 1.6,  3.0,  1.4,  1.30, 0.90, 1.30, 1.5,  1.35, 1.35, 1.2,  1.4,  1.2),
  "surprised": (0.92, 1.25, 1.9,  2.0,  1.2,  0.85, 1.25, 0.35, 2.2,  0.70, 0.65, 0.6,  0.6,  0.7),
  "fear":      (1.20, 1.18, 0.9, -2.0,  0.9,  0.80, 0.80, 2.30, 1.0,  0.80, 2.10, 2.2,  0.8,  1.4),
  "sad":       (0.80, 0.90, 0.55, -5.0, 0.6,  0.70, 1.50, 0.80, 0.7,  0.60, 0.50, 0.5,  0.5,  0.6),
  "neutral":   (1.00, 1.00, 1.0,  0.0,  1.0,  1.00, 1.00, 1.00, 1.0,  1.00, 1.00, 1.0,  1.0,  1.0),
  "contempt":  (0.88, 0.95, 1.1,  0.0,  1.0,  0.85, 1.25, 0.65, 0.8,  1.35, 0.60, 0.8,  0.7,  0.9),
}
# fmt: on


def rng_for(seed: int, *keys) -> np.random.Generator:
  """A generator that depends only on the seed and the keys (stable across
  processes and Python versions: no built-in hash)."""
  digest = hashlib.sha256("\x1f".join(map(str, keys)).encode()).digest()
  words = np.frombuffer(digest[:16], dtype="<u4").tolist()
  return np.random.default_rng(np.random.SeedSequence([int(seed), *words]))


@dataclasses.dataclass(frozen=True, eq=False)
class Style:
  """Parameters of one (person, emotion, level); see the module docstring."""

  seed: int
  person: str
  emotion: str
  level: int
  # Voice.
  f0: float  # Hz, mean fundamental frequency
  vocal_tract: float  # formant frequency scale (1 = adult male)
  rate: float  # speaking rate; phone durations are divided by it
  pitch_range: float  # semitones of a typical pitch accent
  energy_db: float  # loudness offset
  tilt_hz: float  # glottal spectral tilt corner frequency
  breathiness: float  # aspiration noise mixed into voicing
  # Expression dynamics.
  art_gain: float  # articulation gain of the mouth coefficients
  coartic: float  # coarticulation time-constant scale (larger = smoother)
  blink_rate: float  # blinks per minute
  blink_dur: float  # seconds
  brow_gain: float  # brow raise per pitch accent
  drift_amp: float  # slow expression drift (coefficient units)
  drift_tau: float  # seconds
  session_std: float  # per-clip static offset spread (within-style)
  exp_offset: np.ndarray  # [64] static expression of this style
  # Head pose.
  pose_amp: np.ndarray  # [3] rad, std of the free head motion
  pose_tempo: float  # Hz, corner of the free head motion's spectrum
  pose_jitter: float  # rad, fast tremor
  nod_amp: float  # rad, pitch dip on a stressed syllable
  nod_prob: float  # chance that a stressed syllable carries a nod
  pose_offset: np.ndarray  # [6] static angles + translation
  trans_amp: np.ndarray  # [3] translation std
  # Person constants.
  identity: np.ndarray  # [80]
  texture: np.ndarray  # [80]
  gamma: np.ndarray  # [27]
  crop: np.ndarray  # [3] (s, tx, ty)

  @property
  def key(self) -> tuple[str, str, int]:
    return (self.person, self.emotion, self.level)

  @property
  def style_id(self) -> str:
    return f"{self.person}#{self.emotion}#level_{self.level}"


def _emotion_templates() -> dict[str, np.ndarray]:
  """[64] static offset of each twin group at full intensity (all persons)."""
  rng = np.random.default_rng(20240117)  # part of the fixed "language"
  out = {}
  spec = {
    "tense": {
      BROW_LOWER: 0.9,
      LIP_PRESS: 0.6,
      UPPER_LIP_RAISE: 0.45,
      SQUINT: 0.5,
      NOSE_WRINKLE: 0.35,
      FROWN: 0.3,
    },
    "bright": {
      SMILE: 0.9,
      CHEEK_RAISE: 0.6,
      BROW_INNER: 0.35,
      BROW_OUTER: 0.5,
      EYE_WIDEN: 0.35,
    },
    "low": {
      BROW_INNER: 0.75,
      FROWN: 0.65,
      BROW_LOWER: 0.25,
      EYE_WIDEN: 0.2,
      LIP_PRESS: 0.2,
    },
  }
  for group, values in spec.items():
    vec = np.zeros(NUM_EXP)
    vec[GENERIC] = rng.normal(0.0, 0.3, 64 - 27)
    for index, value in values.items():
      vec[index] = value
    out[group] = vec
  out["rest"] = np.zeros(NUM_EXP)
  return out


_TEMPLATES = _emotion_templates()
# Coefficients that carry static (non-articulatory, non-blink) expression.
_STATIC_COEFFS = np.r_[6:18, 20:64]


@functools.lru_cache(maxsize=4096)
def _person(seed: int, person: str) -> dict:
  rng = rng_for(seed, "person", person)
  female = rng.random() < 0.5
  p = {
    "f0": float(rng.uniform(185, 235) if female else rng.uniform(95, 135)),
    "vocal_tract": float(
      rng.uniform(1.1, 1.2) if female else rng.uniform(0.94, 1.04)
    ),
    "rate": float(np.exp(rng.normal(0, 0.1))),
    "pitch_range": float(rng.uniform(2.0, 4.0)),
    "tilt_hz": float(rng.uniform(180, 320)),
    "breathiness": float(rng.uniform(0.02, 0.12)),
    "art_gain": float(np.exp(rng.normal(0, 0.12))),
    "coartic": float(np.exp(rng.normal(0, 0.12))),
    "blink_rate": float(rng.uniform(10, 24)),
    "blink_dur": float(rng.uniform(0.2, 0.32)),
    "brow_gain": float(rng.uniform(0.3, 0.6)),
    "drift_amp": float(rng.uniform(0.06, 0.14)),
    "drift_tau": float(rng.uniform(1.0, 2.5)),
    "session_std": float(rng.uniform(0.1, 0.16)),
    "pose_amp": rng.uniform([0.03, 0.04, 0.015], [0.06, 0.08, 0.035]),
    "pose_tempo": float(rng.uniform(0.35, 0.7)),
    "pose_jitter": float(rng.uniform(0.002, 0.004)),
    "nod_amp": float(rng.uniform(0.025, 0.05)),
    "nod_prob": float(rng.uniform(0.35, 0.7)),
    "pose_offset": np.concatenate(
      [
        rng.normal(0, [0.05, 0.06, 0.03]),
        rng.normal(0, [0.03, 0.03, 0.08]),
      ]
    ),
    "trans_amp": rng.uniform([0.008, 0.008, 0.02], [0.02, 0.02, 0.05]),
    "bias": np.zeros(NUM_EXP),
    "identity": rng.normal(0, 1.0, 80),
    "texture": rng.normal(0, 1.0, 80),
    "gamma": rng.normal(0, 0.1, 27),
    "crop": np.array(
      [rng.uniform(0.9, 1.1), 128 + rng.normal(0, 3), 128 + rng.normal(0, 3)]
    ),
  }
  p["bias"][_STATIC_COEFFS] = rng.normal(0, 0.2, _STATIC_COEFFS.size)
  return {k: _frozen(v) for k, v in p.items()}


def _frozen(value):
  """Arrays shared through the caches are made read-only."""
  if isinstance(value, np.ndarray):
    value.setflags(write=False)
  return value


def _person_emotion(seed: int, person: str, emotion: str) -> np.ndarray:
  """The emotion's modifiers, perturbed for this person (log-normal)."""
  base = np.asarray(EMOTION_DYNAMICS[emotion], np.float64)
  if emotion == "neutral":  # the reference: every person's own habits
    return base
  rng = rng_for(seed, "person-emotion", person, emotion)
  noise = rng.normal(0, 0.12, base.size)
  out = base * np.exp(noise)
  energy = _DYNAMIC_FIELDS.index("energy_db")
  out[energy] = base[energy] + 1.5 * noise[energy] / 0.12  # additive dB
  return out


def _group_offset(seed: int, person: str, group: str) -> np.ndarray:
  """Static offset of a twin group for this person, at full intensity."""
  if group == "rest":
    return np.zeros(NUM_EXP)
  rng = rng_for(seed, "person-group", person, group)
  template = _TEMPLATES[group]
  out = template * rng.uniform(0.7, 1.3)
  out[_STATIC_COEFFS] += rng.normal(0, 0.15, _STATIC_COEFFS.size)
  return out


@functools.lru_cache(maxsize=65536)
def style_for(seed: int, person: str, emotion: str, level: int) -> Style:
  """The style of (person, emotion, level) under `seed` (cached, immutable)."""
  if emotion not in EMOTIONS:
    raise ValueError(f"unknown emotion '{emotion}' (known: {EMOTIONS})")
  if level not in LEVEL_INTENSITY:
    raise ValueError(f"unknown level {level} (known: {LEVELS})")
  lam = LEVEL_INTENSITY[level]
  p = _person(int(seed), person)
  mods = dict(
    zip(
      _DYNAMIC_FIELDS,
      _person_emotion(int(seed), person, emotion),
      strict=True,
    )
  )
  m = {k: (v**lam if k != "energy_db" else v * lam) for k, v in mods.items()}
  emphasis = 0.85 + 0.15 * (level - 1)  # 0.85, 1.0, 1.15
  group = _group_offset(int(seed), person, OFFSET_GROUP[emotion])
  offset = p["bias"] + lam * group
  return Style(
    seed=int(seed),
    person=person,
    emotion=emotion,
    level=int(level),
    f0=p["f0"] * m["f0"],
    vocal_tract=p["vocal_tract"],
    rate=p["rate"] * m["rate"],
    pitch_range=p["pitch_range"] * m["pitch_range"] * emphasis,
    energy_db=m["energy_db"] + 2.0 * (level - 2),
    tilt_hz=p["tilt_hz"] * m["tilt"],
    breathiness=p["breathiness"] / m["tilt"],
    art_gain=p["art_gain"] * m["art_gain"] * emphasis**0.5,
    coartic=p["coartic"] * m["coartic"],
    blink_rate=p["blink_rate"] * m["blink"],
    blink_dur=p["blink_dur"],
    brow_gain=p["brow_gain"] * m["brow"] * emphasis,
    drift_amp=p["drift_amp"] * m["drift"],
    drift_tau=p["drift_tau"],
    session_std=p["session_std"],
    exp_offset=_frozen(offset),
    pose_amp=_frozen(p["pose_amp"] * m["pose_amp"] * emphasis),
    pose_tempo=p["pose_tempo"] * m["pose_tempo"],
    pose_jitter=p["pose_jitter"] * m["pose_jitter"],
    nod_amp=p["nod_amp"] * m["nod"] * emphasis,
    nod_prob=float(np.clip(p["nod_prob"] * m["nod"] ** 0.5, 0.05, 0.95)),
    pose_offset=p["pose_offset"],
    trans_amp=_frozen(p["trans_amp"] * m["pose_amp"] ** 0.5),
    identity=p["identity"],
    texture=p["texture"],
    gamma=p["gamma"],
    crop=p["crop"],
  )
