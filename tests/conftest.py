"""Test setup: 8 simulated CPU devices, quiet TensorFlow, shared test data."""

import os
import tempfile

# Must precede any jax import.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Subprocesses that run the CLIs share one persistent compilation cache,
# outside the user's own (~/.cache/saas_jax).
os.environ.setdefault(
  "SAAS_JAX_COMPILATION_CACHE",
  os.path.join(tempfile.gettempdir(), "saas_jax_test_compilation_cache"),
)

import json
import pathlib

import numpy as np
import pytest
import soundfile

from input_pipeline import io

# ../shared beside the checkout (CI and developers have it; users do not).
SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


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


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory):
  """The tiny preset of the synthetic corpus, generated once per session."""
  import subprocess
  import sys

  out = tmp_path_factory.mktemp("synthetic") / "tiny"
  subprocess.run(
    [
      sys.executable,
      "-m",
      "input_pipeline.synthetic",
      "--out_dir",
      str(out),
      "--preset",
      "tiny",
      "--seed",
      "0",
      "--quiet",
    ],
    check=True,
    cwd=pathlib.Path(__file__).resolve().parents[1],
  )
  return out


@pytest.fixture(scope="session")
def prepared_tiny(tiny_synthetic, tmp_path_factory):
  """The tiny synthetic corpus prepared as TFDS shards, once per session:
  {"data": (data_dir, builder config), "corpus": corpus dir}."""
  from input_pipeline import prepare

  data_dir = tmp_path_factory.mktemp("tiny_tfds")
  prepare.prepare("manifest", str(tiny_synthetic), str(data_dir))
  return {"data": (str(data_dir), "manifest"), "corpus": str(tiny_synthetic)}
