"""train_and_evaluate: the loop shared by every stage.

Phases (big_vision style): mesh -> model and optimizer (abstract, then born
sharded) -> data and the jitted step, compiled in a thread from shapes ->
meanwhile restore or init (workdir checkpoint > config.init_from > scratch)
-> loop with logging, checkpoints and evaluation.

Determinism: the batch of step k is a function of (seed, k) (see
input_pipeline.batches) and the step's RNG is fold_in(key, k), so a run
killed at any point and restarted from its last checkpoint ends bit-identical
to an uninterrupted run.
"""

import dataclasses
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

from saas_jax.engine import checkpoint, config_lib, executable_cache, optim
from saas_jax.engine import mesh as mesh_lib
from saas_jax.engine import metrics as metrics_lib
from saas_jax.engine import workdir as workdir_lib
from saas_jax.engine.train_state import TrainState


@dataclasses.dataclass
class Stage:
  """What a trainer hands the engine.

  Networks of earlier stages that this stage uses fixed go in the variables
  collection "frozen" ({name: variables}) that init returns; the engine
  loads them from config.frozen on a fresh start (load_frozen).
  """

  init: Callable[[jax.Array], dict]  # rng -> model variables
  apply_fn: Callable
  train_step: Callable  # (state, batch, rng) -> (state, metrics)
  # (start step, number of steps) -> host batches, exactly that many
  batches: Callable[[int, int], Iterator[dict]]
  evaluate: Callable[[TrainState, Any], dict] | None = None  # (state, mesh)
  cfg: Any = None  # static settings train_step reads from state.cfg
  # (state, {"params", "extra"} of config.init_from's workdir) -> state;
  # None: copy every leaf whose path and shape match (init_matching).
  init_from: Callable[[TrainState, dict], TrainState] | None = None
  # (config, total steps) -> optax transformation; None: config.optim's.
  optimizer: Callable[[Any, int], Any] | None = None
  # state -> what a loader needs to rebuild the networks (sizes, class
  # count, frozen networks' settings and fingerprints): the run's spec.json.
  describe: Callable[[TrainState], dict] | None = None


class NonFiniteLossError(FloatingPointError):
  pass


def _check_finite(pending):
  for step, values in pending:
    bad = [k for k, v in values.items() if not np.all(np.isfinite(v))]
    if bad:
      shown = ", ".join(
        f"{k}={float(np.asarray(values[k]).mean())}" for k in bad
      )
      raise NonFiniteLossError(
        f"non-finite loss at step {step}: {shown}; the update of this step "
        "was skipped and no checkpoint after it was written"
      )


def _mean_metrics(pending):
  keys = pending[0][1].keys()
  return {
    k: float(np.mean([np.asarray(v[k]).mean() for _, v in pending]))
    for k in keys
    if np.asarray(pending[0][1][k]).dtype.kind == "f"
  }


def fetch(x):
  """A global array's full value on every host, as NumPy."""
  if jax.process_count() > 1:
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(x)


def full_batch_to_global(mesh, batch: dict) -> dict:
  """A batch every process holds in full -> global arrays split over data."""
  sharding = mesh_lib.batch_sharding(mesh)

  def put(v):
    v = np.asarray(v)
    return jax.make_array_from_callback(v.shape, sharding, lambda idx: v[idx])

  return jax.tree.map(put, batch)


