"""How real the synthetic corpus looks: the two-sample test of
input_pipeline.synthetic.realism against the StyleTalk sample clips.

  python benchmarks/realism.py [--data ../shared/data/styletalk]
      [--preset small] [--seeds 0] [--space real] [--speech source_filter]

Prints the balanced accuracy of a logistic regression telling 32-frame
windows of real clips from synthetic ones (clips held out; 0.5 =
indistinguishable) and the synthetic/real standard-deviation ratios along
the real expression's top 10 principal components. As many synthetic
frames as real ones are drawn, across the preset's clips; with several
--seeds (0,1,2,3,4), once per corpus seed, and their mean. Also the inner
lip gap of bilabial and open-vowel frames (real space).
"""

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from input_pipeline.synthetic import realism  # noqa: E402


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument(
    "--data", default=os.path.join(ROOT, "..", "shared", "data", "styletalk")
  )
  ap.add_argument("--preset", default="small")
  ap.add_argument(
    "--seeds", default="0", help="corpus seeds, comma-separated (e.g. 0,1,2)"
  )
  ap.add_argument(
    "--space",
    default="real",
    choices=("semantic", "real"),
    help="the generator's coefficient layout (real: calibrated)",
  )
  ap.add_argument(
    "--speech",
    default="source_filter",
    choices=("source_filter", "espeak"),
    help="whose phone timing the faces follow (espeak: eSpeak NG's)",
  )
  args = ap.parse_args()
  t0 = time.perf_counter()
  real = realism.real_clips(args.data)
  frames = sum(len(c.exp) for c in real)
  report = {
    "space": args.space,
    "speech": args.speech,
    "preset": args.preset,
    "seeds": {},
  }
  for seed in (int(s) for s in args.seeds.split(",")):
    synth = realism.synthetic_clips(
      args.preset,
      seed,
      num_frames=frames,
      space=args.space,
      speech_engine=args.speech,
    )
    report["seeds"][seed] = realism.two_sample(real, synth)
    if args.space == "real":
      from input_pipeline.synthetic import corpus

      utt = {
        s.id: corpus.clip_utterance(seed, s, args.speech)
        for s in corpus.plan_corpus(args.preset)
      }
      closed, opened = realism.lip_gaps_by_phone(
        [(c.exp, utt[c.name].phones()) for c in synth]
      )
      report["seeds"][seed]["inner_lip_gap_median"] = {
        "bilabial": round(float(np.median(closed)), 4),
        "open_vowel": round(float(np.median(opened)), 4),
      }
  accs = [r["balanced_accuracy"] for r in report["seeds"].values()]
  report["mean_balanced_accuracy"] = float(np.mean(accs))
  report["seconds"] = round(time.perf_counter() - t0, 1)
  print(json.dumps(report, indent=1))


if __name__ == "__main__":
  main()
