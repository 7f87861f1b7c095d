"""Audio features, per-frame windows, resampling and alignment."""

import dataclasses

import numpy as np
import pytest
import scipy.io
import soundfile

from input_pipeline import features, io
from saas_jax.errors import DataError


def _speechlike(seconds=2.0, seed=0):
  rng = np.random.default_rng(seed)
  t = np.arange(int(16000 * seconds)) / 16000
  f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
  voiced = np.sin(2 * np.pi * np.cumsum(f0) / 16000)
  env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
  return (0.3 * env * voiced + 0.01 * rng.normal(size=t.size)).astype(
    np.float32
  )


def _numpy_log_mel(wav):
  """The Wav2Lip mel written from its definition with NumPy alone."""
  sr, n_fft, hop, n_mels, fmin, fmax = 16000, 800, 200, 80, 55.0, 7600.0
  x = np.append(wav[0], wav[1:] - 0.97 * wav[:-1]).astype(np.float64)
  x = np.pad(x, n_fft // 2, mode="reflect")
  n_frames = 1 + (len(x) - n_fft) // hop
  window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic
  frames = np.stack([x[i * hop : i * hop + n_fft] for i in range(n_frames)])
  mag = np.abs(np.fft.rfft(frames * window, axis=1))  # [F, 401]

  # Slaney mel scale: linear below 1 kHz, logarithmic above.
  def hz_to_mel(f):
    f = np.asarray(f, np.float64)
    lin = f / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log, lin)

  def mel_to_hz(m):
    m = np.asarray(m, np.float64)
    lin = m * (200.0 / 3)
    log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
    return np.where(m >= 15.0, log, lin)

  edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
  freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
  fb = np.zeros((n_mels, freqs.size))
  for m in range(n_mels):
    lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
    rising = (freqs - lo) / (mid - lo)
    falling = (hi - freqs) / (hi - mid)
    fb[m] = np.maximum(0, np.minimum(rising, falling)) * 2.0 / (hi - lo)
  mel = mag @ fb.T
  db = 20 * np.log10(np.maximum(1e-5, mel)) - 20
  return np.clip(8 * (db + 100) / 100 - 4, -4, 4)


