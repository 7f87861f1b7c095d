"""The engine: logging, resume after SIGKILL, 8 devices, two processes,
non-finite losses. Runs the style stage's smoke config on a tiny corpus."""

import json
import os
import signal
import subprocess
import time
import types

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from conftest import main_env, python, run_processes, style_smoke_cmd

from saas_jax.engine import checkpoint, config_lib, loop
from saas_jax.engine.train_state import apply_loss
from saas_jax.trainers import style_vqvae

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _smoke(data, **overrides):
  c = config_lib.load(os.path.join(ROOT, "configs/style_vqvae.py:smoke"))
  c.data.data_dir, c.data.config = data
  c.data.eval_split = "test_person"
  for key, value in overrides.items():
    node = c
    *path, last = key.split(".")
    for p in path:
      node = node[p]
    node[last] = value
  return c


def _params(workdir):
  return checkpoint.load_params(workdir)["params"]


def _assert_trees(a, b, exact=True):
  """Equal, or (exact=False) equal up to float reassociation: per tensor,
  |x - y| <= 2e-4 |x| in the 2-norm. Element-wise tolerances test rounding:
  Adam divides each gradient by its own size, so a weight whose gradient is
  a near-cancelled sum moves by a different fraction of a step when the sum
  is reduced in another order (seen on one machine: one of 20480 weights of
  the squasher's first conv, 2.4e-5 apart after 4 steps, while no tensor's
  norm-wise difference exceeded 4.3e-5). A sharding bug (a gradient not
  all-reduced, a shard not updated) moves whole tensors by 1e-2 or more."""
  leaves = jax.tree_util.tree_leaves_with_path(a)
  for (path, x), y in zip(leaves, jax.tree.leaves(b), strict=True):
    if exact:
      np.testing.assert_array_equal(x, y)
    else:
      x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
      diff, norm = np.linalg.norm(x - y), np.linalg.norm(x)
      assert diff <= 2e-4 * norm + 1e-7, (
        jax.tree_util.keystr(path),
        diff,
        norm,
      )


def test_class_factors_of_the_style_classes():
  t = types.SimpleNamespace(
    label=np.array([2, 0, 1]),
    person=np.array([1, 0, 0]),
    emotion=np.array([3, 3, 5]),
    level=np.array([1, 3, 1]),
  )
  assert style_vqvae.class_factors([t], 3) == ((0, 0, 1), (3, 5, 3), (3, 1, 1))
  # Classes 3 and 4 have no clip: values of their own, shared with nobody.
  assert style_vqvae.class_factors([t], 5) == (
    (0, 0, 1, 2, 3),
    (3, 5, 3, 6, 7),
    (3, 1, 1, 4, 5),
  )


def test_smoke_run_logs_and_evaluates(prepared_corpus, tmp_path):
  config = _smoke(prepared_corpus)
  config.eval_every = 4
  state = style_vqvae.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == 4
  lines = [json.loads(x) for x in open(tmp_path / "metrics.jsonl")]
  train = [r for r in lines if "train/loss" in r]
  assert [r["step"] for r in train] == [2, 4]
  assert {
    "train/recon",
    "train/ce",
    "train/triplet",
    "train/vq",
    "train/perplexity",
  } <= set(train[0])
  results = json.load(open(tmp_path / "eval_results.json"))
  assert results["step"] == 4
  for key in ("style_accuracy", "style_retrieval", "recon_rel", "perplexity"):
    assert np.isfinite(results[key])
  assert (tmp_path / "checkpoints" / "4").is_dir()
  # Restarting a finished run resumes at the end and changes nothing.
  again = style_vqvae.train_and_evaluate(config, str(tmp_path))
  _assert_trees(jax.device_get(state.params), jax.device_get(again.params))


def test_init_from_loads_an_earlier_run(prepared_corpus, tmp_path):
  first = style_vqvae.train_and_evaluate(
    _smoke(prepared_corpus), str(tmp_path / "first")
  )
  config = _smoke(prepared_corpus, num_train_steps=0)
  config.init_from = str(tmp_path / "first")
  second = style_vqvae.train_and_evaluate(config, str(tmp_path / "second"))
  _assert_trees(jax.device_get(first.params), jax.device_get(second.params))
  _assert_trees(jax.device_get(first.extra), jax.device_get(second.extra))
  assert int(second.step) == 0  # parameters loaded, optimizer fresh


