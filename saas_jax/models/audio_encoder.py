"""Content encoders: audio (E_a) and video (E_v) -> per-frame content z.

E_a (audio-driven) is SadTalker's Audio2Exp front end followed by the video
encoder's MLP, as the official code assembles it:

  mel window [80, 16] -> Wav2Lip audio CNN -> 512
    ++ source reference expression (64) ++ blink ratio (1)
    -> Dense 64                                        ("audio expression")
    ++ source style code s_src -> MLP 160 -> 80 -> 64  (= E_v)  -> z

E_v (video-driven) is the MLP alone over the source expression.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

# Wav2Lip's audio encoder: (features, stride, padding, residual) per block.
# 80 x 16 -> 27 x 16 -> 9 x 6 -> 3 x 3 -> 1 x 1.
MEL_CNN = (
  (32, (1, 1), 1, False),
  (32, (1, 1), 1, True),
  (32, (1, 1), 1, True),
  (64, (3, 1), 1, False),
  (64, (1, 1), 1, True),
  (64, (1, 1), 1, True),
  (128, (3, 3), 1, False),
  (128, (1, 1), 1, True),
  (128, (1, 1), 1, True),
  (256, (3, 2), 1, False),
  (256, (1, 1), 1, True),
  (512, (1, 1), 0, False),
)


_NHWC = ("NHWC", "HWIO", "NHWC")
# Most bytes of im2col patches per piece of a kernel gradient (_conv_bwd).
GRAD_PIECE_BYTES = 256 * 2**20


def _lax_conv(x, w, strides, padding):  # [N, H, W, C], [kh, kw, C, O]
  return lax.conv_general_dilated(
    x, w, strides, padding, dimension_numbers=_NHWC
  )


_conv = jax.custom_vjp(_lax_conv, nondiff_argnums=(2, 3))


def _conv_fwd(x, w, strides, padding):
  return _conv(x, w, strides, padding), (x, w)


def _kernel_grad(x, g, kernel, strides, padding):
  """[N, H, W, C] inputs, [N, OH, OW, O] output gradient -> the kernel's
  gradient [kh, kw, C, O], as one matrix product over im2col patches."""
  kh, kw = kernel
  sh, sw = strides
  n, oh, ow, o = g.shape
  xp = jnp.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
  patches = jnp.stack(  # [N, OH, OW, kh * kw, C]
    [
      xp[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw]
      for i in range(kh)
      for j in range(kw)
    ],
    3,
  )
  dw = patches.reshape(n * oh * ow, -1).T @ g.reshape(-1, o)
  return dw.reshape(kh, kw, x.shape[-1], o)


def _conv_bwd(strides, padding, res, g):
  """The kernel's gradient as matrix products over im2col patches, summed
  over pieces of the batch.

  XLA:CPU computes it as a convolution over activations transposed to
  [C, H, W, N], recomputing the BatchNorm/ReLU chain inside the transpose:
  that was two thirds of this CNN's backward pass. Written as patches^T @ g
  the CNN's forward + backward on 1024 windows took 11.7 s against 17.2 s
  (2-core CPU, gradients equal to 3e-5). The patches are 9x the layer's
  input, and XLA:CPU maps its scratch afresh on every call, so the batch is
  taken in pieces of at most GRAD_PIECE_BYTES of patches, a loop reusing
  one piece's buffers: at paper size, batch 32 x 32 frames, the
  generator's forward + backward went from 8.6 to 4.1 GiB of scratch and
  from 18.7 s to 8.9 s a pass, the kernel's time over its compile and four
  passes from 60 s to 12 s (2-core CPU, one sitting; pieces of 128 or 256
  windows took the same time). Smaller batches stay in one piece, and so
  does every batch on GPU and TPU, whose allocators keep their memory. The
  input's gradient stays XLA's."""
  x, w = res
  kh, kw, c, _ = w.shape
  kernel = (kh, kw)
  n, oh, ow, _ = g.shape
  per_example = oh * ow * kh * kw * c * x.dtype.itemsize  # bytes of patches
  k = min(n, -(-n * per_example // GRAD_PIECE_BYTES))  # pieces
  if jax.default_backend() != "cpu":  # GPU and TPU pool their memory
    k = 1
  if k == 1:
    dw = _kernel_grad(x, g, kernel, strides, padding)
  else:
    size = -(-n // k)

    def split(a):  # [N, ...] -> [k, size, ...]; zero rows add nothing
      a = jnp.pad(a, ((0, k * size - n),) + ((0, 0),) * (a.ndim - 1))
      return a.reshape(k, size, *a.shape[1:])

    def add(dw, xg):
      return dw + _kernel_grad(*xg, kernel, strides, padding), None

    dw, _ = lax.scan(add, jnp.zeros_like(w), (split(x), split(g)))
  _, input_vjp = jax.vjp(lambda x: _lax_conv(x, w, strides, padding), x)
  return input_vjp(g)[0], dw


_conv.defvjp(_conv_fwd, _conv_bwd)


def _conv_for_flax(
  x,
  w,
  strides,
  padding,
  lhs_dilation=None,
  rhs_dilation=None,
  dimension_numbers=None,
  feature_group_count=1,
  precision=None,
):
  """nn.Conv's convolution for the plain case this CNN uses."""
  assert lhs_dilation in (None, (1, 1)) and rhs_dilation in (None, (1, 1))
  assert feature_group_count == 1 and precision is None
  del dimension_numbers  # NHWC / HWIO, as nn.Conv passes it
  return _conv(x, w, tuple(strides), tuple(map(tuple, padding)))


