"""PIRender's face generator in Flax, and a Renderer that runs it.

SAAS, StyleTalk and DreamTalk all turn 3DMM coefficients into photoreal
frames with PIRender's FaceGenerator (Ren et al., ICCV 2021). It reads one
source portrait and, per output frame, a 27-frame window of driving
coefficients (exp 64 + angles 3 + trans 3 + crop 3):

  mapping net   window [27, 73] -> descriptor z [256]   (dilated 1-D convs)
  warping net   AdaIN(z) hourglass on the portrait -> flow [64, 64, 2]
                -> the portrait resampled along it ("warp_image")
  editing net   [portrait, warp] -> encoder -> AdaIN(z) decoder -> tanh
                ("fake_image")

Layout is NHWC; the numerics follow the PyTorch module so that its weights
(converted by `python -m saas_jax.convert pirender`) give the same frames:
bilinear flow upsampling and grid sampling with PyTorch's defaults
(align_corners=False, zero padding), LayerNorm over (H, W, C) jointly.

  renderer = Renderer.load("weights/pirender")
  out = renderer.forward(image, driving)   # [B,256,256,3], [B,27,73] -> dict
  frames = renderer.render(portrait_uint8, coeffs)   # [T, 73] -> [T,256,256,3]
"""

import dataclasses
import json
import os
from collections.abc import Iterator

import flax.linen as nn
import flax.traverse_util
import jax
import jax.numpy as jnp
import numpy as np

from saas_jax.errors import DataError, check_frames

SIZE = 256  # the portrait and frames the official weights were trained on
DRIVING_DIM = 73  # exp 64 + angles 3 + trans 3 + crop 3
RADIUS = 13  # semantic radius: a window of 2 * 13 + 1 frames per output frame
WINDOW = 2 * RADIUS + 1
FORMAT = 1  # of renderer.json
_SLOPE = 0.1  # every LeakyReLU of PIRender
_EPS = 1e-5


def _lrelu(x):
  return nn.leaky_relu(x, _SLOPE)


def _conv(features, kernel, stride=1, pad=None, name=None):
  pad = kernel // 2 if pad is None else pad
  return nn.Conv(
    features, (kernel, kernel), (stride, stride), padding=pad, name=name
  )


class LayerNorm2d(nn.Module):
  """Normalised over (H, W, C) of each image, a scale and bias per channel."""

  @nn.compact
  def __call__(self, x):  # [B, H, W, C]
    c = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (c,))
    bias = self.param("bias", nn.initializers.zeros, (c,))
    mean = x.mean((1, 2, 3), keepdims=True)
    var = jnp.square(x - mean).mean((1, 2, 3), keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + _EPS) * scale + bias


class AdaIN(nn.Module):
  """Instance norm (no affine), then x * (1 + gamma(z)) + beta(z)."""

  hidden: int = 128

  @nn.compact
  def __call__(self, x, z):  # [B, H, W, C], [B, D]
    c = x.shape[-1]
    mean = x.mean((1, 2), keepdims=True)
    var = jnp.square(x - mean).mean((1, 2), keepdims=True)
    norm = (x - mean) * jax.lax.rsqrt(var + _EPS)
    h = nn.relu(nn.Dense(self.hidden, name="shared")(z))
    gamma = nn.Dense(c, name="gamma")(h)[:, None, None]
    beta = nn.Dense(c, name="beta")(h)[:, None, None]
    return norm * (1 + gamma) + beta


class MappingNet(nn.Module):
  """[B, 27, 73] driving window -> [B, 256] descriptor."""

  features: int = 256
  layers: int = 3

  @nn.compact
  def __call__(self, driving):
    x = nn.Conv(self.features, (7,), padding="VALID", name="first")(driving)
    for i in range(self.layers):  # 21 -> 15 -> 9 -> 3 frames
      h = nn.Conv(
        self.features,
        (3,),
        padding="VALID",
        kernel_dilation=(3,),
        name=f"encoder{i}",
      )(_lrelu(x))
      x = h + x[:, 3:-3]
    return x.mean(1)


