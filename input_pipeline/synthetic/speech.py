"""Phones, a pseudo-English lexicon, utterance plans and source-filter audio.

An utterance is planned first (words -> phones with millisecond boundaries,
pauses, silences), cheaply and without audio, so that a corpus can list every
clip's phones and length before, or instead of, synthesising it. Vowels carry
ARPAbet stress digits (AA1 stressed, AA0 unstressed); every primary-stressed
vowel carries a pitch accent, so the accents (and the brow raises and nods
the motion model ties to them) are a function of the phone list.

Synthesis is a source-filter model evaluated frame by frame in the STFT
domain (512-point Hann frames every 8 ms, weighted overlap-add): a glottal
impulse train at the f0 contour, shaped by a glottal tilt and a cascade of
five formant resonators (plus an anti-resonance for nasals), plus noise
shaped by a place-dependent band (fricatives, stop bursts) or by the vocal
tract (aspiration, /HH/, breathiness). Stops have a closure (silent, or a
low voice bar when voiced), a burst and, when voiceless, aspiration.
"""

import dataclasses

import numpy as np

SAMPLE_RATE = 16000
FPS = 25
MS_PER_FRAME = 1000 // FPS  # 40

VOWEL, DIPHTHONG, STOP, FRICATIVE, AFFRICATE, NASAL, APPROX, ASPIRATE, SIL = (
  "vowel",
  "diphthong",
  "stop",
  "fricative",
  "affricate",
  "nasal",
  "approximant",
  "aspirate",
  "silence",
)

# name: (kind, voiced, formants at onset, formants at offset (F1, F2, F3)).
# Consonant formants are loci that neighbouring vowels move towards.
# fmt: off
_TABLE = {
  "IY": (VOWEL, True, (270, 2290, 3010), None),
  "IH": (VOWEL, True, (390, 1990, 2550), None),
  "EH": (VOWEL, True, (530, 1840, 2480), None),
  "AE": (VOWEL, True, (660, 1720, 2410), None),
  "AA": (VOWEL, True, (730, 1090, 2440), None),
  "AO": (VOWEL, True, (570, 840, 2410), None),
  "UH": (VOWEL, True, (440, 1020, 2240), None),
  "UW": (VOWEL, True, (300, 870, 2240), None),
  "AH": (VOWEL, True, (640, 1190, 2390), None),
  "ER": (VOWEL, True, (490, 1350, 1690), None),
  "EY": (DIPHTHONG, True, (480, 1900, 2500), (330, 2250, 2850)),
  "AY": (DIPHTHONG, True, (710, 1150, 2450), (360, 2100, 2750)),
  "AW": (DIPHTHONG, True, (710, 1150, 2450), (400, 900, 2300)),
  "OW": (DIPHTHONG, True, (560, 900, 2400), (380, 850, 2300)),
  "OY": (DIPHTHONG, True, (560, 880, 2400), (380, 2000, 2650)),
  "P": (STOP, False, (300, 800, 2200), None),
  "B": (STOP, True, (300, 800, 2200), None),
  "T": (STOP, False, (300, 1750, 2600), None),
  "D": (STOP, True, (300, 1750, 2600), None),
  "K": (STOP, False, (300, 2000, 2500), None),
  "G": (STOP, True, (300, 2000, 2500), None),
  "F": (FRICATIVE, False, (300, 900, 2300), None),
  "V": (FRICATIVE, True, (300, 900, 2300), None),
  "TH": (FRICATIVE, False, (300, 1400, 2600), None),
  "DH": (FRICATIVE, True, (300, 1400, 2600), None),
  "S": (FRICATIVE, False, (300, 1700, 2700), None),
  "Z": (FRICATIVE, True, (300, 1700, 2700), None),
  "SH": (FRICATIVE, False, (300, 2100, 2500), None),
  "ZH": (FRICATIVE, True, (300, 2100, 2500), None),
  "CH": (AFFRICATE, False, (300, 2100, 2500), None),
  "JH": (AFFRICATE, True, (300, 2100, 2500), None),
  "HH": (ASPIRATE, False, (500, 1500, 2500), None),
  "M": (NASAL, True, (260, 1000, 2200), None),
  "N": (NASAL, True, (260, 1500, 2500), None),
  "NG": (NASAL, True, (260, 2000, 2600), None),
  "L": (APPROX, True, (360, 1000, 2700), None),
  "R": (APPROX, True, (350, 1100, 1600), None),
  "W": (APPROX, True, (300, 700, 2200), None),
  "Y": (APPROX, True, (280, 2200, 3000), None),
  "SIL": (SIL, False, (500, 1500, 2500), None),
}
# fmt: on


