"""Pose codebook: the sequence VQ-VAE on 6-d head pose (SAAS stage 4).

  python -m saas_jax.main --config configs/pose_vqvae.py        # paper size
  python -m saas_jax.main --config configs/pose_vqvae.py:cpu    # ~5 min, 2 cores
  python -m saas_jax.main --config configs/pose_vqvae.py:smoke  # seconds (tests)

Paper size follows the official code (pose_encoder.json): the style
codebook's encoder/decoder with 6-d input (3 angles + 3 translations), 32
frames -> 4 tokens, hidden 256, 12 layers, 8 heads, MLP 384, 200 x 256
codebook, beta 0.25, L1 + VQ loss, batch 128, AdamW (0.9, 0.98, 1e-9) under
Noam (factor 2, warmup 100k). 12.91 M parameters.

As in the style stage, the codebook is an EMA codebook with dead-code
restarts initialised from the first batch (model.ema=False: the official
gradient-trained one), tokens are quantized one by one, and the pose is
standardised per channel (see saas_jax.models.pose_codebook).

model.relative (default; False: the official absolute pose) codes the pose
about each clip's mean pose; generated poses move about the source's mean
pose. Measured at cpu size on the default data (1500 steps, held-out
clips): L1 0.0349 -> 0.0241 (angles 0.0338 -> 0.0143 rad), 0.85 -> 0.59 of
the error of each clip's mean pose; and the pose generator trained on it
(README, "Head pose") puts right-style samples closer than wrong-style ones
in 76 % of pairs instead of 50 %.

Nods (benchmarks/pose_floor.py: held-out real poses coded, decoded and
smoothed; onset-locked nod response with the clip's own audio / another
clip's, real poses 1.06 / -0.27): this codebook keeps none (-0.02 /
-0.07), nor does it with loss.w_velocity 1 or 4 (0.09 / -0.14, 0.06 /
-0.13) or velocity inputs (velocity_scale 4: -0.04 / -0.11). model.factor
2 (32 frames -> 8 tokens of 4 frames; official 3: 4 of 8) keeps them (0.35
/ -0.06), with L1 0.0204 and smoothed style distance 1.72 (1.98 at factor
3; real 1.33); the cpu pose generator on it does not make them yet (README,
"Head pose"), so the official 3 stays the default.
"""

import ml_collections

from saas_jax.engine import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = config_lib.base("pose_vqvae")
  c.model = ml_collections.ConfigDict(
    dict(
      hidden=256,
      layers=12,
      heads=8,
      mlp_dim=384,
      num_codes=200,
      beta=0.25,
      ema=True,  # False: the official gradient-trained codebook
      restart_dead=True,
      grouping="token",  # "channel_major": the official layout (weights)
      attn_scale="head",  # "hidden": the official 1/sqrt(256)
      dropout=0.0,  # transformer dropout (the official model has none)
      relative=True,  # pose about the clip's mean pose (False: official)
      velocity_scale=0.0,  # > 0: the encoder also reads frame velocities
      factor=3,  # 32 frames -> 32 / 2**factor tokens
    )
  )
  # L1 + w_velocity x L1 of the frame-to-frame differences (official: 0).
  c.loss = ml_collections.ConfigDict(dict(w_velocity=0.0))
  # 64-frame pose windows, each cut into two 32-frame windows: 128 windows.
  c.data.batch_size = 64
  if arg == "cpu":
    c.model.update(hidden=128, layers=2, heads=4, mlp_dim=256)
    c.data.batch_size = 32
    c.num_train_steps = 1500
    c.eval_every = 1500
    c.optim.update(schedule="cosine", lr=1e-3, warmup_steps=100)
    c.ckpt.every = 500
    c.log.every = 100
  elif arg == "smoke":
    c.model.update(hidden=32, layers=1, heads=2, mlp_dim=64, num_codes=16)
    c.optim.update(schedule="constant", lr=1e-3)
    config_lib.smoke(c)
  elif arg:
    raise ValueError(f"unknown variant '{arg}' (cpu, smoke, or none)")
  return c
