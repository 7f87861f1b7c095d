"""Config sections every stage shares; stage configs start from `base()`."""

import importlib.util

import ml_collections

from saas_jax.errors import DataError


def base(trainer: str) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.trainer = trainer
  c.seed = 0
  c.num_train_steps = 100_000
  c.eval_every = 5_000
  c.init_from = ""  # workdir of an earlier stage
  # {name: workdir}: networks of earlier stages this stage uses fixed (see
  # engine.loop.load_frozen); stage configs name theirs.
  c.frozen = ml_collections.ConfigDict()

  c.data = ml_collections.ConfigDict()
  # Empty: the embedded default data (the small synthetic corpus, generated
  # and prepared on first use under $SAAS_JAX_CACHE or ~/.cache/saas_jax).
  c.data.data_dir = ""
  # The default data's voices: "source_filter" or "espeak" (eSpeak NG,
  # `pip install espeakng-loader`; input_pipeline.synthetic --speech).
  c.data.speech = "source_filter"
  c.data.config = "manifest"  # talking_face builder config (corpus layout)
  c.data.train_split = "train"
  c.data.eval_split = "test"  # held-out clips of seen styles
  c.data.num_shards = 0  # data shards; 0: one per process
  c.data.batch_size = 256  # global

  c.optim = ml_collections.ConfigDict()
  c.optim.name = "adamw"
  c.optim.schedule = "noam"
  c.optim.lr = 2.0  # Noam factor, or the peak rate for constant/cosine
  c.optim.d_model = 256
  c.optim.warmup_steps = 100_000
  c.optim.b1 = 0.9
  c.optim.b2 = 0.98
  c.optim.eps = 1e-9
  c.optim.weight_decay = 0.01
  c.optim.clip_norm = 0.0
  c.optim.freeze = ()

  c.mesh = ml_collections.ConfigDict()
  c.mesh.shape = (-1, 1)
  c.mesh.axes = ("data", "model")
  # Weights with fewer elements stay replicated on the model axis.
  c.mesh.min_sharded_size = 2**16

  c.ckpt = ml_collections.ConfigDict()
  c.ckpt.every = 1_000
  c.ckpt.keep = 3
  c.ckpt.async_save = True

  c.log = ml_collections.ConfigDict()
  c.log.every = 100
  c.log.tensorboard = True
  return c


def validate(c) -> None:
  """The engine settings' ranges, each error naming its key."""
  checks = (
    ("data.batch_size", c.data.batch_size, lambda v: v >= 1),
    ("num_train_steps", c.num_train_steps, lambda v: v >= 0),
    ("seed", c.seed, lambda v: v >= 0),
    ("eval_every", c.eval_every, lambda v: v >= 0),
    ("ckpt.every", c.ckpt.every, lambda v: v >= 1),
    ("ckpt.keep", c.ckpt.keep, lambda v: v >= 1),
    ("log.every", c.log.every, lambda v: v >= 1),
    ("data.num_shards", c.data.num_shards, lambda v: v >= 0),
  )
  for key, value, ok in checks:
    if isinstance(value, bool) or not isinstance(value, int) or not ok(value):
      raise DataError(f"config.{key}", f"{value!r} is out of range")
  from input_pipeline.synthetic.version import SPEECH_ENGINES

  if c.data.speech not in SPEECH_ENGINES:
    raise DataError(
      "config.data.speech", f"{c.data.speech!r} is not one of {SPEECH_ENGINES}"
    )


def smoke(c, *, steps=4, every=2, batch_size=8) -> ml_collections.ConfigDict:
  """Engine settings of a seconds-long run (the tests' `smoke` variants):
  batch 8 for the 8 simulated devices, synchronous saves, no TensorBoard."""
  c.data.batch_size = batch_size
  c.num_train_steps = steps
  c.eval_every = 0
  c.ckpt.update(every=every, async_save=False)
  c.log.update(every=every, tensorboard=False)
  return c


def load(spec: str) -> ml_collections.ConfigDict:
  """ "configs/style_vqvae.py:cpu" -> that config (for tests and notebooks)."""
  path, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("_saas_config", path)
  if module_spec is None:
    raise FileNotFoundError(f"no config file at {path}")
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)
