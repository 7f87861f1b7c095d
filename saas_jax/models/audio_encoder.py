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
import jax.numpy as jnp

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
