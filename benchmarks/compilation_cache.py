"""Time until training starts: a first run, a second run of the same config
(persistent compilation cache hit), and a run without the cache.

  python benchmarks/compilation_cache.py [--config configs/style_vqvae.py]
      [--config.data.batch_size=32 ...]  # other saas_jax.main flags

Each run is a fresh `python -m saas_jax.main` process with its own workdir
(nothing resumed), training 2 steps, with a compilation cache folder made
empty for this benchmark. "training starts" is the time from the process's
start to the end of its first step minus the second step's run time
(the loop logs both): imports, data, initialisation, tracing and compiling
(or, on a second run, loading both executables from the executable cache,
untraced). The default data must
already be made (a first `saas_jax.main` run makes it) or its generation is
timed too.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRST = re.compile(r"first step ran in ([\d.]+) s")
SECOND = re.compile(r"second step ran in ([\d.]+) s")


def run(config: str, flags: list[str], workdir: str, cache: str) -> dict:
  env = dict(os.environ, SAAS_JAX_COMPILATION_CACHE=cache)
  cmd = [sys.executable, "-m", "saas_jax.main", f"--config={config}"]
  cmd += [f"--workdir={workdir}", "--config.num_train_steps=2", *flags]
  t0 = time.perf_counter()
  proc = subprocess.Popen(
    cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
  )
  r, lines = {}, []
  for line in proc.stderr:
    lines.append(line)
    if m := FIRST.search(line):
      r["first_done"], r["first"] = time.perf_counter() - t0, float(m[1])
    if m := SECOND.search(line):
      r["second"] = float(m[1])
  if proc.wait() or len(r) < 3:
    sys.exit(f"{' '.join(cmd)} failed:\n{''.join(lines[-20:])}")
  r["start"] = r["first_done"] - r["second"]
  r["wall"] = time.perf_counter() - t0
  return r


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--config", default="configs/style_vqvae.py")
  args, flags = p.parse_known_args()  # the rest: saas_jax.main flags
  with tempfile.TemporaryDirectory() as tmp:
    cache = os.path.join(tmp, "cache")
    os.makedirs(cache)
    rows = []
    for name, folder, where in [
      ("first run (empty cache)", "a", cache),
      ("second run (cache hit)", "b", cache),
      ("--nocompilation_cache", "c", "off"),
    ]:
      rows.append((name, run(args.config, flags, f"{tmp}/{folder}", where)))
      print(f"{name}: {rows[-1][1]}", file=sys.stderr, flush=True)
  print(f"{args.config} {' '.join(flags)}: seconds from process start")
  print(
    f"{'run':26s} {'training starts':>16s} {'first step':>11s} "
    f"{'second step':>12s} {'wall':>7s}"
  )
  for name, r in rows:
    print(
      f"{name:26s} {r['start']:16.1f} {r['first']:11.1f} "
      f"{r['second']:12.1f} {r['wall']:7.1f}"
    )
  ratio = rows[0][1]["start"] / rows[1][1]["start"]
  print(f"the second run starts training {ratio:.1f}x sooner than the first")


if __name__ == "__main__":
  main()
