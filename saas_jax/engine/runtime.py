"""Process start-up shared by the training CLIs (main, train_pipeline)."""

import os


def setup(
  coordinator_address: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
  distributed: bool = False,
) -> None:
  """Quiet TensorFlow, keep it off the GPU (it only feeds data), and join a
  multi-process run: an explicit coordinator (CPU and GPU clusters, gloo
  collectives on CPU) or jax.distributed.initialize()'s own detection (TPU
  pods, SLURM)."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  # TensorFlow only feeds data here: without this it loads Keras (4-5 s of
  # every start-up); with it, it looks for tf_keras, finds none, goes on.
  os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
  import jax
  import tensorflow as tf

  tf.config.set_visible_devices([], "GPU")
  if coordinator_address:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
  elif distributed:
    jax.distributed.initialize()
  compilation_cache()


def compilation_cache() -> str | None:
  """Turns on JAX's persistent compilation cache, so that a re-run, a
  resumed run or a second generation reuses compiled steps. Where:
  $SAAS_JAX_COMPILATION_CACHE (0 or off: none), else <$SAAS_JAX_CACHE or
  ~/.cache/saas_jax>/jax_compilation. Returns the folder (None: off)."""
  import jax

  from input_pipeline import default_data

  path = os.environ.get("SAAS_JAX_COMPILATION_CACHE")
  if path is None:
    path = os.path.join(default_data.cache_dir(), "jax_compilation")
  if path.lower() in ("0", "off", "false", ""):
    return None
  jax.config.update("jax_compilation_cache_dir", path)
  # Cache every compilation that takes a while; tiny ones cost more to
  # store than to redo.
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  return path
