"""The paper's ablations with seeds: trains the audio-driven full model and
its three ablations at cpu size, one run per seed, then compares them.

  python benchmarks/ablations.py --base runs --out runs_ablation \
      [--seeds 0 1 2] [--size cpu]
  python -m saas_jax.evaluate --compare full=runs_ablation/full_s0,... \
      --out eval/ablation          # the command is printed at the end

--base: a train_pipeline runs folder; its style_vqvae and style_classifier
are the frozen networks of every run, and its other stages are linked into
each variant's folder (OUT/<variant>_s<seed>/), so that each is a runs
folder `evaluate` reads. Seeds outermost: an interrupted sweep has whole
seeds; a re-run skips finished runs and resumes an unfinished one. Wall
time per run goes to OUT/times.json.
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS = {
  "full": "",
  "no_hyperstyle": ",no_hyperstyle",
  "no_style_branch": ",no_style_branch",
  "continuous": ",continuous",
}
LINKED = ("style_vqvae", "style_classifier", "pose_vqvae", "pose_generator")


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--base", default="runs")
  p.add_argument("--out", default="runs_ablation")
  p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  p.add_argument("--size", default="cpu", help="audio_driven config variant")
  p.add_argument("--variants", nargs="+", default=list(VARIANTS))
  args = p.parse_args()
  base = os.path.abspath(args.base)
  os.makedirs(args.out, exist_ok=True)
  times_path = os.path.join(args.out, "times.json")
  times = {}
  if os.path.isfile(times_path):
    with open(times_path) as f:
      times = json.load(f)
  for seed in args.seeds:
    for variant in args.variants:
      name = f"{variant}_s{seed}"
      folder = os.path.join(args.out, name)
      os.makedirs(folder, exist_ok=True)
      for stage in LINKED:
        link = os.path.join(folder, stage)
        if os.path.isdir(os.path.join(base, stage)) and not os.path.lexists(
          link
        ):
          os.symlink(os.path.join(base, stage), link)
      cmd = [
        sys.executable,
        "-m",
        "saas_jax.main",
        f"--config=configs/audio_driven.py:{args.size}{VARIANTS[variant]}",
        f"--workdir={os.path.abspath(os.path.join(folder, 'audio_driven'))}",
        f"--config.seed={seed}",
        f"--config.frozen.style={base}/style_vqvae",
        f"--config.frozen.classifier={base}/style_classifier",
      ]
      print(f"[{name}] {' '.join(cmd[2:])}", file=sys.stderr, flush=True)
      t0 = time.perf_counter()
      proc = subprocess.run(cmd, cwd=ROOT)
      if proc.returncode:
        sys.exit(f"{name}: training failed (exit {proc.returncode})")
      if name not in times:  # the first (full) training of this run
        times[name] = round(time.perf_counter() - t0, 1)
        with open(times_path + ".tmp", "w") as f:
          json.dump(times, f, indent=1, sort_keys=True)
        os.replace(times_path + ".tmp", times_path)
  groups = " ".join(
    f"{v}=" + ",".join(f"{args.out}/{v}_s{s}" for s in args.seeds)
    for v in args.variants
  )
  print(f"python -m saas_jax.evaluate --compare {groups} --out eval/ablation")


if __name__ == "__main__":
  main()