@dataclasses.dataclass(frozen=True)
class Phone:
  name: str
  kind: str
  voiced: bool
  formants: tuple[float, float, float]
  formants_end: tuple[float, float, float]


PHONES: dict[str, Phone] = {
  name: Phone(name, kind, voiced, f, end or f)
  for name, (kind, voiced, f, end) in _TABLE.items()
}
PHONE_NAMES = tuple(PHONES)  # the inventory, without stress digits
VOWELS = tuple(n for n, p in PHONES.items() if p.kind in (VOWEL, DIPHTHONG))
CONSONANTS = tuple(
  n for n, p in PHONES.items() if p.kind not in (VOWEL, DIPHTHONG, SIL)
)

# Base durations (ms) at speaking rate 1.
_BASE_MS = {
  VOWEL: 85,
  DIPHTHONG: 115,
  STOP: 72,
  FRICATIVE: 85,
  AFFRICATE: 95,
  NASAL: 62,
  APPROX: 55,
  ASPIRATE: 55,
}
_SHORT_FRICATIVES = {"V": 0.7, "DH": 0.55, "Z": 0.8, "ZH": 0.8, "TH": 0.9}

# Frication noise: (centre Hz, width Hz, broadband floor, gain).
_NOISE = {
  "S": (6200, 1300, 0.04, 0.55),
  "Z": (6200, 1300, 0.04, 0.3),
  "SH": (3300, 900, 0.06, 0.6),
  "ZH": (3300, 900, 0.06, 0.35),
  "CH": (3300, 900, 0.06, 0.6),
  "JH": (3300, 900, 0.06, 0.35),
  "F": (5000, 2500, 0.4, 0.09),
  "V": (5000, 2500, 0.4, 0.06),
  "TH": (5500, 2200, 0.35, 0.07),
  "DH": (5500, 2200, 0.35, 0.05),
}
# Stop bursts: (centre Hz, width Hz, floor, gain).
_BURST = {
  "P": (900, 700, 0.3, 0.35),
  "B": (900, 700, 0.3, 0.25),
  "T": (4800, 1800, 0.15, 0.6),
  "D": (4800, 1800, 0.15, 0.45),
  "K": (2100, 600, 0.15, 0.55),
  "G": (2100, 600, 0.15, 0.4),
}
_ANTIFORMANT = {"M": 1000.0, "N": 1700.0, "NG": 2800.0}


def base_phone(label: str) -> str:
  """'AA1' -> 'AA'; consonants and SIL are returned unchanged."""
  return label.rstrip("012")


def is_stressed(label: str) -> bool:
  return label.endswith("1")


# ----------------------------------------------------------------------------
# Lexicon: a fixed pseudo-language (independent of the corpus seed).
# ----------------------------------------------------------------------------

_ONSETS = [(c,) for c in CONSONANTS if c not in ("NG", "ZH")]
_ONSET_CLUSTERS = [
  tuple(c.split())
  for c in (
    "P R",
    "B R",
    "T R",
    "D R",
    "K R",
    "G R",
    "F R",
    "TH R",
    "P L",
    "B L",
    "K L",
    "G L",
    "F L",
    "S L",
    "S T",
    "S P",
    "S K",
    "S M",
    "S N",
    "S W",
    "K W",
    "T W",
  )
]
_CODAS = [(c,) for c in CONSONANTS if c not in ("HH", "W", "Y", "R")]
_CODA_CLUSTERS = [
  tuple(c.split())
  for c in ("N T", "N D", "S T", "M P", "N K", "L D", "R T", "K S", "T S")
]
_VOWEL_WEIGHTS = {
  "AH": 6,
  "IH": 6,
  "EH": 4,
  "AE": 4,
  "IY": 4,
  "AA": 4,
  "AO": 2,
  "UW": 2,
  "UH": 1,
  "ER": 2,
  "EY": 2,
  "AY": 2,
  "OW": 2,
  "AW": 1,
  "OY": 1,
}


