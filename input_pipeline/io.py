"""Readers for 3DMM coefficient files and speech audio.

Public API:
  load_coefficients(path, fps=None) -> Coefficients
  load_audio(path, sample_rate=16000) -> float32 [N] mono

Coefficient formats (the layout of the 257 Deep3DFaceRecon/BFM columns is
id 0:80, exp 80:144, tex 144:224, angles 224:227, gamma 227:254, trans 254:257):

  .mat   PIRender / StyleTalk: `coeff` [T,257] and `transform_params` [T,5]
         ([w0, h0, s, tx, ty]; crop = its last 3 columns).
  .npy   Deep3DFaceRecon_pytorch / official SAAS: a dict saved with np.save,
         keys `coeff` [T,257], `trans_param` [T,5], `lm68`, `lm5`. The dict is a
         pickle: it is read by a restricted unpickler that admits only numpy
         arrays, dicts, lists and scalars and refuses everything else.
  .npy/.npz  plain arrays: [T,257]; [T,73] = exp 64 + angles 3 + trans 3 +
         crop 3 (StyleTalk's demo.npy); [T,70] = the same without crop.
         An .npz holds either one array or the dict keys above.

Files carry no frame rate, except an optional scalar `fps` entry (our own
writers add it). The rate is taken from `fps=` when given, else from the file,
else DEFAULT_SOURCE_FPS (25, MEAD/SAAS). StyleTalk samples are 30 fps: pass
fps=30 for them.

Every problem raises saas_jax.errors.DataError naming the file.
"""

import dataclasses
import io
import os
import pickle
import subprocess
import zipfile
from math import gcd

import numpy as np
import scipy.io
import soundfile

from saas_jax.errors import DataError

DEFAULT_SOURCE_FPS = 25.0
AUDIO_SAMPLE_RATE = 16000
# Crop (s, tx, ty) used when a file has none: no scaling, centred in a 256² crop.
DEFAULT_CROP = (1.0, 128.0, 128.0)

# Column slices of the 257-wide Deep3DFaceRecon coefficient vector.
ID = slice(0, 80)
EXP = slice(80, 144)
TEX = slice(144, 224)
ANGLES = slice(224, 227)
GAMMA = slice(227, 254)
TRANS = slice(254, 257)

_COEFF_EXTENSIONS = (".mat", ".npy", ".npz")
_MAT_HEADER = b"MATLAB 5.0 MAT-file, written by saas_jax".ljust(116)
_SOUNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg")
_FFMPEG_EXTENSIONS = (".m4a", ".mp3", ".mp4", ".aac", ".mov", ".webm")
# Peak amplitude under which a whole file counts as silent.
_SILENCE_PEAK = 1e-4


@dataclasses.dataclass(frozen=True)
class Coefficients:
  """One clip of face motion, per frame, at `fps`."""

  exp: np.ndarray  # [T, 64] expression
  angles: np.ndarray  # [T, 3] pitch, yaw, roll in radians
  trans: np.ndarray  # [T, 3] translation
  crop: np.ndarray  # [T, 3] (s, tx, ty); DEFAULT_CROP where has_crop is False
  identity: np.ndarray | None  # [80] mean identity, when the file has it
  fps: float
  has_crop: bool = True
  path: str | None = None
  texture: np.ndarray | None = None  # [80] mean albedo, with the identity
  gamma: np.ndarray | None = None  # [27] mean spherical-harmonics lighting

  @property
  def num_frames(self) -> int:
    return self.exp.shape[0]

  @property
  def pose(self) -> np.ndarray:
    """[T, 6] angles then translation: the pose stage's representation."""
    return np.concatenate([self.angles, self.trans], axis=-1)

  def driving(self) -> np.ndarray:
    """[T, 73] exp, angles, trans, crop: the renderer's driving vector."""
    return np.concatenate([self.exp, self.angles, self.trans, self.crop], -1)

  def coeff(self) -> np.ndarray:
    """[T, 257] in Deep3DFaceRecon's column order (what the .mat layout
    stores); needs the identity, texture and lighting."""
    if self.identity is None or self.texture is None or self.gamma is None:
      raise DataError(
        self.path,
        "has no identity, texture or lighting (a [T,73] or [T,70] array)",
      )
    out = np.zeros((self.num_frames, 257), np.float32)
    out[:, ID], out[:, TEX], out[:, GAMMA] = (
      self.identity,
      self.texture,
      self.gamma,
    )
    out[:, EXP], out[:, ANGLES], out[:, TRANS] = (
      self.exp,
      self.angles,
      self.trans,
    )
    return out

  def transform_params(self) -> np.ndarray:
    """[T, 5] (w0, h0, s, tx, ty): the crop of a 256 x 256 frame."""
    size = np.full((self.num_frames, 2), 256.0, np.float32)
    return np.concatenate([size, self.crop], 1).astype(np.float32)

  def slice(self, start: int, stop: int) -> "Coefficients":
    return dataclasses.replace(
      self,
      exp=self.exp[start:stop],
      angles=self.angles[start:stop],
      trans=self.trans[start:stop],
      crop=self.crop[start:stop],
    )


