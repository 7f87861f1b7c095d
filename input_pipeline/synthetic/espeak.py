"""Speech from eSpeak NG: the corpus's phone plans spoken by a real engine.

The source-filter voices of speech.py are one family of sounds; a model
trained on them alone reads real speech poorly (README: "Trained on it,
judged on real clips"). eSpeak NG speaks the same planned phones with its
own durations, coarticulated formant transitions, intonation and dozens
of voice variants; the clip's face then follows eSpeak's phone timing, so
mouth and sound stay in step.

eSpeak NG comes from the `espeakng-loader` wheel (the library and its
data, GPL-3.0; installed with `pip install espeakng-loader`, not by the
package). It is reached through ctypes. The library keeps state between
utterances (its pitch flutter and random generator run on), so each
utterance is spoken by a freshly loaded copy: the same clip always gives
the same samples, whatever was spoken before it in the process.
"""

import ctypes
import os
import threading

import numpy as np

from input_pipeline.synthetic import speech

ESPEAK_RATE = 22050  # the library's output rate
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS, _INIT_DONT_EXIT = 0x0001, 0x8000
_SYNTH_PHONEMES, _SYNTH_ENDPAUSE = 0x100, 0x1000
_EVENT_END_OF_LIST, _EVENT_PHONEME = 0, 7
_RATE, _PITCH, _RANGE = 1, 3, 4  # espeak_PARAMETER
_PAUSE = "_:_:"  # a phrase break (the plan's SIL inside an utterance)
BASE_WPM = 165.0  # eSpeak words per minute at speaking rate 1
# int16/32768 -> the source-filter voices' level: active-speech RMS 0.030
# at 0 dB energy in both (0.142 from eSpeak, median of 64 clips).
LEVEL = 0.21

# ARPAbet -> eSpeak (en-us) phoneme mnemonics; unstressed variants apart.
_TO_ESPEAK = {
  "AA": "A:", "AE": "a", "AH": "V", "AO": "O:", "AW": "aU", "AY": "aI",
  "EH": "E", "ER": "3:", "EY": "eI", "IH": "I", "IY": "i:", "OW": "oU",
  "OY": "OI", "UH": "U", "UW": "u:", "B": "b", "CH": "tS", "D": "d",
  "DH": "D", "F": "f", "G": "g", "HH": "h", "JH": "dZ", "K": "k", "L": "l",
  "M": "m", "N": "n", "NG": "N", "P": "p", "R": "r", "S": "s", "SH": "S",
  "T": "t", "TH": "T", "V": "v", "W": "w", "Y": "j", "Z": "z", "ZH": "Z",
}  # fmt: skip
_UNSTRESSED = {"AH": "@", "ER": "3", "IY": "i"}
# eSpeak's realisations (allophones, reductions) -> ARPAbet.
_FROM_ESPEAK = {
  **{v: k for k, v in _TO_ESPEAK.items()},
  **{v: k for k, v in _UNSTRESSED.items()},
  "a#": "AE", "@2": "AH", "@5": "AH", "I#": "IH", "I2": "IH", "i@": "IY",
  "i@3": "IY", "r-": "R", "*": "T", "t#": "T", "d#": "D", "n-": "N",
  "m-": "M", "N-": "NG", "l/": "L", "l/2": "L", "@L": "L", "aI@": "AY",
  "aU@": "AW", "0": "AA", "A@": "AA", "A:r": "AA", "O@": "AO", "o@": "AO",
  "e@": "EH", "U@": "UH", "3:r": "ER", "?": "T", "oU#": "OW", "IR": "IH",
  "VR": "AH", "aa": "AE",
}  # fmt: skip
# Marks eSpeak reports as phonemes of their own that make no sound of their
# own (';' palatalises the phone before it): merged into that phone.
_MODIFIERS = (";",)

# Voice variants (espeak-ng-data/voices/!v) by the voice's sex.
FEMALE_VOICES = (
  "f1", "f2", "f3", "f4", "f5", "Alicia", "Andrea", "Annie", "anika",
  "aunty", "belinda", "linda", "grandma", "steph",
)  # fmt: skip
MALE_VOICES = (
  "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "Andy", "Denis", "Gene",
  "Mr serious", "Storm", "adam", "boris", "caleb", "david", "edward",
  "grandpa", "ian", "iven", "john", "max", "michel", "norbert", "klatt",
  "klatt2", "klatt3", "croak",
)  # fmt: skip