class EncoderBlock(nn.Module):
  """AdaIN-LReLU-conv(k4, s2), AdaIN-LReLU-conv(k3): halves the size."""

  features: int

  @nn.compact
  def __call__(self, x, z):
    x = _conv(self.features, 4, 2, 1, "conv_0")(
      _lrelu(AdaIN(name="norm_0")(x, z))
    )
    return _conv(self.features, 3, 1, 1, "conv_1")(
      _lrelu(AdaIN(name="norm_1")(x, z))
    )


def _up_conv(features, name):
  # PyTorch ConvTranspose2d(k3, s2, p1, output_padding 1): doubles the size.
  return nn.ConvTranspose(
    features,
    (3, 3),
    (2, 2),
    padding=((1, 2), (1, 2)),
    transpose_kernel=True,
    name=name,
  )


class DecoderBlock(nn.Module):
  """Doubles the size: a transposed-conv shortcut plus conv -> transposed
  conv, each after AdaIN and LReLU."""

  features: int
  hidden: int

  @nn.compact
  def __call__(self, x, z):
    shortcut = _up_conv(self.features, "conv_s")(
      _lrelu(AdaIN(name="norm_s")(x, z))
    )
    h = _conv(self.hidden, 3, 1, 1, "conv_0")(
      _lrelu(AdaIN(name="norm_0")(x, z))
    )
    h = _up_conv(self.features, "conv_1")(_lrelu(AdaIN(name="norm_1")(h, z)))
    return shortcut + h


def _channels(base, i, cap):
  return min(base * 2**i, cap)


class WarpingNet(nn.Module):
  """AdaIN hourglass over the portrait -> flow at 1/4 size -> warped image."""

  base: int = 32
  max_channels: int = 256
  encoder_layers: int = 5
  decoder_layers: int = 3

  @nn.compact
  def __call__(self, image, z):  # [B, H, W, 3], [B, D]
    x = _conv(self.base, 7, name="input_layer")(image)
    skips = [x]
    for i in range(self.encoder_layers):
      x = EncoderBlock(
        _channels(self.base, i + 1, self.max_channels), name=f"encoder{i}"
      )(x, z)
      skips.append(x)
    x = skips.pop()
    first = self.encoder_layers - self.decoder_layers
    for i in reversed(range(first, self.encoder_layers)):
      c = _channels(self.base, i, self.max_channels)
      x = DecoderBlock(c, c, name=f"decoder{i}")(x, z)
      x = jnp.concatenate([x, skips.pop()], -1)
    flow = _conv(2, 7, name="flow_conv")(
      _lrelu(LayerNorm2d(name="flow_norm")(x))
    )
    return flow, warp(image, flow)  # [B, h, w, 2] in pixels of the flow grid


class EditingNet(nn.Module):
  """[portrait, warped] -> refined frame (tanh)."""

  base: int = 64
  max_channels: int = 256
  layers: int = 3
  res_blocks: int = 2

  @nn.compact
  def __call__(self, image, warped, z):
    def block(x, c, name):  # conv k3 -> LayerNorm -> LReLU
      return _lrelu(LayerNorm2d(name=f"{name}_norm")(_conv(c, 3, name=name)(x)))

    x = jnp.concatenate([image, warped], -1)
    x = _lrelu(
      LayerNorm2d(name="first_norm")(_conv(self.base, 7, name="first")(x))
    )
    skips = [x]
    for i in range(self.layers):
      x = block(x, _channels(self.base, i + 1, self.max_channels), f"down{i}")
      x = nn.avg_pool(x, (2, 2), (2, 2))
      skips.append(x)
    x = skips.pop()
    for i in reversed(range(self.layers)):
      for r in range(self.res_blocks):
        # PIRender's FineADAINResBlock2d: x + AdaIN(conv2(x)). (Its conv1
        # branch is computed and then overwritten, so it has no effect.)
        h = _conv(x.shape[-1], 3, name=f"res{i}_{r}_conv")(x)
        x = x + AdaIN(name=f"res{i}_{r}_norm")(h, z)
      c = _channels(self.base, i, self.max_channels)
      x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)  # nearest x2
      x = block(x, c, f"up{i}") + block(skips.pop(), c, f"jump{i}")
    return jnp.tanh(_conv(3, 7, name="final")(x))


