"""Evaluates trained pipelines: end to end on held-out style-transfer pairs,
and stage by stage on the split's clips.

  python -m saas_jax.evaluate --runs runs/ [--split test] [--out eval/]
  python -m saas_jax.evaluate --compare full=runs_s0,runs_s1 nohyper=... \
      --out eval/ablation
  python -m saas_jax.evaluate --runs runs/ --data_dir DIR --data_config manifest

Pairs (A's speech in B's style): expression against the ground truth
(landmark and coefficient errors, mouth soft-DTW; the synthetic corpus has
it, real corpora do not), style (classifier, style-code distance to B),
lip sync (mouth opening against A's speech energy, best lag), sampled head
pose (motion statistics near B's style or A's, raw and smoothed, jitter,
diversity, nods at speech onsets and their gain over another pair's
onsets); "content/" is A's own expression, the do-nothing baseline.
Clips: classifier accuracy, pose-codebook reconstruction, style retrieval
(first half finds second half) and codebook use.

Data: by default what the runs were trained on (their config.json), with
the synthetic corpus's ground-truth pairs when it is the default data.

Outputs in --out: per_clip.csv (a row per pair or clip), summary.json
(means with 95% bootstrap intervals over items, and over the runs of a
variant: give several runs folders, e.g. seeds, to one --compare name;
with --compare also each variant minus the first, paired over the items;
where the pairs mix styles seen in training with the held-out person's,
each half again as sections pairs_seen and pairs_new),
report.md with a plot per section. A failed item is reported there and the
run goes on (exit code 1 at the end; bad settings: 2, before any work). A
drawn pair's speech comes from a clip that has audio. A --compare folder holding an earlier evaluation of one runs
folder (its per_clip.csv) is read back instead of scored: seeds trained and
scored in other sessions pool without their checkpoints.

Sharded: the multi-process flags of saas_jax.main (--coordinator_address
--num_processes --process_id, or --distributed); each process scores every
N-th item on its own devices, process 0 gathers and writes.
"""

import argparse
import dataclasses
import functools
import json
import os
import sys
import time
import types

import numpy as np

from saas_jax.errors import DataError, check_writable_folder


