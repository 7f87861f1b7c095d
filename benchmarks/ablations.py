"""The paper's ablations with seeds: trains the audio-driven (or, with
--driver video, the video-driven) full model and its ablations (no
HyperStyle, no style branch, continuous codes two ways) at cpu size, one
run per seed, scores each run, then compares them.

  python benchmarks/ablations.py --base runs --out runs_ablation \
      [--driver audio|video] [--seeds 0 1 2] [--size cpu] \
      [--results benchmarks/results/ablations] \
      [--options styled_decoder,no_stats,lr_constant] [--eval_every 250] \
      [--set data.data_dir=TFDS --set data.config=manifest ...]
  python -m saas_jax.evaluate --compare \
      full=benchmarks/results/ablations/full_s0,... --out eval/ablation
      # the command, over every result present, is printed at the end

--base: a train_pipeline runs folder; its style_vqvae and style_classifier
are the frozen networks of every run and are linked into each variant's
folder (OUT/<variant>_s<seed>/), so that each is a runs folder `evaluate`
reads. (The pose stages are left out: they do not depend on the variant.)
Two variants have continuous style codes: "continuous" pools the base
style encoder's tokens before its codebook; "no_codebook" (the paper's
ablation as trained) freezes a style stage trained without one
(style_vqvae.py:<size>,no_codebook, made once in OUT/style_vqvae_no_codebook),
and is scored with the base's style stage still linked, so that its
style-code distances are measured in the same quantized space as the
others'.
Seeds outermost: an interrupted sweep has whole seeds; a re-run skips
finished runs and resumes an unfinished one.

Each finished run is scored at once (`saas_jax.evaluate --runs`, test
split) into RESULTS/<variant>_s<seed>/ (default benchmarks/results/
ablations for audio, benchmarks/results/video_mouth_keep for video) with
run.json (training wall time, date, machine, base runs and their figures,
the run's settings: a re-run with other settings, e.g. after a default
changed, stops rather than pool with them). Those folders are small and
committed: `evaluate --compare` reads them back, so the seeds of a sweep
that spans several sessions (or machines) pool without their checkpoints.
--set KEY=VALUE (repeated) passes --config.KEY=VALUE to every training,
e.g. another corpus's shards and pairs (data.data_dir, data.config,
eval.pairs_dir; the base runs must be trained on the same data).
--eval_every N also has the trainer evaluate every N steps and keeps that
trajectory in run.json ("trainer_eval_by_step"): whether a run's final
figure is where it settled or a point of an oscillation.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from saas_jax import train_pipeline  # noqa: E402  (light: no JAX)
from saas_jax.engine import config_lib, workdir  # noqa: E402

VARIANTS = {
  "full": "",
  "no_hyperstyle": ",no_hyperstyle",
  "no_style_branch": ",no_style_branch",
  "continuous": ",continuous",
  "no_codebook": ",continuous",
}
# Variants whose frozen style encoder is not the base's: the style stage's
# config option they are trained on (once per sweep, in OUT/<folder>).
STYLE_STAGES = {"no_codebook": ("no_codebook", "style_vqvae_no_codebook")}
LINKED = ("style_vqvae", "style_classifier")
# the video defaults before 2026-12-07 (no mouth_keep): video_driven
RESULTS = {"audio_driven": "ablations", "video_driven": "video_mouth_keep"}


def _cpu() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def _read_json(path: str) -> dict:
  if not os.path.isfile(path):
    return {}
  with open(path) as f:
    return json.load(f)


def _write_json(path: str, obj: dict) -> None:
  with open(path + ".tmp", "w") as f:
    json.dump(obj, f, indent=1, sort_keys=True)
  os.replace(path + ".tmp", path)


def _run(cmd: list, what: str) -> float:
  print(f"[{what}] {' '.join(cmd[2:])}", file=sys.stderr, flush=True)
  t0 = time.perf_counter()
  proc = subprocess.run(cmd, cwd=ROOT)
  if proc.returncode:
    sys.exit(f"{what}: failed (exit {proc.returncode})")
  return round(time.perf_counter() - t0, 1)


def _trainer_evals(folder, stage):
  """{step: the trainer's evaluation figures} from the run's metrics.jsonl."""
  by_step = {}
  with open(os.path.join(folder, stage, "metrics.jsonl")) as f:
    for line in f:
      row = json.loads(line)
      evals = {
        k[len("eval/") :]: float(f"{v:.4g}")
        for k, v in row.items()
        if k.startswith("eval/")
      }
      if evals:
        by_step[str(row["step"])] = evals
  return by_step


# What makes two runs the same experiment (not where their base lies).
COMPARED = (
  "model",
  "loss",
  "optim",
  "data",
  "augment",
  "num_train_steps",
  "seed",
)


def _settings(config: dict) -> dict:
  return {k: config[k] for k in COMPARED if config.get(k) is not None}


def _planned(config_arg: str, seed: int, overrides=()) -> dict:
  """The settings a run of this command gets (config_lib resolves them as
  saas_jax.main would, --set overrides cast to the field's type)."""
  config = config_lib.load(os.path.join(ROOT, config_arg))
  for item in overrides:
    key, value = item.split("=", 1)
    old = config
    for part in key.split("."):
      old = old[part]
    if isinstance(old, bool):
      value = value.lower() in ("1", "true")
    elif old is not None:
      value = type(old)(value)
    config.update_from_flattened_dict({key: value})
  return _settings({**config.to_dict(), "seed": seed})


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--base", default="runs")
  p.add_argument("--out", default="runs_ablation")
  p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  p.add_argument("--driver", choices=("audio", "video"), default="audio")
  p.add_argument("--size", default="cpu", help="the stage config's variant")
  p.add_argument("--variants", nargs="+", default=list(VARIANTS))
  p.add_argument(
    "--options",
    default="",
    help="stage config options added to every variant, e.g. no_stats "
    "(use another --out and --results: the runs differ)",
  )
  p.add_argument(
    "--results",
    default="",
    help="each run's evaluation goes to RESULTS/<variant>_s<seed>/",
  )
  p.add_argument(
    "--eval_every",
    type=int,
    default=0,
    help="the trainer also evaluates every N steps (0: at the end only); "
    "the figures by step go to run.json",
  )
  p.add_argument(
    "--set",
    action="append",
    default=[],
    metavar="KEY=VALUE",
    help="a config override for every training (repeat for more)",
  )
  p.add_argument(
    "--dry_run",
    action="store_true",
    help="print what would be trained and scored, run nothing",
  )
  args = p.parse_args()
  for item in args.set:
    if "=" not in item:
      p.error(f"--set {item}: give KEY=VALUE, e.g. data.config=manifest")
  overrides = [f"--config.{item}" for item in args.set]
  base = os.path.abspath(args.base)
  options = "".join(f",{o}" for o in args.options.split(",") if o)
  stage = f"{args.driver}_driven"
  results = os.path.abspath(
    args.results or os.path.join(ROOT, "benchmarks", "results", RESULTS[stage])
  )
  os.makedirs(args.out, exist_ok=True)
  times_path = os.path.join(args.out, "times.json")
  times = _read_json(times_path)
  base_figures = {
    name: _read_json(os.path.join(base, name, "eval_results.json"))
    for name in LINKED
  }
  style_runs = {  # variant -> its own style stage's folder
    v: os.path.abspath(os.path.join(args.out, STYLE_STAGES[v][1]))
    for v in args.variants
    if v in STYLE_STAGES
  }

  printed = set()  # style stages a dry run listed already

  def make_style_run(variant):
    """Trains a variant's own style stage unless it is done (a folder of
    other settings, e.g. another --size, is refused)."""
    option, name = STYLE_STAGES[variant]
    folder = style_runs[variant]
    config_arg = f"configs/style_vqvae.py:{args.size},{option}"
    try:
      state = train_pipeline.status(
        config_lib.load(os.path.join(ROOT, config_arg)), folder
      )
    except workdir.RunError as e:
      sys.exit(f"{name}: {e}")
    if state == "done" or folder in printed:
      return
    train = [sys.executable, "-m", "saas_jax.main"]
    train += [f"--config={config_arg}", f"--workdir={folder}", *overrides]
    if args.dry_run:
      print(f"[{name}] {' '.join(train[2:])}")
      printed.add(folder)
    else:
      _run(train, name)

  for seed in args.seeds:
    for variant in args.variants:
      name = f"{variant}_s{seed}"
      folder = os.path.abspath(os.path.join(args.out, name))
      result = os.path.join(results, name)
      config_arg = f"configs/{stage}.py:{args.size}{VARIANTS[variant]}"
      config_arg += options
      if os.path.isfile(os.path.join(result, "per_clip.csv")):
        # A results folder holds one experiment: a default changed since,
        # or other --options, must not pool with it.
        done = _read_json(os.path.join(result, "run.json")).get("settings")
        # (settings added since take their value of before: ADDED_SETTINGS)
        if done and workdir.config_diff(
          _settings(done), _planned(config_arg, seed, args.set)
        ):
          sys.exit(
            f"{result}: scored with other settings than "
            f"{config_arg} --config.seed={seed} (run.json); "
            "give another --results"
          )
        print(f"[{name}] scored already: {result}", file=sys.stderr)
        continue
      train = [
        sys.executable,
        "-m",
        "saas_jax.main",
        f"--config={config_arg}",
        f"--workdir={os.path.join(folder, stage)}",
        f"--config.seed={seed}",
        f"--config.frozen.style={style_runs.get(variant, base + '/style_vqvae')}",
        f"--config.frozen.classifier={base}/style_classifier",
      ]
      train += overrides
      if args.eval_every:
        train.append(f"--config.eval_every={args.eval_every}")
      evaluate = [
        sys.executable,
        "-m",
        "saas_jax.evaluate",
        f"--runs={folder}",
        f"--out={result}.tmp",
        f"--driver={args.driver}",
        "--split=test",
        "--quiet",
      ]
      if variant in style_runs:
        make_style_run(variant)
      if args.dry_run:
        print(f"[{name}] {' '.join(train[2:])}\n  {' '.join(evaluate[2:])}")
        continue
      os.makedirs(folder, exist_ok=True)
      for frozen in LINKED:
        link = os.path.join(folder, frozen)
        if not os.path.lexists(link):
          os.symlink(os.path.join(base, frozen), link)
      seconds = _run(train, name)
      if name not in times:  # the first (full) training of this run
        times[name] = seconds
        _write_json(times_path, times)
      eval_seconds = _run(evaluate, f"{name} evaluation")
      _write_json(
        os.path.join(f"{result}.tmp", "run.json"),
        {
          "run": name,
          "variant": variant,
          "seed": seed,
          "config": config_arg,
          "set": args.set,  # --set overrides: part of the command
          # as the run saved them: compared when the command runs again
          "settings": _settings(
            _read_json(os.path.join(folder, stage, "config.json"))
          ),
          "train_seconds": times[name],
          "eval_seconds": eval_seconds,
          "date": datetime.date.today().isoformat(),
          "machine": f"{_cpu()}, {os.cpu_count()} cores",
          "base": base,
          "base_figures": base_figures,
          # what makes the frozen style stage this one (e.g. its grouping)
          "base_style_model": _read_json(
            os.path.join(base, "style_vqvae", "config.json")
          ).get("model"),
        }
        | (
          {
            "style_run": style_runs[variant],
            "style_run_figures": _read_json(
              os.path.join(style_runs[variant], "eval_results.json")
            ),
          }
          if variant in style_runs
          else {}
        )
        | (
          {"trainer_eval_by_step": _trainer_evals(folder, stage)}
          if args.eval_every
          else {}
        ),
      )
      if os.path.isdir(result):  # no per_clip.csv: not a finished result
        shutil.rmtree(result)
      os.replace(f"{result}.tmp", result)
  done = [
    (v, s)
    for v in args.variants
    for s in args.seeds
    if os.path.isfile(os.path.join(results, f"{v}_s{s}", "per_clip.csv"))
  ]
  groups = " ".join(
    f"{v}="
    + ",".join(
      os.path.relpath(os.path.join(results, f"{v}_s{s}"))
      for w, s in done
      if w == v
    )
    for v in dict.fromkeys(v for v, _ in done)
  )
  print(f"python -m saas_jax.evaluate --compare {groups} --out eval/ablation")


if __name__ == "__main__":
  main()
