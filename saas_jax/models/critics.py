"""Critics over expression sequences: temporal PatchGAN and style classifier.

Both are 1-D PatchGANs over time (pix2pix's n_layers=3 discriminator):
Conv(k4, s2) -> LReLU; 2 x [Conv(k4, s2) -> InstanceNorm -> LReLU];
Conv(k4, s1) -> IN -> LReLU; Conv(k4, s1) -> out, with padding 2, channels
64 -> 64 -> 128 -> 256 -> 512 -> out. 32 frames give 7 patches.
The style classifier is the official StyleDiscriminator: out = classes,
averaged over the patches; the temporal critic has out = 1.
"""

import flax.linen as nn
import jax.numpy as jnp


class PatchCritic(nn.Module):
  out_dim: int
  channels: tuple[int, ...] = (64, 128, 256, 512)

  @nn.compact
  def __call__(self, x):  # [B, T, C] -> [B, P, out_dim]
    def conv(h, features, stride, name):
      return nn.Conv(features, (4,), (stride,), padding=((2, 2),), name=name)(h)

    h = nn.leaky_relu(conv(x, self.channels[0], 2, "conv0"), 0.2)
    for i, (features, stride) in enumerate(
      zip(self.channels[1:], (2, 2, 1), strict=True), 1
    ):
      h = conv(h, features, stride, f"conv{i}")
      h = nn.GroupNorm(
        num_groups=None,
        group_size=1,
        use_bias=False,
        use_scale=False,
        epsilon=1e-5,
        name=f"norm{i}",
      )(h)
      h = nn.leaky_relu(h, 0.2)
    return conv(h, self.out_dim, 1, "out")


class StyleClassifier(nn.Module):
  num_classes: int

  @nn.compact
  def __call__(self, exp):  # [B, T, 64] -> [B, classes]
    return jnp.mean(PatchCritic(self.num_classes, name="critic")(exp), axis=1)
