"""How close each side-by-side row can get to the official code: operation
counts against this machine's peak.

  python ../shared/tools/refbench/run.py --out ref.json --sections a,b,c \\
      --reps 3 --vq-batches 256,32 --gen-batches 32   # the official side
  python benchmarks/roofline.py --ref ref.json [--out roofline.json]

For each equal-scope row of README "Beside the official code" it compiles
the saas_jax computation, takes XLA's count of its floating-point
operations, times it (median of --reps after a warm-up) and sets both beside
the fastest time this machine allows for that many operations: the count
over the peak of an f32 matrix product (XLA's, and PyTorch's where it is
installed; the higher one). The official column is read from refbench's
JSON of the same sitting. "Best ratio" is that fastest time over the
official time: where it exceeds the target ratio, no f32 implementation of
the same work reaches the target on this machine. The official side is
assumed to do the same operations as ours at equal scope (same layers and
sizes; saas_jax's style encoder also reads velocities, a few % more).
"""

import argparse
import itertools
import json
import os
import resource
import time

import jax
import motion as motion_bench
import numpy as np
import profiling
import style_vqvae as style_bench

from saas_jax.engine import config_lib
from saas_jax.trainers import style_vqvae

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _timed(call, reps: int) -> dict:
  """Median wall time of `reps` calls after a warm-up, and per call the
  process's minor page faults and kernel / user CPU seconds (getrusage):
  XLA:CPU maps its scratch afresh on each call, and the kernel time of
  faulting it in is part of the wall time."""
  t0 = time.perf_counter()
  call()
  first = time.perf_counter() - t0
  r0 = resource.getrusage(resource.RUSAGE_SELF)
  times = []
  for _ in range(reps):
    t0 = time.perf_counter()
    call()
    times.append(time.perf_counter() - t0)
  r1 = resource.getrusage(resource.RUSAGE_SELF)
  return {
    "saas_jax_s": float(np.median(times)),
    "first_call_s": first,
    "faults": (r1.ru_minflt - r0.ru_minflt) / reps,
    "sys_s": (r1.ru_stime - r0.ru_stime) / reps,
    "user_s": (r1.ru_utime - r0.ru_utime) / reps,
  }


def _step_call(compiled, state, batch):
  """One train step per call; the step donates its state, kept here."""
  holder = [state]
  key = jax.random.key(0)

  def call():
    holder[0], m = compiled(holder[0], batch, key)
    jax.block_until_ready(m)

  return call


def torch_matmul_peak(n: int = 2048, reps: int = 5, threads: int = 2):
  """PyTorch's f32 matrix product GFLOP/s with `threads` threads (as
  refbench runs the official code), or None without torch."""
  try:
    import torch
  except ImportError:
    return None
  torch.set_num_threads(threads)
  a = torch.randn(n, n)
  a @ a
  best = float("inf")
  for _ in range(reps):
    t0 = time.perf_counter()
    a @ a
    best = min(best, time.perf_counter() - t0)
  return 2 * n**3 / best / 1e9


def style_rows(batches, reps):
  config = config_lib.load(os.path.join(ROOT, "configs/style_vqvae.py"))
  classes = 1323
  model, tx, params, variables = style_bench.make_model(config, classes)
  step = jax.jit(style_vqvae.train_step, donate_argnums=0)
  for b in batches:
    state, batch = style_bench.make_inputs(
      config, model, tx, params, variables, b, "anchor", classes
    )
    key = jax.random.key(0)
    compiled = step.lower(state, batch, key).compile()
    yield (
      f"style VQ-VAE train step, batch {b} (anchor decoded)",
      ("a", f"train_step_B{b}_intended"),
      profiling.flops(compiled),
      _timed(_step_call(compiled, state, batch), reps),
    )


