"""Linear face models: 3DMM coefficients -> 3D points -> image landmarks.

points = mean_shape + identity @ id_basis + (exp - exp_mean) @ exp_basis

in Deep3DFaceRecon's canonical frame (x right, y up, z towards the camera,
face centred at the origin, about 1.5 units wide). `project` then applies the
head pose and the Deep3DFaceRecon camera (focal 1015, principal point 112,
camera at z = 10, a 224² crop) and, given a crop (s, tx, ty) from
transform_params, maps the crop back to original-image pixels (y down).

Three sources plug into the same `FaceModel`:
  load_bfm(path)             Deep3DFaceRecon's BFM_model_front.mat. Users have
                             it from their own 3DMM extraction; it cannot ship.
  load_landmark_basis(path)  an .npz linear landmark basis (W [64,N,3],
                             mean_shape [N,3] in image units, exp_mean [64]).
  synthetic()                the synthetic corpus's face (synthetic_face.py).

Works on NumPy arrays and on JAX arrays (inside jit and grad) alike: the
array module is chosen from the inputs.

Named landmark sets (indices into the model's points):
  "keypoints68"  the 68 iBUG keypoints (BFM and synthetic faces).
  "lips4"        outer upper, outer lower, inner upper, inner lower lip
                 midpoints: keypoints 51, 57, 62, 66 for 68-point models; the
                 official mouth loss uses their vertical distances.
  "face", "mouth"  what landmark errors are measured on: the 68 keypoints
                 and their mouth (48-67) for 68-point models; all 468 points
                 and the lip contours' points for MediaPipe bases.
"""

import dataclasses
import os
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import scipy.io

from saas_jax import synthetic_face
from saas_jax.errors import DataError

FOCAL = 1015.0
CENTER = 112.0
CAMERA_DISTANCE = 10.0
CROP_SIZE = 224.0
IMAGE_SIZE = 256.0  # the frame transform_params' crop was cut from
# Keypoint numbers (0-based, iBUG 68) of the four lip midpoints.
LIPS4_OF_68 = (51, 57, 62, 66)
MOUTH_OF_68 = slice(48, 68)  # the mouth's keypoints
# Width of the canonical face, used to bring image-unit bases to BFM scale.
_CANONICAL_FACE_WIDTH = 1.5


def _xp(*arrays):
  return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


def rotation_matrix(angles):
  """[..., 3] (pitch, yaw, roll) -> [..., 3, 3] R = Rz @ Ry @ Rx."""
  xp = _xp(angles)
  x, y, z = angles[..., 0], angles[..., 1], angles[..., 2]
  one, zero = xp.ones_like(x), xp.zeros_like(x)
  cx, sx, cy, sy, cz, sz = (
    xp.cos(x),
    xp.sin(x),
    xp.cos(y),
    xp.sin(y),
    xp.cos(z),
    xp.sin(z),
  )
  rx = xp.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1)
  ry = xp.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1)
  rz = xp.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], -1)
  shape = (*x.shape, 3, 3)
  return rz.reshape(shape) @ ry.reshape(shape) @ rx.reshape(shape)


def posed(points, angles, trans):
  """[..., K, 3] canonical points -> camera-frame points (rotated, moved)."""
  xp = _xp(points, angles, trans)
  rot = rotation_matrix(angles)  # [..., 3, 3]
  return points @ xp.swapaxes(rot, -1, -2) + trans[..., None, :]


def to_image(points, crop=None):
  """[..., K, 3] camera-frame points -> [..., K, 2] pixels (see project)."""
  xp = _xp(points, crop)
  depth = CAMERA_DISTANCE - points[..., 2]
  u = FOCAL * points[..., 0] / depth + CENTER
  v = FOCAL * points[..., 1] / depth + CENTER
  v = CROP_SIZE - v  # y up (camera) -> y down (image rows)
  if crop is None:
    return xp.stack([u, v], -1)
  s, tx, ty = crop[..., 0:1], crop[..., 1:2], crop[..., 2:3]
  w0 = h0 = IMAGE_SIZE
  left = w0 * s / 2 - CROP_SIZE / 2 + (tx - w0 / 2) * s
  up = h0 * s / 2 - CROP_SIZE / 2 + (h0 / 2 - ty) * s
  return xp.stack([(u + left) / s, (v + up) / s], -1)


