"""Critics over expression sequences: temporal PatchGAN, style classifier,
and the conditional style discriminator.

Both are 1-D PatchGANs over time (pix2pix's n_layers=3 discriminator):
Conv(k4, s2) -> LReLU; 2 x [Conv(k4, s2) -> InstanceNorm -> LReLU];
Conv(k4, s1) -> IN -> LReLU; Conv(k4, s1) -> out, with padding 2, channels
64 -> 64 -> 128 -> 256 -> 512 -> out. 32 frames give 7 patches.
The style classifier is the official StyleDiscriminator: out = classes,
averaged over the patches; the temporal critic has out = 1.
"""

import flax.linen as nn
import jax
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


class ConditionalStyleCritic(nn.Module):
  """Does this window move like style `label`? (official Style_Discriminator2)

  Conv1d k3 64 -> 42 -> 28 -> 18 -> 12 (LReLU) and a Dense to 16 features
  per frame; the one-hot label goes through an MLP (classes -> 64 -> 64)
  that gives a softmax attention over the window's frames and a weight per
  feature; the score is the attended, weighted sum. 106 k parameters at
  1323 classes and 32 frames. The official code gives the layer sizes only;
  how the two attentions combine is this module's reading of them.
  """

  num_classes: int
  window: int = 32
  channels: tuple[int, ...] = (42, 28, 18, 12)
  features: int = 16

  @nn.compact
  def __call__(self, exp, label):  # [B, T, 64], [B] -> [B]
    if exp.shape[1] != self.window:
      raise ValueError(f"expects {self.window}-frame windows, got {exp.shape}")
    h = exp
    for c in self.channels:
      h = nn.leaky_relu(nn.Conv(c, (3,), padding=1)(h), 0.2)
    h = nn.Dense(self.features, name="features")(h)  # [B, T, F]
    cond = jax.nn.one_hot(label, self.num_classes)
    for i in range(2):
      cond = nn.relu(nn.Dense(64, name=f"cond{i}")(cond))
    temporal = jax.nn.softmax(nn.Dense(self.window, name="temporal")(cond))
    weights = nn.Dense(self.features, name="feature_weights")(cond)
    return jnp.einsum("bt,btf,bf->b", temporal, h, weights)
