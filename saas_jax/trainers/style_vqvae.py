"""Style codebook stage: the multi-task style VQ-VAE (reference §2.2).

Loss = 10 * (grouped L1 reconstruction + VQ) + 0.01 * CE(f_c(s), class)
       + 0.01 * triplet(s; positive, negative, other)
over the anchor window and its three partners, in one forward pass; the
reconstruction over the anchors only (loss.reconstruct="anchor", as the
official step) or over all four (loss.reconstruct="all").
Optional augmentation (loss.offset_jitter > 0): each window gets a random
constant offset, offset_jitter x the per-coefficient std of the training
data, before it enters the model.

Evaluation on held-out clips of seen styles (config.data.eval_split):
  recon_l1, recon_rel     L1 of reconstructing every 32-frame window (stride
                          16), and the same relative to predicting each
                          clip's per-coefficient mean (< 1: better than mean).
  style_accuracy          clip-level: logits averaged over the clip's windows.
  window_accuracy         window-level classification.
  style_code_ncc          nearest class centroid of the clip-mean style codes
                          of the training clips (how the feature baselines of
                          benchmarks/style_baselines.py are scored).
  style_retrieval         the style code of a clip's first half (mean over its
                          windows) retrieves its second half among all
                          held-out clips (nearest neighbour, L2).
  perplexity, dead_fraction   codebook use over all windows.
"""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from input_pipeline import batches as batches_lib
from input_pipeline.synthetic import baselines
from saas_jax import losses
from saas_jax.engine import data as data_lib
from saas_jax.engine import loop
from saas_jax.engine.train_state import apply_loss
from saas_jax.errors import DataError
from saas_jax.evaluators import codebook, windows
from saas_jax.evaluators import style as style_lib
from saas_jax.models import builders

WINDOW = builders.WINDOW


def class_factors(tables, num_classes: int) -> tuple[tuple[int, ...], ...]:
  """(person, emotion, level) of every style class, from the clip tables.

  A class with no clip in the tables (e.g. a held-out person's) gets values
  of its own, so it shares no weights: it is never a target anyway.
  """
  factors = np.full((3, num_classes), -1, np.int64)
  for t in tables:
    factors[:, t.label] = np.stack([t.person, t.emotion, t.level])
  for row in factors:
    missing = row < 0
    row[missing] = row.max(initial=-1) + 1 + np.arange(missing.sum())
  return tuple(tuple(int(v) for v in row) for row in factors)


def loss_fn(params, extra, batch, rng, *, apply_fn, cfg):
  b = batch["exp"].shape[0]
  x = jnp.concatenate(
    [batch["exp"], batch["pos_exp"], batch["neg_exp"], batch["other_exp"]]
  )  # [4B, 32, 64]
  if cfg.offset_jitter:
    # A random constant offset per window (3DMM fits of one recording carry
    # their own bias), so the code cannot identify a style by a clip's bias.
    jitter_rng, rng = jax.random.split(rng)
    scale = cfg.offset_jitter * jnp.asarray(cfg.exp_std)  # [64]
    x = x + scale * jax.random.normal(jitter_rng, (x.shape[0], 1, 64))
  labels = jnp.concatenate(
    [
      batch["label"],
      batch["pos_label"],
      batch["neg_label"],
      batch["other_label"],
    ]
  )
  # "anchor": reconstruct the anchor windows only, as the official step
  # does; "all": the partners too (4x the decoder's work).
  decode = b if cfg.reconstruct == "anchor" else None
  out, new_extra = apply_fn(
    {"params": params, **extra},
    x,
    train=True,
    decode=decode,
    mutable=list(extra),
    rngs={"vq": rng, "dropout": jax.random.fold_in(rng, 1)},
  )
  recon = losses.grouped_l1(
    out["recon"], x[: out["recon"].shape[0]], tuple(cfg.recon_splits)
  )
  ce = losses.cross_entropy(out["logits"], labels)
  s, pos, neg, other = jnp.split(out["style"], 4)
  triplet = losses.style_triplet(s, pos, neg, other, cfg.triplet_margin)
  loss = (
    cfg.w_recon * (recon + out["vq_loss"])
    + cfg.w_ce * ce
    + cfg.w_triplet * triplet
  )
  metrics = {
    "recon": recon,
    "vq": out["vq_loss"],
    "ce": ce,
    "triplet": triplet,
    "accuracy": losses.accuracy(out["logits"][:b], batch["label"]),
    "perplexity": out["perplexity"],
    "dead_fraction": out["dead_fraction"],
  }
  return loss, (metrics, new_extra)


