"""Test setup: 8 simulated CPU devices, quiet TensorFlow, shared test data."""

import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile

# Must precede any jax import.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow without Keras (nothing here uses it): 4-5 s off every start.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One persistent compilation cache for the tests and the CLIs they run,
# outside the user's own (~/.cache/saas_jax).
os.environ.setdefault(
  "SAAS_JAX_COMPILATION_CACHE",
  os.path.join(tempfile.gettempdir(), "saas_jax_test_compilation_cache"),
)

import json
import pathlib

import jax
import numpy as np
import pytest
import soundfile
from jax.experimental.compilation_cache import compilation_cache as jax_cache

from input_pipeline import io
from saas_jax.engine import executable_cache, runtime

# The tests themselves share that cache too: a step compiled by one test (or
# worker, or an earlier run on this machine) is not compiled again.
runtime.compilation_cache()

# torch (the converters' parity tests) imports triton from its optimizers
# and compiler; triton's LLVM segfaults a process that has loaded
# TensorFlow's. Nothing here needs triton (CPU only): it stays unimportable.
sys.modules.setdefault("triton", None)

ROOT = pathlib.Path(__file__).resolve().parents[1]
# ../shared beside the checkout (CI and developers have it; users do not).
SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def jax_cache_on(tmp_path):
  """A cache folder of this test's own, for JAX's cache and the executable
  cache (JAX checks its cache once per process: hence the resets), JAX's
  storing every compilation."""
  keep = {
    k: jax.config.values[k]
    for k in (
      "jax_compilation_cache_dir",
      "jax_enable_compilation_cache",
      "jax_persistent_cache_min_compile_time_secs",
    )
  }
  jax.config.update("jax_compilation_cache_dir", str(tmp_path / "cache"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  jax_cache.reset_cache()
  yield tmp_path / "cache" / executable_cache.FOLDER
  for k, v in keep.items():
    jax.config.update(k, v)
  jax_cache.reset_cache()


@pytest.fixture
def cache_dir(jax_cache_on):
  """The executable cache alone (JAX's off): what it stores and loads does
  not depend on what JAX's cache holds."""
  jax.config.update("jax_enable_compilation_cache", False)
  jax_cache.reset_cache()
  return jax_cache_on


@pytest.fixture
def shared_data() -> pathlib.Path:
  if not SHARED.is_dir():
    pytest.skip(f"shared test data not present at {SHARED}")
  return SHARED


# ------------------------------------------------------- a test corpus ---


def write_clip(root, rel, seconds, seed, fps=25):
  rng = np.random.default_rng(seed)
  n = int(seconds * fps)
  coeff = rng.normal(size=(n, 257)).astype(np.float32) * 0.1
  params = np.tile([256, 256, 1.0, 128, 128], (n, 1))
  os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
  io.save_coefficients_mat(os.path.join(root, rel + ".mat"), coeff, params)
  t = np.arange(int(seconds * 16000)) / 16000
  wav = 0.3 * np.sin(2 * np.pi * (100 + 50 * seed % 7) * t)
  wav += 0.01 * rng.normal(size=t.size)
  soundfile.write(os.path.join(root, rel + ".wav"), wav, 16000)
  return coeff


def write_manifest_corpus(
  root,
  persons=5,
  emotions=("angry", "happy"),
  levels=(1, 3),
  clips=2,
  with_bad=True,
):
  records = []
  seed = 0
  for p in range(persons):
    for e in emotions:
      for lv in levels:
        for k in range(clips):
          cid = f"P{p:02d}#{e}#level_{lv}#{k:03d}"
          rel = f"P{p:02d}/{e}/{cid}"
          write_clip(root, rel, seconds=2.0 + 0.1 * k, seed=seed)
          seed += 1
          records.append(
            {
              "id": cid,
              "coeff_path": rel + ".mat",
              "audio_path": rel + ".wav",
              "person": f"P{p:02d}",
              "emotion": e,
              "level": lv,
            }
          )
  if with_bad:
    rel = "bad/nan_clip"
    coeff = write_clip(root, rel, 2.0, seed=99)
    coeff[5, 100] = np.nan
    io.save_coefficients_mat(
      os.path.join(root, rel + ".mat"),
      coeff,
      np.tile([256, 256, 1, 128, 128], (50, 1)),
    )
    records.append(
      {
        "id": "PBAD#angry#level_1#000",
        "coeff_path": rel + ".mat",
        "audio_path": rel + ".wav",
        "person": "P00",
        "emotion": "angry",
        "level": 1,
      }
    )
  with open(os.path.join(root, "manifest.jsonl"), "w") as f:
    for r in records:
      f.write(json.dumps(r, sort_keys=True) + "\n")
  return records


@pytest.fixture(scope="session")
def prepared_corpus(tmp_path_factory):
  """(data_dir, builder config) of a small manifest corpus, prepared once."""
  from input_pipeline import prepare

  root = tmp_path_factory.mktemp("session_corpus")
  write_manifest_corpus(root, with_bad=False)
  data_dir = tmp_path_factory.mktemp("session_tfds")
  prepare.prepare("manifest", str(root), str(data_dir))
  return str(data_dir), "manifest"


def shared_dir(tmp_path_factory, name, make) -> pathlib.Path:
  """A folder made once per test session, across xdist workers: the first
  worker to ask runs `make(folder)`, the others wait for it."""
  base = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    base = base.parent  # pytest-N/, shared by the workers' popen-gwK/
  path = base / name
  with open(base / f"{name}.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not (path / ".done").is_file():
      shutil.rmtree(path, ignore_errors=True)
      path.mkdir()
      make(path)
      (path / ".done").write_text("")
  return path


def run_processes(command, env, num: int = 2) -> None:
  """Runs command(flags) as `num` jax processes on localhost (flags: the
  coordinator address, process count and id; none for one process) and
  checks that all succeed."""
  with socket.socket() as s:
    s.bind(("localhost", 0))
    port = s.getsockname()[1]
  flags = [f"--coordinator_address=localhost:{port}", f"--num_processes={num}"]
  procs = [
    subprocess.Popen(
      command([*flags, f"--process_id={i}"] if num > 1 else []),
      cwd=ROOT,
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
    )
    for i in range(num)
  ]
  for p in procs:
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out.decode()[-3000:]


def style_smoke_cmd(data, workdir, steps, extra=()):
  """`saas_jax.main` on the style stage's smoke config over a test corpus."""
  return [
    sys.executable,
    "-m",
    "saas_jax.main",
    "--config",
    str(ROOT / "configs/style_vqvae.py:smoke"),
    "--workdir",
    str(workdir),
    f"--config.data.data_dir={data[0]}",
    f"--config.data.config={data[1]}",
    "--config.data.eval_split=test_person",
    f"--config.num_train_steps={steps}",
    "--config.ckpt.every=2",
    *extra,
  ]


def main_env(devices=1):
  """The environment of a `saas_jax.main` process: `devices` CPU devices,
  the checkout importable."""
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
  return env


def python(args, one_device=True, **kw) -> subprocess.CompletedProcess:
  """A CLI run from the checkout, as a user runs it (one CPU device)."""
  env = dict(os.environ)
  if one_device:
    env.pop("XLA_FLAGS", None)
  return subprocess.run(
    [sys.executable, *args],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    **kw,
  )


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory):
  """The tiny preset of the synthetic corpus, generated once per session."""

  def make(path):
    args = ["--out_dir", str(path / "tiny"), "--preset", "tiny", "--seed", "0"]
    proc = python(["-m", "input_pipeline.synthetic", *args, "--quiet"])
    assert proc.returncode == 0, proc.stderr[-3000:]

  return shared_dir(tmp_path_factory, "synthetic", make) / "tiny"


@pytest.fixture(scope="session")
def prepared_tiny(tiny_synthetic, tmp_path_factory):
  """The tiny synthetic corpus prepared as TFDS shards, once per session:
  {"data": (data_dir, builder config), "corpus": corpus dir}."""

  def make(path):
    from input_pipeline import prepare

    prepare.prepare("manifest", str(tiny_synthetic), str(path))

  data_dir = shared_dir(tmp_path_factory, "tiny_tfds", make)
  return {"data": (str(data_dir), "manifest"), "corpus": str(tiny_synthetic)}


def smoke_pipeline_args(prepared_tiny, runs) -> list[str]:
  data_dir, data_config = prepared_tiny["data"]
  return [
    "-m",
    "saas_jax.train_pipeline",
    "--variant",
    "smoke",
    "--runs",
    str(runs),
    "--data_dir",
    data_dir,
    "--data_config",
    data_config,
    "--pairs_dir",
    prepared_tiny["corpus"],
  ]


@pytest.fixture(scope="session")
def smoke_runs(prepared_tiny, tmp_path_factory) -> str:
  """All six stages, smoke size, trained once per session on the tiny
  corpus by train_pipeline in a subprocess (as a user runs it); each stage
  evaluated at its end. Tests read these runs and never write to them."""

  def make(path):
    proc = python(smoke_pipeline_args(prepared_tiny, path / "runs"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[6/6] pose_generator" in proc.stderr

  return str(shared_dir(tmp_path_factory, "smoke_pipeline", make) / "runs")


def pytest_collection_modifyitems(items):
  """The six smoke stages train once per session (`smoke_runs`, minutes):
  the file that trains them goes first and the other files that read them
  last, so that the other worker runs everything else meanwhile instead of
  waiting for the runs (--dist loadfile hands out files in this order)."""
  first = "tests/generate_test.py"
  readers = {
    item.nodeid.split("::")[0]
    for item in items
    if "smoke_runs" in getattr(item, "fixturenames", ())
  }

  def rank(item):
    path = item.nodeid.split("::")[0]
    return 0 if path == first else 2 if path in readers else 1

  items.sort(key=rank)
