"""Clips -> 32-frame windows -> a jitted function in batches -> per clip.

Every evaluation that scores a clip by its windows (style codes, classifier
logits, reconstructions) goes through `Windows` and `batched_apply`.
"""

import dataclasses
import functools

import jax
import numpy as np

from input_pipeline import features
from saas_jax.engine import loop
from saas_jax.models.builders import WINDOW  # 32 frames, both codebooks'

STRIDE = WINDOW // 2


@dataclasses.dataclass(frozen=True)
class Windows:
  x: np.ndarray  # [N, 32, D] every window of every clip
  owner: np.ndarray  # [N] the clip each window came from
  num_clips: int

  @classmethod
  def of(cls, clips, window: int = WINDOW, stride: int = STRIDE) -> "Windows":
    """Windows of [T, D] clips, stride apart (a clip shorter than a window
    is extended back and forth to one)."""
    per = [features.clip_windows(c, window, stride) for c in clips]
    owner = np.concatenate([np.full(len(w), i) for i, w in enumerate(per)])
    return cls(np.concatenate(per), owner, len(per))

  def per_clip(self, values: np.ndarray) -> np.ndarray:
    """[N, ...] per window -> [num_clips, ...] the mean over each clip's."""
    values = np.asarray(values)
    sums = np.zeros((self.num_clips, *values.shape[1:]), np.float64)
    np.add.at(sums, self.owner, values)
    counts = np.bincount(self.owner, minlength=self.num_clips)
    counts = counts.reshape(-1, *[1] * (values.ndim - 1))
    return (sums / counts).astype(values.dtype)


def apply_per_clip(fn, variables, clips, mesh, batch_size: int = 256):
  """fn(variables, [B, 32, D]) -> pytree of [B, ...], averaged over each
  clip's windows: pytree of [num_clips, ...]."""
  w = Windows.of(clips)
  out = batched_apply(fn, variables, w.x, mesh, batch_size)
  return jax.tree.map(w.per_clip, out)


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

    def take(v, i=i, n=n, pad=pad):
      chunk = np.asarray(v[i : i + n])
      return np.concatenate([chunk, np.repeat(chunk[-1:], pad, 0)])

    x = loop.full_batch_to_global(mesh, {"x": jax.tree.map(take, inputs)})
    out = jitted(variables, x["x"])
    outs.append(jax.tree.map(lambda v, n=n: loop.fetch(v)[:n], out))
  return jax.tree.map(lambda *xs: np.concatenate(xs), *outs)


@functools.lru_cache(maxsize=64)
def _jit(fn):
  return jax.jit(fn)


def table_clips(table, stream: str = "exp") -> list[np.ndarray]:
  """Every clip's frames of one stream (exp, pose) of a ClipTable."""
  data = getattr(table, stream)
  return [
    data[table.start[c] : table.start[c] + table.length[c]]
    for c in range(table.num_clips)
  ]
