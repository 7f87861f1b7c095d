"""Helpers for evaluation: run a jitted function over many NumPy inputs."""

import jax
import numpy as np

from input_pipeline import batches
from saas_jax.engine import loop


def batched_apply(fn, variables, inputs: np.ndarray, mesh, batch_size=256):
  """fn(variables, x[B, ...]) -> pytree of [B, ...], over all rows of inputs.

  Rows are split over the mesh's data axis (every process passes the same
  full inputs); the result is gathered back to NumPy on every host.
  """
  jitted = jax.jit(fn)
  data = mesh.shape["data"]
  batch_size = max(data, batch_size // data * data)
  outs = []
  for i in range(0, len(inputs), batch_size):
    chunk = inputs[i : i + batch_size]
    pad = (-len(chunk)) % data
    x = np.concatenate([chunk, np.repeat(chunk[-1:], pad, 0)])
    out = jitted(variables, loop.full_batch_to_global(mesh, {"x": x})["x"])
    n = len(chunk)
    outs.append(jax.tree.map(lambda v: loop.fetch(v)[:n], out))  # noqa: B023
  return jax.tree.map(lambda *xs: np.concatenate(xs), *outs)


def clip_windows(seq: np.ndarray, window: int, stride: int) -> np.ndarray:
  """[T, C] -> [W, window, C] windows (ping-pong extended when T < window)."""
  t = len(seq)
  if t < window:
    return seq[batches.ping_pong_index(np.array(t), np.arange(window))][None]
  return np.stack(
    [seq[s : s + window] for s in range(0, t - window + 1, stride)]
  )


def table_clips(table) -> list[np.ndarray]:
  """The expression sequence of every clip of an input_pipeline ClipTable."""
  return [
    table.exp[table.start[c] : table.start[c] + table.length[c]]
    for c in range(table.num_clips)
  ]
