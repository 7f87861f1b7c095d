"""Is it the code or the training? One trained expression generator fed its
style codes (the style clip's, and the source clip's it reads too)
quantized, as it was trained, or continuous (the style encoder's tokens
pooled without the codebook, as the continuous-code ablation takes them),
on the held-out pairs.

  python benchmarks/code_at_inference.py --runs R/full_s1 R/full_s2 \\
      --driver video --out eval_code

If the continuous-code ablation's gains and losses (a new person's styles
against seen ones) come back when the full model's own generator is handed
a continuous code, they come from the code it is given, not from what
training with a codebook taught it. Writes an evaluation to --out (the
variants "quantized" and "continuous", several runs pooled as seeds, each
half of the pairs apart and continuous minus quantized paired:
`python -m saas_jax.evaluate`'s per_clip.csv, summary.json, report.md)
and prints the main figures, with "either" for what a rule that knew
whose style a pair asks for could reach (quantized on seen styles,
continuous on a new person's). Needs runs with a codebook.
"""

import argparse
import dataclasses
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from saas_jax import evaluate
from saas_jax.errors import DataError, check_writable_folder
from saas_jax.evaluators import report, stats, suite

MODES = {"quantized": True, "continuous": False}
SHOWN = ("exp_rest", "mouth_lmk", "judge_accuracy", "judge_dist")


def score(runs, driver, max_pairs=0, progress=True) -> list[dict]:
  """Rows of every pair, run and mode, as `evaluate` writes them."""
  args = evaluate.test_split_args(driver, max_pairs)
  data = evaluate.resolve_data(args, runs[0])
  pipelines = []
  for run in runs:  # every run checked before any is scored
    if evaluate.resolve_data(args, run) != data:
      raise DataError(run, f"trained on other data than {runs[0]}")
    models = suite.Models.load(run, driver)
    if models.stylizer is None or not models.stylizer.has_codebook:
      raise DataError(run, f"no {driver}-driven run on a style codebook")
    pipelines.append(dataclasses.replace(models, sampler=None))  # expression
  items = evaluate.Items.load(args, runs[0])
  rows = []
  for run, models in zip(runs, pipelines, strict=True):
    for mode, quantized in MODES.items():
      models.stylizer.quantized_style = quantized
      for i, pair in enumerate(items.pairs):
        row = {"variant": mode, "run": run, **items.pair_key(i)}
        row.update(suite.pair_row(models, pair, None, {}, items.judge))
        rows.append(row)
      if progress:
        print(f"{run}: {mode} done", file=sys.stderr, flush=True)
  return rows


def either(rows, metric) -> float:
  """Mean of `metric` taking, per pair, the quantized code's output on a
  seen style and the continuous code's on a new person's."""
  pick = {True: "quantized", False: "continuous"}
  vals = [
    r[metric]
    for r in rows
    if r["variant"] == pick[bool(r.get(report.SEEN, 1.0))]
    and np.isfinite(r.get(metric, np.nan))
  ]
  return float(np.mean(vals)) if vals else float("nan")


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--runs", nargs="+", required=True, help="runs folders")
  p.add_argument("--driver", choices=("audio", "video"), default="video")
  p.add_argument("--out", required=True, help="folder for the evaluation")
  p.add_argument("--max_pairs", type=int, default=0, help="0: all")
  args = p.parse_args(argv)
  try:
    check_writable_folder(args.out)
    rows = score(args.runs, args.driver, args.max_pairs)
  except DataError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  summary = report.summarize(rows, {})
  note = (
    f"one generator per run ({args.driver}-driven), fed its style codes "
    "quantized or continuous: benchmarks/code_at_inference.py"
  )
  report.write(args.out, rows, summary, [note])
  for section in ("pairs", *report.HALVES.values()):
    print(f"\n{section}")
    for m in SHOWN:
      key = f"{section}:model/{m}"
      cells = [
        f"{v} {report.fmt(summary[v]['metrics'][key])}"
        for v in MODES
        if key in summary[v]["metrics"]
      ]
      d = summary["continuous"]["minus_quantized"].get(key)
      if d:
        star = "*" if stats.excludes_zero(d) else ""
        cells.append(f"continuous - quantized {report.fmt(d)}{star}")
      if section == "pairs":
        cells.append(f"either {either(rows, f'model/{m}'):.4g}")
      if cells:
        print(f"  {m:15s} " + "  ".join(cells))
  return 0


if __name__ == "__main__":
  sys.exit(main())
