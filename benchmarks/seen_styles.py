"""The expression ablations split by whose style a pair asks for: a style
seen in training (another clip of a training person's style) or a new
person's (the corpus's held-out person, whose styles no stage saw). A
codebook should help the first and may hurt the second, snapping a new
person's style onto the training styles' entries; pooled, the two can
cancel.

  python benchmarks/seen_styles.py --compare full=R/full_s0,R/full_s1 \\
      continuous=R/continuous_s0,R/continuous_s1 [--metrics exp_rest ...]

Reads scored results folders (each a per_clip.csv, as `benchmarks/
ablations.py --results` writes them), no checkpoints; a pair's style is
new when the frozen classifier, which knows the training styles only, has
no accuracy for it. Prints each variant's mean with its 95 % interval
(seeds pooled as `evaluate --compare` pools them) and, for each variant
after the first, its difference from the first paired over the pairs
(`*`: the interval leaves out 0), on each half.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from saas_jax import evaluate
from saas_jax.evaluators import report, stats

SEEN = "model/style_accuracy"  # NaN where the classifier does not know it
METRICS = ("judge_accuracy", "judge_dist", "style_code_dist", "exp_rest")


def split(rows) -> dict:
  """{"seen"/"new": the pair rows of that half}, keyed by item."""
  pairs = [r for r in rows if r["section"] == "pairs" and "error" not in r]
  seen = {r["item"] for r in pairs if np.isfinite(r.get(SEEN, np.nan))}
  return {
    "seen": [r for r in pairs if r["item"] in seen],
    "new": [r for r in pairs if r["item"] not in seen],
  }


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--compare", nargs="+", required=True, metavar="NAME=DIRS")
  p.add_argument("--metrics", nargs="+", default=list(METRICS))
  p.add_argument("--system", default="model")
  args = p.parse_args(argv)
  rows = []
  for name, dirs in evaluate.variants(
    argparse.Namespace(runs=None, **vars(args))
  ):
    for d in dirs:
      mine, _, _ = report.read(d)
      rows += [{**r, "variant": name} for r in mine]
  names = list(dict.fromkeys(r["variant"] for r in rows))
  for half, here in split(rows).items():
    print(f"\n{half} styles ({len({r['item'] for r in here})} pairs)")
    summary = report.summarize(here, {})  # intervals, and minus the first
    for m in args.metrics:
      key = f"pairs:{args.system}/{m}"
      line = [f"  {m:16s}"]
      for v in names:
        ci = summary[v]["metrics"].get(key)
        if ci is None:  # e.g. the judge's accuracy on a style it never saw
          continue
        line.append(f"{v} {report._fmt(ci)}")
        d = summary[v].get(f"minus_{names[0]}", {}).get(key)
        if d is not None:
          star = "*" if stats.excludes_zero(d) else ""
          line.append(f"(-{names[0]}: {report._fmt(d)}{star})")
      if len(line) > 1:
        print("  ".join(line))
  return 0


if __name__ == "__main__":
  sys.exit(main())
