"""How long evaluation takes: the metric kernels, and the CLI per item.

  python benchmarks/evaluate.py [--runs RUNS] [--items 8]

kernels  soft-DTW of the 18 mouth coefficients of a 250-frame pair (the
         NumPy anti-diagonal form the evaluators use, any lengths, nothing
         to compile; beside the training loss's JAX form, compiled once per
         shape), the landmark errors through the MediaPipe basis, a 95%
         bootstrap interval over 1000 items (2000 resamples), and for 5 runs
         of 200 items (two-level).
cli      with --runs (a train_pipeline runs folder): `python -m
         saas_jax.evaluate` with 1 pair and 1 clip, then with --items of
         each; the difference over the extra items is the time per item
         once started (start-up: TensorFlow, JAX, loading, compiling).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def _best(fn, reps=3) -> float:
  times = []
  for _ in range(reps):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return min(times)


def kernels() -> dict:
  import jax

  from saas_jax import face_model, losses
  from saas_jax.evaluators import expression, stats

  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(2, 250, 18))
  jax_dtw = jax.jit(lambda x, y: losses.soft_dtw(x[None], y[None])[0])
  t0 = time.perf_counter()
  jax_dtw(a, b).block_until_ready()
  first = time.perf_counter() - t0
  fm = face_model.load("mediapipe")
  pred, target = rng.normal(0, 0.3, size=(2, 250, 64))
  return {
    "soft_dtw_numpy_s": _best(lambda: expression.soft_dtw(a, b)),
    "soft_dtw_jax_s": _best(lambda: jax_dtw(a, b).block_until_ready()),
    "soft_dtw_jax_first_call_s": first,
    "errors_250_frames_s": _best(lambda: expression.errors(fm, pred, target)),
    "bootstrap_1000_items_s": _best(
      lambda: stats.interval(rng.normal(size=1000))
    ),
    "bootstrap_5_runs_x_200_s": _best(
      lambda: stats.grouped_interval(rng.normal(size=(5, 200)))
    ),
  }


def cli(runs: str, items: int) -> dict:
  def run(n):
    with tempfile.TemporaryDirectory() as out:
      cmd = [sys.executable, "-m", "saas_jax.evaluate", "--runs", runs]
      cmd += ["--out", out, "--quiet", "--max_pairs", str(n)]
      cmd += ["--max_clips", str(n)]
      env = dict(
        os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1"
      )
      t0 = time.perf_counter()
      subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
      return time.perf_counter() - t0

  one, many = run(1), run(items)
  return {
    "one_pair_one_clip_s": one,
    f"{items}_pairs_{items}_clips_s": many,
    "per_pair_and_clip_s": (many - one) / (items - 1),
  }


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--runs", help="a runs folder for the CLI timing")
  p.add_argument("--items", type=int, default=8)
  args = p.parse_args()
  for k, v in kernels().items():
    print(f"{k}: {v:.4f}")
  if args.runs:
    for k, v in cli(args.runs, args.items).items():
      print(f"{k}: {v:.2f}")


if __name__ == "__main__":
  main()