class FaceGenerator(nn.Module):
  """PIRender's generator at its published size (22.52 M parameters in
  its checkpoint, 19.34 M here: the 3.18 M of its residual blocks' dead
  conv1/norm1 are not built)."""

  descriptor: int = 256
  mapping_layers: int = 3
  warp_base: int = 32
  warp_encoder_layers: int = 5
  warp_decoder_layers: int = 3
  edit_base: int = 64
  edit_layers: int = 3
  res_blocks: int = 2
  max_channels: int = 256

  @nn.compact
  def __call__(self, image, driving):
    # image [B, H, W, 3] in [-1, 1]; driving [B, 27, 73]
    z = MappingNet(self.descriptor, self.mapping_layers, name="mapping")(
      driving
    )
    flow, warped = WarpingNet(
      self.warp_base,
      self.max_channels,
      self.warp_encoder_layers,
      self.warp_decoder_layers,
      name="warping",
    )(image, z)
    fake = EditingNet(
      self.edit_base,
      self.max_channels,
      self.edit_layers,
      self.res_blocks,
      name="editing",
    )(image, warped, z)
    return {"flow_field": flow, "warp_image": warped, "fake_image": fake}


# ------------------------------------------------------------- warping ---


def _resize_axis(x, axis: int, size: int):
  """Bilinear resize of one axis as PyTorch's interpolate with
  align_corners=False: source = (i + 0.5) * in / out - 0.5, clamped at 0."""
  n = x.shape[axis]
  src = (jnp.arange(size) + 0.5) * (n / size) - 0.5
  src = jnp.maximum(src, 0.0)
  lo = jnp.minimum(jnp.floor(src).astype(jnp.int32), n - 1)
  hi = jnp.minimum(lo + 1, n - 1)
  w = (src - lo).astype(x.dtype)
  shape = [1] * x.ndim
  shape[axis] = size
  w = w.reshape(shape)
  return jnp.take(x, lo, axis) * (1 - w) + jnp.take(x, hi, axis) * w


def grid_sample(image, grid):
  """PyTorch's grid_sample(bilinear, zeros, align_corners=False) in NHWC.

  image [B, H, W, C]; grid [B, h, w, 2] of (x, y) in [-1, 1] -> [B, h, w, C].
  """
  b, hgt, wid, c = image.shape
  ix = ((grid[..., 0] + 1) * wid - 1) / 2
  iy = ((grid[..., 1] + 1) * hgt - 1) / 2
  x0, y0 = jnp.floor(ix), jnp.floor(iy)
  flat = image.reshape(b, hgt * wid, c)
  out = 0.0
  for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
    xs, ys = x0 + dx, y0 + dy
    weight = (1 - jnp.abs(ix - xs)) * (1 - jnp.abs(iy - ys))  # [B, h, w]
    inside = (xs >= 0) & (xs <= wid - 1) & (ys >= 0) & (ys <= hgt - 1)
    idx = jnp.clip(ys, 0, hgt - 1) * wid + jnp.clip(xs, 0, wid - 1)
    idx = idx.astype(jnp.int32).reshape(b, -1, 1)
    values = jnp.take_along_axis(flat, idx, axis=1).reshape(*ix.shape, c)
    out = out + values * jnp.where(inside, weight, 0.0)[..., None]
  return out


def warp(image, flow):
  """Resample `image` [B, H, W, C] along `flow` [B, h, w, 2] (pixels of the
  flow's own grid, x first): the flow becomes a sampling grid in [-1, 1]
  (corner-aligned), is upsampled to H x W, and sampled as PyTorch does."""
  _, h, w, _ = flow.shape
  base_x = 2 * jnp.arange(w) / (w - 1) - 1
  base_y = 2 * jnp.arange(h) / (h - 1) - 1
  grid = jnp.stack(
    [
      base_x[None, None, :] + 2 * flow[..., 0] / (w - 1),
      base_y[None, :, None] + 2 * flow[..., 1] / (h - 1),
    ],
    -1,
  )  # [B, h, w, 2]
  hgt, wid = image.shape[1:3]
  if (h, w) != (hgt, wid):
    grid = _resize_axis(_resize_axis(grid, 1, hgt), 2, wid)
  return grid_sample(image, grid)


# ------------------------------------------------------------ windows ---