# ----------------------------------------------------------------------------
# Restricted unpickling of np.save'd dicts.
# ----------------------------------------------------------------------------

# What a pickled numpy array of plain data needs, and nothing else: no
# callables that run code, no arbitrary classes.
_ALLOWED_GLOBALS = {
  ("numpy", "ndarray"),
  ("numpy", "dtype"),
  ("numpy.core.multiarray", "_reconstruct"),
  ("numpy.core.multiarray", "scalar"),
  ("numpy._core.multiarray", "_reconstruct"),
  ("numpy._core.multiarray", "scalar"),
  ("numpy.core.numeric", "_frombuffer"),
  ("numpy._core.numeric", "_frombuffer"),
  ("collections", "OrderedDict"),
  ("_codecs", "encode"),
}
_DTYPE_CLASSES = {"numpy.dtypes", "numpy._core.dtypes"}


class _RestrictedUnpickler(pickle.Unpickler):
  def find_class(self, module: str, name: str):
    if (module, name) in _ALLOWED_GLOBALS or (
      module in _DTYPE_CLASSES and name.endswith("DType")
    ):
      return super().find_class(module, name)
    raise pickle.UnpicklingError(
      f"refusing to load '{module}.{name}': only numpy arrays, dicts, lists "
      "and scalars are allowed in a coefficient file"
    )


def restricted_load_npy(path: str | os.PathLike):
  """np.load for .npy files that may hold a pickled dict, without allow_pickle.

  Plain numeric arrays load as usual. Object arrays are unpickled with an
  allow-list, so a crafted file cannot run code.
  """
  with open(path, "rb") as f:
    try:
      version = np.lib.format.read_magic(f)
      if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
      else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    except Exception as e:
      raise DataError(path, f"not a valid .npy file ({e})") from None
    if not dtype.hasobject:
      f.seek(0)
      try:
        return np.load(f, allow_pickle=False)
      except Exception as e:
        raise DataError(path, f"unreadable .npy array ({e})") from None
    try:
      obj = _RestrictedUnpickler(f).load()
    except pickle.UnpicklingError as e:
      raise DataError(path, str(e)) from None
    except Exception as e:
      raise DataError(path, f"corrupt pickled .npy content ({e})") from None
  del shape, fortran
  if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
    obj = obj.item()
  return obj


# ----------------------------------------------------------------------------
# Coefficients.
# ----------------------------------------------------------------------------


def _read_container(path: str) -> dict | np.ndarray:
  """Reads a coefficient file into a dict of arrays, or one array."""
  ext = os.path.splitext(path)[1].lower()
  if ext == ".mat":
    try:
      mat = scipy.io.loadmat(path)
    except NotImplementedError:
      raise DataError(
        path,
        "MATLAB v7.3 (HDF5) files are not supported; "
        "re-save with scipy.io.savemat",
      ) from None
    except Exception as e:
      raise DataError(path, f"unreadable .mat file ({e})") from None
    return {k: v for k, v in mat.items() if not k.startswith("__")}
  if ext == ".npy":
    obj = restricted_load_npy(path)
    if isinstance(obj, dict) or isinstance(obj, np.ndarray):
      return obj
    raise DataError(
      path, f"expected an array or a dict, got {type(obj).__name__}"
    )
  if ext == ".npz":
    try:
      with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
      raise DataError(path, f"unreadable .npz file ({e})") from None
    if not data:
      raise DataError(path, "empty .npz file")
    if len(data) == 1 and "coeff" not in data:
      return next(iter(data.values()))
    return data
  raise DataError(
    path,
    f"unknown coefficient file extension '{ext}' "
    f"(expected one of {', '.join(_COEFF_EXTENSIONS)})",
  )