class _Event(ctypes.Structure):
  _fields_ = [
    ("type", ctypes.c_int),
    ("unique_identifier", ctypes.c_uint),
    ("text_position", ctypes.c_int),
    ("length", ctypes.c_int),
    ("audio_position", ctypes.c_int),
    ("sample", ctypes.c_int),
    ("user_data", ctypes.c_void_p),
    ("id", ctypes.c_char * 8),
  ]


_CALLBACK = ctypes.CFUNCTYPE(
  ctypes.c_int,
  ctypes.POINTER(ctypes.c_short),
  ctypes.c_int,
  ctypes.POINTER(_Event),
)
_LOCK = threading.Lock()  # one utterance at a time per process


def require():
  """The espeakng-loader module, or an ImportError that says how to get it."""
  try:
    import espeakng_loader
  except ImportError:
    raise ImportError(
      "the eSpeak NG speech engine needs the espeakng-loader wheel: "
      "pip install espeakng-loader (GPL-3.0; or use the default "
      "source-filter speech)"
    ) from None
  return espeakng_loader


def espeak_text(labels, words) -> str:
  """eSpeak phoneme input ([[...]]) for a plan's labels: words apart,
  primary stress marked, the plan's inner silences as phrase breaks."""
  sizes = iter(len(w) for w in words)
  tokens, word, left = [], "", next(sizes, 0)
  for label in labels[1:-1]:  # inside the plan's leading and trailing SIL
    name = speech.base_phone(label)
    if name == "SIL":
      tokens.append(_PAUSE)
      continue
    mnemonic = _TO_ESPEAK[name]
    if label.endswith("0") and name in _UNSTRESSED:
      mnemonic = _UNSTRESSED[name]
    word += ("'" if label.endswith("1") else "") + mnemonic
    left -= 1
    if left == 0:
      tokens.append(word)
      word, left = "", next(sizes, 0)
  return "[[" + " ".join(tokens) + "]]"


def speak(
  text: str,
  voice: str,
  wpm: float,
  pitch: float,
  range_: float,
  seed: int = 0,
):
  """(int16 samples at ESPEAK_RATE, [(mnemonic, start sample)]) of one
  utterance, spoken by a freshly loaded library (module docstring); `seed`
  seeds its noise (breathy voices)."""
  loader = require()
  variant = os.path.join(loader.get_data_path(), "voices", "!v", voice)
  if not os.path.isfile(variant):  # eSpeak would fall back to its default
    raise ValueError(f"eSpeak NG has no voice variant {voice!r} ({variant})")
  chunks, events = [], []

  def collect(wav, n, ev):
    if n > 0:
      chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
    i = 0
    while ev[i].type != _EVENT_END_OF_LIST:
      if ev[i].type == _EVENT_PHONEME:
        events.append((ev[i].id.decode("ascii", "replace"), ev[i].sample))
      i += 1
    return 0

  callback = _CALLBACK(collect)
  with _LOCK:
    lib = ctypes.CDLL(loader.get_library_path())
    try:
      rate = lib.espeak_Initialize(
        _AUDIO_OUTPUT_SYNCHRONOUS,
        0,
        loader.get_data_path().encode(),
        _INIT_PHONEME_EVENTS | _INIT_DONT_EXIT,
      )
      if rate != ESPEAK_RATE:
        raise RuntimeError(f"eSpeak NG failed to start (returned {rate})")
      # Its noise generator is seeded from the clock when it starts.
      lib.espeak_ng_SetRandSeed(seed)
      lib.espeak_SetSynthCallback(callback)
      lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
      if lib.espeak_SetVoiceByName(f"en-us+{voice}".encode()) != 0:
        raise ValueError(f"eSpeak NG has no voice en-us+{voice}")
      lib.espeak_SetParameter(_RATE, round(wpm), 0)
      lib.espeak_SetParameter(_PITCH, round(pitch), 0)
      lib.espeak_SetParameter(_RANGE, round(range_), 0)
      raw = text.encode()
      lib.espeak_Synth.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
      ]
      flags = _SYNTH_PHONEMES | _SYNTH_ENDPAUSE
      err = lib.espeak_Synth(raw, len(raw) + 1, 0, 0, 0, flags, None, None)
      if err != 0:
        raise RuntimeError(f"eSpeak NG could not speak {text!r} ({err})")
      lib.espeak_Synchronize()
      lib.espeak_Terminate()
    finally:
      _unload(lib)
  return np.concatenate(chunks) if chunks else np.zeros(0, np.int16), events


