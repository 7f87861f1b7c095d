"""The one error type for bad input anywhere in the project."""

import os


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