def _syllable(rng: np.random.Generator, stressed: bool) -> list[str]:
  names = list(_VOWEL_WEIGHTS)
  w = np.array([_VOWEL_WEIGHTS[n] for n in names], np.float64)
  vowel = names[rng.choice(len(names), p=w / w.sum())]
  if not stressed and rng.random() < 0.55:
    vowel = "AH" if rng.random() < 0.6 else "IH"
  out = []
  if rng.random() < 0.85:  # onset: a consonant, sometimes a cluster
    pool = _ONSETS + _ONSET_CLUSTERS if rng.random() < 0.2 else _ONSETS
    out.extend(pool[rng.integers(len(pool))])
  out.append(vowel + ("1" if stressed else "0"))
  if rng.random() < 0.45:  # coda
    pool = _CODAS + _CODA_CLUSTERS if rng.random() < 0.15 else _CODAS
    out.extend(pool[rng.integers(len(pool))])
  return out


def _make_lexicon(
  seed: int = 1234, num_content: int = 3000, num_function: int = 40
):
  rng = np.random.default_rng(seed)
  content, function, seen = [], [], set()
  while len(content) < num_content:
    n = rng.choice([1, 2, 3], p=[0.45, 0.4, 0.15])
    stress = 0 if rng.random() < 0.7 else int(rng.integers(n))
    word = []
    for i in range(n):
      word.extend(_syllable(rng, i == stress))
    if tuple(word) not in seen:
      seen.add(tuple(word))
      content.append(tuple(word))
  while len(function) < num_function:
    word = _syllable(rng, False)
    if len(word) <= 3 and tuple(word) not in seen:
      seen.add(tuple(word))
      function.append(tuple(word))
  return tuple(content), tuple(function)


CONTENT_WORDS, FUNCTION_WORDS = _make_lexicon()
_CONTENT_P = 1.0 / (np.arange(len(CONTENT_WORDS)) + 20.0)
_CONTENT_P /= _CONTENT_P.sum()


# ----------------------------------------------------------------------------
# Utterance plans.
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Utterance:
  """Phones with millisecond boundaries; ends on a whole 25 fps frame."""

  labels: tuple[str, ...]
  starts_ms: np.ndarray  # [P] int
  ends_ms: np.ndarray  # [P] int
  words: tuple[tuple[str, ...], ...]  # the sentence, for uniqueness checks

  @property
  def duration_ms(self) -> int:
    return int(self.ends_ms[-1])

  @property
  def num_frames(self) -> int:
    return self.duration_ms // MS_PER_FRAME

  @property
  def num_samples(self) -> int:
    return self.duration_ms * SAMPLE_RATE // 1000

  def phones(self) -> list[list]:
    """[[label, start s, end s], ...] as the manifest stores them."""
    return [
      [label, int(s) / 1000.0, int(e) / 1000.0]
      for label, s, e in zip(
        self.labels, self.starts_ms, self.ends_ms, strict=True
      )
    ]


def _phone_ms(
  label: str, rng: np.random.Generator, rate: float, final: bool
) -> float:
  name = base_phone(label)
  kind = PHONES[name].kind
  ms = _BASE_MS[kind] * _SHORT_FRICATIVES.get(name, 1.0)
  if kind in (VOWEL, DIPHTHONG):
    if is_stressed(label):
      ms *= 1.45
    elif name in ("AH", "IH"):
      ms *= 0.7
  if final:
    ms *= 1.5
  return ms * np.exp(rng.normal(0, 0.18)) / rate


