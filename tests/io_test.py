"""Coefficient and audio readers: every format and every bad-input case."""

import os
import pickle
import subprocess

import numpy as np
import pytest
import scipy.io
import soundfile

from input_pipeline import io
from saas_jax.errors import DataError


def _coeff(t=10, seed=0):
  rng = np.random.default_rng(seed)
  coeff = rng.normal(size=(t, 257)).astype(np.float32)
  params = np.tile([256, 256, 1.0, 120.0, 130.0], (t, 1)).astype(np.float32)
  return coeff, params


def _assert_matches(c, coeff, crop=None):
  assert c.exp.shape == (coeff.shape[0], 64)
  np.testing.assert_allclose(c.exp, coeff[:, 80:144], rtol=1e-6)
  np.testing.assert_allclose(c.angles, coeff[:, 224:227], rtol=1e-6)
  np.testing.assert_allclose(c.trans, coeff[:, 254:257], rtol=1e-6)
  np.testing.assert_allclose(c.identity, coeff[:, :80].mean(0), atol=1e-6)
  if crop is not None:
    np.testing.assert_allclose(c.crop, crop, rtol=1e-6)
  assert c.exp.dtype == np.float32


# ---------------------------------------------------------------- formats ---


def test_mat(tmp_path):
  coeff, params = _coeff()
  path = tmp_path / "clip.mat"
  scipy.io.savemat(path, {"coeff": coeff, "transform_params": params})
  c = io.load_coefficients(path, fps=30)
  _assert_matches(c, coeff, params[:, 2:])
  assert c.fps == 30 and c.has_crop and c.path == os.fspath(path)
  assert c.driving().shape == (10, 73) and c.pose.shape == (10, 6)


def test_mat_fps_entry_and_default(tmp_path):
  coeff, params = _coeff()
  path = tmp_path / "clip.mat"
  io.save_coefficients_mat(path, coeff, params, fps=25)
  assert io.load_coefficients(path).fps == 25
  with pytest.raises(DataError, match="fps=25"):
    io.load_coefficients(path, fps=30)
  scipy.io.savemat(path, {"coeff": coeff, "transform_params": params})
  assert io.load_coefficients(path).fps == io.DEFAULT_SOURCE_FPS


def test_deep3d_dict_npy(tmp_path):
  coeff, params = _coeff()
  path = tmp_path / "clip.npy"
  np.save(
    path,
    {
      "coeff": coeff,
      "trans_param": params.astype(np.float64),
      "lm68": np.zeros((10, 68, 2), np.float32),
      "lm5": np.zeros((10, 5, 2), np.float32),
    },
  )
  c = io.load_coefficients(path)
  _assert_matches(c, coeff, params[:, 2:])


def test_single_frame_params_broadcast(tmp_path):
  coeff, params = _coeff(t=4)
  path = tmp_path / "clip.npy"
  np.save(path, {"coeff": coeff, "trans_param": params[:1]})
  assert io.load_coefficients(path).crop.shape == (4, 3)


@pytest.mark.parametrize("ext", [".npy", ".npz"])
def test_plain_arrays(tmp_path, ext):
  coeff, params = _coeff()
  d73 = np.concatenate(
    [coeff[:, 80:144], coeff[:, 224:227], coeff[:, 254:257], params[:, 2:]], 1
  )
  for width, arr in ((257, coeff), (73, d73), (70, d73[:, :70])):
    path = tmp_path / f"w{width}{ext}"
    if ext == ".npy":
      np.save(path, arr)
    else:
      np.savez(path, arr)
    c = io.load_coefficients(path)
    np.testing.assert_allclose(c.exp, coeff[:, 80:144], rtol=1e-6)
    np.testing.assert_allclose(c.angles, coeff[:, 224:227], rtol=1e-6)
    assert c.has_crop == (width == 73)
    if width == 73:
      np.testing.assert_allclose(c.crop, params[:, 2:], rtol=1e-6)
    else:
      np.testing.assert_allclose(c.crop[0], io.DEFAULT_CROP)
    assert (c.identity is not None) == (width == 257)


def test_npz_dict(tmp_path):
  coeff, params = _coeff()
  path = tmp_path / "clip.npz"
  np.savez(path, coeff=coeff, transform_params=params, fps=np.float32(30))
  c = io.load_coefficients(path)
  _assert_matches(c, coeff, params[:, 2:])
  assert c.fps == 30


# -------------------------------------------------------------- bad input ---


def _bad(tmp_path, name, writer):
  path = tmp_path / name
  writer(path)
  with pytest.raises(DataError) as info:
    io.load_coefficients(path)
  assert str(path) in str(info.value)
  return str(info.value)


