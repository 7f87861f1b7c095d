"""SAAS audio features, per-frame windows, frame-rate resampling, alignment.

Both features are defined exactly as the official code defines them, and are
stored per clip as continuous sequences; `mel_windows` / `mfcc_windows` cut the
per-video-frame windows, in the input pipeline and at inference alike.

Mel (the Wav2Lip/SadTalker log-mel that drives expression): 16 kHz audio,
pre-emphasis 0.97, STFT n_fft 800 / win 800 (periodic Hann) / hop 200 with
centred reflect padding (what librosa 0.7, used by the reference, does),
magnitude -> 80 Slaney mels over 55-7600 Hz -> 20*log10(max(x, 1e-5)) - 20 dB
-> clipped to [-4, 4] by 8 * (S + 100) / 100 - 4. 80 frames per second.

MFCC (drives head pose): python_speech_features' mfcc with its defaults
(25 ms rectangular frames every 10 ms, pre-emphasis 0.97, 512-point FFT,
26 HTK-mel filters over 0-8000 Hz, log, orthonormal DCT-II, lifter 22, c0
replaced by log frame energy) on audio padded with 1920 zeros on each side;
c0 is dropped, leaving 12 coefficients at 100 frames per second.

Windows for video frame i at `fps`:
  mel   [80, 16]: mel frames int(80 * (i - 2) / fps) + 0..15, indices clamped
        to the sequence (Python int() truncates toward zero, as the reference).
  mfcc  [28, 12]: padded-MFCC frames round(100 * i / fps) + 0..27, clamped; at
        25 fps that is 4i..4i+27, i.e. 3 video frames before i to 4 after.
"""

import dataclasses
import functools
import os

import librosa
import numpy as np
import scipy.fft
from scipy.spatial.transform import Rotation, Slerp

from input_pipeline import io as io_lib
from saas_jax.errors import DataError

SAMPLE_RATE = 16000
MODEL_FPS = 25.0

# Mel (Wav2Lip hparams).
MEL_N_FFT = 800
MEL_HOP = 200
MEL_WIN = 800
NUM_MELS = 80
MEL_FMIN = 55.0
MEL_FMAX = 7600.0
PREEMPHASIS = 0.97
REF_LEVEL_DB = 20.0
MIN_LEVEL_DB = -100.0
MAX_ABS_VALUE = 4.0
MEL_FPS = SAMPLE_RATE / MEL_HOP  # 80
MEL_WINDOW = 16

# MFCC (python_speech_features defaults; audio2pose padding).
MFCC_WINLEN = 400  # 25 ms
MFCC_STEP = 160  # 10 ms
MFCC_NFFT = 512
MFCC_FILTERS = 26
MFCC_CEPS = 13
MFCC_LIFTER = 22
MFCC_PAD = 1920
MFCC_FPS = SAMPLE_RATE / MFCC_STEP  # 100
MFCC_WINDOW = 28
NUM_MFCC = MFCC_CEPS - 1


# ----------------------------------------------------------------------------
# Continuous features.
# ----------------------------------------------------------------------------


@functools.cache
def _mel_basis() -> np.ndarray:
  return librosa.filters.mel(
    sr=SAMPLE_RATE,
    n_fft=MEL_N_FFT,
    n_mels=NUM_MELS,
    fmin=MEL_FMIN,
    fmax=MEL_FMAX,
  ).astype(np.float32)  # [80, 401]


@functools.cache
def _hann() -> np.ndarray:
  """Periodic Hann window of MEL_WIN samples, centred in MEL_N_FFT."""
  n = np.arange(MEL_WIN)
  window = 0.5 - 0.5 * np.cos(2 * np.pi * n / MEL_WIN)
  left = (MEL_N_FFT - MEL_WIN) // 2
  return np.pad(window, (left, MEL_N_FFT - MEL_WIN - left)).astype(np.float32)


def _stft_magnitude(x: np.ndarray) -> np.ndarray:
  """[N] -> [1 + N // hop, n_fft // 2 + 1] |STFT| with centred reflect
  padding, as librosa.stft computes it (written out: librosa's first call
  in a process spends seconds importing what it loads lazily)."""
  pad = MEL_N_FFT // 2
  x = np.pad(x, pad, mode="reflect")
  frames = np.lib.stride_tricks.sliding_window_view(x, MEL_N_FFT)[::MEL_HOP]
  return np.abs(np.fft.rfft(frames * _hann(), axis=1))  # [F, 401]


