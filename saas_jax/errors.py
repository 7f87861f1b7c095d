"""The one error type for bad input anywhere in the project, and how the
command-line tools end on Ctrl-C."""

import os
import sys


class DataError(ValueError):
  """A file or array that cannot be used, with the file and the problem named.

  Every reader and validator raises this (never a bare numpy/scipy error), so
  callers such as the dataset builder can skip one bad clip, say why, and go on.
  """

  def __init__(self, path: str | os.PathLike | None, problem: str):
    self.path = None if path is None else os.fspath(path)
    self.problem = problem
    where = f"{self.path}: " if self.path else ""
    super().__init__(f"{where}{problem}")


def check_frames(
  what: str, x, width: int | tuple[int, ...], unit: str = "frame"
):
  """x as float32 [T, *width] with T >= 1 and every value finite, or a
  DataError naming `what` (a file or an argument), the frame (or other
  `unit`) and column."""
  import numpy as np

  shape = (width,) if isinstance(width, int) else tuple(width)
  try:
    arr = np.asarray(x)
  except Exception as e:  # ragged lists, objects
    raise DataError(what, f"not an array ({e})") from None
  if arr.dtype.kind not in "fiu":
    raise DataError(what, f"expected real numbers, got dtype {arr.dtype}")
  if arr.ndim != 1 + len(shape) or arr.shape[1:] != shape:
    want = ", ".join(["T", *map(str, shape)])
    raise DataError(what, f"expected shape [{want}], got {list(arr.shape)}")
  if arr.shape[0] == 0:
    raise DataError(what, f"zero {unit}s")
  arr = arr.astype(np.float32)  # check after the cast: 1e300 -> inf
  bad = ~np.isfinite(arr)
  if bad.any():
    frame, *col = (int(i) for i in np.argwhere(bad)[0])
    where = f"{unit} {frame}" + (f", column {col[0]}" if col else "")
    raise DataError(what, f"non-finite value (NaN/Inf) at {where}")
  return arr


def check_writable_folder(out: str | os.PathLike) -> None:
  """A DataError unless `out` is, or can be made as, a folder this process
  writes to: checked before any work, without making it (bad input then
  leaves nothing behind)."""
  existing = os.path.abspath(out)
  while not os.path.exists(existing):
    if os.path.islink(existing):  # a link to a folder moved away
      target = os.readlink(existing)
      raise DataError(
        out, f"{existing} is a link to {target}, which does not exist"
      )
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    raise DataError(
      out, f"cannot write the output folder ({existing} is a file)"
    )
  if not os.access(existing, os.W_OK | os.X_OK):
    raise DataError(
      out, f"cannot write the output folder ({existing}: read-only)"
    )


def exit_interrupted(resume: str):
  """Ctrl-C: one line saying what is kept and how to go on (exit code 130,
  the shell's for SIGINT), not a KeyboardInterrupt traceback."""
  print(f"\ninterrupted: {resume}", file=sys.stderr)
  sys.exit(130)