@dataclasses.dataclass(frozen=True, eq=False)
class FaceModel:
  """A linear face model; see the module docstring."""

  name: str
  mean_shape: np.ndarray  # [N, 3]
  exp_basis: np.ndarray  # [64, N, 3]
  exp_mean: np.ndarray  # [64] subtracted from expressions before the basis
  id_basis: np.ndarray | None = None  # [80, N, 3]
  landmark_sets: Mapping[str, np.ndarray] = dataclasses.field(
    default_factory=dict
  )
  # Index pairs to draw (e.g. "lips", "face_oval"), over the model's points.
  edges: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    n = self.mean_shape.shape[0]
    if self.mean_shape.shape != (n, 3):
      raise DataError(
        self.name, f"mean_shape must be [N,3], got {self.mean_shape.shape}"
      )
    if self.exp_basis.shape != (self.exp_basis.shape[0], n, 3):
      raise DataError(
        self.name, f"exp_basis must be [E,{n},3], got {self.exp_basis.shape}"
      )
    if self.exp_mean.shape != (self.exp_basis.shape[0],):
      raise DataError(
        self.name, f"exp_mean must be [{self.exp_basis.shape[0]}]"
      )
    if self.id_basis is not None and self.id_basis.shape[1:] != (n, 3):
      raise DataError(
        self.name, f"id_basis must be [I,{n},3], got {self.id_basis.shape}"
      )
    for key, idx in self.landmark_sets.items():
      if idx.ndim != 1 or idx.min() < 0 or idx.max() >= n:
        raise DataError(
          self.name, f"landmark set '{key}' indexes outside the {n} points"
        )

  @property
  def num_points(self) -> int:
    return self.mean_shape.shape[0]

  @property
  def num_exp(self) -> int:
    return self.exp_basis.shape[0]

  def indices(self, landmarks: str | None) -> np.ndarray | None:
    if landmarks is None:
      return None
    if landmarks not in self.landmark_sets:
      raise KeyError(
        f"{self.name} has no landmark set '{landmarks}' "
        f"(has: {', '.join(sorted(self.landmark_sets))})"
      )
    return self.landmark_sets[landmarks]

  def points(self, exp, identity=None, landmarks: str | None = None):
    """[..., 64] expression (+ [..., 80] identity) -> [..., K, 3] points.

    With `landmarks` only that named subset is computed (cheap for losses).
    """
    xp = _xp(exp, identity)
    idx = self.indices(landmarks)
    mean, basis = self.mean_shape, self.exp_basis
    if idx is not None:
      mean, basis = mean[idx], basis[:, idx]
    k = mean.shape[0]
    delta = exp - xp.asarray(self.exp_mean, dtype=exp.dtype)
    out = delta @ xp.asarray(basis.reshape(self.num_exp, k * 3), exp.dtype)
    out = out.reshape(*exp.shape[:-1], k, 3) + xp.asarray(mean, exp.dtype)
    if identity is not None:
      if self.id_basis is None:
        raise ValueError(f"{self.name} has no identity basis")
      ib = self.id_basis if idx is None else self.id_basis[:, idx]
      ident = identity @ xp.asarray(ib.reshape(ib.shape[0], k * 3), exp.dtype)
      out = out + ident.reshape(*identity.shape[:-1], k, 3)
    return out

  def project(self, points, angles, trans, crop=None):
    """[..., K, 3] points posed by angles/trans -> [..., K, 2] pixels.

    Without crop the pixels are in the 224² crop (y down); with crop
    (s, tx, ty) they are in the original image, as Deep3DFaceRecon's
    align_img defines the crop from a w0 x h0 = 256² frame.
    """
    return to_image(posed(points, angles, trans), crop)

  def lip_distances(self, exp, identity=None):
    """[..., 64] -> [..., 2] vertical outer and inner lip gaps (y up)."""
    lips = self.points(exp, identity, landmarks="lips4")  # [..., 4, 3]
    outer = lips[..., 0, 1] - lips[..., 1, 1]
    inner = lips[..., 2, 1] - lips[..., 3, 1]
    return _xp(exp).stack([outer, inner], axis=-1)