def plan_utterance(
  rng: np.random.Generator, rate: float, target_seconds: float
) -> Utterance:
  """A random sentence lasting about target_seconds (at least 3.04 s)."""
  lead = rng.uniform(0.15, 0.4)
  trail = rng.uniform(0.2, 0.45)
  labels, durs, words = ["SIL"], [lead * 1000], []
  t = lead
  budget = max(target_seconds, 3.1) - trail
  phrase_len = 0
  while t < budget or not words:
    if phrase_len and rng.random() < 0.35:
      word = FUNCTION_WORDS[rng.integers(len(FUNCTION_WORDS))]
    else:
      word = CONTENT_WORDS[rng.choice(len(CONTENT_WORDS), p=_CONTENT_P)]
    words.append(word)
    phrase_len += 1
    brk = phrase_len >= 3 and rng.random() < 0.2
    # The last syllable (from the last vowel on) lengthens before a break.
    vowel_pos = [i for i, p in enumerate(word) if p[-1].isdigit()]
    for i, label in enumerate(word):
      final = brk and i >= vowel_pos[-1]
      durs.append(_phone_ms(label, rng, rate, final))
      labels.append(label)
      t += durs[-1] / 1000.0
    if brk and t < budget:
      pause = rng.uniform(0.12, 0.4) / rate**0.5
      labels.append("SIL")
      durs.append(pause * 1000)
      t += pause
      phrase_len = 0
  ms = np.maximum(np.round(np.asarray(durs)), 25).astype(np.int64)
  ends = np.cumsum(ms)
  speech_end = int(ends[-1])
  total = max(speech_end + round(trail * 1000), 3040)
  total = -(-total // MS_PER_FRAME) * MS_PER_FRAME  # whole frames
  if labels[-1] == "SIL":
    ends[-1] = total
  else:
    labels.append("SIL")
    ends = np.append(ends, total)
  starts = np.concatenate([[0], ends[:-1]])
  return Utterance(tuple(labels), starts, ends, tuple(words))


def frame_labels(phones, num_frames: int, fps: float = FPS) -> list[str]:
  """The phone label (with stress digit) at time i / fps for every frame."""
  ends = np.asarray([float(p[2]) for p in phones])
  t = np.arange(num_frames) / fps
  idx = np.minimum(np.searchsorted(ends, t + 1e-9, side="right"), len(ends) - 1)
  return [phones[i][0] for i in idx]


# ----------------------------------------------------------------------------
# Synthesis.
# ----------------------------------------------------------------------------

_N_FFT = 512
_HOP = 128
_FREQS = np.fft.rfftfreq(_N_FFT, 1.0 / SAMPLE_RATE)  # [257]
_WINDOW = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(_N_FFT) / _N_FFT)
_OLA_NORM = 1.5  # sum of squared periodic Hann windows at hop N/4
_BANDWIDTHS = np.array([80.0, 100.0, 150.0, 250.0, 300.0])
_HIGH_FORMANTS = np.array([3500.0, 4500.0])
_GAIN = 0.7


def _gauss_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
  """Smooths along axis 0 with a Gaussian of `sigma` frames (edge-padded)."""
  if sigma <= 0:
    return x
  radius = int(3 * sigma) + 1
  k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
  k /= k.sum()
  pad = [(radius, radius)] + [(0, 0)] * (x.ndim - 1)
  xp = np.pad(x, pad, mode="edge")
  out = np.zeros_like(x, dtype=np.float64)
  for i, w in enumerate(k):
    out += w * xp[i : i + x.shape[0]]
  return out


def _resonance(f: np.ndarray, fc: np.ndarray, bw: np.ndarray) -> np.ndarray:
  """Magnitude of a unit-DC-gain second-order resonator."""
  return fc**2 / np.sqrt((fc**2 - f**2) ** 2 + (f * bw) ** 2)