def train_and_evaluate(config, workdir: str, stage: Stage) -> TrainState:
  """Trains `stage` as `config` says; returns the final state."""
  is_main = jax.process_index() == 0
  logging.info(
    "devices: %d (%d local), process %d/%d",
    jax.device_count(),
    jax.local_device_count(),
    jax.process_index(),
    jax.process_count(),
  )
  config_lib.validate(config)
  workdir_lib.check_same_config(workdir, json.loads(config.to_json()))
  os.makedirs(workdir, exist_ok=True)

  # ---------------------------------------------------------------- mesh --
  mesh = mesh_lib.make_mesh(config.mesh.shape, config.mesh.axes)
  batch_sh, repl = mesh_lib.batch_sharding(mesh), mesh_lib.replicated(mesh)

  # ------------------------------------------------- model and optimizer --
  total = config.num_train_steps
  tx = (stage.optimizer or _default_optimizer)(config, total)

  def init_state(key):
    variables = dict(stage.init(key))
    params = variables.pop("params")
    state = TrainState.create(
      apply_fn=stage.apply_fn,
      params=params,
      tx=tx,
      extra=variables,
      cfg=stage.cfg,
    )
    # Strong types only: a weak-typed leaf (jnp.full(n, 1.0)) comes back
    # strong from the first step, and the step would compile a second time.
    return jax.tree.map(_strong, state)

  init_key, step_key = jax.random.split(jax.random.key(config.seed))
  abstract = jax.eval_shape(init_state, init_key)
  shardings = mesh_lib.tree_shardings(
    mesh, abstract, config.mesh.min_sharded_size
  )
  abstract = jax.tree.map(
    lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
    abstract,
    shardings,
  )

  # ------------------------------------------------------ step and data --
  ckpt = checkpoint.Checkpointer(
    workdir, config.ckpt.every, config.ckpt.keep, config.ckpt.async_save
  )
  latest = ckpt.latest_step()
  start = latest or 0
  train_step = jax.jit(
    stage.train_step,
    in_shardings=(shardings, batch_sh, repl),
    out_shardings=(shardings, repl),
    donate_argnums=0,
  )
  step_compile = first_batch = None
  init_loaded = False
  if start < total:
    batches = stage.batches(start, total - start)
    first_batch = mesh_lib.to_global(mesh, next(batches))
    # The step compiles (or loads from the cache) in a thread while the
    # state is initialised or restored: both need only shapes, and XLA
    # compiles outside the GIL, so the two overlap.
    step_compile = _Background(
      _compile,
      mesh,
      train_step,
      (abstract, first_batch, jax.random.fold_in(step_key, start)),
      config,
    )

  # ------------------------------------------------------ restore or init --
  if latest is not None:
    try:
      state = ckpt.restore(latest, abstract)
    except Exception as e:  # orbax raises many kinds; name what did not fit
      ckpt.close()
      raise workdir_lib.RunError(
        f"{workdir}: checkpoint {latest} could not be restored into this "
        f"model: {checkpoint.mismatch(ckpt.directory, latest, abstract) or e}"
      ) from e
    _say(f"resumed from {ckpt.directory} at step {latest}")
  else:
    init, init_loaded = executable_cache.load_or_compile(
      "init_state",
      jax.jit(init_state, out_shardings=shardings),
      (init_key,),
      config,
      like=(abstract,),
    )
    state = init(init_key)
    if config.get("init_from"):
      loaded = checkpoint.load_params(config.init_from)
      state = (stage.init_from or init_matching)(state, loaded)
      state = jax.device_put(state, shardings)
      _say(f"initialised from {config.init_from}")
    if "frozen" in state.extra:
      state = jax.device_put(
        load_frozen(state, config.get("frozen")), shardings
      )

  def write_spec(state):
    """spec.json: what a loader needs, of the state as it is now (a style
    run's fingerprint is that of its latest checkpoint)."""
    spec = {
      "format": workdir_lib.SPEC_FORMAT,
      "trainer": config.trainer,
      **(stage.describe(state) if stage.describe else {}),
    }
    if is_main:
      workdir_lib.write_json(os.path.join(workdir, "spec.json"), spec)

  if is_main:  # only once the state exists: a failed start changes nothing
    saved = json.loads(config.to_json())
    workdir_lib.write_json(os.path.join(workdir, "config.json"), saved)
  write_spec(state)
  if int(state.step) != start:
    raise workdir_lib.RunError(
      f"{ckpt.directory}: checkpoint {latest} holds step {int(state.step)}"
    )
  _say(
    f"{count_params(state.params) / 1e6:.2f} M parameters, mesh "
    f"{dict(mesh.shape)}, steps {start} -> {total}"
  )
  compiled_step, step_loaded = (
    step_compile.result() if step_compile else (None, False)
  )
  # One line: what was compiled or loaded (not traced, not compiled), from
  # where, and how long the step took.
  cache = f" loaded from {executable_cache.folder()}"
  if step_compile:
    both = step_loaded and init_loaded
    _say(
      f"train step{' and initialisation' if both else ''}"
      f"{cache if step_loaded else ' compiled'} in "
      f"{step_compile.seconds:.1f} s (beside the state's "
      f"{'restore' if latest is not None else 'initialisation'})"
      + (f"; initialisation{cache}" if init_loaded and not step_loaded else "")
    )
  elif init_loaded:
    _say(f"initialisation{cache}")

  # ---------------------------------------------------------------- loop --
  writer = metrics_lib.MetricWriter(
    workdir,
    enabled=is_main,
    tensorboard=config.log.tensorboard,
    start_step=start,
  )
  progress = metrics_lib.Progress(total, start, enabled=is_main)
  pending = []
  eval_results = None

  def evaluate(step):
    results = stage.evaluate(state, mesh)
    writer.write(step, {f"eval/{k}": v for k, v in results.items()})
    _say(
      f"eval at step {step}: "
      + ", ".join(f"{k}={v:.4g}" for k, v in results.items())
    )
    return results

  with jax.set_mesh(mesh):
    try:
      for step in range(start, total):
        if step == start:
          batch, first_batch = first_batch, None
        else:
          batch = mesh_lib.to_global(mesh, next(batches))
        rng = jax.random.fold_in(step_key, step)
        t0 = time.perf_counter()
        state, step_metrics = compiled_step(state, batch, rng)
        if step - start < 2:  # the first also pays for warming up
          jax.block_until_ready(step_metrics)
          what = "second" if step > start else "first"
          _say(f"{what} step ran in {time.perf_counter() - t0:.1f} s")
        done = step + 1
        pending.append((done, step_metrics))
        log_now = done % config.log.every == 0 or done == total
        save_now = done % config.ckpt.every == 0 or done == total
        if log_now or save_now:
          pending = jax.device_get(pending)
          _check_finite(pending)
          if log_now:
            means = {f"train/{k}": v for k, v in _mean_metrics(pending).items()}
            writer.write(done, means)
            progress.report(done, means)
          pending = []
        if save_now:
          ckpt.save(done, state, config.to_dict(), force=done == total)
          write_spec(state)
        if (
          stage.evaluate
          and config.eval_every
          and (done % config.eval_every == 0 or done == total)
        ):
          eval_results = evaluate(done)
    except BaseException:  # Ctrl-C, a non-finite loss, ...
      # An asynchronous save in flight finishes first: otherwise its threads
      # die with the interpreter (orbax tracebacks, a tmp folder left).
      ckpt.close()
      raise
    ckpt.close()
    if stage.evaluate and config.eval_every and eval_results is None:
      eval_results = evaluate(int(state.step))  # a resumed, finished run
  if is_main and eval_results is not None:
    with open(os.path.join(workdir, "eval_results.json"), "w") as f:
      json.dump({"step": int(state.step), **eval_results}, f, indent=1)
  writer.close()
  return state