def driving_windows(coeffs: np.ndarray) -> np.ndarray:
  """[T, 73] -> [T, 27, 73]: each frame's window of radius 13, indices
  clamped to the clip (the official renderers' edge padding)."""
  t = len(coeffs)
  idx = np.arange(t)[:, None] + np.arange(-RADIUS, RADIUS + 1)[None]
  return coeffs[np.clip(idx, 0, t - 1)]


def to_unit(image_uint8: np.ndarray) -> np.ndarray:
  return image_uint8.astype(np.float32) / 127.5 - 1.0


def to_uint8(x) -> np.ndarray:
  x = (np.asarray(x, np.float32) + 1.0) * 127.5
  return np.clip(np.round(x), 0, 255).astype(np.uint8)


# ----------------------------------------------------------- renderer ---


@dataclasses.dataclass(frozen=True)
class Spec:
  """renderer.json: what the weights are and where they came from."""

  model: dict  # FaceGenerator fields
  source: dict  # provenance: converter, file, sha256, keys
  parameters: int


def check_image(what: str, image) -> np.ndarray:
  """A [256, 256, 3] uint8 portrait, or a DataError naming `what`."""
  image = np.asarray(image)
  if image.shape != (SIZE, SIZE, 3) or image.dtype != np.uint8:
    raise DataError(
      what,
      f"the renderer needs a {SIZE}x{SIZE} RGB uint8 portrait (a face crop "
      f"as Deep3DFaceRecon aligns it), got {image.dtype} "
      f"{list(image.shape)}",
    )
  return image


def read_portrait(path: str) -> np.ndarray:
  """An image file -> uint8 [256, 256, 3]. A square image of another size
  is resized (with a warning); anything else is refused: the renderer
  needs the face crop its weights were trained on."""
  import warnings

  import mediapy

  if not os.path.isfile(path):
    raise DataError(path, "no such file")
  try:
    image = np.asarray(mediapy.read_image(path))
  except Exception as e:  # PIL names its BytesIO, not the file
    why = str(e).split(" <_io.")[0].rstrip(":; ")
    raise DataError(path, f"not a readable image ({why})") from None
  if image.ndim == 2:
    image = np.repeat(image[..., None], 3, -1)
  if image.ndim != 3 or image.shape[-1] not in (3, 4):
    raise DataError(path, f"expected an RGB image, got shape {image.shape}")
  image = image[..., :3]
  if image.dtype != np.uint8:
    image = mediapy.to_uint8(image)
  h, w = image.shape[:2]
  if h != w:
    raise DataError(
      path,
      f"the portrait is {w}x{h}; the renderer needs a square {SIZE}x{SIZE} "
      "face crop (as Deep3DFaceRecon / the official crop_image.py make)",
    )
  if h != SIZE:
    warnings.warn(
      f"{path}: {w}x{h} portrait resized to {SIZE}x{SIZE}", stacklevel=2
    )
    image = mediapy.resize_image(image, (SIZE, SIZE))
  return check_image(path, image)


