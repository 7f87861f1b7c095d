"""Does an expression run's mouth follow its content? A quick look, on the
first --pairs test pairs of the run's data (the full figures with intervals:
`python -m saas_jax.evaluate`, mouth_corr and mouth_motion).

  python benchmarks/mouth_motion.py --runs runs [--driver video] [--pairs 30]

Prints, averaged over the pairs, for the generated clip and for the content
clip's own expression: mouth_corr (the 18 mouth coefficients' motion
against the ground truth's, 0: unrelated), mouth_motion (their spread over
the ground truth's, 0: a still mouth) and exp_mouth (their L1 error), that
error split into the clip's static mouth shape (offset: L1 of the time
means) and its motion (shape: L1 of what is left after each clip's mean).
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from saas_jax import evaluate
from saas_jax.evaluators import expression
from saas_jax.inference import Stylizer
from saas_jax.models.motion_decoder import MOUTH


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--runs", required=True)
  p.add_argument("--driver", choices=("audio", "video"), default="audio")
  p.add_argument("--pairs", type=int, default=30)
  args = p.parse_args(argv)
  items = evaluate.Items.test_pairs(args.runs, args.driver)
  stylizer = Stylizer.load(
    os.path.join(args.runs, f"{args.driver}_driven"), args.driver
  )
  rows = {"model": [], "content": []}
  for pair in items.pairs[: args.pairs]:
    mel = pair.mel if args.driver == "audio" else None
    out = stylizer(source_exp=pair.content, mel=mel, style_exp=pair.style)
    for name, exp in (("model", out), ("content", pair.content)):
      m = expression.mouth_motion(exp, pair.target)
      x, t = exp[:, :MOUTH], pair.target[:, :MOUTH]  # [T, 18]
      err = np.abs(x - t).mean()
      offset = np.abs(x.mean(0) - t.mean(0)).mean()
      shape = np.abs((x - x.mean(0)) - (t - t.mean(0))).mean()
      rows[name].append(
        [m["mouth_corr"], m["mouth_motion"], err, offset, shape]
      )
  for name, r in rows.items():
    corr, motion, err, offset, shape = np.nanmean(r, 0)  # NaN: still truth
    print(
      f"{name:8s} mouth_corr {corr:.3f}  mouth_motion {motion:.3f}  "
      f"exp_mouth {err:.3f} (offset {offset:.3f}, motion {shape:.3f})  "
      f"({len(r)} pairs)"
    )
  return 0


if __name__ == "__main__":
  sys.exit(main())
