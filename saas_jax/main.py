"""Trains one SAAS stage from an ml_collections config.

  python -m saas_jax.main --config configs/style_vqvae.py:cpu [--workdir W]
      [--config.num_train_steps=100 ...]

Multi-process (e.g. two CPU processes on one machine, or GPU hosts):
  --coordinator_address=host:port --num_processes=N --process_id=i
TPU pods and SLURM clusters are detected by jax.distributed.initialize().
"""

import importlib
import json
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from saas_jax.engine import config_lib
from saas_jax.engine import workdir as workdir_lib
from saas_jax.errors import DataError, check_writable_folder, exit_interrupted

_CONFIG = config_flags.DEFINE_config_file("config", None, "Stage config file.")
_WORKDIR = flags.DEFINE_string(
  "workdir", None, "Run folder (default runs/<config name>)."
)
_COORDINATOR = flags.DEFINE_string(
  "coordinator_address", None, "jax.distributed coordinator host:port."
)
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "")
_DISTRIBUTED = flags.DEFINE_bool(
  "distributed", False, "Call jax.distributed.initialize() (pods)."
)
_COMPILATION_CACHE = flags.DEFINE_bool(
  "compilation_cache",
  True,
  "Reuse compiled steps across runs (JAX's persistent cache in "
  "$SAAS_JAX_COMPILATION_CACHE, else jax_compilation under $SAAS_JAX_CACHE "
  "or ~/.cache/saas_jax); --nocompilation_cache turns it off.",
)


def main(argv):
  del argv
  _STARTED.append(True)
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # orbax is chatty at INFO
  from saas_jax.engine import runtime  # after flags: platform choices apply

  if not _COMPILATION_CACHE.value:
    os.environ["SAAS_JAX_COMPILATION_CACHE"] = "off"
  runtime.setup(
    _COORDINATOR.value,
    _NUM_PROCESSES.value,
    _PROCESS_ID.value,
    _DISTRIBUTED.value,
  )
  config = _CONFIG.value
  try:
    config_lib.validate(config)
  except DataError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  path = config_flags.get_config_filename(flags.FLAGS["config"])
  name = os.path.splitext(os.path.basename(path))[0]
  workdir = _WORKDIR.value or os.path.join("runs", name)
  logging.info("config %s -> workdir %s", name, workdir)
  trainer = importlib.import_module(f"saas_jax.trainers.{config.trainer}")
  try:
    # Before the data is read: a refused re-run should not wait for it.
    check_writable_folder(workdir)
    workdir_lib.check_same_config(workdir, json.loads(config.to_json()))
    trainer.train_and_evaluate(config, workdir)
  except (DataError, workdir_lib.RunError) as e:  # bad input: no traceback
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


_STARTED = []  # main() ran: the flags (and config overrides) parsed


def _parse_flags(argv):
  """absl's parsing, with a bad flag or config (a missing file, an unknown
  variant, a value of the wrong type) told in one line, exit code 2."""
  try:
    rest = flags.FLAGS(argv)
  except (flags.Error, OSError) as e:
    text = str(e).strip().splitlines()
    print(f"error: {text[-1] if text else type(e).__name__}", file=sys.stderr)
    sys.exit(2)
  # FILE[:ARG]; the file is read later, where a missing one is a traceback.
  path = config_flags.get_config_filename(flags.FLAGS["config"])
  path = path.split(".py:", 1)[0] + ".py" if ".py:" in path else path
  if not os.path.isfile(path):
    print(f"error: --config: no such file {path}", file=sys.stderr)
    sys.exit(2)
  return rest


def run() -> None:
  """app.run(main), with a bad --config override (an unknown key) told in
  one line instead of ml_collections' traceback."""
  flags.mark_flags_as_required(["config"])
  try:
    app.run(main, flags_parser=_parse_flags)
  except (AttributeError, KeyError) as e:
    if _STARTED:
      raise
    key = str(e).strip("\"'")
    print(f"error: bad --config override: no setting '{key}'", file=sys.stderr)
    sys.exit(2)
  except KeyboardInterrupt:
    exit_interrupted(
      "the run keeps its last saved checkpoint; the same command resumes it"
    )


if __name__ == "__main__":
  run()
