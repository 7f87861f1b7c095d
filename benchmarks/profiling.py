"""Where a compiled step spends its time, by model part and by op kind.

Runs a compiled function under `jax.profiler.trace`, reads the trace back
(`jax.profiler.ProfileData`), and charges each executed XLA op to the part
of the model that emitted it: the op's name stack in the compiled HLO
(`jit(train_step)/.../decoder/block3/attn/...`) is cut to `depth` module
names, and backward ops are kept apart from forward ones. Used by the
benchmark scripts' `--profile` flag:

  from profiling import profile, print_table
  print_table(profile(lambda: compiled(*args), compiled.as_text()))

`run` makes one call and blocks on it; a step that donates its state
keeps the new state itself (see benchmarks/style_vqvae.py).
"""

import collections
import glob
import os
import re
import tempfile
import time

import jax
from jax.profiler import ProfileData

_INSTR = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = .*?\b([a-z][\w\-]*)\(")
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_SKIP = {"jit", "pjit", "jvp", "transpose", "vmap", "remat", "checkpoint"}


def memory(compiled) -> str:
  """A compiled call's device memory: its arguments + outputs + scratch
  (XLA's static analysis; donated buffers counted once), and the device's
  peak so far where the backend reports one (GPU, TPU; not XLA:CPU)."""
  m = compiled.memory_analysis()
  gib = 2.0**30
  text = "memory n/a"
  if m is not None:
    total = (
      m.argument_size_in_bytes
      + m.output_size_in_bytes
      - m.alias_size_in_bytes
      + m.temp_size_in_bytes
    )
    text = (
      f"memory {total / gib:.2f} GiB (scratch {m.temp_size_in_bytes / gib:.2f})"
    )
  stats = jax.devices()[0].memory_stats() or {}
  if "peak_bytes_in_use" in stats:
    text += f", device peak {stats['peak_bytes_in_use'] / gib:.2f} GiB"
  return text


def flops(compiled) -> float:
  """XLA's count of a compiled call's floating-point operations (a
  multiply-add counts 2; a convolution counts only its in-bounds taps)."""
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax: one dict per program
    cost = cost[0] if cost else {}
  return float((cost or {}).get("flops", 0.0))


def matmul_peak(n: int = 2048, reps: int = 5) -> float:
  """GFLOP/s of XLA's f32 [n, n] x [n, n] product on the default device,
  the best of `reps`: what this machine does at its most efficient, the
  yardstick for every step's GFLOP/s."""
  a = jax.random.normal(jax.random.key(0), (n, n), jax.numpy.float32)
  f = jax.jit(lambda a: a @ a).lower(a).compile()
  jax.block_until_ready(f(a))
  best = float("inf")
  for _ in range(reps):
    t0 = time.perf_counter()
    jax.block_until_ready(f(a))
    best = min(best, time.perf_counter() - t0)
  return 2 * n**3 / best / 1e9


def _hlo_ops(text: str) -> dict[str, tuple[str, str]]:
  """HLO instruction name -> (opcode, name stack) from `as_text()`."""
  ops = {}
  for line in text.splitlines():
    m = _INSTR.match(line)
    if not m:
      continue
    stack = _OP_NAME.search(line)
    ops[m.group(1)] = (m.group(2), stack.group(1) if stack else "")
  return ops


def _part(stack: str, depth: int) -> str:
  """'jit(step)/transpose(jvp(SequenceVQVAE))/decoder/block3/mlp_in/dot'
  -> 'backward decoder/block*' at depth 2 (blocks pooled)."""
  backward = "transpose(" in stack
  names = []
  for piece in stack.split("/"):
    head = piece.split("(")[0]
    if not piece or head in _SKIP or piece.startswith("jit("):
      continue
    if "(" in piece:  # e.g. jvp(SequenceVQVAE): the top module
      continue
    names.append(re.sub(r"\d+$", "*", piece))
  names = names[:depth] or ["(other)"]
  return ("backward " if backward else "forward ") + "/".join(names)


def profile(run, hlo_text: str = "", reps: int = 2, depth: int = 2) -> dict:
  """Calls `run()` (blocking) `reps` times under the profiler, after one
  warm-up call. Returns {"total_ms": wall per call, "parts": {part: ms},
  "kinds": {opcode: ms}, "functions": {jitted function: ms}} per call; ms
  are summed op times (on several threads they can add up to more than
  the wall time). Parts and kinds need the compiled HLO's text."""
  ops = _hlo_ops(hlo_text)
  run()
  parts = collections.Counter()
  kinds = collections.Counter()
  functions = collections.Counter()
  with tempfile.TemporaryDirectory() as folder:
    t0 = time.perf_counter()
    with jax.profiler.trace(folder):
      for _ in range(reps):
        run()
    wall = (time.perf_counter() - t0) / reps
    path = glob.glob(os.path.join(folder, "**", "*.xplane.pb"), recursive=True)[
      0
    ]
    data = ProfileData.from_file(path)
  for plane in data.planes:
    for line in plane.lines:
      for event in line.events:
        stats = dict(event.stats)
        name = stats.get("hlo_op")
        if name is None:
          continue
        opcode, stack = ops.get(name, ("?", ""))
        ms = event.duration_ns / 1e6 / reps
        parts[_part(stack, depth)] += ms
        kinds[opcode] += ms
        functions[stats.get("hlo_module", "?")] += ms
  return {
    "total_ms": wall * 1e3,
    "parts": dict(parts.most_common()),
    "kinds": dict(kinds.most_common()),
    "functions": dict(functions.most_common()),
  }


def print_table(result: dict, top: int = 12, title: str = "") -> None:
  busy = sum(result["parts"].values())
  print(
    f"profile{' ' + title if title else ''}: {result['total_ms']:.1f} ms "
    f"per call wall, {busy:.1f} ms summed over ops"
  )
  for key in ("functions", "parts", "kinds"):
    if key != "functions" and set(result[key]) <= {"forward (other)", "?"}:
      continue  # no HLO text given
    for name, ms in list(result[key].items())[:top]:
      print(f"  {key[:-1]:8s} {name:48s} {ms:9.1f} ms {100 * ms / busy:5.1f} %")