def _unload(lib) -> None:
  """dlclose: the next CDLL loads the library afresh, its state reset."""
  import _ctypes

  _ctypes.dlclose(lib._handle)


def realised_phones(events, num_samples: int) -> list[tuple[str, int]]:
  """[(ARPAbet label, start sample at ESPEAK_RATE)] of what eSpeak said:
  stress digits on vowels (1 primary, else 0), pauses as SIL."""
  out = []
  for mnemonic, start in events:
    if start >= num_samples:
      continue
    bare = mnemonic.lstrip("',")
    if bare in _MODIFIERS:
      continue
    if not bare or bare.startswith("_"):
      label = "SIL"
    else:
      name = _FROM_ESPEAK.get(bare) or _FROM_ESPEAK.get(bare.rstrip("#:;"))
      if name is None:
        raise ValueError(f"eSpeak NG said an unknown phoneme {mnemonic!r}")
      stressed = mnemonic.startswith("'")
      label = (
        name + ("1" if stressed else "0") if name in speech.VOWELS else name
      )
    if out and out[-1][0] == label == "SIL":
      continue
    out.append((label, start))
  return out


def voice_settings(style) -> dict:
  """eSpeak's voice, pitch, range and rate for a style: the variant is the
  person's (of the voice's sex), pitch and range follow the style's f0 and
  pitch range about that sex's mean, the rate the style's."""
  from input_pipeline.synthetic import styles

  female = style.f0 > 160.0
  voices = FEMALE_VOICES if female else MALE_VOICES
  pick = styles.rng_for(style.seed, "espeak voice", style.person)
  return {
    "voice": voices[int(pick.integers(len(voices)))],
    "wpm": BASE_WPM * style.rate,
    "pitch": float(
      np.clip(50.0 * style.f0 / (210.0 if female else 115.0), 5, 95)
    ),
    "range_": float(np.clip(50.0 * style.pitch_range / 3.0, 10, 100)),
  }


def synthesize(plan: speech.Utterance, style, rng: np.random.Generator):
  """(Utterance, [num_samples] float32 at 16 kHz): the plan's phones as
  eSpeak says them, with its timing, between the plan's own leading and
  trailing silences; the level follows the style's energy as in speech.py."""
  from scipy.signal import resample_poly

  level_db = style.energy_db + rng.normal(0, 1.0)
  text = espeak_text(plan.labels, plan.words)
  seed = int(rng.integers(2**31))
  samples, events = speak(text, **voice_settings(style), seed=seed)
  phones = realised_phones(events, len(samples))
  lead = int(plan.ends_ms[0])
  trail = int(plan.ends_ms[-1] - plan.starts_ms[-1])
  speech_ms = len(samples) * 1000 / ESPEAK_RATE
  total = max(round(lead + speech_ms + trail), 3040)
  total = -(-total // speech.MS_PER_FRAME) * speech.MS_PER_FRAME
  labels, starts = ["SIL"], [0]
  for label, start in phones:
    ms = lead + round(start * 1000 / ESPEAK_RATE)
    if ms <= starts[-1]:  # under a millisecond: the later phone wins
      labels.pop(), starts.pop()
    if label == "SIL" and labels and labels[-1] == "SIL":
      continue
    labels.append(label), starts.append(max(ms, 1))
  end_of_speech = lead + round(speech_ms)
  if labels[-1] != "SIL":
    labels.append("SIL"), starts.append(end_of_speech)
  ends = [*starts[1:], total]
  utt = speech.Utterance(
    tuple(labels), np.asarray(starts, np.int64), np.asarray(ends, np.int64),
    plan.words,
  )  # fmt: skip
  voiced = resample_poly(samples.astype(np.float32) / 32768.0, 320, 441)
  wav = np.zeros(utt.num_samples, np.float32)
  at = lead * speech.SAMPLE_RATE // 1000
  wav[at : at + len(voiced)] = voiced[: len(wav) - at]
  gain = LEVEL * 10 ** (level_db / 20.0)
  return utt, np.clip(wav * gain, -1.0, 1.0)