def test_bad_coefficient_files(tmp_path):
  coeff, params = _coeff()
  msg = _bad(
    tmp_path, "nokey.mat", lambda p: scipy.io.savemat(p, {"foo": coeff})
  )
  assert "missing key 'coeff'" in msg
  msg = _bad(
    tmp_path,
    "width.mat",
    lambda p: scipy.io.savemat(p, {"coeff": coeff[:, :200]}),
  )
  assert "257 columns" in msg
  nan = coeff.copy()
  nan[3, 100] = np.nan
  msg = _bad(
    tmp_path,
    "nan.mat",
    lambda p: scipy.io.savemat(p, {"coeff": nan, "transform_params": params}),
  )
  assert "NaN" in msg and "frame 3" in msg
  inf = coeff.copy()
  inf[0, 225] = np.inf
  assert "angles" in _bad(tmp_path, "inf.npy", lambda p: np.save(p, inf))
  assert "zero frames" in _bad(
    tmp_path, "empty.npy", lambda p: np.save(p, np.zeros((0, 257)))
  )
  assert "[T,257], [T,73] or [T,70]" in _bad(
    tmp_path, "w64.npy", lambda p: np.save(p, np.zeros((5, 64)))
  )
  assert "2-D" in _bad(
    tmp_path, "rank.npy", lambda p: np.save(p, np.zeros((5, 2, 257)))
  )
  assert "frames" in _bad(
    tmp_path,
    "params.mat",
    lambda p: scipy.io.savemat(
      p, {"coeff": coeff, "transform_params": params[:4]}
    ),
  )
  assert "unknown coefficient file extension" in _bad(
    tmp_path, "clip.txt", lambda p: p.write_text("hello")
  )
  assert "not a valid .npy" in _bad(
    tmp_path, "garbage.npy", lambda p: p.write_bytes(b"not numpy")
  )


def test_truncated_files(tmp_path):
  coeff, params = _coeff(t=50)
  for name, write in (
    (
      "t.mat",
      lambda p: scipy.io.savemat(
        p, {"coeff": coeff, "transform_params": params}
      ),
    ),
    ("t.npy", lambda p: np.save(p, coeff)),
    ("t.npz", lambda p: np.savez(p, coeff=coeff)),
    ("d.npy", lambda p: np.save(p, {"coeff": coeff, "trans_param": params})),
  ):
    full = tmp_path / ("full_" + name)
    write(full)
    data = full.read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as info:
      io.load_coefficients(cut)
    assert str(cut) in str(info.value)


class _Exploit:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_code(tmp_path):
  marker = tmp_path / "pwned"
  path = tmp_path / "evil.npy"
  arr = np.empty((), dtype=object)
  arr[()] = {"coeff": _Exploit(marker)}
  np.save(path, arr, allow_pickle=True)
  with pytest.raises(DataError, match="refusing to load") as info:
    io.load_coefficients(path)
  assert "system" in str(info.value)
  assert not marker.exists()


def test_restricted_unpickler_refuses_raw_pickle_classes(tmp_path):
  path = tmp_path / "evil2.npy"
  arr = np.empty((), dtype=object)
  arr[()] = {"coeff": np.zeros((2, 257)), "x": pickle.Unpickler}
  np.save(path, arr, allow_pickle=True)
  with pytest.raises(DataError, match=r"refusing to load '_pickle\.Unpickler'"):
    io.load_coefficients(path)


def test_missing_file(tmp_path):
  with pytest.raises(DataError, match="no such file"):
    io.load_coefficients(tmp_path / "nope.mat")
  with pytest.raises(DataError, match="no such file"):
    io.load_audio(tmp_path / "nope.wav")


# ------------------------------------------------------------------ audio ---


def _tone(sr, seconds=0.5, channels=1):
  t = np.arange(int(sr * seconds)) / sr
  wav = 0.5 * np.sin(2 * np.pi * 440 * t)
  return np.stack([wav] * channels, 1) if channels > 1 else wav


@pytest.mark.parametrize(
  "ext,subtype,sr,channels",
  [
    (".wav", "PCM_16", 16000, 1),
    (".wav", "PCM_24", 44100, 2),
    (".wav", "FLOAT", 22050, 1),
    (".wav", "PCM_U8", 8000, 1),
    (".flac", "PCM_16", 48000, 2),
    (".ogg", "VORBIS", 32000, 1),
  ],
)
def test_audio_formats(tmp_path, ext, subtype, sr, channels):
  path = tmp_path / f"a{ext}"
  soundfile.write(path, _tone(sr, channels=channels), sr, subtype=subtype)
  wav = io.load_audio(path)
  assert wav.dtype == np.float32 and wav.ndim == 1
  assert abs(len(wav) - 8000) <= 2
  # The tone survives: its spectrum peaks at 440 Hz.
  spec = np.abs(np.fft.rfft(wav))
  assert abs(np.argmax(spec) * 16000 / len(wav) - 440) < 5


