"""Trains the whole pipeline: the six stages in dependency order.

  python -m saas_jax.train_pipeline --variant cpu [--runs runs/]
      [--data_dir DIR --data_config manifest [--pairs_dir CORPUS]]

Stages, each in RUNS/<stage>: style_vqvae (style codebook), style_classifier
(the frozen critic), audio_driven and video_driven (stylized expression;
both freeze the first two), pose_vqvae (pose codebook), pose_generator
(freezes style_vqvae and pose_vqvae). Variants: smoke (a few steps each,
each evaluated once at its end: tests and notebooks), cpu (2 cores; the
README states its time), paper (the paper's sizes). A finished stage is
skipped, an unfinished one resumes from its last checkpoint; a stage folder
holding a run of another config is an error naming the settings that
differ. Then:

  python -m saas_jax.generate --runs RUNS --audio ... --style ... --source ...
"""

import argparse
import dataclasses
import json
import os
import sys
import time

from saas_jax.errors import exit_interrupted

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class StageSpec:
  name: str  # the run folder under --runs
  config: str  # under configs/
  frozen: tuple[tuple[str, str], ...] = ()  # (config.frozen key, stage)


STAGES = (
  StageSpec("style_vqvae", "style_vqvae.py"),
  StageSpec("style_classifier", "style_classifier.py"),
  StageSpec(
    "audio_driven",
    "audio_driven.py",
    (("style", "style_vqvae"), ("classifier", "style_classifier")),
  ),
  StageSpec(
    "video_driven",
    "video_driven.py",
    (("style", "style_vqvae"), ("classifier", "style_classifier")),
  ),
  StageSpec("pose_vqvae", "pose_vqvae.py"),
  StageSpec(
    "pose_generator",
    "pose_generator.py",
    (("style", "style_vqvae"), ("pose_vqvae", "pose_vqvae")),
  ),
)

# Seconds per stage measured on 2 cores (README), for
# the first ETA; later ETAs scale them by how this machine did on the stages
# already run (the first apart: whether it made the default data or read a
# --data_dir decides most of its time). smoke: default data already made,
# cold compilation cache.
EXPECTED_S = {
  "smoke": {
    "style_vqvae": 67.0,
    "style_classifier": 10.0,
    "audio_driven": 185.0,
    "video_driven": 160.0,
    "pose_vqvae": 48.0,
    "pose_generator": 129.0,
  },
  "cpu": {  # version 2 default data, 2026-12-03 (AMD EPYC, 2 cores)
    "style_vqvae": 306.0,  # with making the default data
    "style_classifier": 804.0,
    "audio_driven": 1198.0,
    "video_driven": 2111.0,
    "pose_vqvae": 333.0,
    "pose_generator": 544.0,
  },
  "paper": dict.fromkeys((s.name for s in STAGES), 3.0e5),
}


def stage_config(stage: StageSpec, variant: str, runs: str, args):
  from saas_jax.engine import config_lib

  path = os.path.join(args.configs, stage.config)
  if not os.path.isfile(path):
    raise FileNotFoundError(
      f"no stage config at {path} (the configs/ folder of the repository; "
      "set --configs)"
    )
  arg = "" if variant == "paper" else f":{variant}"
  config = config_lib.load(path + arg)
  for key, other in stage.frozen:
    config.frozen[key] = os.path.join(runs, other)
  if args.data_dir:
    config.data.data_dir = args.data_dir
    config.data.config = args.data_config
  if args.eval_split:
    config.data.eval_split = args.eval_split
  if args.pairs_dir and "pairs_dir" in config.get("eval", {}):
    config.eval.pairs_dir = args.pairs_dir
  if variant == "smoke":  # every stage's evaluation runs once
    config.eval_every = config.num_train_steps
  return config


def status(config, workdir: str) -> str:
  """'new', 'resume' or 'done'; an error if the folder holds another run."""
  from saas_jax.engine import workdir as workdir_lib

  steps = workdir_lib.checkpoint_steps(workdir)
  if not steps or not os.path.isfile(os.path.join(workdir, "config.json")):
    return "new"
  workdir_lib.check_same_config(workdir, json.loads(config.to_json()))
  if steps[-1] >= config.num_train_steps and os.path.isfile(
    os.path.join(workdir, "spec.json")
  ):
    return "done"
  return "resume"