def test_frozen_networks_load_from_earlier_runs(tmp_path):
  def state_with(params, extra):
    return loop.TrainState.create(
      apply_fn=None, params=params, tx=optax.sgd(0.1), extra=extra
    )

  saved = {"enc": {"w": np.full((2, 3), 7.0, np.float32)}}
  ckpt = checkpoint.Checkpointer(str(tmp_path / "style"), 1, async_save=False)
  ckpt.save(1, state_with(saved, {"stats": {"n": np.ones(4)}}), {}, True)
  ckpt.close()
  slot = {"params": {"enc": {"w": np.zeros((2, 3), np.float32)}}}
  state = state_with({"g": np.zeros(2)}, {"frozen": {"style": slot}})

  loaded = loop.load_frozen(state, {"style": str(tmp_path / "style")})
  frozen = loaded.extra["frozen"]["style"]
  np.testing.assert_array_equal(frozen["params"]["enc"]["w"], 7.0)
  assert "stats" not in frozen  # only what the stage's slot holds

  with pytest.raises(ValueError, match=r"config\.frozen\.style"):
    loop.load_frozen(state, {})
  with pytest.raises(ValueError, match="no frozen part"):
    loop.load_frozen(state, {"style": "a", "pose": "b"})
  wrong = {"params": {"enc": {"w": np.zeros((3, 3), np.float32)}}}
  with pytest.raises(ValueError, match=r"expected \(3, 3\), found \(2, 3\)"):
    loop.load_frozen(
      state.replace(extra={"frozen": {"style": wrong}}),
      {"style": str(tmp_path / "style")},
    )


def _run_main(data, workdir, steps, extra=(), devices=1):
  subprocess.run(
    style_smoke_cmd(data, workdir, steps, extra),
    env=main_env(devices),
    check=True,
    cwd=ROOT,
    capture_output=True,
  )


def test_sigkill_and_resume_is_bit_identical(prepared_corpus, tmp_path):
  steps = 10
  straight = tmp_path / "straight"
  _run_main(prepared_corpus, straight, steps)
  killed = tmp_path / "killed"
  proc = subprocess.Popen(
    style_smoke_cmd(prepared_corpus, killed, steps),
    env=main_env(),
    cwd=ROOT,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
  )
  deadline = time.time() + 300
  ckpts = killed / "checkpoints"
  while time.time() < deadline and proc.poll() is None:
    if (ckpts / "4").is_dir():
      break
    time.sleep(0.01)
  assert proc.poll() is None, "the run ended before it could be killed"
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  done = sorted(int(n) for n in os.listdir(ckpts) if n.isdigit())
  assert done and done[-1] < steps
  _run_main(prepared_corpus, killed, steps)
  _assert_trees(_params(straight), _params(killed), exact=True)

  def logged(run):  # one record a step, as if never interrupted
    return [json.loads(x)["step"] for x in open(run / "metrics.jsonl")]

  assert logged(killed) == logged(straight)


def test_a_resumed_run_logs_each_step_once(tmp_path):
  """The steps after the checkpoint are run and logged again: their
  records from before the interruption go, and a line the kill cut off;
  lines not of the writer stay."""
  from saas_jax.engine import metrics

  w = metrics.MetricWriter(str(tmp_path), tensorboard=False)
  for step in (2, 4, 6, 8):
    w.write(step, {"train/loss": step})
  w.close()
  with open(tmp_path / "metrics.jsonl", "a") as f:
    f.write('a note\n{"step": 8, "train/lo')  # a write cut off by a kill
  w = metrics.MetricWriter(str(tmp_path), tensorboard=False, start_step=4)
  w.write(6, {"train/loss": -6})
  w.close()
  lines = open(tmp_path / "metrics.jsonl").read().splitlines()
  assert lines[-1] == json.dumps({"step": 6, "train/loss": -6.0})
  assert [json.loads(x)["step"] for x in lines if x != "a note"] == [2, 4, 6]
  assert "a note" in lines


def test_eight_devices_match_one(prepared_corpus, tmp_path):
  assert jax.device_count() == 8
  # Adam's eps raised from 1e-9: the L1 reconstruction's gradient is a sum
  # of signs, which for a decoder bias can cancel to a rounding residue;
  # with eps=1e-9 Adam turns that residue into a full step of either sign
  # (seen: one coefficient of vq/head/bias), so the comparison would test
  # rounding, not the sharded math.
  eps = {"optim.eps": 1e-3}
  one = style_vqvae.train_and_evaluate(
    _smoke(prepared_corpus, **{"mesh.shape": (1, 1)}, **eps),
    str(tmp_path / "one"),
  )
  eight = style_vqvae.train_and_evaluate(
    _smoke(prepared_corpus, **{"mesh.shape": (8, 1)}, **eps),
    str(tmp_path / "eight"),
  )
  model = style_vqvae.train_and_evaluate(
    _smoke(
      prepared_corpus,
      **{"mesh.shape": (2, 4), "mesh.min_sharded_size": 1024},
      **eps,
    ),
    str(tmp_path / "model"),
  )
  # A weight large enough to be split over the model axis is split.
  big = model.params["vq"]["encoder"]["block0"]["mlp_in"]["kernel"]
  assert big.sharding.spec == jax.sharding.PartitionSpec(None, "model")
  assert len(big.addressable_shards) == 8
  ref = jax.device_get(one.params)
  _assert_trees(ref, jax.device_get(eight.params), exact=False)
  _assert_trees(ref, jax.device_get(model.params), exact=False)