@pytest.mark.parametrize("ext", [".m4a", ".mp3", ".mp4"])
def test_audio_through_ffmpeg(tmp_path, ext):
  import imageio_ffmpeg

  src = tmp_path / "src.wav"
  soundfile.write(src, _tone(44100, seconds=1.0, channels=2), 44100)
  out = tmp_path / f"a{ext}"
  subprocess.run(
    [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", src, out],
    check=True,
  )
  wav = io.load_audio(out)
  assert abs(len(wav) - 16000) < 2000  # codecs pad a few frames
  spec = np.abs(np.fft.rfft(wav))
  assert abs(np.argmax(spec) * 16000 / len(wav) - 440) < 5


def test_bad_audio(tmp_path):
  silent = tmp_path / "silent.wav"
  soundfile.write(silent, np.zeros(16000), 16000)
  with pytest.raises(DataError, match="silent") as info:
    io.load_audio(silent)
  assert str(silent) in str(info.value)
  empty = tmp_path / "empty.wav"
  soundfile.write(empty, np.zeros(0), 16000)
  with pytest.raises(DataError, match="zero samples"):
    io.load_audio(empty)
  nan = tmp_path / "nan.wav"
  wav = _tone(16000)
  wav[100] = np.nan
  soundfile.write(nan, wav, 16000, subtype="FLOAT")
  with pytest.raises(DataError, match="NaN"):
    io.load_audio(nan)
  garbage = tmp_path / "garbage.wav"
  garbage.write_bytes(b"RIFF1234WAVEjunkjunk")
  with pytest.raises(DataError, match="unreadable audio"):
    io.load_audio(garbage)
  truncated = tmp_path / "trunc.m4a"
  truncated.write_bytes(b"\x00\x00\x00\x18ftypM4A junk")
  with pytest.raises(DataError, match="ffmpeg could not decode"):
    io.load_audio(truncated)
  text = tmp_path / "x.txt"
  text.write_text("a")
  with pytest.raises(DataError, match="unknown audio extension"):
    io.load_audio(text)


# ------------------------------------------------------------- real data ---


def test_every_styletalk_file_loads(shared_data):
  root = shared_data / "styletalk"
  mats = sorted((root / "source_video" / "3DMM").glob("*.mat"))
  mats += sorted((root / "style_clips" / "3DMM").glob("*.mat"))
  assert len(mats) == 22
  for path in mats:
    c = io.load_coefficients(path, fps=30)
    t = c.num_frames
    assert t >= 60
    assert c.exp.shape == (t, 64) and c.angles.shape == (t, 3)
    assert c.trans.shape == (t, 3) and c.crop.shape == (t, 3)
    assert c.identity.shape == (80,)
    assert np.all(np.abs(c.angles) < np.pi / 2)  # radians, plausible head pose
    assert np.all((c.crop[:, 0] > 0.5) & (c.crop[:, 0] < 2))
  wavs = sorted((root / "source_video" / "wav").glob("*.wav"))
  assert len(wavs) == 7
  for path in wavs:
    wav = io.load_audio(path)
    coeffs = io.load_coefficients(
      root / "source_video" / "3DMM" / (path.stem + ".mat"), fps=30
    )
    # Audio and coefficients of the same clip cover the same time.
    assert abs(len(wav) / 16000 - coeffs.num_frames / 30) < 0.1
  demo = io.load_coefficients(root / "demo.npy", fps=30)
  assert demo.exp.shape == (780, 64) and demo.has_crop
  reagan = io.load_coefficients(root / "source_video/3DMM/reagan_clip1.mat")
  # demo.npy's pose columns are reagan_clip1's (StyleTalk's README command).
  np.testing.assert_allclose(demo.angles, reagan.angles, atol=1e-6)
  np.testing.assert_allclose(demo.crop, reagan.crop, atol=1e-4)


def test_save_coefficients_mat_is_deterministic(tmp_path):
  coeff, params = _coeff()
  io.save_coefficients_mat(tmp_path / "a.mat", coeff, params, fps=25)
  io.save_coefficients_mat(tmp_path / "b.mat", coeff, params, fps=25)
  assert (tmp_path / "a.mat").read_bytes() == (tmp_path / "b.mat").read_bytes()
  c = io.load_coefficients(tmp_path / "a.mat")
  _assert_matches(c, coeff, params[:, 2:])
  with pytest.raises(DataError, match="coeff must be"):
    io.save_coefficients_mat(tmp_path / "c.mat", coeff[:, :10], params)
  assert not (tmp_path / "c.mat").exists()
