"""Helpers for evaluation: run a jitted function over many NumPy inputs."""

import functools

import jax
import numpy as np

from saas_jax.engine import loop


def batched_apply(fn, variables, inputs, mesh, batch_size=256):
  """fn(variables, x) -> pytree of [B, ...], over all rows of inputs.

  inputs: an array or a dict of arrays with the same number of rows. Rows
  are split over the mesh's data axis (every process passes the same full
  inputs); the result is gathered back to NumPy on every host. Chunks are
  padded to a power of two rows, and the jitted fn is kept (fn must then be
  the same object, or equal, across calls: a module-level function or a
  frozen dataclass), so repeated evaluations compile a few shapes once.
  """
  jitted = _jit(fn)
  data = mesh.shape["data"]
  batch_size = max(data, batch_size // data * data)
  rows = len(jax.tree.leaves(inputs)[0])
  outs = []
  for i in range(0, rows, batch_size):
    n = min(batch_size, rows - i)
    padded = max(data, 1 << (n - 1).bit_length())
    pad = min(padded, batch_size) - n
    pad += (-(n + pad)) % data

    def cut(v, i=i, n=n, pad=pad):
      chunk = np.asarray(v[i : i + n])
      return np.concatenate([chunk, np.repeat(chunk[-1:], pad, 0)])

    x = loop.full_batch_to_global(mesh, {"x": jax.tree.map(cut, inputs)})
    out = jitted(variables, x["x"])
    outs.append(jax.tree.map(lambda v, n=n: loop.fetch(v)[:n], out))
  return jax.tree.map(lambda *xs: np.concatenate(xs), *outs)


@functools.lru_cache(maxsize=64)
def _jit(fn):
  return jax.jit(fn)


def table_clips(table) -> list[np.ndarray]:
  """The expression sequence of every clip of an input_pipeline ClipTable."""
  return [
    table.exp[table.start[c] : table.start[c] + table.length[c]]
    for c in range(table.num_clips)
  ]