class _Background:
  """fn(*args) in a thread; result() waits and re-raises its error here."""

  def __init__(self, fn, *args):
    self._out = self._error = None

    def run():
      t0 = time.perf_counter()
      try:
        self._out = fn(*args)
      except BaseException as e:
        self._error = e
      self.seconds = time.perf_counter() - t0

    self._thread = threading.Thread(target=run, daemon=True)
    self._thread.start()

  def result(self):
    self._thread.join()
    if self._error is not None:
      raise self._error
    return self._out


def _compile(mesh, train_step, args, config):
  """The step's executable for these shapes (what its first call would do),
  compiled or loaded from the executable cache."""
  with jax.set_mesh(mesh):
    return executable_cache.load_or_compile(
      "train_step", train_step, args, config, like=(args[0],)
    )


def _strong(x):
  aval = jax.typeof(x)
  if getattr(aval, "weak_type", False):
    return jax.lax.convert_element_type(x, aval.dtype)
  return x


def _default_optimizer(config, total):
  return optim.make_optimizer(config.optim, total)


def init_matching(state: TrainState, loaded: dict) -> TrainState:
  """Default init_from: every saved leaf whose path and shape match."""
  params, copied = checkpoint.merge_matching(
    jax.device_get(state.params), loaded["params"]
  )
  extra, copied_extra = checkpoint.merge_matching(
    jax.device_get(state.extra), loaded["extra"]
  )
  if not copied:
    raise ValueError(
      "init_from: no parameter of the checkpoint matches this "
      "model (paths and shapes differ)"
    )
  _say(
    f"init_from: copied {len(copied)} parameter and "
    f"{len(copied_extra)} state arrays"
  )
  return state.replace(params=params, extra=extra)


def load_frozen(state: TrainState, sources) -> TrainState:
  """Fills state.extra["frozen"][name] from the workdir config.frozen.name.

  Networks trained by earlier stages and used fixed here (a style encoder, a
  codebook) live in the "frozen" collection: the stage's init creates them
  at their shapes, this copies in the saved variables (params and other
  collections, so an EMA codebook comes too), and from then on they are
  part of this stage's checkpoints. Every array must be found at its shape.
  """
  sources = dict(sources or {})
  frozen = dict(jax.device_get(state.extra["frozen"]))
  missing = sorted(set(frozen) - set(sources))
  if missing:
    raise ValueError(
      "this stage uses networks of earlier stages; set "
      + ", ".join(f"config.frozen.{n}" for n in missing)
      + " to their workdirs"
    )
  unknown = sorted(set(sources) - set(frozen))
  if unknown:
    raise ValueError(
      f"config.frozen.{unknown[0]}: this stage has no frozen part of that "
      f"name (it has {sorted(frozen)})"
    )
  for name, workdir in sources.items():
    loaded = checkpoint.load_params(workdir)
    variables = {"params": loaded["params"], **loaded["extra"]}
    frozen[name] = checkpoint.replace_exact(
      frozen[name], variables, f"config.frozen.{name} ({workdir})"
    )
    _say(f"frozen {name}: loaded from {workdir}")
  return state.replace(extra={**state.extra, "frozen": frozen})


def _say(message: str) -> None:
  if jax.process_index() == 0:
    print(message, file=sys.stderr, flush=True)


def count_params(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))
