"""Optimizers from config: schedules (incl. the reference's Noam), clipping,
freezing of loaded sub-trees.

config.optim fields:
  name          "adamw" | "adam"
  lr            peak learning rate (constant / cosine), or the Noam factor
  schedule      "constant" | "noam" | "cosine"
  warmup_steps  warmup (Noam: the step of the peak)
  d_model       Noam's model width
  b1, b2, eps, weight_decay
  clip_norm     global-norm gradient clipping (0: off)
  freeze        regexes; parameters whose "/"-joined path matches get no
                updates (e.g. a frozen style encoder loaded by init_from)
"""

import re

import flax.traverse_util
import jax.numpy as jnp
import optax


def noam(factor: float, d_model: int, warmup: int):
  """lr = factor * d_model^-0.5 * min(n^-0.5, n * warmup^-1.5), n = step+1."""

  def schedule(step):
    n = jnp.asarray(step, jnp.float32) + 1.0
    return factor * d_model**-0.5 * jnp.minimum(n**-0.5, n * warmup**-1.5)

  return schedule


def schedule_from(cfg, total_steps: int):
  if cfg.schedule == "constant":
    return optax.constant_schedule(cfg.lr)
  if cfg.schedule == "noam":
    return noam(cfg.lr, cfg.d_model, cfg.warmup_steps)
  if cfg.schedule == "cosine":
    return optax.warmup_cosine_decay_schedule(
      0.0,
      cfg.lr,
      max(cfg.warmup_steps, 1),
      max(total_steps, 2),
      end_value=cfg.lr * 0.01,
    )
  raise ValueError(f"unknown schedule '{cfg.schedule}'")


def make_optimizer(cfg, total_steps: int) -> optax.GradientTransformation:
  lr = schedule_from(cfg, total_steps)
  if cfg.name == "adamw":
    opt = optax.adamw(
      lr, cfg.b1, cfg.b2, cfg.eps, weight_decay=cfg.weight_decay
    )
  elif cfg.name == "adam":
    opt = optax.adam(lr, cfg.b1, cfg.b2, cfg.eps)
  else:
    raise ValueError(f"unknown optimizer '{cfg.name}'")
  chain = [optax.clip_by_global_norm(cfg.clip_norm)] if cfg.clip_norm else []
  tx = optax.chain(*chain, opt)
  if cfg.freeze:
    patterns = [re.compile(p) for p in cfg.freeze]

    def labels(params):
      flat = flax.traverse_util.flatten_dict(params, sep="/")
      return flax.traverse_util.unflatten_dict(
        {
          k: "frozen" if any(p.search(k) for p in patterns) else "train"
          for k in flat
        },
        sep="/",
      )

    tx = optax.multi_transform(
      {"train": tx, "frozen": optax.set_to_zero()}, labels
    )
  return tx