def _as_matrix(path: str, value, name: str, width: int | None) -> np.ndarray:
  try:
    raw = np.asarray(value)
  except (TypeError, ValueError):
    raise DataError(path, f"'{name}' is not numeric") from None
  if np.iscomplexobj(raw):
    raise DataError(path, f"'{name}' holds complex numbers")
  if raw.dtype.kind not in "fiu":
    raise DataError(path, f"'{name}' is not numeric (dtype {raw.dtype})")
  arr = raw.astype(np.float64)
  if arr.ndim == 3 and arr.shape[0] == 1:  # [1, T, C] as some writers save it
    arr = arr[0]
  if arr.ndim != 2:
    raise DataError(path, f"'{name}' must be 2-D [T, C], got shape {arr.shape}")
  if width is not None and arr.shape[1] != width:
    raise DataError(
      path, f"'{name}' must have {width} columns, got shape {arr.shape}"
    )
  return arr


def _scalar_fps(path: str, data) -> float | None:
  if not isinstance(data, dict) or "fps" not in data:
    return None
  try:
    fps = float(np.asarray(data["fps"]).reshape(()))
  except (TypeError, ValueError):
    raise DataError(path, "'fps' entry is not a scalar number") from None
  return fps


def load_coefficients(
  path: str | os.PathLike, fps: float | None = None
) -> Coefficients:
  """Reads one clip of 3DMM coefficients from any supported format."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise DataError(path, "no such file")
  data = _read_container(path)
  file_fps = _scalar_fps(path, data)
  full = None  # [T, 257] when the file has identity, texture and lighting
  has_crop = True

  if isinstance(data, dict):
    if "coeff" not in data:
      raise DataError(
        path,
        f"missing key 'coeff' (found: {', '.join(sorted(data)) or 'none'})",
      )
    coeff = _as_matrix(path, data["coeff"], "coeff", 257)
    params_key = next(
      (k for k in ("transform_params", "trans_param") if k in data), None
    )
    if params_key is None:
      has_crop = False
      crop = None
    else:
      params = _as_matrix(path, data[params_key], params_key, 5)
      if params.shape[0] == 1 and coeff.shape[0] > 1:
        params = np.repeat(params, coeff.shape[0], axis=0)
      if params.shape[0] != coeff.shape[0]:
        raise DataError(
          path,
          f"'{params_key}' has {params.shape[0]} frames but 'coeff' has "
          f"{coeff.shape[0]}",
        )
      crop = params[:, 2:5]
    exp, angles, trans = coeff[:, EXP], coeff[:, ANGLES], coeff[:, TRANS]
    full = coeff
  else:
    arr = _as_matrix(path, data, "array", None)
    width = arr.shape[1]
    if width == 257:
      exp, angles, trans = arr[:, EXP], arr[:, ANGLES], arr[:, TRANS]
      full = arr
      has_crop, crop = False, None
    elif width in (73, 70):
      exp, angles, trans = arr[:, :64], arr[:, 64:67], arr[:, 67:70]
      crop = arr[:, 70:73] if width == 73 else None
      has_crop = width == 73
    else:
      raise DataError(
        path,
        f"plain coefficient arrays must be [T,257], [T,73] or [T,70]; "
        f"got shape {arr.shape}",
      )

  num_frames = exp.shape[0]
  if num_frames == 0:
    raise DataError(path, "zero frames")
  if crop is None:
    crop = np.tile(np.asarray(DEFAULT_CROP), (num_frames, 1))
  # Values are checked as the float32 they become (1e300 is Inf there).
  parts = {
    "expression": exp,
    "angles": angles,
    "translation": trans,
    "crop": crop,
  }
  for name, value in parts.items():
    parts[name] = _checked(path, name, value)
  if parts["crop"][:, 0].min() <= 0:
    frame = int(np.argmin(parts["crop"][:, 0]))
    raise DataError(path, f"crop scale <= 0 at frame {frame}")
  identity = texture = gamma = None
  if full is not None:
    identity, texture, gamma = (
      # Averaged in float64 so that constant columns come back exactly.
      _checked(path, name, full[:, part])
      .mean(axis=0, dtype=np.float64)
      .astype(np.float32)
      for name, part in (
        ("identity", ID),
        ("texture", TEX),
        ("lighting", GAMMA),
      )
    )

  file_fps = _checked_fps(path, file_fps, "the file's 'fps'")
  fps = _checked_fps(path, fps, "fps")
  if fps is not None and file_fps is not None and abs(fps - file_fps) > 1e-6:
    raise DataError(path, f"file says fps={file_fps} but fps={fps} was given")
  source_fps = next(
    f for f in (fps, file_fps, DEFAULT_SOURCE_FPS) if f is not None
  )
  return Coefficients(
    exp=parts["expression"],
    angles=parts["angles"],
    trans=parts["translation"],
    crop=parts["crop"],
    identity=identity,
    fps=float(source_fps),
    has_crop=has_crop,
    path=path,
    texture=texture,
    gamma=gamma,
  )


# Larger magnitudes are not 3DMM coefficients, angles (rad), translations
# or crops (pixels of a ~256 frame): a unit or format mix-up.
MAX_ABS_VALUE = 1e4


def _checked(path: str, name: str, value: np.ndarray) -> np.ndarray:
  """value as contiguous float32, finite and of plausible size."""
  with np.errstate(over="ignore", invalid="ignore"):
    out = np.ascontiguousarray(value, dtype=np.float32)
  bad = ~np.isfinite(out)
  if bad.any():
    frame, column = (int(i) for i in np.argwhere(bad)[0])
    raise DataError(
      path,
      f"non-finite {name} value (NaN/Inf, or too large for float32) at "
      f"frame {frame}, column {column}",
    )
  big = np.abs(out) > MAX_ABS_VALUE
  if big.any():
    frame, column = (int(i) for i in np.argwhere(big)[0])
    raise DataError(
      path,
      f"implausible {name} value {out[frame, column]:g} at frame {frame}, "
      f"column {column} (|x| > {MAX_ABS_VALUE:g})",
    )
  return out


def _checked_fps(path: str, fps, what: str) -> float | None:
  """None (not given) or a positive finite frame rate."""
  if fps is None:
    return None
  try:
    fps = float(fps)
  except (TypeError, ValueError):
    raise DataError(path, f"{what} is not a number: {fps!r}") from None
  if not (fps > 0 and np.isfinite(fps)):
    raise DataError(path, f"{what} must be a positive frame rate, got {fps:g}")
  return fps


def save_coefficients_mat(
  path: str | os.PathLike,
  coeff: np.ndarray,
  transform_params: np.ndarray,
  fps: float | None = None,
) -> None:
  """Writes the PIRender layout (+ optional fps), atomically."""
  coeff = np.asarray(coeff, np.float32)
  transform_params = np.asarray(transform_params, np.float32)
  if coeff.ndim != 2 or coeff.shape[1] != 257:
    raise DataError(path, f"coeff must be [T,257], got {coeff.shape}")
  if transform_params.shape != (coeff.shape[0], 5):
    raise DataError(
      path, f"transform_params must be [T,5], got {transform_params.shape}"
    )
  out = {"coeff": coeff, "transform_params": transform_params}
  if fps is not None:
    out["fps"] = np.float32(fps)
  buf = io.BytesIO()
  scipy.io.savemat(buf, out)
  data = bytearray(buf.getvalue())
  # The 116-byte text header carries the creation time; fix it so that the
  # same coefficients always give the same bytes.
  data[:116] = _MAT_HEADER
  atomic_write_bytes(path, bytes(data))


def save_array_npy(path: str | os.PathLike, array: np.ndarray) -> None:
  """A plain float32 .npy (no pickle), written atomically."""
  buf = io.BytesIO()
  np.save(buf, np.asarray(array, np.float32), allow_pickle=False)
  atomic_write_bytes(path, buf.getvalue())


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
  """Writes to a temporary name and renames, so no half-written file shows."""
  path = os.fspath(path)
  tmp = f"{path}.tmp-{os.getpid()}"
  with open(tmp, "wb") as f:
    f.write(data)
  os.replace(tmp, path)


# ----------------------------------------------------------------------------
# Audio.
# ----------------------------------------------------------------------------


def _ffmpeg_exe() -> str:
  import imageio_ffmpeg

  return imageio_ffmpeg.get_ffmpeg_exe()


def _decode_with_ffmpeg(path: str, sample_rate: int) -> np.ndarray:
  cmd = [
    _ffmpeg_exe(),
    "-nostdin",
    "-v",
    "error",
    "-i",
    f"file:{path}",  # never a protocol, whatever the path holds (a ':')
    "-vn",
    "-ac",
    "1",
    "-ar",
    str(sample_rate),
    "-f",
    "f32le",
    "-",
  ]
  proc = subprocess.run(cmd, capture_output=True, check=False)
  if proc.returncode != 0:
    err = proc.stderr.decode(errors="replace")
    if "does not contain any stream" in err or "matches no streams" in err:
      raise DataError(path, "no audio stream in this file")
    msg = err.strip().splitlines()
    raise DataError(
      path,
      "ffmpeg could not decode the audio: "
      + (msg[-1] if msg else f"exit code {proc.returncode}"),
    )
  return np.frombuffer(proc.stdout, dtype="<f4").copy()


def _check_wav_length(path: str) -> None:
  """A WAV whose data chunk declares more bytes than the file holds was cut
  off (libsndfile reads what is there without a word)."""
  size = os.path.getsize(path)
  with open(path, "rb") as f:
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
      return  # RF64 and the like: left to libsndfile
    while True:
      chunk = f.read(8)
      if len(chunk) < 8:
        return
      declared = int.from_bytes(chunk[4:], "little")
      if chunk[:4] == b"data":
        held = size - f.tell()
        if declared != 0xFFFFFFFF and held < declared:
          raise DataError(
            path,
            f"truncated: the header declares {declared} bytes of audio, the "
            f"file holds {held}",
          )
        return
      f.seek(declared + (declared & 1), os.SEEK_CUR)


def resample_audio(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
  """Polyphase resampling (deterministic, no extra dependency)."""
  if orig_sr == target_sr:
    return wav
  import scipy.signal  # here: 0.5 s to import, in every process that reads

  g = gcd(int(orig_sr), int(target_sr))
  out = scipy.signal.resample_poly(wav, target_sr // g, orig_sr // g)
  return out.astype(np.float32)


def load_audio(
  path: str | os.PathLike, sample_rate: int = AUDIO_SAMPLE_RATE
) -> np.ndarray:
  """Any wav/flac/ogg (any rate, channels, depth) or m4a/mp3/mp4 -> mono f32."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise DataError(path, "no such file")
  ext = os.path.splitext(path)[1].lower()
  if ext in _SOUNDFILE_EXTENSIONS:
    try:
      wav, sr = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises LibsndfileError, RuntimeError...
      raise DataError(path, f"unreadable audio file ({e})") from None
    if ext == ".wav":
      _check_wav_length(path)
    channel_peak = float(np.abs(wav).max(initial=0.0))
    wav = wav.mean(axis=1)
    if channel_peak >= _SILENCE_PEAK and np.abs(wav).max() < _SILENCE_PEAK:
      raise DataError(
        path, "its channels cancel out when mixed to mono (out of phase)"
      )
    wav = resample_audio(wav, sr, sample_rate)
  elif ext in _FFMPEG_EXTENSIONS:
    wav = _decode_with_ffmpeg(path, sample_rate)
  else:
    raise DataError(
      path,
      f"unknown audio extension '{ext}' (expected one of "
      f"{', '.join(_SOUNDFILE_EXTENSIONS + _FFMPEG_EXTENSIONS)})",
    )
  if wav.size == 0:
    raise DataError(path, "audio has zero samples")
  if not np.all(np.isfinite(wav)):
    raise DataError(path, "audio contains NaN/Inf samples")
  peak = float(np.max(np.abs(wav)))
  if peak < _SILENCE_PEAK:
    raise DataError(path, f"audio is silent (peak amplitude {peak:.2e})")
  return np.ascontiguousarray(wav, dtype=np.float32)
