"""Style classifier: the frozen critic of the expression stage.

The official StyleDiscriminator (a Conv1d PatchGAN whose patches are averaged
over time into style-class logits) was used frozen by the audio- and
video-driven stages, but its training was never released. Here it is
trained with cross-entropy on 32-frame style windows (the anchor and its
three partners of each style-window batch).

Evaluation on held-out clips: window_accuracy, and style_accuracy with the
logits averaged over each clip's windows.
"""

import dataclasses
import functools

import jax.numpy as jnp
import ml_collections

from input_pipeline import batches as batches_lib
from saas_jax import losses
from saas_jax.engine import data as data_lib
from saas_jax.engine import loop
from saas_jax.engine.train_state import apply_loss
from saas_jax.evaluators import style, windows
from saas_jax.models import critics

WINDOW = 32


def loss_fn(params, extra, batch, rng, *, apply_fn):
  del rng
  x = jnp.concatenate(
    [batch["exp"], batch["pos_exp"], batch["neg_exp"], batch["other_exp"]]
  )
  labels = jnp.concatenate(
    [
      batch["label"],
      batch["pos_label"],
      batch["neg_label"],
      batch["other_label"],
    ]
  )
  logits = apply_fn({"params": params}, x)
  ce = losses.cross_entropy(logits, labels)
  return ce, ({"ce": ce, "accuracy": losses.accuracy(logits, labels)}, extra)


def train_step(state, batch, rng):
  return apply_loss(
    state, batch, rng, functools.partial(loss_fn, apply_fn=state.apply_fn)
  )


def evaluate_table(state, mesh, table, batch_size=256) -> dict:
  w = windows.Windows.of(windows.table_clips(table))
  logits = windows.batched_apply(
    _Logits(state.apply_fn), {"params": state.params}, w.x, mesh, batch_size
  )
  return {
    "window_accuracy": float(
      style.accuracy(logits, table.label[w.owner]).mean()
    ),
    "style_accuracy": float(
      style.accuracy(w.per_clip(logits), table.label).mean()
    ),
  }


@dataclasses.dataclass(frozen=True)
class _Logits:  # hashable: compiled once per shape across evaluations
  apply_fn: object

  def __call__(self, variables, x):
    return self.apply_fn(variables, x)


def train_and_evaluate(config, workdir: str):
  inputs = data_lib.load(config, with_audio=False)
  model = critics.StyleClassifier(inputs.num_classes)
  stage = loop.Stage(
    init=lambda rng: model.init(rng, jnp.zeros((2, WINDOW, 64))),
    apply_fn=model.apply,
    train_step=train_step,
    batches=data_lib.batch_iterator(batches_lib.style_windows, config, inputs),
    evaluate=lambda state, mesh: evaluate_table(state, mesh, inputs.eval_table),
    cfg=ml_collections.FrozenConfigDict({}),
    describe=lambda state: {"num_classes": inputs.num_classes},
  )
  return loop.train_and_evaluate(config, workdir, stage)