def train_step(state, batch, rng):
  fn = functools.partial(loss_fn, apply_fn=state.apply_fn, cfg=state.cfg)
  return apply_loss(state, batch, rng, fn)


# ---------------------------------------------------------- evaluation ---


def _forward(variables, x, *, apply_fn):
  out = apply_fn(variables, x, train=False)
  return {k: out[k] for k in ("recon", "style", "logits", "indices")}


def run_windows(state, mesh, x: np.ndarray, batch_size: int = 256) -> dict:
  """Eval-mode outputs for [N, 32, 64] windows."""
  fn = functools.partial(_forward, apply_fn=state.apply_fn)
  variables = {"params": state.params, **state.extra}
  return windows.batched_apply(fn, variables, x, mesh, batch_size)


def clip_codes(state, mesh, clips, batch_size=256) -> np.ndarray:
  """[num clips, 256] the mean style code of each clip's windows."""
  w = windows.Windows.of(clips)
  return w.per_clip(run_windows(state, mesh, w.x, batch_size)["style"])


def evaluate_table(
  state, mesh, table, num_codes, train_table=None, batch_size=256
) -> dict:
  clips = windows.table_clips(table)
  w = windows.Windows.of(clips)
  out = run_windows(state, mesh, w.x, batch_size)
  err = np.abs(out["recon"] - w.x).mean()
  clip_mean = np.stack([clips[c].mean(0) for c in w.owner])[:, None]
  base = np.abs(w.x - clip_mean).mean()
  held = w.per_clip(out["style"])
  results = {}
  if train_table is not None:
    # The style code as an embedding: nearest class centroid of the training
    # clips' codes, as the feature baselines are scored.
    codes = clip_codes(state, mesh, windows.table_clips(train_table))
    x = np.concatenate([codes, held])
    labels = np.concatenate([train_table.label, table.label])
    is_train = np.arange(len(labels)) < len(codes)
    pred = baselines.nearest_centroid(x, labels, is_train)
    results["style_code_ncc"] = float(np.mean(pred == table.label))
  halves = clip_codes(state, mesh, style_lib.halves(clips), batch_size)
  return {
    **results,
    "recon_l1": float(err),
    "recon_rel": float(err / base),
    "window_accuracy": float(
      style_lib.accuracy(out["logits"], table.label[w.owner]).mean()
    ),
    "style_accuracy": float(
      style_lib.accuracy(w.per_clip(out["logits"]), table.label).mean()
    ),
    "style_retrieval": float(
      style_lib.retrieval(halves[0::2], halves[1::2]).mean()
    ),
    **codebook.health(out["indices"], num_codes),
  }


# ------------------------------------------------------------- wiring ---


def train_and_evaluate(config, workdir: str):
  if config.loss.reconstruct not in ("anchor", "all"):
    raise DataError(
      "config.loss.reconstruct",
      f"must be 'anchor' or 'all', got {config.loss.reconstruct!r}",
    )
  inputs = data_lib.load(config, with_audio=False)
  factors = ()
  if config.model.get("factorized_classifier", False):
    factors = class_factors(
      [inputs.train.partners.table, inputs.eval_table], inputs.num_classes
    )
  model = builders.style_codebook_model(
    config.model, inputs.num_classes, factors
  )

  def describe(state):
    params = jax.tree.map(loop.fetch, {"params": state.params, **state.extra})
    return {
      "model": config.model.to_dict(),
      "num_classes": inputs.num_classes,
      "class_factors": factors,
      "style_encoder": builders.style_encoder_fingerprint(config.model, params),
    }

  dummy = jnp.zeros((2, WINDOW, 64))
  stage = loop.Stage(
    init=lambda rng: model.init({"params": rng}, dummy, train=False),
    apply_fn=model.apply,
    train_step=train_step,
    batches=data_lib.batch_iterator(batches_lib.style_windows, config, inputs),
    evaluate=lambda state, mesh: evaluate_table(
      state,
      mesh,
      inputs.eval_table,
      config.model.num_codes,
      train_table=inputs.train.partners.table,
    ),
    cfg=ml_collections.FrozenConfigDict(
      {**config.loss.to_dict(), "exp_std": exp_std(inputs.train)}
    ),
    describe=describe,
  )
  return loop.train_and_evaluate(config, workdir, stage)


def exp_std(data) -> tuple[float, ...]:
  """Per-coefficient std of the training expression (for offset jitter)."""
  return tuple(float(v) for v in data.partners.table.exp.std(axis=0))
