"""Linear face models: loaders, geometry, projection, JAX compatibility."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.io

from saas_jax import face_model
from saas_jax.errors import DataError


def _write_tiny_bfm(path, n=120, seed=0, **overrides):
  rng = np.random.default_rng(seed)
  data = {
    "meanshape": rng.normal(size=(1, 3 * n)).astype(np.float32),
    "idBase": rng.normal(size=(3 * n, 80)).astype(np.float32) * 0.01,
    "exBase": rng.normal(size=(3 * n, 64)).astype(np.float32) * 0.01,
    "keypoints": (np.arange(68) + 1).reshape(1, 68).astype(np.float64),
    "tri": np.array([[1, 2, 3], [2, 3, 4]]),
  }
  data.update(overrides)
  scipy.io.savemat(path, data)
  return data


def test_load_bfm_points(tmp_path):
  data = _write_tiny_bfm(tmp_path / "bfm.mat")
  model = face_model.load_bfm(tmp_path / "bfm.mat")
  assert model.num_points == 120 and model.num_exp == 64
  rng = np.random.default_rng(1)
  exp = rng.normal(size=(5, 64)).astype(np.float32)
  ident = rng.normal(size=(5, 80)).astype(np.float32)
  mean = data["meanshape"].reshape(-1, 3)
  mean = mean - mean.mean(0)
  expected = (
    mean.reshape(-1) + ident @ data["idBase"].T + exp @ data["exBase"].T
  ).reshape(5, 120, 3)
  np.testing.assert_allclose(model.points(exp, ident), expected, atol=1e-5)
  kp = model.points(exp, ident, landmarks="keypoints68")
  np.testing.assert_allclose(kp, expected[:, :68], atol=1e-5)
  lips = model.points(exp, landmarks="lips4")
  np.testing.assert_allclose(
    lips, model.points(exp)[:, [51, 57, 62, 66]], atol=1e-5
  )
  assert model.edges["triangles"].tolist() == [[0, 1, 2], [1, 2, 3]]


def test_load_bfm_bad_files(tmp_path):
  for name, overrides, msg in (
    ("nokey.mat", {"exBase": None}, "missing key 'exBase'"),
    ("width.mat", {"exBase": np.zeros((360, 10))}, "'exBase' must be"),
    ("kp.mat", {"keypoints": np.arange(1, 11)[None]}, "68 1-based"),
    ("nan.mat", {"idBase": np.full((360, 80), np.nan)}, "NaN"),
  ):
    path = tmp_path / name
    data = _write_tiny_bfm(path)
    if overrides.get("exBase", 0) is None:
      del data["exBase"]
      scipy.io.savemat(path, data)
    else:
      _write_tiny_bfm(path, **overrides)
    with pytest.raises(DataError, match=msg) as info:
      face_model.load_bfm(path)
    assert str(path) in str(info.value)
  garbage = tmp_path / "garbage.mat"
  garbage.write_bytes(b"MATLAB 5.0 nonsense")
  with pytest.raises(DataError, match="unreadable"):
    face_model.load_bfm(garbage)


def _tiny_basis(path, n=20):
  rng = np.random.default_rng(0)
  mean = np.stack(
    [
      rng.uniform(0.3, 0.7, n),
      rng.uniform(0.2, 0.8, n),
      rng.normal(0, 0.02, n),
    ],
    1,
  )
  np.savez(
    path,
    W=rng.normal(size=(64, n, 3)) * 1e-3,
    mean_shape=mean,
    exp_mean=np.zeros(64),
    lips=np.array([[0, 1], [1, 2]]),
  )


def test_load_landmark_basis_canonical_frame(tmp_path):
  _tiny_basis(tmp_path / "b.npz")
  model = face_model.load_landmark_basis(tmp_path / "b.npz")
  pts = model.points(np.zeros(64, np.float32))
  np.testing.assert_allclose(pts.mean(0), 0, atol=1e-6)
  assert abs(np.ptp(pts[:, 0]) - 1.5) < 1e-5
  assert model.edges["lips"].shape == (2, 2)
  np.savez(
    tmp_path / "bad.npz", W=np.zeros((64, 5, 3)), mean_shape=np.zeros((6, 3))
  )
  with pytest.raises(DataError, match="'W' must be"):
    face_model.load_landmark_basis(tmp_path / "bad.npz")


def test_real_landmark_basis_semantics(shared_data):
  model = face_model.load_landmark_basis(
    shared_data / "derived/exp64_to_mediapipe468_linear.npz"
  )
  assert model.num_points == 468
  ref = scipy.io.loadmat(shared_data / "derived/pirender_expression.mat")
  gaps = {
    k: model.lip_distances(
      ref[f"expression_{k}"].reshape(64).astype(np.float32)
    )
    for k in ("center", "mouth")
  }
  # PIRender's "mouth open" vector opens the inner lips by several times.
  assert gaps["mouth"][1] > 3 * gaps["center"][1]
  # The image-space y (down) was flipped: the upper lip is above the lower.
  assert gaps["center"][0] > 0


def test_projection_geometry():
  model = face_model.FaceModel(
    name="probe",
    mean_shape=np.array([[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0]], np.float32),
    exp_basis=np.zeros((64, 3, 3), np.float32),
    exp_mean=np.zeros(64, np.float32),
  )
  pts = model.points(np.zeros((1, 64), np.float32))
  zero = np.zeros((1, 3), np.float32)
  px = model.project(pts, zero, zero)[0]
  np.testing.assert_allclose(px[0], [112, 112], atol=1e-4)  # principal point
  assert px[1, 0] > 112 and px[2, 1] < 112  # x right, y up -> row decreases
  # Yaw turns the +x point away from the camera (smaller image offset).
  yaw = np.array([[0, 0.5, 0]], np.float32)
  assert model.project(pts, yaw, zero)[0, 1, 0] < px[1, 0]
  # Crop (s=1, tx=ty=128) shifts crop pixels by (16, 16) into a 256² frame.
  crop = np.array([[1.0, 128.0, 128.0]], np.float32)
  np.testing.assert_allclose(
    model.project(pts, zero, zero, crop)[0], px + 16, atol=1e-4
  )


def test_rotation_matrix_is_deep3d_convention():
  angles = np.array([0.1, -0.2, 0.3])
  r = face_model.rotation_matrix(angles)
  x, y, z = angles
  rx = np.array(
    [[1, 0, 0], [0, np.cos(x), -np.sin(x)], [0, np.sin(x), np.cos(x)]]
  )
  ry = np.array(
    [[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]]
  )
  rz = np.array(
    [[np.cos(z), -np.sin(z), 0], [np.sin(z), np.cos(z), 0], [0, 0, 1]]
  )
  np.testing.assert_allclose(r, rz @ ry @ rx, atol=1e-12)


def test_jax_jit_and_grad(tmp_path):
  _write_tiny_bfm(tmp_path / "bfm.mat")
  model = face_model.load_bfm(tmp_path / "bfm.mat")
  exp = jnp.ones((2, 7, 64)) * 0.1

  @jax.jit
  def loss(e):
    d = model.lip_distances(e)
    px = model.project(
      model.points(e, landmarks="keypoints68"),
      jnp.zeros((2, 7, 3)),
      jnp.zeros((2, 7, 3)),
    )
    return jnp.sum(d**2) + 1e-3 * jnp.sum(px)

  g = jax.grad(loss)(exp)
  assert g.shape == exp.shape and bool(jnp.all(jnp.isfinite(g)))
  np.testing.assert_allclose(
    np.asarray(model.points(exp)), model.points(np.asarray(exp)), atol=1e-5
  )
