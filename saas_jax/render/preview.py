"""Preview renderer: 3DMM coefficients -> a filled, shaded face; no weights.

  renderer = PreviewRenderer(face_model.load("mediapipe"))
  frames = renderer(driving)          # [T, 73] -> uint8 [T, 256, 256, 3]
  for batch in renderer.frames(driving): ...   # bounded memory, any T
  write_panels("out.mp4", renderer, [a, b], ["style", "generated"], 25.0,
               audio=wav16k)              # tracks side by side, with sound

driving: per frame exp 64 + angles 3 + trans 3 + crop 3 (the layout the
StyleTalk/PIRender renderers read). The face model's points (render.mesh)
are posed and projected as Deep3DFaceRecon does (face_model.posed and
to_image: head pose, camera, crop into a 256 x 256 frame), lit (Lambert,
one light from the upper left of the camera, per-vertex normals, colours
interpolated across each triangle) (in one jitted JAX function per batch of frames) and filled with a
z-buffered scanline rasterizer compiled by numba, frames in parallel. (A
rasterizer in XLA was tried first: its scatters and gathers on CPU ran the
mediapipe mesh at 40 frames/s; this one is benchmarked in
benchmarks/generate.py.)
"""

import functools

import jax
import jax.numpy as jnp
import numba
import numpy as np

from saas_jax import face_model as face_lib
from saas_jax.render import mesh as mesh_lib

SIZE = 256
BACKGROUND = (0.09, 0.09, 0.11)
AMBIENT, DIFFUSE = 0.35, 0.75
_LIGHT = np.array([-0.35, 0.45, 1.0]) / np.linalg.norm([-0.35, 0.45, 1.0])
DRIVING_DIM = 73  # exp 64 + angles 3 + trans 3 + crop 3


def _shading(points, tri):
  """[V, 3] camera-frame points -> [V] Lambert light at each vertex."""
  p = points[tri]  # [F, 3, 3]
  face_n = jnp.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])  # area-weighted
  vert_n = (
    jnp.zeros_like(points)
    .at[tri.reshape(-1)]
    .add(jnp.repeat(face_n, 3, axis=0))
  )
  vert_n = vert_n / (jnp.linalg.norm(vert_n, axis=-1, keepdims=True) + 1e-12)
  lambert = jnp.clip(vert_n @ jnp.asarray(_LIGHT, jnp.float32), 0.0, 1.0)
  return AMBIENT + DIFFUSE * lambert


def _geometry(face, tri, driving, identity):
  """[B, 73] -> pixels [B, V, 2], depths [B, V], light [B, V]."""
  exp, angles = driving[:, :64], driving[:, 64:67]
  trans, crop = driving[:, 67:70], driving[:, 70:73]
  ident = None
  if identity is not None:
    ident = jnp.broadcast_to(identity, (driving.shape[0], identity.shape[-1]))
  pts = face_lib.posed(face.points(exp, ident), angles, trans)  # [B, V, 3]
  xy = face_lib.to_image(pts, crop) * (SIZE / face_lib.IMAGE_SIZE)
  shade = jax.vmap(_shading, (0, None))(pts, tri)
  return xy, face_lib.CAMERA_DISTANCE - pts[..., 2], shade


@numba.njit(parallel=True, cache=True)
def _raster(xy, depth, shade, tri, albedo, background, out):
  """z-buffered scanline fill of a batch of frames, colours interpolated
  across each triangle; uint8 out [B, H, W, 3] is written in place."""
  num, height, width = out.shape[0], out.shape[1], out.shape[2]
  for b in numba.prange(num):
    zbuf = np.full((height, width), np.inf, np.float32)
    for y in range(height):
      for x in range(width):
        for c in range(3):
          out[b, y, x, c] = background[c]
    for f in range(tri.shape[0]):
      i0, i1, i2 = tri[f, 0], tri[f, 1], tri[f, 2]
      x0, y0, x1, y1 = xy[b, i0, 0], xy[b, i0, 1], xy[b, i1, 0], xy[b, i1, 1]
      x2, y2 = xy[b, i2, 0], xy[b, i2, 1]
      area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
      if area > -1e-6:  # back-facing (clockwise in y-down pixels) or flat
        continue
      inv = 1.0 / area
      lo_x = max(int(np.floor(min(x0, x1, x2))), 0)
      hi_x = min(int(np.ceil(max(x0, x1, x2))), width - 1)
      lo_y = max(int(np.floor(min(y0, y1, y2))), 0)
      hi_y = min(int(np.ceil(max(y0, y1, y2))), height - 1)
      d0, d1, d2 = depth[b, i0], depth[b, i1], depth[b, i2]
      s0, s1, s2 = shade[b, i0], shade[b, i1], shade[b, i2]
      for y in range(lo_y, hi_y + 1):
        cy = y + 0.5
        for x in range(lo_x, hi_x + 1):
          cx = x + 0.5
          w0 = ((x1 - cx) * (y2 - cy) - (x2 - cx) * (y1 - cy)) * inv
          w1 = ((x2 - cx) * (y0 - cy) - (x0 - cx) * (y2 - cy)) * inv
          w2 = 1.0 - w0 - w1
          if w0 < 0 or w1 < 0 or w2 < 0:
            continue
          z = w0 * d0 + w1 * d1 + w2 * d2
          if z >= zbuf[y, x]:
            continue
          zbuf[y, x] = z
          for c in range(3):
            v = (
              w0 * s0 * albedo[f, 0, c]
              + w1 * s1 * albedo[f, 1, c]
              + w2 * s2 * albedo[f, 2, c]
            )
            out[b, y, x, c] = min(max(int(v * 255.0 + 0.5), 0), 255)


