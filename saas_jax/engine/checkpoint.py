"""Orbax checkpoints: periodic async saves with retention, resume, init_from.

On disk: <workdir>/checkpoints/<step>/{state,config}. The training state is
everything a bit-identical resume needs: the data order and the step RNG are
functions of the step (see input_pipeline.batches and the engine loop).
"""

import contextlib
import functools
import logging
import os
import signal
import sys
import threading

import flax.traverse_util
import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from saas_jax.engine import workdir as workdir_lib


class Checkpointer:
  def __init__(
    self, workdir: str, every: int, keep: int = 3, async_save: bool = True
  ):
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    self.manager = ocp.CheckpointManager(
      self.directory,
      options=ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        save_interval_steps=every,
        enable_async_checkpointing=async_save,
        create=True,
        cleanup_tmp_directories=True,
      ),
      item_names=("state", "config"),
    )

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state, config: dict, force: bool = False) -> bool:
    with interrupt_after():
      return self.manager.save(
        step,
        args=ocp.args.Composite(
          state=ocp.args.StandardSave(state),
          config=ocp.args.JsonSave(config),
        ),
        force=force,
      )

  def restore(self, step: int, abstract_state):
    """Restores onto the shardings carried by abstract_state's leaves."""
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
    restored = self.manager.restore(
      step,
      args=ocp.args.Composite(state=ocp.args.StandardRestore(target)),
    )
    return restored.state

  def wait(self):
    self.manager.wait_until_finished()

  def close(self):
    with interrupt_after():
      self.manager.wait_until_finished()
      self.manager.close()


@contextlib.contextmanager
def interrupt_after():
  """Ctrl-C inside the block takes effect when it ends (a save cut half-way
  left orbax's threads to die with the interpreter: tracebacks, a tmp
  folder); a second Ctrl-C at once (a save that hangs). Signal handlers
  belong to the main thread: elsewhere a no-op."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  caught = []

  def handler(*_):
    if caught:
      raise KeyboardInterrupt
    caught.append(True)

  previous = signal.signal(signal.SIGINT, handler)
  try:
    yield
  finally:
    if previous is None:  # a handler not set from Python
      previous = signal.default_int_handler
    signal.signal(signal.SIGINT, previous)
  if caught:
    raise KeyboardInterrupt


@functools.cache
def _quiet_failed_reads() -> None:
  """After a failed restore, orbax's reads still in flight call back into
  its closed event loop: hundreds of 'Event loop is closed' tracebacks and
  asyncio's 'exception was never retrieved' logs, later, from other
  threads. The RunError raised says what went wrong; these go unprinted."""
  previous = sys.unraisablehook

  def hook(unraisable):
    e = unraisable.exc_value
    if not (isinstance(e, RuntimeError) and str(e) == "Event loop is closed"):
      previous(unraisable)

  sys.unraisablehook = hook
  logging.getLogger("asyncio").addFilter(
    lambda r: "exception was never retrieved" not in r.getMessage()
  )


def load_params(workdir: str, step: int | None = None) -> dict:
  """Params and extra collections saved in a workdir, as NumPy.

  Works whatever mesh or process count saved them: the restore target is
  built from the checkpoint's own metadata, on this host's first device.
  """
  directory = os.path.join(os.path.abspath(workdir), "checkpoints")
  if step is None:
    steps = (
      [int(n) for n in os.listdir(directory) if n.isdigit()]
      if os.path.isdir(directory)
      else []
    )
    if not steps:
      raise FileNotFoundError(f"no checkpoint in {directory}")
    step = max(steps)
  path = epath.Path(directory) / str(step) / "state"
  # The item handler, not a Checkpointer: the latter looks for step metadata
  # inside the item directory and logs a warning on every load.
  handler = ocp.StandardCheckpointHandler()
  try:
    tree = handler.metadata(path).tree
    local = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(
      lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=local), tree
    )
    state = handler.restore(path, args=ocp.args.StandardRestore(target))
  except Exception as e:  # orbax raises many kinds, with pages of context
    _quiet_failed_reads()
    first = (str(e).strip().splitlines() or [""])[0]
    first = first.split(" See full TensorStore")[0][:300]
    raise workdir_lib.RunError(
      f"{path}: the checkpoint cannot be read ({type(e).__name__}: "
      f"{first}); its files are damaged or incomplete: restore them, or "
      "train the run again"
    ) from e
  finally:
    handler.close()
  return jax.tree.map(
    np.asarray, {"params": state["params"], "extra": state.get("extra", {})}
  )


def mismatch(directory: str, step: int, abstract) -> str:
  """What differs between a saved state and `abstract` (paths and shapes),
  or '' when the checkpoint's metadata cannot be read either."""
  path = epath.Path(directory) / str(step) / "state"
  handler = ocp.StandardCheckpointHandler()
  try:
    saved = handler.metadata(path).tree
  except Exception as e:
    return f"unreadable checkpoint metadata ({type(e).__name__}: {e})"
  finally:
    handler.close()

  def flat(tree):
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    return {jax.tree_util.keystr(k): tuple(v.shape) for k, v in leaves}

  have, want = flat(saved), flat(abstract)
  problems = [
    f"{k}: saved {have.get(k, 'nothing')}, model {want.get(k, 'nothing')}"
    for k in sorted(set(have) | set(want))
    if have.get(k) != want.get(k)
  ]
  if not problems:
    return ""
  return f"{len(problems)} arrays differ, e.g. " + "; ".join(problems[:3])


def merge_matching(target: dict, source: dict, prefix: str = "") -> tuple:
  """Copies leaves of `source` into `target` where path and shape agree.

  With `prefix` ("a/b"), source paths are looked up under that sub-tree of
  target. Returns (new target, copied paths).
  """
  flat_t = flax.traverse_util.flatten_dict(target, sep="/")
  flat_s = flax.traverse_util.flatten_dict(source, sep="/")
  copied = []
  for key, value in flat_s.items():
    dest = f"{prefix}/{key}" if prefix else key
    if dest in flat_t and tuple(flat_t[dest].shape) == tuple(value.shape):
      flat_t[dest] = value
      copied.append(dest)
  return flax.traverse_util.unflatten_dict(flat_t, sep="/"), copied


def replace_exact(target: dict, source: dict, what: str) -> dict:
  """target with every leaf taken from source (same path and shape).

  Leaves of source that target lacks are ignored; a leaf of target missing
  from source or of another shape is an error naming `what`.
  """
  flat_t = flax.traverse_util.flatten_dict(target, sep="/")
  flat_s = flax.traverse_util.flatten_dict(source, sep="/")
  bad = [
    f"{k} (expected {tuple(v.shape)}, "
    + (f"found {tuple(flat_s[k].shape)})" if k in flat_s else "missing)")
    for k, v in flat_t.items()
    if k not in flat_s or tuple(flat_s[k].shape) != tuple(v.shape)
  ]
  if bad:
    raise ValueError(
      f"{what}: {len(bad)} of {len(flat_t)} arrays do not match this "
      f"model, e.g. {'; '.join(bad[:3])}"
    )
  out = {k: np.asarray(flat_s[k], flat_t[k].dtype) for k in flat_t}
  return flax.traverse_util.unflatten_dict(out, sep="/")