class ConvBNReLU(nn.Module):
  features: int
  kernel: int = 3
  stride: tuple[int, int] = (1, 1)
  padding: int = 1
  residual: bool = False

  @nn.compact
  def __call__(self, x, train: bool):
    h = nn.Conv(
      self.features,
      (self.kernel, self.kernel),
      self.stride,
      padding=self.padding,
      conv_general_dilated=_conv_for_flax,
    )(x)
    h = nn.BatchNorm(use_running_average=not train, momentum=0.9)(h)
    if self.residual:
      h = h + x
    return nn.relu(h)


class MelEncoder(nn.Module):
  """The Wav2Lip audio CNN: one 80 x 16 mel window -> 512 features.

  For CPU runs, width < 1 scales every channel count and residual=False
  drops the 7 residual blocks (most of the cost: they run at the input's
  resolution); the strided blocks remain.
  """

  width: float = 1.0
  residual: bool = True

  @nn.compact
  def __call__(self, mel, train: bool = False):  # [..., 80, 16] -> [..., C]
    lead = mel.shape[:-2]
    h = mel.reshape(-1, *mel.shape[-2:], 1)  # [N, 80, 16, 1]
    for features, stride, padding, residual in MEL_CNN:
      if residual and not self.residual:
        continue
      features = max(1, round(features * self.width))
      h = ConvBNReLU(features, 3, stride, padding, residual)(h, train)
    h = ConvBNReLU(h.shape[-1], 1, (1, 1), 0)(h, train)  # [N, 1, 1, C]
    return h.reshape(*lead, h.shape[-1])


class StyleMLP(nn.Module):
  """[x ++ s_src] -> 160 -> 80 -> 64: E_v, and E_a's second stage."""

  dims: tuple[int, ...] = (160, 80, 64)

  @nn.compact
  def __call__(self, x, s_src):  # [B, T, 64], [B, S] -> [B, T, 64]
    s = jnp.broadcast_to(s_src[:, None], (*x.shape[:2], s_src.shape[-1]))
    h = jnp.concatenate([x, s], -1)
    for i, d in enumerate(self.dims):
      h = nn.Dense(d)(h)
      if i < len(self.dims) - 1:
        h = nn.relu(h)
    return h


class AudioEncoder(nn.Module):
  """E_a: mel windows, reference expression, blinks, s_src -> z."""

  mel_width: float = 1.0
  mel_residual: bool = True

  @nn.compact
  def __call__(self, mel, ref_exp, blink, s_src, train: bool = False):
    # mel [B, T, 80, 16], ref_exp [B, 64], blink [B, T], s_src [B, S]
    b, t = mel.shape[:2]
    mel_encoder = MelEncoder(self.mel_width, self.mel_residual, name="mel")
    audio = mel_encoder(mel, train)  # [B, T, 512]
    ref = jnp.broadcast_to(ref_exp[:, None], (b, t, ref_exp.shape[-1]))
    h = jnp.concatenate([audio, ref, blink[..., None]], -1)  # [B, T, 577]
    audio_exp = nn.Dense(64, name="audio_exp")(h)  # [B, T, 64]
    return StyleMLP(name="mlp")(audio_exp, s_src)


class VideoEncoder(nn.Module):
  """E_v: the source expression and s_src -> z."""

  @nn.compact
  def __call__(self, exp, s_src):  # [B, T, 64], [B, S] -> [B, T, 64]
    return StyleMLP(name="mlp")(exp, s_src)