def _check_wav(wav: np.ndarray) -> np.ndarray:
  wav = np.asarray(wav, dtype=np.float32)
  if wav.ndim != 1:
    raise DataError(None, f"audio must be 1-D mono, got shape {wav.shape}")
  if wav.size == 0:
    raise DataError(None, "audio has zero samples")
  return wav


def _preemphasis(wav: np.ndarray) -> np.ndarray:
  """y[n] = x[n] - PREEMPHASIS x[n-1], in float64 as scipy.signal.lfilter
  computed it (equal to it bit for bit; without SciPy's signal package,
  half a second to import)."""
  x = wav.astype(np.float64)
  return np.concatenate([x[:1], x[1:] - PREEMPHASIS * x[:-1]]).astype(
    np.float32
  )


def log_mel(wav: np.ndarray) -> np.ndarray:
  """[N] 16 kHz audio -> [1 + N // 200, 80] normalised log-mel in [-4, 4]."""
  wav = _check_wav(wav)
  mel = _mel_basis() @ _stft_magnitude(_preemphasis(wav)).T
  min_level = np.exp(MIN_LEVEL_DB / 20.0 * np.log(10.0))
  db = 20.0 * np.log10(np.maximum(min_level, mel)) - REF_LEVEL_DB
  norm = (2 * MAX_ABS_VALUE) * ((db - MIN_LEVEL_DB) / -MIN_LEVEL_DB)
  norm = np.clip(norm - MAX_ABS_VALUE, -MAX_ABS_VALUE, MAX_ABS_VALUE)
  return np.ascontiguousarray(norm.T, dtype=np.float32)


# log_mel's scale: norm = NORM_PER_DB * (dB - MIN_LEVEL_DB) - MAX_ABS_VALUE,
# dB relative to REF_LEVEL_DB (-100: silence). Array-agnostic (NumPy, jax).
NORM_PER_DB = 2 * MAX_ABS_VALUE / -MIN_LEVEL_DB


def norm_to_db(x):
  """log_mel values -> dB."""
  return (x + MAX_ABS_VALUE) / NORM_PER_DB + MIN_LEVEL_DB


def db_to_norm(db):
  """dB -> log_mel values (unclipped)."""
  return NORM_PER_DB * (db - MIN_LEVEL_DB) - MAX_ABS_VALUE