def _controls(utt: Utterance, style, rng: np.random.Generator) -> dict:
  """Per-frame (8 ms) synthesis controls."""
  n_frames = utt.num_samples // _HOP + 1
  t_ms = np.arange(n_frames) * (1000.0 * _HOP / SAMPLE_RATE)
  idx = np.searchsorted(utt.ends_ms, t_ms, side="right")
  idx = np.minimum(idx, len(utt.labels) - 1)
  starts, ends = utt.starts_ms[idx], utt.ends_ms[idx]
  rel = (t_ms - starts) / np.maximum(ends - starts, 1)  # position in phone

  names = [base_phone(label) for label in utt.labels]
  # Next vowel of every phone (HH and aspiration take its formants).
  next_vowel = [None] * len(names)
  following = "AH"
  for i in range(len(names) - 1, -1, -1):
    if PHONES[names[i]].kind in (VOWEL, DIPHTHONG):
      following = names[i]
    next_vowel[i] = following

  # Per-phone idiosyncratic formant shifts (speaker + token variation).
  jitter = np.exp(rng.normal(0, 0.04, (len(names), 3)))
  f_on = np.array([PHONES[n].formants for n in names], np.float64) * jitter
  f_off = np.array([PHONES[n].formants_end for n in names], np.float64)
  f_off = f_off * jitter
  for i, n in enumerate(names):
    if PHONES[n].kind in (ASPIRATE, SIL):
      f_on[i] = f_off[i] = np.array(PHONES[next_vowel[i]].formants) * jitter[i]
  r = rel[:, None]
  formants = f_on[idx] * (1 - r) + f_off[idx] * r  # [F, 3]
  formants = _gauss_smooth(formants, 2.5) * style.vocal_tract
  high = np.broadcast_to(_HIGH_FORMANTS * style.vocal_tract, (n_frames, 2))
  formants = np.concatenate([formants, high], axis=1)  # [F, 5]

  kinds = [PHONES[n].kind for n in names]
  voiced = np.array([PHONES[n].voiced for n in names])
  av = np.zeros(n_frames)  # voicing amplitude
  an = np.zeros(n_frames)  # frication noise amplitude
  asp = np.zeros(n_frames)  # aspiration noise amplitude
  nasal = np.zeros(n_frames)  # nasal anti-resonance weight
  anti = np.full(n_frames, 1000.0)
  noise_fc = np.full(n_frames, 5000.0)
  noise_bw = np.full(n_frames, 2000.0)
  noise_floor = np.full(n_frames, 0.2)

  accent_db = np.zeros(len(names))
  for i, label in enumerate(utt.labels):
    if is_stressed(label):
      accent_db[i] = rng.uniform(1.0, 4.0)
  for j in range(n_frames):
    i = idx[j]
    kind, name, x = kinds[i], names[i], rel[j]
    if kind in (VOWEL, DIPHTHONG):
      reduced = utt.labels[i].endswith("0")
      av[j] = 10 ** (accent_db[i] / 20) * (0.8 if reduced else 1.0)
    elif kind == APPROX:
      av[j] = 0.55
    elif kind == NASAL:
      av[j] = 0.45
      nasal[j] = 1.0
      anti[j] = _ANTIFORMANT[name]
    elif kind == FRICATIVE:
      fc, bw, floor, gain = _NOISE[name]
      noise_fc[j], noise_bw[j], noise_floor[j], an[j] = fc, bw, floor, gain
      av[j] = 0.25 if voiced[i] else 0.0
    elif kind == AFFRICATE:
      if x < 0.4:
        av[j] = 0.06 if voiced[i] else 0.0
      else:
        fc, bw, floor, gain = _NOISE[name]
        noise_fc[j], noise_bw[j], noise_floor[j], an[j] = fc, bw, floor, gain
        av[j] = 0.2 if voiced[i] else 0.0
    elif kind == STOP:
      fc, bw, floor, gain = _BURST[name]
      if x < 0.62:
        av[j] = 0.06 if voiced[i] else 0.0
      elif x < 0.8:
        noise_fc[j], noise_bw[j], noise_floor[j], an[j] = fc, bw, floor, gain
      elif voiced[i]:
        av[j] = 0.4
      else:
        asp[j] = 0.35
    elif kind == ASPIRATE:
      asp[j] = 0.4
  return {
    "n_frames": n_frames,
    "t_ms": t_ms,
    "idx": idx,
    "formants": formants,
    "av": _gauss_smooth(av, 1.0),
    "an": _gauss_smooth(an, 0.6),
    "asp": _gauss_smooth(asp, 0.8),
    "nasal": _gauss_smooth(nasal, 1.0),
    "anti": anti,
    "noise_fc": noise_fc,
    "noise_bw": noise_bw,
    "noise_floor": noise_floor,
    "accent_db": accent_db,
  }