def _clock(seconds: float) -> str:
  m, s = divmod(round(seconds), 60)
  h, m = divmod(m, 60)
  return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def run(args) -> dict:
  """Trains every stage not yet finished; returns {stage: seconds}."""
  import importlib

  runs = args.runs
  expected = EXPECTED_S[args.variant]
  plan = []
  for stage in STAGES:
    config = stage_config(stage, args.variant, runs, args)
    workdir = os.path.join(runs, stage.name)
    plan.append((stage, config, workdir, status(config, workdir)))
  todo = [p for p in plan if p[3] != "done"]
  say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
  for stage, _, workdir, state in plan:
    if state == "done":
      say(f"  {stage.name}: finished, skipped ({workdir})")
  if not todo:
    say(f"every stage in {runs} is finished")
    return {}
  spent, measured, took = 0.0, 0.0, {}
  pace = 1.0  # measured / expected time on the stages run so far
  start = time.perf_counter()
  for i, (stage, config, workdir, state) in enumerate(todo):
    left = sum(expected[p[0].name] for p in todo[i:]) * pace
    say(
      f"[{i + 1}/{len(todo)}] {stage.name} ({'resuming' if state == 'resume' else 'training'}"
      f", {config.num_train_steps} steps) -> {workdir}; pipeline ETA "
      f"~{_clock(left)}"
    )
    t0 = time.perf_counter()
    trainer = importlib.import_module(f"saas_jax.trainers.{config.trainer}")
    trainer.train_and_evaluate(config, workdir)
    took[stage.name] = time.perf_counter() - t0
    if stage.name != STAGES[0].name:  # its figure includes making the data
      spent += expected[stage.name]
      measured += took[stage.name]
      pace = measured / spent
    say(f"  {stage.name}: done in {_clock(took[stage.name])}")
  say(f"pipeline trained in {_clock(time.perf_counter() - start)} -> {runs}")
  return took


def parse_args(argv=None):
  p = argparse.ArgumentParser(
    prog="python -m saas_jax.train_pipeline",
    description=__doc__.split("\n\n")[0],
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  p.add_argument("--variant", choices=("smoke", "cpu", "paper"), default="cpu")
  p.add_argument("--runs", default="runs", help="one folder per stage here")
  p.add_argument(
    "--data_dir",
    default="",
    help="prepared shards (default: the embedded synthetic corpus)",
  )
  p.add_argument(
    "--data_config",
    default="manifest",
    help="dataset config of --data_dir (the layout, or the name prepare "
    "printed for other frame rates)",
  )
  p.add_argument(
    "--eval_split",
    default="",
    help="the held-out split the stages evaluate on (default: the configs', "
    "test)",
  )
  p.add_argument(
    "--pairs_dir",
    default="",
    help="a synthetic corpus whose style_transfer/ pairs (with ground truth) "
    "the expression stages evaluate on (default: the embedded corpus's "
    "without --data_dir, else random cross-person pairs)",
  )
  p.add_argument(
    "--configs",
    default=os.path.join(ROOT, "configs"),
    help="the stage configs folder",
  )
  p.add_argument("--coordinator_address", default=None)
  p.add_argument("--num_processes", type=int, default=None)
  p.add_argument("--process_id", type=int, default=None)
  p.add_argument(
    "--distributed",
    action="store_true",
    help="jax.distributed.initialize() (pods, SLURM)",
  )
  return p.parse_args(argv)


def main(argv=None) -> int:
  args = parse_args(argv)
  from absl import logging

  logging.set_verbosity(logging.WARNING)  # orbax is chatty at INFO
  from saas_jax.engine import runtime

  runtime.setup(
    args.coordinator_address,
    args.num_processes,
    args.process_id,
    args.distributed,
  )
  try:
    run(args)
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  try:
    sys.exit(main())
  except KeyboardInterrupt:
    exit_interrupted(
      "finished stages are kept and the stage in progress keeps its last "
      "checkpoint; the same command goes on from there"
    )