def test_two_processes_match_one(prepared_corpus, tmp_path):
  shards = ["--config.data.num_shards=2"]
  single = tmp_path / "single"
  _run_main(prepared_corpus, single, 4, shards, devices=2)
  multi = tmp_path / "multi"
  run_processes(
    lambda flags: style_smoke_cmd(prepared_corpus, multi, 4, [*shards, *flags]),
    env=main_env(devices=1),
  )
  _assert_trees(_params(single), _params(multi), exact=False)
  lines = [json.loads(x) for x in open(multi / "metrics.jsonl")]
  assert [r["step"] for r in lines] == [2, 4]  # one writer: process 0


class _Tiny(nn.Module):
  @nn.compact
  def __call__(self, x):
    return nn.Dense(1)(x)


def _tiny_step(state, batch, rng):
  def loss_fn(params, extra, batch, rng):
    pred = state.apply_fn({"params": params}, batch["x"])
    mse = jnp.mean((pred - batch["y"]) ** 2)
    # The "blowup" term turns NaN at step index 3 (the 4th step).
    blowup = jnp.where(batch["step"][0] >= 3, jnp.nan, 0.0)
    return mse + blowup, ({"mse": mse, "blowup": blowup}, extra)

  return apply_loss(state, batch, rng, loss_fn)


def test_non_finite_loss_stops_naming_step_and_term(tmp_path):
  config = config_lib.base("tiny")
  config.num_train_steps, config.eval_every = 10, 0
  config.data.batch_size = 8
  config.optim.update(schedule="constant", lr=1e-2)
  config.ckpt.update(every=2, async_save=False)
  config.log.update(every=5, tensorboard=False)
  model = _Tiny()

  def batches(start, num_steps):
    for step in range(start, start + num_steps):
      yield {
        "x": np.ones((8, 3), np.float32),
        "y": np.ones((8, 1), np.float32),
        "step": np.full((8,), step, np.int32),
      }

  stage = loop.Stage(
    init=lambda rng: model.init(rng, jnp.zeros((1, 3))),
    apply_fn=model.apply,
    train_step=_tiny_step,
    batches=batches,
    cfg=ml_collections.FrozenConfigDict({}),
  )
  with pytest.raises(loop.NonFiniteLossError, match=r"step 4: .*blowup=nan"):
    loop.train_and_evaluate(config, str(tmp_path), stage)
  ckpt = checkpoint.Checkpointer(str(tmp_path), 2)
  assert ckpt.latest_step() == 2  # nothing saved after the bad step
  params = checkpoint.load_params(str(tmp_path))["params"]
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(params))


START_IMPORTS = """
import importlib, pkgutil, sys
import saas_jax.main, saas_jax.trainers as trainers
from input_pipeline import default_data, prepare
from saas_jax.engine import config_lib
def loaded(prefixes):
  return [m for m in sys.modules if m.startswith(prefixes)]
config_lib.validate(config_lib.load("configs/style_vqvae.py:smoke"))
default_data.corpus_dir()
importlib.import_module("saas_jax.trainers.style_vqvae")
importlib.import_module("saas_jax.trainers.style_classifier")
style = loaded(("scipy.signal", "scipy.stats"))
for m in pkgutil.iter_modules(trainers.__path__):
  importlib.import_module("saas_jax.trainers." + m.name)
generator = loaded(tuple(
  "input_pipeline.synthetic." + m
  for m in ("corpus", "motion", "speech", "espeak", "real_space")))
assert not style and not generator, (style[:3], generator)
"""


def test_a_stage_start_leaves_the_generator_and_scipy_signal_unloaded():
  """Training on data that exists never loads the corpus generator, nor
  (the style stages) SciPy's signal package: about a second of every
  start-up, most of a second run's when the executables are cached."""
  r = python(["-c", START_IMPORTS])
  assert r.returncode == 0, r.stderr[-2000:]
