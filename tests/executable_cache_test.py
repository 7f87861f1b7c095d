"""The executable cache: a second run loads its steps instead of tracing
and compiling them, with the same results; what changes the program
changes the key; a damaged entry is compiled again; the unpickler refuses
what is not JAX's."""

import io
import os
import pickle
import subprocess

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from conftest import main_env, style_smoke_cmd

from saas_jax.engine import checkpoint, config_lib, executable_cache, loop
from saas_jax.engine.train_state import apply_loss

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _Tiny(nn.Module):
  @nn.compact
  def __call__(self, x):
    return nn.Dense(1)(nn.relu(nn.Dense(4)(x)))


def _step(state, batch, rng):
  def loss_fn(params, extra, batch, rng):
    noise = jax.random.normal(rng, batch["x"].shape) * state.cfg.noise
    pred = state.apply_fn({"params": params}, batch["x"] + noise)
    mse = jnp.mean((pred - batch["y"]) ** 2)
    return mse, ({"mse": mse}, extra)

  return apply_loss(state, batch, rng, loss_fn)


def _train(workdir, noise=0.1, lr=1e-2):
  config = config_lib.base("tiny")
  config.num_train_steps, config.eval_every = 3, 0
  config.data.batch_size = 8
  config.optim.update(schedule="constant", lr=lr)
  config.ckpt.update(every=3, async_save=False)
  config.log.update(every=3, tensorboard=False)
  model = _Tiny()

  def batches(start, num_steps):
    rng = np.random.default_rng(start)
    for _ in range(num_steps):
      x = rng.normal(size=(8, 3)).astype(np.float32)
      yield {"x": x, "y": x.sum(1, keepdims=True)}

  stage = loop.Stage(
    init=lambda rng: model.init(rng, jnp.zeros((1, 3))),
    apply_fn=model.apply,
    train_step=_step,
    batches=batches,
    cfg=ml_collections.FrozenConfigDict({"noise": noise}),
  )
  return jax.device_get(loop.train_and_evaluate(config, str(workdir), stage))


def _entries(folder):
  return sorted(os.listdir(folder)) if folder.is_dir() else []


def test_second_run_loads_and_matches(cache_dir, tmp_path, capsys):
  first = _train(tmp_path / "a")
  names = _entries(cache_dir)
  assert [n.split("-")[0] for n in names] == ["init_state", "train_step"]
  assert "loaded from" not in capsys.readouterr().err
  second = _train(tmp_path / "b")
  (line,) = [
    x for x in capsys.readouterr().err.splitlines() if "loaded" in x
  ]  # one line: what was loaded, how long it took, from where
  assert line.startswith(
    f"train step and initialisation loaded from {cache_dir} in "
  )
  assert line.count("loaded") == 1
  assert _entries(cache_dir) == names  # nothing compiled, nothing added
  for x, y in zip(jax.tree.leaves(first), jax.tree.leaves(second), strict=True):
    np.testing.assert_array_equal(x, y)
  # What changes the program changes the key: a static setting the step
  # reads (state.cfg) and a config value (the learning rate, in the
  # optimizer) each give new entries, and results of their own.
  noisier = _train(tmp_path / "c", noise=0.5)
  assert len(_entries(cache_dir)) == 4  # the state's static fields are keyed
  faster = _train(tmp_path / "d", lr=1e-1)
  assert len(_entries(cache_dir)) == 6
  for other in (noisier, faster):
    assert not np.array_equal(other.params, second.params)


def test_damaged_entry_is_compiled_again(cache_dir, tmp_path, capsys, caplog):
  first = _train(tmp_path / "a")
  for name in _entries(cache_dir):
    path = cache_dir / name
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])  # a half-written file
  again = _train(tmp_path / "b")
  assert "loaded from" not in capsys.readouterr().err
  assert caplog.text.count("not loaded (error:") == 2  # zlib's
  for x, y in zip(jax.tree.leaves(first), jax.tree.leaves(again), strict=True):
    np.testing.assert_array_equal(x, y)
  third = _train(tmp_path / "c")  # rewritten whole by the second run
  assert "train step and initialisation loaded from" in capsys.readouterr().err
  for x, y in zip(jax.tree.leaves(first), jax.tree.leaves(third), strict=True):
    np.testing.assert_array_equal(x, y)


def test_what_jax_loaded_from_its_cache_is_not_stored(
  jax_cache_on, tmp_path, capsys
):
  """An executable JAX loaded from its own cache serialises without its
  kernels (jax 0.12, XLA:CPU), so such a run stores nothing: it traces and
  loads as before the executable cache existed."""
  first = _train(tmp_path / "a")
  assert len(_entries(jax_cache_on)) == 2
  for name in _entries(jax_cache_on):
    os.remove(jax_cache_on / name)
  again = _train(tmp_path / "b")  # both from JAX's cache
  assert "loaded from" not in capsys.readouterr().err
  assert _entries(jax_cache_on) == []
  for x, y in zip(jax.tree.leaves(first), jax.tree.leaves(again), strict=True):
    np.testing.assert_array_equal(x, y)