def test_log_mel_matches_numpy_definition():
  wav = _speechlike()
  ours = features.log_mel(wav)
  ref = _numpy_log_mel(wav)
  assert ours.shape == ref.shape == (1 + len(wav) // 200, 80)
  np.testing.assert_allclose(ours, ref, atol=2e-3)
  assert ours.min() >= -4 and ours.max() <= 4
  assert ours.max() > 0  # the tone is well above the floor


@pytest.mark.parametrize("n", [1, 2, 801, 16037])
def test_preemphasis_is_scipys_lfilter_bit_for_bit(n):
  """The pre-emphasis without SciPy's signal package gives the mel of
  before (scipy.signal.lfilter in float64, then float32) to the last bit."""
  import scipy.signal

  x = _speechlike(seed=n)[:n] if n > 2 else np.float32([0.25, -0.5])[:n]
  x = x + np.random.default_rng(n).normal(0, 0.1, n).astype(np.float32)
  ref = scipy.signal.lfilter([1.0, -features.PREEMPHASIS], [1.0], x)
  ours = features._preemphasis(x)
  assert ours.dtype == np.float32
  np.testing.assert_array_equal(ours, ref.astype(np.float32))


@pytest.mark.parametrize("n", [1, 50, 399, 400, 401, 801, 16037])
def test_stft_matches_librosa(n):
  """The written-out STFT is librosa's (centred reflect padding included,
  also for clips shorter than the padding)."""
  import librosa

  x = np.random.default_rng(n).normal(size=n).astype(np.float32)
  ref = librosa.stft(
    x,
    n_fft=800,
    hop_length=200,
    win_length=800,
    window="hann",
    center=True,
    pad_mode="reflect",
  )
  ours = features._stft_magnitude(x)
  assert ours.shape == ref.T.shape
  np.testing.assert_allclose(ours, np.abs(ref).T, atol=2e-5)


def test_log_mel_silence_is_floor():
  wav = np.zeros(3200, np.float32)
  np.testing.assert_array_equal(features.log_mel(wav), -4.0)


def test_mfcc_shape_and_frame_rate():
  wav = _speechlike(seconds=3.0)
  feats = features.mfcc(wav)
  padded = len(wav) + 2 * 1920
  assert feats.shape == (1 + int(np.ceil((padded - 400) / 160)), 12)
  assert np.all(np.isfinite(feats))
  # The padding is silent: its frames are alike, speech frames vary.
  assert np.std(feats[:5], axis=0).max() < np.std(feats[20:-20], axis=0).min()


def test_mfcc_matches_direct_computation_of_one_frame():
  wav = _speechlike(seconds=1.0, seed=3)
  feats = features.mfcc(wav)
  padded = np.concatenate([np.zeros(1920), wav, np.zeros(1920)])
  emph = np.append(padded[0], padded[1:] - 0.97 * padded[:-1])
  k = 40
  frame = emph[k * 160 : k * 160 + 400]
  power = np.abs(np.fft.rfft(frame, 512)) ** 2 / 512
  logfb = np.log(features._mfcc_filterbank() @ power)
  n = np.arange(26)
  dct = np.array(
    [
      np.sqrt((1 if q == 0 else 2) / 26)
      * np.sum(logfb * np.cos(np.pi * q * (2 * n + 1) / 52))
      for q in range(13)
    ]
  )
  dct *= 1 + 11 * np.sin(np.pi * np.arange(13) / 22)
  np.testing.assert_allclose(feats[k], dct[1:], rtol=1e-4, atol=1e-4)


def test_mel_windows_follow_reference_indexing():
  mel = np.arange(200)[:, None] * np.ones((1, 80))  # row r holds value r
  win = features.mel_windows(mel, num_frames=30, fps=25)
  assert win.shape == (30, 80, 16)
  # Frame 0 starts at int(80 * -2 / 25) = -6 -> clamped to row 0.
  np.testing.assert_array_equal(win[0, 0], [0] * 7 + list(range(1, 10)))
  # Frame 10 starts at int(80 * 8 / 25) = 25.
  np.testing.assert_array_equal(win[10, 0], np.arange(25, 41))
  # Past the end the last row repeats.
  late = features.mel_windows(mel, num_frames=1, fps=25, start=70)
  assert late[0, 0, -1] == 199
  # Offsets agree with cutting the full sequence.
  np.testing.assert_array_equal(
    features.mel_windows(mel, 5, 25, start=7), win[7:12]
  )


def test_mfcc_windows():
  feats = np.arange(300)[:, None] * np.ones((1, 12))
  win = features.mfcc_windows(feats, num_frames=50, fps=25)
  assert win.shape == (50, 28, 12)
  np.testing.assert_array_equal(win[5, :, 0], np.arange(20, 48))
  np.testing.assert_array_equal(
    features.mfcc_windows(feats, 3, 25, start=10), win[10:13]
  )


def _coeffs(t, fps, seed=0):
  rng = np.random.default_rng(seed)
  return io.Coefficients(
    exp=rng.normal(size=(t, 64)).astype(np.float32),
    angles=(0.2 * rng.normal(size=(t, 3))).astype(np.float32),
    trans=rng.normal(size=(t, 3)).astype(np.float32),
    crop=np.tile([1.0, 128.0, 128.0], (t, 1)).astype(np.float32),
    identity=None,
    fps=fps,
  )


def test_blink_ratio():
  rng = np.random.default_rng(0)
  for t in (32, 200):
    ratio = features.blink_ratio(rng, t)
    starts = np.flatnonzero(ratio == 0.5)[::2]  # each blink: .5 .9 1 .9 .5
    assert len(starts) >= 1
    for s in starts:
      np.testing.assert_array_equal(ratio[s : s + 5], features.BLINK)
    gaps = np.diff(starts) - 5
    assert np.all((gaps >= 10) & (gaps < max(11, min(t // 2, 70))))
    assert np.count_nonzero(ratio) == 5 * len(starts)
  assert not features.blink_ratio(rng, 20).any()  # too short for blinks


def test_resample_30_to_25_is_linear_in_time():
  t = np.arange(90) / 30.0
  c = _coeffs(90, 30.0)
  ramp = (t[:, None] * np.arange(1, 65)[None, :]).astype(np.float32)
  c = dataclasses.replace(c, exp=ramp)
  out = features.resample_coefficients(c, 25.0)
  assert out.num_frames == 75 and out.fps == 25.0
  t_out = np.arange(75) / 25.0
  np.testing.assert_allclose(out.exp, t_out[:, None] * np.arange(1, 65), 1e-5)
  # Frames that coincide in time are copied exactly (every 6th in, 5th out).
  np.testing.assert_allclose(out.angles[::5], c.angles[::6], atol=1e-6)
  np.testing.assert_allclose(out.trans[::5], c.trans[::6], atol=1e-6)


def test_resample_angles_on_rotation_group():
  # Roll crossing +-pi: linear interpolation of the numbers would pass through
  # 0 (the head upside down); the rotation passes through pi.
  c = _coeffs(2, 1.0)
  angles = np.array([[0, 0, np.pi - 0.1], [0, 0, -np.pi + 0.1]], np.float32)
  c = dataclasses.replace(c, angles=angles)
  out = features.resample_coefficients(c, 2.0)  # frames at 0, 0.5, 1 (held)
  assert out.num_frames == 4
  assert abs(abs(out.angles[1, 2]) - np.pi) < 1e-3
  # Small rotations: slerp agrees with linear interpolation.
  small = _coeffs(60, 30.0, seed=1)
  small = dataclasses.replace(small, angles=0.01 * small.angles)
  out = features.resample_coefficients(small, 25.0)
  t_in, t_out = np.arange(60) / 30, np.arange(50) / 25
  lin = np.stack(
    [np.interp(t_out, t_in, small.angles[:, k]) for k in range(3)], 1
  )
  np.testing.assert_allclose(out.angles, lin, atol=2e-4)


def test_align_lengths_trims_small_mismatch_and_rejects_large():
  c = _coeffs(50, 25.0)
  wav = np.ones(48 * 640, np.float32)  # 48 frames of audio
  c2, w2 = features.align_lengths(c, wav)
  assert c2.num_frames == 48 and len(w2) == 48 * 640
  wav = np.ones(int(52.5 * 640), np.float32)
  c2, w2 = features.align_lengths(c, wav)
  assert c2.num_frames == 50 and len(w2) == 50 * 640
  with pytest.raises(DataError, match="mismatch") as info:
    features.align_lengths(c, np.ones(40 * 640, np.float32), name="spk#x#1")
  assert "spk#x#1" in str(info.value)


def test_load_clip(tmp_path):
  wav = _speechlike(seconds=2.0)
  soundfile.write(tmp_path / "a.wav", wav, 16000)
  rng = np.random.default_rng(0)
  coeff = rng.normal(size=(61, 257)).astype(np.float32)  # 30 fps, +1 frame
  params = np.tile([256, 256, 1, 128, 128], (61, 1)).astype(np.float32)
  scipy.io.savemat(
    tmp_path / "a.mat", {"coeff": coeff, "transform_params": params}
  )
  clip = features.load_clip(
    tmp_path / "a.mat", tmp_path / "a.wav", source_fps=30
  )
  assert clip.num_frames == 50 and clip.coeffs.fps == 25
  assert clip.mel.shape == (1 + len(clip.wav) // 200, 80)
  assert clip.mfcc.shape[1] == 12
  windows = features.mel_windows(clip.mel, clip.num_frames)
  assert windows.shape == (50, 80, 16)


def test_real_clip(shared_data):
  root = shared_data / "styletalk" / "source_video"
  clip = features.load_clip(
    root / "3DMM/reagan_clip1.mat", root / "wav/reagan_clip1.wav", source_fps=30
  )
  assert clip.num_frames == 650  # 780 frames at 30 fps = 26 s at 25 fps
  assert clip.mel.shape[0] >= 80 * 26
  assert -4 <= clip.mel.min() and clip.mel.max() <= 4
  mfcc_windows = features.mfcc_windows(clip.mfcc, clip.num_frames)
  assert mfcc_windows.shape == (650, 28, 12)
