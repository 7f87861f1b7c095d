"""Loading finished training runs for inference.

A run folder (engine.workdir) holds config.json, spec.json and orbax
checkpoints. `load_run` reads all three, checks the run's kind and names the
command that makes a missing run; the networks are then rebuilt from
spec.json with saas_jax.models.builders, the same builders training used.
"""

import dataclasses
import functools
import os
import warnings

from saas_jax.engine import checkpoint, executable_cache
from saas_jax.engine import workdir as workdir_lib

RunError = workdir_lib.RunError


@dataclasses.dataclass(frozen=True)
class Run:
  workdir: str
  spec: dict  # spec.json
  step: int  # the checkpoint loaded
  params: dict  # NumPy
  extra: dict  # other collections (frozen networks, batch_stats...)

  @property
  def kind(self) -> str:
    return self.spec["trainer"]

  @functools.cached_property
  def digest(self) -> str:
    """Its spec and weights (all collections) hashed: what a function
    compiled from this run depends on besides its arguments, constants
    taken from the weights included."""
    return executable_cache.tree_digest(self.spec, self.params, self.extra)

  def cache(self, *jits: executable_cache.Jit) -> None:
    """Functions compiled from this run go through the executable cache
    under its digest, so a second process loads them untraced. The digest
    is taken on a first call with the cache on, not before."""
    for f in jits:
      f.context = lambda: self.digest


def load_run(workdir: str, kind: str, role: str | None = None) -> Run:
  """The latest checkpoint of a `kind` run (a trainer name, or audio_driven /
  video_driven for the two expression runs) at `workdir`.

  role: how the caller names the run in errors (default: the workdir).
  """
  workdir = os.fspath(workdir)
  trainer = "motion" if kind in ("audio_driven", "video_driven") else kind
  setting = role or "run"
  hint = (
    f"make it with: {workdir_lib.train_command(kind, workdir)} "
    "(or all stages at once: python -m saas_jax.train_pipeline)"
  )
  config = workdir_lib.require_run(workdir, trainer, setting, hint)
  spec = workdir_lib.read_spec(workdir)
  if kind in ("audio_driven", "video_driven"):  # "motion": either driver
    driver = kind.split("_")[0]
    if spec["driver"] != driver:
      raise RunError(
        f"{setting} = {workdir} is a {spec['driver']}-driven run; a "
        f"{driver}-driven one is needed here"
      )
  step = workdir_lib.checkpoint_steps(workdir)[-1]
  total = config.get("num_train_steps")
  if total and step < total:
    warnings.warn(
      f"{setting} = {workdir} stopped at step {step} of {total}; using that "
      "checkpoint (re-run its training command to finish it)",
      stacklevel=2,
    )
  loaded = checkpoint.load_params(workdir, step)
  return Run(workdir, spec, step, loaded["params"], loaded["extra"])
