"""How far quantization moves a style clip's code, against how far apart
the style clips lie: whether the quantized and the continuous style codes
can tell the generator different things (the paper's continuous-code
ablation).

  python benchmarks/style_quantization.py --runs runs [--split test]

Reads the audio-driven run's frozen style encoder and the evaluation's
style clips (those of `python -m saas_jax.evaluate --runs RUNS`); prints,
as median squared distances between clip codes (the mean code of a clip's
32-frame windows): quantized against continuous code of each clip, between
clips in either space, each clip's nearest other clip, and how often that
neighbour is the same clip in both spaces.
"""

import argparse
import json

import numpy as np

from saas_jax import evaluate
from saas_jax.evaluators import suite


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--runs", default="runs")
  p.add_argument("--split", default="test")
  args = p.parse_args()
  items = evaluate.Items.load(
    evaluate.parse(["--runs", args.runs, "--out", "-", "--split", args.split]),
    args.runs,
  )
  stylizer = suite.Models.load(args.runs).stylizer
  clips = {p.style_id: p.style for p in items.pairs}
  q = np.array([stylizer.style_code(e, quantize=True) for e in clips.values()])
  c = np.array([stylizer.style_code(e, quantize=False) for e in clips.values()])
  others = ~np.eye(len(clips), dtype=bool)

  def between(x):  # [N, N] squared distances, the diagonal left out
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    return np.where(others, d, np.inf)

  dq, dc = between(q), between(c)
  out = {
    "style_clips": len(clips),
    "quantization_shift": float(np.median(((q - c) ** 2).sum(1))),
    "between_clips_quantized": float(np.median(dq[others])),
    "between_clips_continuous": float(np.median(dc[others])),
    "nearest_clip_quantized": float(np.median(dq.min(1))),
    "nearest_clip_continuous": float(np.median(dc.min(1))),
    "same_nearest_clip": float((dq.argmin(1) == dc.argmin(1)).mean()),
  }
  print(json.dumps(out, indent=1))


if __name__ == "__main__":
  main()