class PreviewRenderer:
  """Draws one face model; see the module docstring."""

  def __init__(self, face: face_lib.FaceModel, batch: int = 32):
    self.mesh = mesh_lib.build(face)
    self.batch = batch
    tri = jnp.asarray(self.mesh.triangles, jnp.int32)
    self._geometry = jax.jit(functools.partial(_geometry, face, tri))
    self._tri = self.mesh.triangles.astype(np.int32)
    self._albedo = self.mesh.albedo.astype(np.float32)
    self._background = np.asarray(BACKGROUND, np.float32) * 255.0

  def frames(self, driving, identity=None):
    """Yields uint8 [<= batch, 256, 256, 3] for driving [T, 73]."""
    driving = np.asarray(driving, np.float32)
    if driving.ndim != 2 or driving.shape[1] != DRIVING_DIM:
      raise ValueError(f"driving must be [T, 73], got {driving.shape}")
    ident = None
    if identity is not None and self.mesh.face.id_basis is not None:
      ident = jnp.asarray(identity, jnp.float32)
    for start in range(0, len(driving), self.batch):
      part = driving[start : start + self.batch]
      n = len(part)
      if n < self.batch:  # one shape, one compilation
        part = np.concatenate([part, np.repeat(part[-1:], self.batch - n, 0)])
      xy, depth, shade = (
        np.asarray(a) for a in self._geometry(jnp.asarray(part), ident)
      )
      out = np.empty((n, SIZE, SIZE, 3), np.uint8)
      _raster(
        xy[:n],
        depth[:n],
        shade[:n],
        self._tri,
        self._albedo,
        self._background,
        out,
      )
      yield out

  def __call__(self, driving, identity=None) -> np.ndarray:
    return np.concatenate(list(self.frames(driving, identity)))


# ------------------------------------------------------------ panels ---

CAPTION_HEIGHT = 18


@functools.lru_cache(maxsize=32)
def _text_mask(text: str, width: int) -> np.ndarray:
  from PIL import Image, ImageDraw

  strip = Image.new("L", (width, CAPTION_HEIGHT), 0)
  ImageDraw.Draw(strip).text((6, 3), text, fill=255)
  return np.asarray(strip, np.float32)[..., None] / 255.0  # [h, W, 1]


def caption(frames: np.ndarray, text: str) -> np.ndarray:
  """uint8 [B, H, W, 3] with `text` on a darkened strip along the top (the
  text is drawn once per label)."""
  alpha = _text_mask(text, frames.shape[2])
  out = frames.copy()
  top = out[:, :CAPTION_HEIGHT].astype(np.float32) * 0.45
  out[:, :CAPTION_HEIGHT] = (top * (1 - alpha) + 255.0 * alpha).astype(np.uint8)
  return out


def side_by_side(panels, captions):
  """Batches of several panels (iterators of uint8 [B, H, W, 3] with equal
  batch sizes) -> one wide frame batch each, every panel captioned."""
  for parts in zip(*panels, strict=True):
    yield np.concatenate(
      [caption(p, c) for p, c in zip(parts, captions, strict=True)], axis=2
    )


def write_panels(
  path, renderer, drivings, captions=None, fps=25.0, audio=None, identity=None
) -> None:
  """Driving tracks (each [T, 73], equal T) drawn side by side (captioned
  when captions are given) into one mp4 with the speech (16 kHz mono)."""
  from saas_jax.render import video

  panels = [renderer.frames(d, identity) for d in drivings]
  if captions is None:
    frames = (
      np.concatenate(parts, axis=2) for parts in zip(*panels, strict=True)
    )
  else:
    frames = side_by_side(panels, captions)
  size = (SIZE, SIZE * len(drivings))
  with video.Mp4Writer(path, fps, size, audio=audio) as writer:
    for batch in frames:
      writer.write(batch)
