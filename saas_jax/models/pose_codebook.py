"""The pose codebook: the sequence VQ-VAE on 6-d head pose (3 angles + 3
translations), 32 frames -> 4 tokens (one token = 8 frames), 200 codes.

Head pose is two orders of magnitude smaller than its latent (angles of a
few hundredths of a radian), so the model sees it standardised per channel
with the training data's mean and std. Those live in the "pose_norm"
collection, not in the config, so they travel with the checkpoint into the
pose generator, which uses this codebook frozen.

relative=True codes the motion about the clip's own mean pose (the
`offset` every call takes; decoding without one puts the motion at the
training clips' average head position), standardised by the motion's std.
Head position differs between clips 3-6x more than the head moves within
one, so an absolute code spends most of its 200 entries on where the head
is; measured on the default data it barely beats each clip's mean pose.
"""

import flax.linen as nn
import jax.numpy as jnp

from saas_jax.models import vqvae

POSE_DIM = 6


class PoseCodebook(nn.Module):
  vq: vqvae.SequenceVQVAE = vqvae.SequenceVQVAE(in_dim=POSE_DIM, num_codes=200)
  mean: tuple = (0.0,) * POSE_DIM  # initial pose_norm (the trainer's data)
  std: tuple = (1.0,) * POSE_DIM
  relative: bool = False  # code pose - offset (the clip's mean pose)

  def setup(self):
    self.pose_mean = self.variable(
      "pose_norm", "mean", lambda: jnp.asarray(self.mean, jnp.float32)
    )
    self.pose_std = self.variable(
      "pose_norm", "std", lambda: jnp.asarray(self.std, jnp.float32)
    )

  def _centre(self, offset, encoding: bool):
    """[B, 1, 6] or [6]: what is subtracted before coding."""
    if not self.relative:
      return self.pose_mean.value
    if offset is None:
      if encoding:
        raise ValueError(
          "a relative pose codebook codes pose about the clip's mean pose: "
          "pass offset= (the clip's mean pose, [B, 6])"
        )
      return self.pose_mean.value
    return jnp.asarray(offset)[:, None, :]

  def normalize(self, pose, offset=None):
    return (pose - self._centre(offset, True)) / self.pose_std.value

  def denormalize(self, x, offset=None):
    return x * self.pose_std.value + self._centre(offset, False)

  def tokens(self, pose, offset=None):  # [B, 32, 6], [B, 6] -> [B, 4] int
    z = self.vq.encode(self.normalize(pose, offset), False)
    return self.vq.quantize(z, False)[1]["indices"]

  def decode_tokens(self, idx, offset=None):  # [B, 4], [B, 6] -> [B, 32, 6]
    return self.denormalize(self.vq.decode_indices(idx, False), offset)

  def __call__(self, pose, offset=None, train: bool = False):  # [B, 32, 6]
    x = self.normalize(pose, offset)
    recon, _, aux = self.vq(x, train)
    return {
      "recon_norm": recon,  # [B, 32, 6] standardised
      "target_norm": x,
      "recon": self.denormalize(recon, offset),  # [B, 32, 6] pose units
      **aux,
    }