def test_least_recently_used_entries_go_beyond_the_size(
  cache_dir, tmp_path, monkeypatch, capsys
):
  """Held to $SAAS_JAX_EXECUTABLE_CACHE_MB: a store removes the entries
  used longest ago, and a load counts as a use."""
  _train(tmp_path / "a")
  a = _entries(cache_dir)
  sizes = [os.path.getsize(cache_dir / n) for n in a]
  _train(tmp_path / "c", noise=0.5)
  c = sorted(set(_entries(cache_dir)) - set(a))
  (cache_dir / "x.bin.tmp1.2").write_bytes(b"half")  # a writer long gone
  os.utime(cache_dir / "x.bin.tmp1.2", (1, 1))
  _train(tmp_path / "b")  # loads a's entries: now used after c's
  assert "train step and initialisation loaded from" in capsys.readouterr().err
  # Room for two runs' entries and half of one more.
  cap = 2 * sum(sizes) + min(sizes) / 2
  monkeypatch.setenv(executable_cache.MAX_MB_VARIABLE, str(cap / 2**20))
  _train(tmp_path / "d", lr=1e-1)
  d = sorted(set(_entries(cache_dir)) - set(a) - set(c))
  assert len(c) == len(d) == 2
  assert _entries(cache_dir) == sorted(a + d)  # c's went, the tmp too
  _train(tmp_path / "e")
  assert "train step and initialisation loaded from" in capsys.readouterr().err


def test_jit_keys_statics_shapes_and_context(cache_dir):
  """executable_cache.Jit: plain jax.jit without a context; with one (or a
  function giving it), an executable per static values, argument shapes
  and context, loaded (not traced) by another Jit of the same function and
  context."""
  traces = []

  def f(x, scale, *, power):
    traces.append(scale)
    return (x * scale) ** power

  def jit(context):
    g = executable_cache.Jit(
      f, "f", static_argnums=(1,), static_argnames=("power",)
    )
    g.context = context
    return g

  x = jnp.arange(3.0)
  np.testing.assert_array_equal(jit(None)(x, 2.0, power=2), (2 * x) ** 2)
  assert _entries(cache_dir) == []
  first = jit("run 1")(x, 2.0, power=2)
  assert len(_entries(cache_dir)) == 1 and len(traces) == 2
  other = jit(lambda: "run 1")  # a context given when first needed
  np.testing.assert_array_equal(other(x, 2.0, power=2), first)
  assert len(traces) == 2  # loaded, not traced
  np.testing.assert_array_equal(other(x, 3.0, power=2), (3 * x) ** 2)
  np.testing.assert_array_equal(other(x, 2.0, power=3), (2 * x) ** 3)
  other(jnp.arange(4.0), 2.0, power=2)
  jit("run 2")(x, 2.0, power=2)
  assert len(_entries(cache_dir)) == 5 and len(traces) == 6


def test_unpickler_refuses_what_is_not_jaxs():
  backend = jax.devices()[0].client
  for evil in (os.system, subprocess.run, np.load, pickle.loads):
    payload = pickle.dumps(evil)
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
      executable_cache._Unpickler(io.BytesIO(payload), backend).load()


def test_main_second_process_loads(prepared_corpus, tmp_path):
  """Across processes (the key holds no addresses or ids of this one): a
  second `saas_jax.main` run of the style stage's smoke config loads both
  executables and ends with the same parameters."""
  env = main_env()
  env["SAAS_JAX_COMPILATION_CACHE"] = str(tmp_path / "cache")
  logs = []
  for run in ("a", "b"):
    proc = subprocess.run(
      style_smoke_cmd(
        prepared_corpus, tmp_path / run, 2, ["--config.eval_every=0"]
      ),
      env=env,
      cwd=ROOT,
      capture_output=True,
      text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    logs.append(proc.stderr)
  assert "loaded from" not in logs[0]
  assert "train step and initialisation loaded from" in logs[1]
  a, b = (checkpoint.load_params(str(tmp_path / r))["params"] for r in "ab")
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(x, y)


def test_files_the_config_names_are_keyed_by_content(tmp_path):
  """A face model's basis is a constant of the step: a config naming the
  same path with other content must not load the old executable."""
  basis = tmp_path / "basis.npz"
  basis.write_bytes(b"one")
  config = config_lib.base("tiny")
  config.face_model = str(basis)
  before = executable_cache._config_digest(config)
  assert executable_cache._config_digest(config) == before
  basis.write_bytes(b"two")
  os.utime(basis, (1, 1))  # a new mtime, as any rewrite has
  assert executable_cache._config_digest(config) != before
