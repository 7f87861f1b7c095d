"""Pose codebook stage: the sequence VQ-VAE on head pose (reference §2.6).

Loss = L1(reconstruction, pose) + VQ, on standardised pose (see
models.pose_codebook), over 32-frame windows: each 64-frame window of the
pose batches is cut in two. model.relative: the pose about the clip's mean
pose (batch["pose_offset"]), standardised by the spread about it.
loss.w_velocity adds that weight times the L1 of the frame-to-frame
differences (what a nod is made of: a few mrad within a few frames).

Evaluation on held-out clips (config.data.eval_split), every 32-frame window
(stride 16):
  recon_l1            L1 in pose units (rad / translation units) over all
                      six channels; recon_l1_angles, recon_l1_trans apart.
  recon_rel           the same relative to predicting each clip's mean pose
                      (< 1: better than the mean).
  perplexity, dead_fraction   codebook use over all windows.
"""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from input_pipeline import batches as batches_lib
from saas_jax.engine import data as data_lib
from saas_jax.engine import loop
from saas_jax.engine.train_state import apply_loss
from saas_jax.evaluators import codebook, windows
from saas_jax.models import builders

WINDOW = builders.WINDOW
POSE_DIM = builders.POSE_DIM


def loss_fn(params, extra, batch, rng, *, apply_fn, cfg):
  pose = batch["pose"]  # [B, 64, 6]
  x = pose.reshape(-1, WINDOW, POSE_DIM)  # [2B, 32, 6]
  offset = jnp.repeat(batch["pose_offset"], pose.shape[1] // WINDOW, 0)
  out, updates = apply_fn(
    {"params": params, **extra},
    x,
    offset,  # [2B, 6]; unused by an absolute codebook
    train=True,
    mutable=[k for k in extra if k != "pose_norm"],
    rngs={"vq": rng, "dropout": jax.random.fold_in(rng, 1)},  # model.dropout
  )
  err = out["recon_norm"] - out["target_norm"]  # [2B, 32, 6]
  l1 = jnp.mean(jnp.abs(err))
  velocity = jnp.mean(jnp.abs(jnp.diff(err, axis=1)))
  loss = l1 + cfg.w_velocity * velocity + out["vq_loss"]
  metrics = {
    "l1": l1,
    "velocity_l1": velocity,
    "vq": out["vq_loss"],
    "l1_pose_units": jnp.mean(jnp.abs(out["recon"] - x)),
    "perplexity": out["perplexity"],
    "dead_fraction": out["dead_fraction"],
  }
  return loss, (metrics, {**extra, **updates})


def train_step(state, batch, rng):
  fn = functools.partial(loss_fn, apply_fn=state.apply_fn, cfg=state.cfg)
  return apply_loss(state, batch, rng, fn)


# ---------------------------------------------------------- evaluation ---


def _forward(variables, x, *, apply_fn):
  out = apply_fn(variables, x["pose"], x["offset"], train=False)
  return {"recon": out["recon"], "indices": out["indices"]}


def evaluate_table(state, mesh, table, num_codes, batch_size=256) -> dict:
  clips = windows.table_clips(table, "pose")
  w = windows.Windows.of(clips)
  fn = functools.partial(_forward, apply_fn=state.apply_fn)
  variables = {"params": state.params, **state.extra}
  clip_mean = np.stack([clips[c].mean(0) for c in w.owner])  # [W, 6]
  out = windows.batched_apply(
    fn, variables, {"pose": w.x, "offset": clip_mean}, mesh, batch_size
  )
  err = np.abs(out["recon"] - w.x)  # [W, 32, 6]
  base = np.abs(w.x - clip_mean[:, None]).mean()
  return {
    "recon_l1": float(err.mean()),
    "recon_l1_angles": float(err[..., :3].mean()),
    "recon_l1_trans": float(err[..., 3:].mean()),
    "recon_rel": float(err.mean() / base),
    **codebook.health(out["indices"], num_codes),
  }


# ------------------------------------------------------------- wiring ---


def pose_batches(config, inputs):
  """Pose windows only (the pose stage needs no audio on the device)."""
  make = data_lib.batch_iterator(batches_lib.pose_windows, config, inputs)
  keys = ("pose", "pose_offset")
  return lambda start, n: ({k: b[k] for k in keys} for b in make(start, n))


def pose_norm(table, relative: bool):
  """(mean [6], std [6]) that standardise the codebook's input: of the
  pose, or (relative) the mean of the clips' mean poses and the spread
  about each clip's own mean."""
  clips = windows.table_clips(table, "pose")
  means = np.stack([c.mean(0) for c in clips])
  if not relative:
    pose = np.concatenate(clips)
    return pose.mean(0), pose.std(0) + 1e-6
  motion = np.concatenate([c - m for c, m in zip(clips, means, strict=True)])
  return means.mean(0), motion.std(0) + 1e-6


def train_and_evaluate(config, workdir: str):
  inputs = data_lib.load(config, with_audio=True)
  mean, std = pose_norm(
    inputs.train.partners.table, config.model.get("relative", False)
  )
  model = builders.pose_codebook_model(config.model, mean, std)
  dummy = jnp.zeros((2, WINDOW, POSE_DIM))
  stage = loop.Stage(
    init=lambda rng: model.init(
      {"params": rng}, dummy, jnp.zeros((2, POSE_DIM)), train=False
    ),
    apply_fn=model.apply,
    train_step=train_step,
    batches=pose_batches(config, inputs),
    evaluate=lambda state, mesh: evaluate_table(
      state, mesh, inputs.eval_table, config.model.num_codes
    ),
    cfg=ml_collections.FrozenConfigDict(config.loss),
    describe=lambda state: {"model": config.model.to_dict()},
  )
  return loop.train_and_evaluate(config, workdir, stage)
