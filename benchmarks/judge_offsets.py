"""Where an expression run's output leaves the real clips' statistics, as
the style judge (saas_jax/evaluators/judge.py) sees it.

  python benchmarks/judge_offsets.py --runs runs [--driver video]
      [--pairs 20] [--top 8]

On the first --pairs test pairs with a seen style: each judge feature's
squared distance from the style clip's class mean (in within-style std
units), for the generated clip and for the ground truth; the features that
dominate, with the generated clip's offset from the ground truth's (in
within-style stds; a negative log std is a stiller clip); the distance by
statistic (mean, log std, log std of the frame-to-frame change); and by
coefficient group (mouth 0-17, 18-42, 43-63) the ratio of the generated
clip's spread to the ground truth's (and of its frame-to-frame change),
the mean absolute offset of its mean coefficients from the ground truth's
and the landmark shift that offset makes through the shipped 468-point
basis (face-model units; the face is 1.5 wide).
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from saas_jax import evaluate, face_model
from saas_jax.evaluators import judge
from saas_jax.inference import Stylizer

GROUPS = ((0, 18), (18, 43), (43, 64))


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--runs", required=True)
  p.add_argument("--pairs", type=int, default=20)
  p.add_argument("--top", type=int, default=8)
  p.add_argument("--driver", choices=("audio", "video"), default="audio")
  args = p.parse_args(argv)
  items = evaluate.Items.test_pairs(args.runs, args.driver)
  j = items.judge
  stylizer = Stylizer.load(
    os.path.join(args.runs, f"{args.driver}_driven"), args.driver
  )
  pairs = [p for p in items.pairs if p.style_label >= 0][: args.pairs]
  names = [
    f"{k}[{i}]" for k in ("mean", "log_std", "log_vel") for i in range(64)
  ]
  model_sq, target_sq, offsets, signed, log_ratios = [], [], [], [], []
  for pair in pairs:
    mel = pair.mel if args.driver == "audio" else None
    out = stylizer(source_exp=pair.content, mel=mel, style_exp=pair.style)
    c = int(np.searchsorted(j.classes, pair.style_label))
    for x, acc in ((out, model_sq), (pair.target, target_sq)):
      acc.append((judge.features(x) / j.scale - j.means[c]) ** 2)
    diff = judge.features(out) - judge.features(pair.target)  # [192]
    signed.append(diff / j.scale)
    log_ratios.append(diff[64:])  # log std and log velocity std ratios
    offsets.append(out.mean(0) - pair.target.mean(0))
  m, t = np.mean(model_sq, 0), np.mean(target_sq, 0)  # [192]
  z = np.mean(signed, 0)  # [192] model - truth, within-style stds
  print(
    f"{len(pairs)} pairs; squared distance model {m.sum():.0f}, truth {t.sum():.0f}"
  )
  for k in np.argsort(-m)[: args.top]:
    print(
      f"  {names[k]:12s} model {m[k]:8.1f}  truth {t[k]:6.1f}  "
      f"model - truth {z[k]:+6.1f} std"
    )
  for i, kind in enumerate(("mean", "log_std", "log_vel")):
    part = slice(64 * i, 64 * (i + 1))
    print(
      f"  all {kind:8s} model {m[part].sum():8.0f}  truth {t[part].sum():6.0f}"
    )
  fm = face_model.load("mediapipe")
  off = np.mean(offsets, 0)  # [64]
  rest = np.asarray(fm.points(np.zeros((1, 64), np.float32)))
  ratio = np.exp(np.median(log_ratios, 0))  # [128] model / truth
  for lo, hi in GROUPS:
    print(
      f"  coefficients {lo}-{hi - 1}: model / truth spread "
      f"{np.median(ratio[lo:hi]):.2f}, of the change "
      f"{np.median(ratio[64 + lo : 64 + hi]):.2f} (medians)"
    )
  for lo, hi in GROUPS:
    e = np.zeros((1, 64), np.float32)
    e[0, lo:hi] = off[lo:hi]
    shift = np.linalg.norm(np.asarray(fm.points(e)) - rest, axis=-1).mean()
    print(
      f"  coefficients {lo}-{hi - 1}: mean |offset| "
      f"{np.abs(off[lo:hi]).mean():.4f}, landmark shift {shift:.5f}"
    )
  return 0


if __name__ == "__main__":
  sys.exit(main())
