"""How real the synthetic corpus looks: the two-sample test of
input_pipeline.synthetic.realism against the StyleTalk sample clips.

  python benchmarks/realism.py [--data ../shared/data/styletalk]
      [--preset small] [--seed 0]

Prints the balanced accuracy of a logistic regression telling 32-frame
windows of real clips from synthetic ones (clips held out; 0.5 =
indistinguishable) and the synthetic/real standard-deviation ratios along
the real expression's top 10 principal components. As many synthetic
frames as real ones are drawn, across the preset's clips.
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from input_pipeline.synthetic import realism  # noqa: E402


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument(
    "--data", default=os.path.join(ROOT, "..", "shared", "data", "styletalk")
  )
  ap.add_argument("--preset", default="small")
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument(
    "--space",
    default="semantic",
    choices=("semantic", "real"),
    help="the generator's coefficient layout (real: calibrated)",
  )
  args = ap.parse_args()
  t0 = time.perf_counter()
  real = realism.real_clips(args.data)
  frames = sum(len(c.exp) for c in real)
  synth = realism.synthetic_clips(
    args.preset, args.seed, num_frames=frames, space=args.space
  )
  report = realism.two_sample(real, synth)
  report["space"] = args.space
  report["seconds"] = round(time.perf_counter() - t0, 1)
  print(json.dumps(report, indent=1))


if __name__ == "__main__":
  main()
