"""Style codebook: the multi-task style VQ-VAE (SAAS stage 1).

  python -m saas_jax.main --config configs/style_vqvae.py        # paper size
  python -m saas_jax.main --config configs/style_vqvae.py:cpu    # ~10 min, 2 cores
  python -m saas_jax.main --config configs/style_vqvae.py:smoke  # seconds (tests)

Paper size follows the official code: hidden 256, 12 layers, 8 heads, MLP
384, 500 codes, batch 256, AdamW (0.9, 0.98, 1e-9) under the Noam schedule
(factor 2, warmup 100k); loss 10 * (L1 + VQ) + 0.01 * CE + 0.01 * triplet.
"""

import ml_collections

from saas_jax.engine import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = config_lib.base("style_vqvae")
  c.model = ml_collections.ConfigDict(
    dict(
      hidden=256,
      layers=12,
      heads=8,
      mlp_dim=384,
      num_codes=500,
      beta=0.25,
      ema=False,
      restart_dead=False,
      grouping="token",  # "channel_major": the official layout (weights)
      attn_scale="head",  # "hidden": the official 1/sqrt(256)
    )
  )
  c.loss = ml_collections.ConfigDict(
    dict(
      w_recon=10.0,
      w_ce=0.01,
      w_triplet=0.01,
      triplet_margin=5.0,
      recon_splits=(50, 53),  # the official three L1 groups; () for one
    )
  )
  if arg == "cpu":
    c.model.update(hidden=128, layers=2, heads=4, mlp_dim=256, num_codes=256)
    c.data.batch_size = 64
    c.num_train_steps = 3000
    c.eval_every = 1000
    c.optim.update(schedule="cosine", lr=1e-3, warmup_steps=200)
    c.ckpt.every = 500
    c.log.every = 100
  elif arg == "smoke":
    c.model.update(hidden=32, layers=1, heads=2, mlp_dim=64, num_codes=16)
    c.data.batch_size = 8
    c.num_train_steps = 4
    c.eval_every = 0
    c.optim.update(schedule="constant", lr=1e-3)
    c.ckpt.update(every=2, async_save=False)
    c.log.update(every=2, tensorboard=False)
  elif arg:
    raise ValueError(f"unknown variant '{arg}' (cpu, smoke, or none)")
  return c