# ----------------------------------------------------------------------------
# Loaders.
# ----------------------------------------------------------------------------


def _require(path, data: Mapping, key: str) -> np.ndarray:
  if key not in data:
    raise DataError(
      path,
      f"missing key '{key}' (found: "
      f"{', '.join(sorted(k for k in data if not k.startswith('__')))})",
    )
  value = np.asarray(data[key])
  if value.dtype.kind not in "fiu":
    raise DataError(path, f"'{key}' is not numeric")
  if not np.all(np.isfinite(value)):
    raise DataError(path, f"'{key}' contains NaN/Inf")
  return value


def load_bfm(path: str | os.PathLike) -> FaceModel:
  """Deep3DFaceRecon's BFM_model_front.mat (keys meanshape, idBase, exBase,
  keypoints; tri optional). The mean shape is re-centred as Deep3DFaceRecon
  does; keypoints are 1-based in the file."""
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise DataError(path, "no such file")
  try:
    mat = scipy.io.loadmat(path)
  except Exception as e:
    raise DataError(path, f"unreadable .mat file ({e})") from None
  mean = _require(path, mat, "meanshape").astype(np.float32).reshape(-1)
  if mean.size % 3:
    raise DataError(path, f"meanshape size {mean.size} is not a multiple of 3")
  n = mean.size // 3
  id_base = _require(path, mat, "idBase").astype(np.float32)
  ex_base = _require(path, mat, "exBase").astype(np.float32)
  for key, b, width in (("idBase", id_base, 80), ("exBase", ex_base, 64)):
    if b.shape != (3 * n, width):
      raise DataError(path, f"'{key}' must be [{3 * n},{width}], got {b.shape}")
  kp = _require(path, mat, "keypoints").reshape(-1).astype(np.int64) - 1
  if kp.size != 68 or kp.min() < 0 or kp.max() >= n:
    raise DataError(path, "'keypoints' must be 68 1-based vertex indices")
  mean = mean.reshape(n, 3)
  mean = mean - mean.mean(axis=0, keepdims=True)
  edges = {}
  if "tri" in mat:
    tri = np.asarray(mat["tri"]).astype(np.int64) - 1
    edges["triangles"] = tri
  return FaceModel(
    name=path,
    mean_shape=mean,
    exp_basis=ex_base.T.reshape(64, n, 3),
    exp_mean=np.zeros(64, np.float32),
    id_basis=id_base.T.reshape(80, n, 3),
    landmark_sets={
      "keypoints68": kp,
      "lips4": kp[list(LIPS4_OF_68)],
      "face": kp,
      "mouth": kp[MOUTH_OF_68],
    },
    edges=edges,
  )


# MediaPipe FaceMesh midpoints: outer upper 0, outer lower 17, inner upper 13,
# inner lower 14.
_MEDIAPIPE_LIPS4 = (0, 17, 13, 14)