class Renderer:
  """A FaceGenerator with its weights, jitted per batch size.

  `batch` frames run per call (the last batch is padded to it, so one
  shape compiles once); memory is bounded by the batch, not by T.
  """

  def __init__(
    self,
    params: dict,
    model: FaceGenerator | None = None,
    batch: int = 8,
    spec: Spec | None = None,
  ):
    self.model = model or FaceGenerator()
    self.params = jax.device_put(params)
    self.batch = batch
    self.spec = spec
    self._forward = jax.jit(
      lambda p, image, driving: self.model.apply({"params": p}, image, driving)
    )

    def frames(p, image, driving):  # [256,256,3] f32, [B,27,73] -> uint8
      b = driving.shape[0]
      images = jnp.broadcast_to(image, (b, *image.shape))
      fake = self.model.apply({"params": p}, images, driving)["fake_image"]
      return jnp.clip(jnp.round((fake + 1) * 127.5), 0, 255).astype(jnp.uint8)

    self._frames = jax.jit(frames)

  @classmethod
  def load(cls, directory: str, batch: int = 8) -> "Renderer":
    """From a folder written by `python -m saas_jax.convert pirender`."""
    directory = os.fspath(directory)
    meta_path = os.path.join(directory, "renderer.json")
    if not os.path.isfile(meta_path):
      raise DataError(
        directory,
        "not a converted PIRender folder (no renderer.json); make one with: "
        "python -m saas_jax.convert pirender --checkpoint FILE --out "
        f"{directory}",
      )
    with open(meta_path) as f:
      meta = json.load(f)
    if meta.get("format") != FORMAT or meta.get("kind") != "pirender":
      raise DataError(meta_path, f"not a PIRender renderer.json: {meta}")
    spec = Spec(meta["model"], meta["source"], meta["parameters"])
    model = FaceGenerator(**spec.model)
    with np.load(os.path.join(directory, "params.npz")) as npz:
      flat = {k: npz[k] for k in npz.files}
    params = flax.traverse_util.unflatten_dict(flat, sep="/")
    _check_params(params, model, directory)
    return cls(params, model, batch, spec)

  def save(self, directory: str) -> None:
    """params.npz + renderer.json, written into `directory` (new)."""
    os.makedirs(directory, exist_ok=True)
    flat = flax.traverse_util.flatten_dict(self.params, sep="/")
    np.savez(
      os.path.join(directory, "params.npz"),
      **{k: np.asarray(v) for k, v in flat.items()},
    )
    spec = self.spec or Spec(
      hyperparameters(self.model), {}, count(self.params)
    )
    meta = {"format": FORMAT, "kind": "pirender", **dataclasses.asdict(spec)}
    with open(os.path.join(directory, "renderer.json"), "w") as f:
      json.dump(meta, f, indent=2)

  def forward(self, image, driving) -> dict:
    """image [B, 256, 256, 3] in [-1, 1], driving [B, 27, 73] ->
    {"warp_image", "fake_image"} [B, 256, 256, 3] in [-1, 1] (and the
    "flow_field" [B, 64, 64, 2])."""
    image = jnp.asarray(image, jnp.float32)
    driving = jnp.asarray(driving, jnp.float32)
    if image.ndim != 4 or image.shape[-1] != 3:
      raise DataError("image", f"expected [B, H, W, 3], got {image.shape}")
    if driving.shape[1:] != (WINDOW, DRIVING_DIM):
      raise DataError(
        "driving",
        f"expected [B, {WINDOW}, {DRIVING_DIM}], got {list(driving.shape)}",
      )
    return self._forward(self.params, image, driving)

  def frames(self, image_uint8, coeffs) -> Iterator[np.ndarray]:
    """Batches of uint8 [<= batch, 256, 256, 3] frames, one per row of
    `coeffs` [T, 73]; memory bounded by the batch for any T."""
    image = jnp.asarray(to_unit(check_image("portrait", image_uint8)))
    coeffs = check_frames("driving coefficients", coeffs, DRIVING_DIM)
    windows = driving_windows(coeffs)  # [T, 27, 73]
    t = len(windows)
    for start in range(0, t, self.batch):
      part = windows[start : start + self.batch]
      n = len(part)
      if n < self.batch:  # one compiled shape
        part = np.concatenate([part, np.repeat(part[-1:], self.batch - n, 0)])
      yield np.asarray(self._frames(self.params, image, part))[:n]

  def render(self, image_uint8, coeffs) -> np.ndarray:
    """[256, 256, 3] uint8 portrait, [T, 73] coefficients -> uint8
    [T, 256, 256, 3]. For long clips prefer `frames` (bounded memory)."""
    return np.concatenate(list(self.frames(image_uint8, coeffs)))


def hyperparameters(model: FaceGenerator) -> dict:
  return {
    f.name: getattr(model, f.name)
    for f in dataclasses.fields(FaceGenerator)
    if f.name not in ("parent", "name")
  }


def count(params) -> int:
  return int(sum(np.size(v) for v in jax.tree.leaves(params)))


def abstract_params(model: FaceGenerator) -> dict:
  """The parameter shapes of `model`, without computing anything."""
  return jax.eval_shape(
    lambda: model.init(
      jax.random.key(0),
      jnp.zeros((1, SIZE, SIZE, 3)),
      jnp.zeros((1, WINDOW, DRIVING_DIM)),
    )
  )["params"]


def _check_params(params, model, where):
  from saas_jax.convert import tensors

  tensors.check_tree(params, abstract_params(model), where)