def parse(argv):
  p = argparse.ArgumentParser(
    prog="python -m saas_jax.evaluate",
    description=__doc__.split("\n\n")[0],
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  p.add_argument("--runs", help="a train_pipeline runs folder")
  p.add_argument(
    "--compare",
    nargs="+",
    default=[],
    metavar="NAME=RUNS[,RUNS...]",
    help="variants to compare; several runs folders of one variant (seeds) "
    "are pooled with a two-level bootstrap; a folder may also be an earlier "
    "evaluation of one runs folder (read back, not scored again)",
  )
  p.add_argument("--split", default="test", help="held-out clips to score")
  p.add_argument("--out", default="eval", help="folder for the outputs")
  p.add_argument(
    "--driver",
    default="audio",
    choices=("audio", "video"),
    help="which expression run of the pipeline",
  )
  p.add_argument("--data_dir", help="a prepared corpus (default: the runs')")
  p.add_argument("--data_config", default="manifest", help="its layout")
  p.add_argument("--pairs_dir", help="a corpus with style_transfer/pairs.jsonl")
  p.add_argument("--max_pairs", type=int, default=0, help="0: all")
  p.add_argument("--max_clips", type=int, default=0, help="0: all")
  p.add_argument("--num_samples", type=int, default=3, help="poses a pair")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument(
    "--temperature", type=float, default=0.7, help="pose sampling temperature"
  )
  p.add_argument(
    "--top_p", type=float, default=0.9, help="pose sampling nucleus mass"
  )
  p.add_argument("--coordinator_address")
  p.add_argument("--num_processes", type=int)
  p.add_argument("--process_id", type=int)
  p.add_argument("--distributed", action="store_true")
  p.add_argument("--quiet", action="store_true", help="no progress lines")
  args = p.parse_args(argv)
  if bool(args.runs) == bool(args.compare):
    p.error("give --runs or --compare (one of them)")
  if not 0 < args.temperature < float("inf"):
    p.error(f"--temperature must be > 0, got {args.temperature}")
  if not 0 <= args.top_p <= 1:
    p.error(f"--top_p must be within [0, 1], got {args.top_p}")
  if args.num_samples < 1:
    p.error(f"--num_samples must be >= 1, got {args.num_samples}")
  for flag in ("max_pairs", "max_clips"):
    if getattr(args, flag) < 0:
      p.error(f"--{flag} must be >= 0 (0: all), got {getattr(args, flag)}")
  try:
    check_writable_folder(args.out)
  except DataError as e:
    p.error(f"--out {e}")
  return args


def variants(args) -> list[tuple[str, list[str]]]:
  if args.runs:
    name = os.path.basename(os.path.normpath(args.runs))
    return [(name, [args.runs])]
  out = []
  for spec in args.compare:
    name, sep, dirs = spec.partition("=")
    if not sep or not name or not dirs:
      raise DataError(f"--compare {spec}", "expected NAME=RUNS[,RUNS...]")
    dirs = dirs.split(",")
    if len(set(dirs)) < len(dirs):
      raise DataError(f"--compare {name}", "a runs folder listed twice")
    out.append((name, dirs))
  return out


def resolve_data(args, runs_dir: str):
  """(data_dir, data_config, pairs_dir or None)."""
  from input_pipeline import default_data
  from saas_jax.engine import workdir as workdir_lib

  if args.data_dir:
    return args.data_dir, args.data_config, args.pairs_dir
  config = None
  for stage in (f"{args.driver}_driven", "style_vqvae", "pose_generator"):
    path = os.path.join(runs_dir, stage, "config.json")
    if os.path.isfile(path):
      config = workdir_lib.read_json(path)
      break
  if config is None:
    if not os.path.isdir(runs_dir):
      raise DataError(runs_dir, "no such folder")
    if os.path.isfile(os.path.join(runs_dir, "config.json")):
      raise DataError(
        runs_dir,
        "is one stage's run; --runs takes the folder that holds the stages "
        f"(here {os.path.dirname(os.path.abspath(runs_dir))})",
      )
    raise DataError(
      runs_dir,
      "no trained stage here (train one with python -m "
      "saas_jax.train_pipeline)",
    )
  pairs_dir = args.pairs_dir or config.get("eval", {}).get("pairs_dir") or None
  if config["data"]["data_dir"]:
    return config["data"]["data_dir"], config["data"]["config"], pairs_dir
  speech = config["data"].get("speech")  # None in older runs: the default
  data_dir, data_config = default_data.ensure(speech=speech)
  return (
    data_dir,
    data_config,
    pairs_dir or default_data.corpus_dir(speech=speech),
  )


class Progress:
  """items done, rate and ETA on stderr: one updating line on a terminal,
  a line per tenth of the work in a log."""

  def __init__(self, total: int, enabled: bool):
    self.total, self.enabled, self.done = total, enabled, 0
    self.tty = sys.stderr.isatty()
    self.t0 = time.perf_counter()

  def step(self, what: str):
    self.done += 1
    last = self.done == self.total
    tenth = self.done * 10 // self.total != (self.done - 1) * 10 // self.total
    if not self.enabled or not (self.tty or tenth or last):
      return
    rate = self.done / (time.perf_counter() - self.t0)
    eta = (self.total - self.done) / rate
    line = (
      f"{what} {self.done}/{self.total} | {rate:.2f}/s | eta {eta / 60:.1f} min"
    )
    end = "\n" if last or not self.tty else ""
    print(
      ("\r" if self.tty else "") + line, end=end, file=sys.stderr, flush=True
    )


def gather(rows: list[dict]) -> list[dict]:
  """Every process's rows, on every process (JSON over the collectives)."""
  import jax
  from jax.experimental import multihost_utils

  if jax.process_count() == 1:
    return rows
  data = np.frombuffer(json.dumps(rows).encode(), np.uint8)
  sizes = multihost_utils.process_allgather(np.array([data.size]))
  buf = np.zeros(int(sizes.max()), np.uint8)
  buf[: data.size] = data
  every = multihost_utils.process_allgather(buf)
  out = []
  for p in range(jax.process_count()):
    out += json.loads(bytes(every[p, : int(sizes[p, 0])]))
  return out


def main(argv=None) -> int:
  args = parse(argv)
  from absl import logging

  from saas_jax.engine import runtime

  logging.set_verbosity(logging.ERROR)  # TFDS deprecation chatter

  runtime.setup(
    args.coordinator_address,
    args.num_processes,
    args.process_id,
    args.distributed,
  )
  import jax

  from saas_jax.evaluators import report, suite

  rank, size = jax.process_index(), jax.process_count()
  try:
    todo = variants(args)
    # Earlier evaluations are read back, not scored again.
    saved = {
      d: report.read(d)
      for _, dirs in todo
      for d in dirs
      if report.is_evaluation(d)
    }
    live = [d for _, dirs in todo for d in dirs if d not in saved]
    items = Items.load(args, live[0]) if live else Items.none()
  except DataError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  mine = lambda n: range(rank, n, size)  # noqa: E731  this process's items
  progress = Progress(
    len(live) * (len(mine(len(items.pairs))) + len(mine(len(items.clips)))),
    enabled=not args.quiet,
  )
  rows, notes, num_codes, set_metrics = [], [], {}, {}
  for variant, dirs in todo:
    for run_dir in dirs:
      if run_dir in saved:
        old_rows, old_set, scored = saved[run_dir]
        notes.append(
          f"{run_dir}: an earlier evaluation of {old_rows[0]['run']} ({scored})"
        )
        set_metrics.setdefault(variant, {})[run_dir] = old_set
        if rank == 0:  # added once, not gathered from every process
          rows += [
            {**r, "variant": variant, "run": run_dir, "_order": i}
            for i, r in enumerate(old_rows)
          ]
        continue
      models = suite.Models.load(run_dir, args.driver)
      notes += [f"{run_dir}: no {m}" for m in models.missing]
      num_codes[run_dir] = models.space.num_codes if models.space else None
      base = {"variant": variant, "run": run_dir}
      for i in mine(len(items.pairs)):
        p = items.pairs[i]
        row = {**base, **items.pair_key(i)}
        fn = suite.pair_row
        rows.append(
          _scored(
            row,
            i,
            fn,
            models,
            p,
            items.reference,
            dict(
              num_samples=args.num_samples,
              seed=args.seed,
              temperature=args.temperature,
              top_p=args.top_p,
            ),
            items.judge,
            # Nods' chance baseline: the next pair's speech onsets.
            items.pairs[(i + 1) % len(items.pairs)],
          )
        )
        progress.step("pairs")
      for i in mine(len(items.clips)):
        cid, exp, pose, label = items.clips[i]
        row = {**base, "section": "clips", "item": cid}
        rows.append(
          _scored(row, i, suite.clip_row, models, exp, pose, label, items.judge)
        )
        progress.step("clips")

  rows = gather(rows)
  if rank != 0:
    return 0
  runs = [(v, r) for v, dirs in todo for r in dirs]
  rows.sort(
    key=lambda r: (
      runs.index((r["variant"], r["run"])),
      r["section"],
      r["_order"],
    )
  )
  try:
    _check_same_items(rows)
  except DataError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  for variant, run_dir in runs:
    if run_dir in saved:
      continue
    here = [
      r
      for r in rows
      if (r["variant"], r["run"], r["section"]) == (variant, run_dir, "clips")
    ]
    set_metrics.setdefault(variant, {})[run_dir] = suite.finish(
      here, num_codes[run_dir]
    )
  for r in rows:
    del r["_order"]
  if live:
    notes.insert(
      0,
      f"data {items.data_dir}, split {args.split}; {len(items.pairs)} pairs "
      f"({'with' if items.has_truth else 'without'} ground truth), "
      f"{len(items.clips)} clips; {args.num_samples} pose samples a pair, "
      f"seed {args.seed}, temperature {args.temperature}, top-p "
      f"{args.top_p}; {size} process(es); style judge "
      f"v{items.judge.version}, fitted on the train split"
      + (" and its noise-free renderings" if items.judge_clean else ""),
    )
  summary = report.summarize(rows, set_metrics)
  for path in report.write(args.out, rows, summary, notes):
    print(path)
  failed = sum("error" in r for r in rows)
  if failed:  # written and listed in the report; the exit status says so too
    print(
      f"error: {failed} of {len(rows)} items failed (report.md lists them)",
      file=sys.stderr,
    )
    return 1
  return 0


def test_split_args(driver: str, max_pairs: int = 0):
  """The command's arguments for the test split of a runs folder's own data,
  as `evaluate --runs R` reads it by default (for benchmarks)."""
  return types.SimpleNamespace(
    data_dir=None,
    data_config=None,
    pairs_dir=None,
    split="test",
    seed=0,
    max_pairs=max_pairs,
    max_clips=1,
    driver=driver,
  )


@dataclasses.dataclass
class Items:
  """What is scored: the pairs, the split's clips (id, exp, pose, label),
  and the head-motion reference of every style."""

  data_dir: str
  pairs: list
  clips: list
  reference: object  # evaluators.suite.PoseReference
  has_truth: bool
  judge: object = None  # evaluators.judge.Judge fitted on the train split
  judge_clean: bool = False  # and on its noise-free renderings

  def pair_key(self, i: int) -> dict:
    """Pair i's row before scoring: section, item and, where the pairs mix
    styles seen in training with the held-out person's (a style the
    classifier does not know), which of the two it asks for."""
    from saas_jax.evaluators import report

    p = self.pairs[i]
    row = {"section": "pairs", "item": f"{p.content_id}>{p.style_id}"}
    if self.mixed:
      row[report.SEEN] = float(p.style_label >= 0)
    return row

  @functools.cached_property
  def mixed(self) -> bool:
    return any(p.style_label < 0 for p in self.pairs)

  @classmethod
  def none(cls) -> "Items":
    """Nothing to score: every run was read from an earlier evaluation."""
    return cls("", [], [], None, False)

  @classmethod
  def test_pairs(cls, runs_dir: str, driver: str) -> "Items":
    """The test split of the runs folder's data, as `evaluate` scores it
    by default (for benchmarks that look at a few pairs)."""
    return cls.load(test_split_args(driver), runs_dir)

  @classmethod
  def load(cls, args, runs_dir: str) -> "Items":
    from input_pipeline import batches as batches_lib
    from saas_jax.evaluators import benchmark, judge, suite
    from saas_jax.evaluators import windows as windows_lib

    data_dir, data_config, pairs_dir = resolve_data(args, runs_dir)
    split = batches_lib.load_table(data_dir, data_config, args.split)
    tables = [split]
    unseen = "test_person"  # pairs may take their style clip from it
    if (
      pairs_dir
      and args.split != unseen
      and batches_lib.has_split(data_dir, data_config, unseen)
    ):
      tables.append(batches_lib.load_table(data_dir, data_config, unseen))
    pairs = benchmark.load_pairs(
      tables,
      seen=set(str(c) for c in split.clip_ids),
      pairs_dir=pairs_dir,
      with_audio=True,
      seed=args.seed,
      num_pairs=args.max_pairs,
    )
    exp, pose = (windows_lib.table_clips(split, s) for s in ("exp", "pose"))
    n = args.max_clips or split.num_clips
    clips = [
      (str(split.clip_ids[c]), exp[c], pose[c], int(split.label[c]))
      for c in range(min(n, split.num_clips))
    ]
    # Each style's head-motion statistics: its training clips and the
    # held-out ones (a held-out person's styles have no training clips).
    train = batches_lib.load_table(data_dir, data_config, "train")
    # The judge: the training clips, and on the synthetic corpus also their
    # noise-free renderings (evaluators/judge.py says why).
    judged = windows_lib.table_clips(train, "exp")
    labels = list(train.label)
    if pairs_dir:
      from input_pipeline import synthetic

      clean = synthetic.noise_free_expressions(
        pairs_dir, [str(c) for c in train.clip_ids]
      )
      if clean is not None:
        judged, labels = [*judged, *clean], labels * 2
    return cls(
      f"{data_dir} ({data_config})",
      pairs,
      clips,
      suite.PoseReference.of([train, *tables], heard=train),
      any(p.target is not None for p in pairs),
      judge.Judge.fit(judged, labels),
      len(judged) > len(train.label),
    )


def _check_same_items(rows) -> None:
  """Every run must be scored on the same pairs and clips, or its intervals
  would not compare (an earlier evaluation with other --max_pairs, say)."""
  items = {}
  for r in rows:
    items.setdefault(r["run"], set()).add((r["section"], r["item"]))
  first, *rest = items or [None]
  for run in rest:
    if items[run] != items[first]:
      raise DataError(
        run,
        f"scored other items than {first} ({len(items[run])} against "
        f"{len(items[first])}, {len(items[run] ^ items[first])} not in both); "
        "evaluate both with the same data, --split, --max_pairs, --max_clips",
      )


def _scored(row: dict, order: int, fn, *args) -> dict:
  """row + fn(*args)'s metrics, or the error that stopped the item."""
  try:
    row.update(fn(*args))
  except Exception as e:
    row["error"] = f"{type(e).__name__}: {e}"
  row["_order"] = order
  return row


if __name__ == "__main__":
  sys.exit(main())