def motion_rows(batch, reps):
  style = config_lib.load(os.path.join(ROOT, "configs/style_vqvae.py")).model
  config, nets = motion_bench._nets("paper", "audio", style)
  compiled, gen = motion_bench.generator_pass(config, nets, batch)
  yield (
    f"expression generator forward + backward, batch {batch}",
    ("b", f"train_pass_B{batch}_full"),
    motion_bench.generator_pass_flops(config, nets, batch),
    _timed(lambda: jax.block_until_ready(compiled(gen)), reps),
  )
  steady = motion_bench.inference_time(nets, style, reps=reps)[2]
  yield (
    "60 s of audio -> expression (generation; mel excluded on both sides)",
    ("c", "gen_expression_60s"),
    motion_bench.inference_flops(nets),
    {"saas_jax_s": steady},
  )


def official_time(ref: dict, section: str, key: str):
  """refbench's median for a row, or None (not in the JSON)."""
  entry = ref.get(section, {}).get(key)
  return entry.get("median_s") if isinstance(entry, dict) else None


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--ref", help="refbench's JSON of the same sitting")
  parser.add_argument("--out", help="write the table as JSON here")
  parser.add_argument("--reps", type=int, default=3)
  parser.add_argument("--target", type=float, default=0.5)
  parser.add_argument("--vq_batches", default="256,32")
  parser.add_argument("--gen_batch", type=int, default=32)
  args = parser.parse_args()
  ref = {}
  if args.ref:
    with open(args.ref) as f:
      ref = json.load(f)
  peak_xla = profiling.matmul_peak()
  peak_torch = torch_matmul_peak()
  peak = max(peak_xla, peak_torch or 0.0)
  print(
    f"{jax.devices()[0].platform}: f32 2048^3 matrix product, XLA "
    f"{peak_xla:.1f} GFLOP/s, PyTorch "
    + (f"{peak_torch:.1f}" if peak_torch else "n/a")
    + " GFLOP/s (2 threads)"
  )
  rows = []
  batches = [int(b) for b in args.vq_batches.split(",")]
  for what, (sec, key), flops, timing in itertools.chain(
    style_rows(batches, args.reps), motion_rows(args.gen_batch, args.reps)
  ):
    official = official_time(ref, sec, key)
    floor = flops / (peak * 1e9)
    ours = timing["saas_jax_s"]
    row = {
      "what": what,
      "gflop": flops / 1e9,
      **timing,
      "saas_jax_gflops": flops / 1e9 / ours,
      "official_s": official,
      "fastest_s": floor,
    }
    if official:
      row.update(
        ratio=ours / official,
        official_gflops=flops / 1e9 / official,
        best_ratio=floor / official,
      )
    rows.append(row)
    print(json.dumps(row), flush=True)
  print(
    f"\n| what | GFLOP | official | saas_jax | ratio | saas_jax GFLOP/s | "
    f"official GFLOP/s | fastest at peak | best ratio (target "
    f"{args.target}) | page faults, kernel s per call |"
    "\n|---|---|---|---|---|---|---|---|---|---|"
  )
  for r in rows:
    o = r["official_s"]
    print(
      f"| {r['what']} | {r['gflop']:.1f} | "
      + (f"{o:.3f} s" if o else "-")
      + f" | {r['saas_jax_s']:.3f} s | "
      + (f"{r['ratio']:.2f}" if o else "-")
      + f" | {r['saas_jax_gflops']:.0f} | "
      + (f"{r['official_gflops']:.0f}" if o else "-")
      + f" | {r['fastest_s']:.3f} s | "
      + (f"{r['best_ratio']:.2f}" if o else "-")
      + (
        f" | {r['faults'] / 1e6:.2f} M, {r['sys_s']:.2f} s |"
        if "faults" in r
        else " | - |"
      )
    )
  if args.out:
    with open(args.out, "w") as f:
      json.dump(
        {"peak_xla": peak_xla, "peak_torch": peak_torch, "rows": rows},
        f,
        indent=1,
      )


if __name__ == "__main__":
  main()