@functools.cache
def _mfcc_filterbank() -> np.ndarray:
  """HTK-mel triangles on FFT bins, as python_speech_features builds them."""
  hz2mel = lambda hz: 2595.0 * np.log10(1.0 + hz / 700.0)  # noqa: E731
  mel2hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)  # noqa: E731
  mels = np.linspace(hz2mel(0.0), hz2mel(SAMPLE_RATE / 2), MFCC_FILTERS + 2)
  bins = np.floor((MFCC_NFFT + 1) * mel2hz(mels) / SAMPLE_RATE).astype(int)
  fbank = np.zeros((MFCC_FILTERS, MFCC_NFFT // 2 + 1))
  for j in range(MFCC_FILTERS):
    lo, mid, hi = bins[j], bins[j + 1], bins[j + 2]
    for k in range(lo, mid):
      fbank[j, k] = (k - lo) / (mid - lo)
    for k in range(mid, hi):
      fbank[j, k] = (hi - k) / (hi - mid)
  return fbank


def mfcc(wav: np.ndarray) -> np.ndarray:
  """[N] 16 kHz audio -> [F, 12] MFCC at 100 Hz of the 1920-padded audio."""
  wav = _check_wav(wav).astype(np.float64)
  padded = np.concatenate([np.zeros(MFCC_PAD), wav, np.zeros(MFCC_PAD)])
  emphasized = np.append(padded[0], padded[1:] - PREEMPHASIS * padded[:-1])
  length = len(emphasized)
  if length <= MFCC_WINLEN:
    num_frames = 1
  else:
    num_frames = 1 + int(np.ceil((length - MFCC_WINLEN) / MFCC_STEP))
  pad_to = (num_frames - 1) * MFCC_STEP + MFCC_WINLEN
  emphasized = np.concatenate([emphasized, np.zeros(pad_to - length)])
  frames = np.lib.stride_tricks.sliding_window_view(emphasized, MFCC_WINLEN)
  frames = frames[::MFCC_STEP][:num_frames]  # [F, 400], rectangular window
  power = np.abs(np.fft.rfft(frames, MFCC_NFFT)) ** 2 / MFCC_NFFT  # [F, 257]
  eps = np.finfo(float).eps
  energy = power.sum(axis=1)
  energy = np.where(energy == 0, eps, energy)
  feat = power @ _mfcc_filterbank().T
  feat = np.log(np.where(feat == 0, eps, feat))
  ceps = scipy.fft.dct(feat, type=2, axis=1, norm="ortho")[:, :MFCC_CEPS]
  n = np.arange(MFCC_CEPS)
  ceps *= 1 + (MFCC_LIFTER / 2.0) * np.sin(np.pi * n / MFCC_LIFTER)
  ceps[:, 0] = np.log(energy)
  return np.ascontiguousarray(ceps[:, 1:], dtype=np.float32)


# ----------------------------------------------------------------------------
# Per-video-frame windows.
# ----------------------------------------------------------------------------


def mel_window_starts(num_frames: int, fps: float = MODEL_FPS) -> np.ndarray:
  """First mel frame of each video frame's window (before clamping)."""
  i = np.arange(num_frames, dtype=np.float64)
  return np.trunc(MEL_FPS * (i - 2) / fps).astype(np.int64)


def mel_windows(
  mel: np.ndarray, num_frames: int, fps: float = MODEL_FPS, start: int = 0
) -> np.ndarray:
  """[F, 80] mel -> [num_frames, 80, 16] windows for frames start..start+n."""
  mel = np.asarray(mel)
  starts = mel_window_starts(start + num_frames, fps)[start:]
  idx = starts[:, None] + np.arange(MEL_WINDOW)[None, :]
  idx = np.clip(idx, 0, mel.shape[0] - 1)
  return np.swapaxes(mel[idx], 1, 2)  # [n, 16, 80] -> [n, 80, 16]


def clip_mel_mean(windows: np.ndarray) -> np.ndarray:
  """[T, 80, 16] one clip's mel windows -> [80], each band's mean over them:
  what an audio-driven model with mel_norm="clip_mean" subtracts from every
  window (cepstral mean normalisation on log-mel: a fixed channel, a level,
  a spectral tilt or a microphone, adds one constant per band to every
  frame, and the subtraction cancels it)."""
  return np.asarray(windows, np.float32).mean((0, 2))


def mfcc_windows(
  feats: np.ndarray, num_frames: int, fps: float = MODEL_FPS, start: int = 0
) -> np.ndarray:
  """[F, 12] padded MFCC -> [num_frames, 28, 12] windows."""
  feats = np.asarray(feats)
  i = np.arange(start, start + num_frames, dtype=np.float64)
  starts = np.round(MFCC_FPS * i / fps).astype(np.int64)
  idx = starts[:, None] + np.arange(MFCC_WINDOW)[None, :]
  idx = np.clip(idx, 0, feats.shape[0] - 1)
  return feats[idx]


def ping_pong_index(length: np.ndarray, t: np.ndarray) -> np.ndarray:
  """Frame index for time t in a clip extended forward, backward, forward..."""
  period = np.maximum(2 * length - 2, 1)
  m = t % period
  return np.where(m < length, m, period - m)


def clip_windows(seq: np.ndarray, window: int, stride: int) -> np.ndarray:
  """[T, C] -> [W, window, C] windows (ping-pong extended when T < window)."""
  t = len(seq)
  if t < window:
    return seq[ping_pong_index(np.array(t), np.arange(window))][None]
  return np.stack(
    [seq[s : s + window] for s in range(0, t - window + 1, stride)]
  )


BLINK = np.array([0.5, 0.9, 1.0, 0.9, 0.5], np.float32)


def blink_ratio(rng: np.random.Generator, num_frames: int) -> np.ndarray:
  """[T] the eye-closure signal E_a reads: zeros with a 5-frame blink every
  10 to min(T / 2, 70) frames (none for T <= 20), as SadTalker draws it."""
  ratio = np.zeros(num_frames, np.float32)
  if num_frames <= 20:
    return ratio
  high = max(11, min(num_frames // 2, 70))
  frame = int(rng.integers(10, high))
  while frame + len(BLINK) <= num_frames:
    ratio[frame : frame + len(BLINK)] = BLINK
    frame += len(BLINK) + int(rng.integers(10, high))
  return ratio


def num_frames_for_audio(num_samples: int, fps: float = MODEL_FPS) -> int:
  """Video frames that `num_samples` of 16 kHz audio cover (rounded)."""
  return round(num_samples * fps / SAMPLE_RATE)


# ----------------------------------------------------------------------------
# Frame rates and alignment.
# ----------------------------------------------------------------------------


def _euler_to_rotation(angles: np.ndarray) -> Rotation:
  # Deep3DFaceRecon: R = Rz(roll) @ Ry(yaw) @ Rx(pitch), angles = (x, y, z).
  return Rotation.from_euler("ZYX", np.asarray(angles, np.float64)[:, ::-1])


def resample_coefficients(
  coeffs: io_lib.Coefficients,
  fps: float = MODEL_FPS,
  num_frames: int | None = None,
) -> io_lib.Coefficients:
  """Resamples a clip to `fps` frames per second.

  Frame j of the output is the state at time j / fps. Expression, translation
  and crop are interpolated linearly between the two nearest source frames.
  Head rotation is interpolated on the rotation group (slerp of the Euler
  angles' rotations, converted back with the same convention), so angles are
  never averaged across a wrap-around and large rotations stay rigid. The
  output has round(T * fps / source_fps) frames (or `num_frames`, e.g. to
  match an audio track); times past the last source frame hold it.
  """
  n_out = num_frames or max(1, round(coeffs.num_frames * fps / coeffs.fps))
  if abs(coeffs.fps - fps) < 1e-9 and n_out == coeffs.num_frames:
    return coeffs
  t_in = np.arange(coeffs.num_frames) / coeffs.fps
  t_out = np.clip(np.arange(n_out) / fps, 0.0, t_in[-1])

  def lerp(x: np.ndarray) -> np.ndarray:
    cols = [np.interp(t_out, t_in, x[:, c]) for c in range(x.shape[1])]
    return np.stack(cols, axis=1).astype(np.float32)

  if coeffs.num_frames == 1:
    angles = np.repeat(coeffs.angles, n_out, axis=0)
  else:
    slerp = Slerp(t_in, _euler_to_rotation(coeffs.angles))
    angles = slerp(t_out).as_euler("ZYX")[:, ::-1].astype(np.float32)
  return dataclasses.replace(
    coeffs,
    exp=lerp(coeffs.exp),
    angles=angles,
    trans=lerp(coeffs.trans),
    crop=lerp(coeffs.crop),
    fps=float(fps),
  )


def align_lengths(
  coeffs: io_lib.Coefficients,
  wav: np.ndarray,
  max_mismatch_frames: int = 4,
  name: str | None = None,
) -> tuple[io_lib.Coefficients, np.ndarray]:
  """Trims coefficients and audio to a common length.

  The audio covers A = round(len(wav) * fps / 16000) frames. If the clip has T
  frames and |T - A| <= max_mismatch_frames, both are cut to min(T, A) frames
  (audio to round(min * 16000 / fps) samples). A larger mismatch means the
  files do not belong together, and raises DataError naming the clip.
  """
  fps = coeffs.fps
  audio_frames = num_frames_for_audio(len(wav), fps)
  diff = coeffs.num_frames - audio_frames
  if abs(diff) > max_mismatch_frames:
    raise DataError(
      name or coeffs.path,
      f"coefficients have {coeffs.num_frames} frames but the audio covers "
      f"{audio_frames} at {fps:g} fps (mismatch {diff:+d} > "
      f"{max_mismatch_frames} frames)",
    )
  n = min(coeffs.num_frames, audio_frames)
  if n == 0:
    raise DataError(name or coeffs.path, "clip is shorter than one frame")
  samples = min(len(wav), round(n * SAMPLE_RATE / fps))
  return coeffs.slice(0, n), wav[:samples]


@dataclasses.dataclass(frozen=True)
class Clip:
  """One aligned clip at the model frame rate, with both audio features."""

  coeffs: io_lib.Coefficients  # at `fps`
  wav: np.ndarray  # [N] 16 kHz
  mel: np.ndarray  # [F_mel, 80]
  mfcc: np.ndarray  # [F_mfcc, 12]

  @property
  def num_frames(self) -> int:
    return self.coeffs.num_frames


def compute_features(wav: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  return log_mel(wav), mfcc(wav)


def load_clip(
  coeff_path: str | os.PathLike,
  audio_path: str | os.PathLike,
  *,
  fps: float = MODEL_FPS,
  source_fps: float | None = None,
  max_mismatch_frames: int = 4,
) -> Clip:
  """Reads, resamples to `fps`, aligns and featurises one clip."""
  coeffs = io_lib.load_coefficients(coeff_path, fps=source_fps)
  wav = io_lib.load_audio(audio_path)
  coeffs = resample_coefficients(coeffs, fps)
  coeffs, wav = align_lengths(
    coeffs, wav, max_mismatch_frames, name=os.fspath(coeff_path)
  )
  mel, feats = compute_features(wav)
  return Clip(coeffs=coeffs, wav=wav, mel=mel, mfcc=feats)
