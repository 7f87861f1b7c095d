"""Style classifier (the frozen critic of the expression stage).

  python -m saas_jax.main --config configs/style_classifier.py        # paper size
  python -m saas_jax.main --config configs/style_classifier.py:cpu    # minutes
  python -m saas_jax.main --config configs/style_classifier.py:smoke  # tests

The official StyleDiscriminator: Conv1d PatchGAN 64 -> 64 -> 128 -> 256 ->
512 -> classes, time-averaged (3.42 M parameters at 1323 classes). Its
training was not released; Adam 2e-4 and batch 256 match the official
discriminators of the expression stage.
"""

import ml_collections

from saas_jax.engine import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = config_lib.base("style_classifier")
  c.optim.update(name="adam", schedule="constant", lr=2e-4, b2=0.999, eps=1e-8)
  c.num_train_steps = 50_000
  if arg == "cpu":
    c.data.batch_size = 32
    c.num_train_steps = 1000
    c.eval_every = 500
    c.optim.lr = 1e-3
    c.ckpt.every = 500
  elif arg == "smoke":
    config_lib.smoke(c)
  elif arg:
    raise ValueError(f"unknown variant '{arg}' (cpu, smoke, or none)")
  return c
