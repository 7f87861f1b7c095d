"""The preview renderer (meshes, rasterizer, captions) and mp4 writing."""

import collections
import os

import numpy as np
import pytest

from saas_jax import face_model
from saas_jax.errors import DataError
from saas_jax.render import mesh as mesh_lib
from saas_jax.render import preview, video


def _driving(t, exp=None, angles=(0, 0, 0), crop=(1.0, 128.0, 128.0)):
  d = np.zeros((t, preview.DRIVING_DIM), np.float32)
  if exp is not None:
    d[:, :64] = exp
  d[:, 64:67] = angles
  d[:, 70:73] = crop
  return d


def _edge_uses(tri):
  uses = collections.Counter()
  for a, b, c in np.sort(tri, 1):
    uses.update([(a, b), (a, c), (b, c)])
  return uses


def test_mediapipe_faces_come_back_from_the_edge_list():
  face = face_model.load("mediapipe")
  mesh = mesh_lib.build(face)
  assert mesh.triangles.shape == (852, 3)  # FaceMesh's 852 triangles
  uses = _edge_uses(mesh.triangles)
  assert max(uses.values()) == 2  # a surface: no edge in three faces
  # Its boundary: the face oval (36 edges), the inner lips (20), two eyes
  # (16 each).
  assert sum(v == 1 for v in uses.values()) == 36 + 20 + 16 + 16
  # Every face points at the camera at the mean shape.
  p = face.mean_shape[mesh.triangles]
  assert np.all(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])[:, 2] >= 0)


def test_synthetic_face_mesh_has_mouth_and_eye_holes():
  mesh = mesh_lib.build(face_model.synthetic())
  for hole in (range(60, 68), range(36, 42), range(42, 48)):
    assert not any(set(t) <= set(hole) for t in mesh.triangles)
  # Lip-coloured triangles exist and every other corner is skin or brow.
  lips = np.all(np.isclose(mesh.albedo, mesh_lib.LIPS), axis=(1, 2))
  assert 0 < lips.sum() < len(lips)


def _dark(frames, box):
  """Fraction of background-dark pixels in a box (y0, y1, x0, x1)."""
  y0, y1, x0, x1 = box
  return float((frames[:, y0:y1, x0:x1].max(-1) < 40).mean())


def test_preview_draws_pose_crop_mouth_and_blinks():
  face = face_model.synthetic()
  renderer = preview.PreviewRenderer(face, batch=4)
  still = renderer(_driving(1))[0]
  assert still.shape == (256, 256, 3) and still.dtype == np.uint8
  covered = still.max(-1) > 40
  assert 0.15 < covered.mean() < 0.6  # a face, not the whole frame
  # Jaw open (synthetic coefficient 0) opens a dark mouth; blinks (18, 19)
  # close the eyes.
  exp = np.zeros((2, 64), np.float32)
  exp[1, 0] = 1.5
  frames = renderer(_driving(2, exp))
  lm = face.points(exp, landmarks="keypoints68")
  px = face.project(lm, np.zeros((2, 3)), np.zeros((2, 3)), _driving(2)[:, 70:])
  mouth = px[1, 60:68]
  box = (
    int(mouth[:, 1].min()),
    int(mouth[:, 1].max()) + 1,
    int(mouth[:, 0].min()),
    int(mouth[:, 0].max()) + 1,
  )
  assert _dark(frames[1:], box) > _dark(frames[:1], box) + 0.2
  eye = px[0, 36:42]
  eye_box = (
    int(eye[:, 1].min()) - 1,
    int(eye[:, 1].max()) + 2,
    int(eye[:, 0].min()),
    int(eye[:, 0].max()) + 1,
  )
  blink = np.zeros((1, 64), np.float32)
  blink[0, 18:20] = 1.0
  closed = renderer(_driving(1, blink))
  assert _dark(closed, eye_box) < 0.5 * _dark(frames[:1], eye_box)
  # Yaw turns the face: its pixels move; a crop shift moves it too.
  turned = renderer(_driving(1, angles=(0, 0.5, 0)))[0]
  shifted = renderer(_driving(1, crop=(1.0, 100.0, 128.0)))[0]

  def cx(img):
    return np.argwhere(img.max(-1) > 40)[:, 1].mean()

  assert abs(cx(turned) - cx(still)) > 5
  assert cx(shifted) < cx(still) - 15  # its centre tx=100 is further left