def load_landmark_basis(path: str | os.PathLike) -> FaceModel:
  """An .npz landmark basis (W [64,N,3], mean_shape [N,3], exp_mean [64]).

  Its points are in image units (x right, y down, as MediaPipe writes them);
  they are moved to the canonical frame (centred, y up, z towards the camera,
  scaled to a 1.5-unit-wide face) so that `project` works as for the BFM.
  Optional int arrays of shape [E, 2] become `edges`. For 468 points the
  MediaPipe lip midpoints form "lips4".
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise DataError(path, "no such file")
  try:
    with np.load(path, allow_pickle=False) as z:
      data = {k: z[k] for k in z.files}
  except Exception as e:
    raise DataError(path, f"unreadable .npz file ({e})") from None
  w = _require(path, data, "W").astype(np.float32)
  mean = _require(path, data, "mean_shape").astype(np.float32)
  if mean.ndim != 2 or mean.shape[1] != 3:
    raise DataError(path, f"'mean_shape' must be [N,3], got {mean.shape}")
  n = mean.shape[0]
  if w.shape != (64, n, 3):
    raise DataError(path, f"'W' must be [64,{n},3], got {w.shape}")
  exp_mean = (
    _require(path, data, "exp_mean").astype(np.float32).reshape(-1)
    if "exp_mean" in data
    else np.zeros(64, np.float32)
  )
  if exp_mean.shape != (64,):
    raise DataError(path, f"'exp_mean' must be [64], got {exp_mean.shape}")
  flip = np.array([1.0, -1.0, -1.0], np.float32)
  width = float(np.ptp(mean[:, 0])) or 1.0
  scale = _CANONICAL_FACE_WIDTH / width
  canon_mean = (mean - mean.mean(axis=0)) * flip * scale
  canon_w = w * flip * scale
  edges = {}
  for key, value in data.items():
    if key in ("W", "mean_shape", "exp_mean"):
      continue
    arr = np.asarray(value)
    if arr.dtype.kind in "iu" and arr.ndim == 2 and arr.shape[1] == 2:
      if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise DataError(path, f"edge list '{key}' indexes outside {n} points")
      edges[key] = arr.astype(np.int64)
  sets = {"face": np.arange(n, dtype=np.int64)}
  if n == 468:
    sets["lips4"] = np.asarray(_MEDIAPIPE_LIPS4, np.int64)
  if "lips" in edges:
    sets["mouth"] = np.unique(edges["lips"])
  return FaceModel(
    name=path,
    mean_shape=canon_mean.astype(np.float32),
    exp_basis=canon_w.astype(np.float32),
    exp_mean=exp_mean,
    landmark_sets=sets,
    edges=edges,
  )


def synthetic() -> FaceModel:
  """The synthetic corpus's 68-point face (saas_jax.synthetic_face)."""
  mean, exp_basis, id_basis = synthetic_face.arrays()
  return FaceModel(
    name="synthetic68",
    mean_shape=mean.copy(),
    exp_basis=exp_basis.copy(),
    exp_mean=np.zeros(64, np.float32),
    id_basis=id_basis.copy(),
    landmark_sets={
      "keypoints68": np.arange(synthetic_face.NUM_POINTS, dtype=np.int64),
      "face": np.arange(synthetic_face.NUM_POINTS, dtype=np.int64),
      "mouth": np.arange(synthetic_face.NUM_POINTS)[MOUTH_OF_68],
      "lips4": synthetic_face.LIPS4.astype(np.int64),
    },
    edges=synthetic_face.edges(),
  )


# The shipped 64 -> 468 MediaPipe landmark basis (see NOTICE): fitted on
# Deep3DFaceRecon coefficients, so it draws real (Basel-space) expressions.
MEDIAPIPE_BASIS = os.path.join(
  os.path.dirname(os.path.abspath(__file__)), "assets", "mediapipe468_basis.npz"
)


def load(spec: str) -> FaceModel:
  """A face model by config value: "synthetic" (the synthetic corpus's
  68-point face, shipped as code), "mediapipe" (the shipped 468-landmark
  basis of Deep3DFaceRecon expressions), a BFM_model_front.mat, or a
  landmark basis .npz."""
  if spec == "synthetic":
    return synthetic()
  if spec == "mediapipe":
    return load_landmark_basis(MEDIAPIPE_BASIS)
  if spec.endswith(".mat"):
    return load_bfm(spec)
  if spec.endswith(".npz"):
    return load_landmark_basis(spec)
  raise DataError(
    spec,
    "not a face model: expected 'synthetic', 'mediapipe', a BFM .mat or a "
    "landmark basis .npz",
  )
