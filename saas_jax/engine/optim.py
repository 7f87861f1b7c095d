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
from collections.abc import Callable
from typing import Any, NamedTuple

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
    warmup, total = max(cfg.warmup_steps, 1), max(total_steps, 2)
    if warmup >= total:
      raise ValueError(
        f"optim.warmup_steps ({cfg.warmup_steps}) must be below the "
        f"number of train steps ({total_steps}) for the cosine schedule: "
        "lower --config.optim.warmup_steps"
      )
    return optax.warmup_cosine_decay_schedule(
      0.0, cfg.lr, warmup, total, end_value=cfg.lr * 0.01
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


class Partitioned(NamedTuple):
  """An optax transformation over params {part: sub-tree}, one inner
  transformation per part, each part also updatable alone
  (train_state.apply_part): a GAN's critics step, then its generator step
  against the updated critics."""

  init: Callable
  update: Callable
  parts: tuple[tuple[str, Any], ...]


def partitioned(parts: dict[str, optax.GradientTransformation]) -> Partitioned:
  items = tuple(parts.items())

  def init(params):
    return {k: tx.init(params[k]) for k, tx in items}

  def update(grads, state, params=None):
    out = {
      k: tx.update(grads[k], state[k], None if params is None else params[k])
      for k, tx in items
    }
    return {k: u for k, (u, _) in out.items()}, {
      k: s for k, (_, s) in out.items()
    }

  return Partitioned(init, update, items)