def test_preview_handles_any_length_in_batches():
  renderer = preview.PreviewRenderer(face_model.load("mediapipe"), batch=8)
  batches = list(renderer.frames(_driving(19)))
  assert [len(b) for b in batches] == [8, 8, 3]
  np.testing.assert_array_equal(batches[0][0], batches[2][-1])  # still face
  with pytest.raises(ValueError, match=r"\[T, 73\]"):
    renderer(np.zeros((3, 70)))


def test_captions_and_side_by_side():
  frames = np.full((2, 32, 64, 3), 100, np.uint8)
  out = preview.caption(frames, "hello")
  assert out.shape == frames.shape
  assert out[:, : preview.CAPTION_HEIGHT].max() > 200  # text drawn
  np.testing.assert_array_equal(out[:, 20:], frames[:, 20:])
  wide = next(preview.side_by_side([iter([frames]), iter([frames])], "ab"))
  assert wide.shape == (2, 32, 128, 3)


def test_mp4_has_its_frames_and_the_audio(tmp_path):
  path = tmp_path / "clip.mp4"
  wav = (0.1 * np.sin(np.arange(6400) / 5.0)).astype(np.float32)  # 0.4 s
  frames = np.random.default_rng(0).integers(0, 255, (10, 32, 48, 3), np.uint8)
  with video.Mp4Writer(str(path), 25, (32, 48), audio=wav) as w:
    w.write(frames[:6])
    w.write(frames[6:])
  info = video.probe(str(path))
  assert info["frames"] == 10 and info["fps"] == 25
  # AAC pads the end of the stream to whole 1024-sample frames.
  assert 0.4 <= info["audio_duration"] <= 0.4 + video.AAC_FRAME_S
  assert sorted(os.listdir(tmp_path)) == ["clip.mp4"]  # no temporary left
  silent = tmp_path / "silent.mp4"
  with video.Mp4Writer(str(silent), 25, (32, 48)) as w:
    w.write(frames)
  assert video.probe(str(silent))["audio_duration"] is None


def test_an_interrupted_mp4_leaves_nothing(tmp_path):
  path = tmp_path / "clip.mp4"
  with pytest.raises(RuntimeError):
    with video.Mp4Writer(str(path), 25, (32, 48)) as w:
      w.write(np.zeros((3, 32, 48, 3), np.uint8))
      raise RuntimeError("stop")
  assert os.listdir(tmp_path) == []
  with pytest.raises(ValueError, match="even"):
    video.Mp4Writer(str(path), 25, (31, 48))
  with pytest.raises(DataError, match="not a readable video"):
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    video.probe(str(tmp_path / "bad.mp4"))


def test_a_bfm_file_renders_through_its_own_triangles(tmp_path):
  """A stand-in BFM_model_front.mat (the real one cannot ship): a grid
  'face' with the file's keys, 1-based keypoints and triangles."""
  import scipy.io

  n = 20
  ys, xs = np.mgrid[:n, :n]
  mean = np.stack([xs - n / 2, ys - n / 2, np.zeros_like(xs)], -1) * 0.075
  quads = [
    (y * n + x, y * n + x + 1, (y + 1) * n + x)
    for y in range(n - 1)
    for x in range(n - 1)
  ]
  quads += [
    (y * n + x + 1, (y + 1) * n + x + 1, (y + 1) * n + x)
    for y in range(n - 1)
    for x in range(n - 1)
  ]
  rng = np.random.default_rng(0)
  path = tmp_path / "BFM_model_front.mat"
  scipy.io.savemat(
    path,
    {
      "meanshape": mean.reshape(1, -1),
      "idBase": 1e-3 * rng.normal(size=(3 * n * n, 80)),
      "exBase": 1e-3 * rng.normal(size=(3 * n * n, 64)),
      "keypoints": np.arange(1, 69).reshape(1, -1),
      "tri": np.asarray(quads) + 1,
    },
  )
  face = face_model.load(str(path))
  renderer = preview.PreviewRenderer(face)
  assert len(renderer.mesh.triangles) == 2 * (n - 1) ** 2
  frame = renderer(_driving(1), identity=np.zeros(80, np.float32))[0]
  covered = frame.max(-1) > 40
  assert 0.05 < covered.mean() < 0.6
  # The square's pixels are all filled: no holes between its triangles.
  ys_, xs_ = np.argwhere(covered).T
  box = covered[ys_.min() + 2 : ys_.max() - 1, xs_.min() + 2 : xs_.max() - 1]
  assert box.all()
