"""The pose codebook: the sequence VQ-VAE on 6-d head pose (3 angles + 3
translations), 32 frames -> 4 tokens (one token = 8 frames), 200 codes.

Head pose is two orders of magnitude smaller than its latent (angles of a
few hundredths of a radian), so the model sees it standardised per channel
with the training data's mean and std. Those live in the "pose_norm"
collection, not in the config, so they travel with the checkpoint into the
pose generator, which uses this codebook frozen.
"""

import flax.linen as nn
import jax.numpy as jnp

from saas_jax.models import vqvae

POSE_DIM = 6


class PoseCodebook(nn.Module):
  vq: vqvae.SequenceVQVAE = vqvae.SequenceVQVAE(in_dim=POSE_DIM, num_codes=200)
  mean: tuple = (0.0,) * POSE_DIM  # initial pose_norm (the trainer's data)
  std: tuple = (1.0,) * POSE_DIM

  def setup(self):
    self.pose_mean = self.variable(
      "pose_norm", "mean", lambda: jnp.asarray(self.mean, jnp.float32)
    )
    self.pose_std = self.variable(
      "pose_norm", "std", lambda: jnp.asarray(self.std, jnp.float32)
    )

  def normalize(self, pose):
    return (pose - self.pose_mean.value) / self.pose_std.value

  def denormalize(self, x):
    return x * self.pose_std.value + self.pose_mean.value

  def tokens(self, pose):  # [B, 32, 6] -> [B, 4] int
    z = self.vq.encode(self.normalize(pose), False)
    return self.vq.quantize(z, False)[1]["indices"]

  def decode_tokens(self, idx):  # [B, 4] -> [B, 32, 6]
    return self.denormalize(self.vq.decode_indices(idx, False))

  def __call__(self, pose, train: bool = False):  # [B, 32, 6]
    x = self.normalize(pose)
    recon, _, aux = self.vq(x, train)
    return {
      "recon_norm": recon,  # [B, 32, 6] standardised
      "target_norm": x,
      "recon": self.denormalize(recon),  # [B, 32, 6] pose units
      **aux,
    }
