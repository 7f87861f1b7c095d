"""The training state: parameters, optimizer state, other collections."""

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct
from flax.training import train_state


class TrainState(train_state.TrainState):
  """flax's TrainState plus non-parameter collections and static settings.

  extra:  mutable model collections (BatchNorm statistics, EMA codebooks).
  cfg:    the stage's static settings (loss weights...), a hashable
          FrozenConfigDict, so a module-level train_step can read them.
  """

  extra: Any = struct.field(default_factory=dict)
  cfg: Any = struct.field(pytree_node=False, default=None)


def apply_loss(state: TrainState, batch, rng, loss_fn):
  """One optimizer step on loss_fn(params, extra, batch, rng).

  loss_fn returns (loss, (metrics, new_extra)). A non-finite loss leaves the
  state untouched (the engine then stops the run and names the step and
  term); grad_norm and the learning rate are added to the metrics.
  """
  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
  (loss, (metrics, new_extra)), grads = grad_fn(
    state.params, state.extra, batch, rng
  )
  finite = jnp.isfinite(loss)
  new_state = state.apply_gradients(grads=grads, extra=new_extra)
  new_state = jax.tree.map(
    lambda new, old: jnp.where(finite, new, old), new_state, state
  )
  new_state = new_state.replace(step=state.step + 1)
  metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), **metrics}
  return new_state, metrics


def apply_part(state: TrainState, part: str, grads) -> TrainState:
  """Updates params[part] alone with its own optimizer state (the state's
  tx must be an optim.Partitioned); the step counter is left alone."""
  tx = dict(state.tx.parts)[part]
  updates, opt = tx.update(grads, state.opt_state[part], state.params[part])
  params = optax.apply_updates(state.params[part], updates)
  return state.replace(
    params={**state.params, part: params},
    opt_state={**state.opt_state, part: opt},
  )