def _f0_track(utt: Utterance, style, rng, t_ms: np.ndarray) -> np.ndarray:
  """f0 in Hz at each control frame: declination, accents, final falls."""
  t = t_ms / 1000.0
  total = utt.duration_ms / 1000.0
  st = 1.0 - 3.0 * t / total  # declination (semitones)
  for label, s, e in zip(utt.labels, utt.starts_ms, utt.ends_ms, strict=True):
    if is_stressed(label):
      centre = (s + e) / 2000.0
      height = style.pitch_range * rng.uniform(0.5, 1.3)
      st += height * np.exp(-0.5 * ((t - centre) / 0.09) ** 2)
  # Falls before pauses and at the end.
  for label, s in zip(utt.labels[1:], utt.starts_ms[1:], strict=True):
    if label == "SIL":
      st -= 2.5 * np.exp(-0.5 * ((t - s / 1000.0 + 0.05) / 0.12) ** 2)
  wobble = _gauss_smooth(rng.normal(0, 1.0, t.size), 12.0) * 3.0
  st += wobble * 0.6 + rng.normal(0, 0.08, t.size)  # drift + jitter
  return style.f0 * 2.0 ** (st / 12.0)


def synthesize(utt: Utterance, style, rng: np.random.Generator) -> np.ndarray:
  """[num_samples] float32 speech in [-1, 1] for the planned utterance."""
  c = _controls(utt, style, rng)
  n_frames, n = c["n_frames"], utt.num_samples
  f0 = _f0_track(utt, style, rng, c["t_ms"])

  # Glottal pulses: one impulse per period, louder for lower f0 per pulse
  # so that loudness does not depend on pitch.
  f0_samples = np.interp(np.arange(n), np.arange(n_frames) * _HOP, f0)
  phase = np.cumsum(f0_samples / SAMPLE_RATE) + rng.random()
  pulses = np.flatnonzero(np.diff(np.floor(phase), prepend=np.floor(phase[0])))
  source = np.zeros(n)
  source[pulses] = np.sqrt(100.0 / f0_samples[pulses]) * np.exp(
    rng.normal(0, 0.05, pulses.size)
  )

  # STFT of the source.
  pad = _N_FFT // 2
  padded = np.concatenate([np.zeros(pad), source, np.zeros(pad + _HOP)])
  frames = np.lib.stride_tricks.sliding_window_view(padded, _N_FFT)[::_HOP]
  frames = frames[:n_frames]
  spec = np.fft.rfft(frames * _WINDOW, axis=1)  # [F, 257]

  f = _FREQS[None, :]
  tract = np.ones((n_frames, _FREQS.size))
  for k in range(5):
    tract *= _resonance(f, c["formants"][:, k : k + 1], _BANDWIDTHS[k])
  nasal_zero = 1.0 / _resonance(f, c["anti"][:, None], 200.0)
  tract *= np.exp(c["nasal"][:, None] * np.log(nasal_zero + 1e-3) * 0.8)
  tilt = 1.0 / np.sqrt(1.0 + (f / style.tilt_hz) ** 2)
  voice_env = c["av"][:, None] * tilt * tract

  band = np.exp(
    -0.5 * ((f - c["noise_fc"][:, None]) / c["noise_bw"][:, None]) ** 2
  )
  band = (band + c["noise_floor"][:, None]) * (f > 300)
  asp_amp = c["asp"] + style.breathiness * c["av"]
  noise_env = c["an"][:, None] * band * 3.0 + asp_amp[
    :, None
  ] * tract * 0.25 / np.sqrt(1.0 + (f / 2500.0) ** 2)
  noise = rng.normal(0, np.sqrt(96.0), (n_frames, _FREQS.size, 2))
  noise_spec = noise[..., 0] + 1j * noise[..., 1]

  out_spec = spec * voice_env + noise_spec * noise_env * 0.05
  out_frames = np.fft.irfft(out_spec, _N_FFT, axis=1) * _WINDOW  # [F, 512]

  # Weighted overlap-add (hop = N/4: four 128-sample quarters per frame).
  quarters = out_frames.reshape(n_frames, 4, _HOP)
  out = np.zeros((n_frames + 3, _HOP))
  for q in range(4):
    out[q : q + n_frames] += quarters[:, q]
  y = out.reshape(-1)[pad : pad + n] / _OLA_NORM

  gain = _GAIN * 10 ** ((style.energy_db + rng.normal(0, 1.0)) / 20.0)
  y = y * gain
  floor_db = rng.uniform(-62, -50)
  y = y + rng.normal(0, 10 ** (floor_db / 20.0), n)
  return np.clip(y, -0.99, 0.99).astype(np.float32)
