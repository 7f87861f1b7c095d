"""How far quantization moves a style clip's code, against how far apart
the style clips lie, and whether it moves the code toward the style the
generator should produce: whether the quantized and the continuous style
codes can tell the generator different things (the paper's continuous-code
ablation).

  python benchmarks/style_quantization.py --runs runs [--split test]

Reads the style run (RUNS/style_vqvae: the frozen encoder of the later
stages) and the evaluation's pairs (those of `python -m saas_jax.evaluate
--runs RUNS`); prints, as median squared distances between clip codes (the
mean code of a clip's 32-frame windows): quantized against continuous code
of each style clip, between clips in either space, each clip's nearest
other clip, and how often that neighbour is the same clip in both spaces.
On the synthetic corpus also, in either space, how far a pair's style clip
lies from its ground truth (the content's speech in the style, rendered
without the style clip's session offset, drift, blinks and tracking noise)
relative to how far the ground truths of different styles lie, and how
often the ground truth nearest to the style clip's code is of its style:
what quantization would have to gain if it stripped what a recording adds
to its style.
"""

import argparse
import json
import os

import numpy as np

from saas_jax import evaluate
from saas_jax.inference import StyleSpace


def _squared(a, b):  # [N, S], [M, S] -> [N, M]
  return ((a[:, None] - b[None]) ** 2).sum(-1)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--runs", default="runs")
  p.add_argument("--split", default="test")
  args = p.parse_args()
  items = evaluate.Items.load(
    evaluate.parse(["--runs", args.runs, "--out", "-", "--split", args.split]),
    args.runs,
  )
  space = StyleSpace.load(os.path.join(args.runs, "style_vqvae"))
  clips = {p.style_id: p.style for p in items.pairs}
  code = {
    q: np.array([space.code(e, q) for e in clips.values()])
    for q in (True, False)
  }
  others = ~np.eye(len(clips), dtype=bool)

  def between(x):  # [N, N] squared distances, the diagonal left out
    return np.where(others, _squared(x, x), np.inf)

  dq, dc = between(code[True]), between(code[False])
  out = {
    "style_clips": len(clips),
    "quantization_shift": float(
      np.median(((code[True] - code[False]) ** 2).sum(1))
    ),
    "between_clips_quantized": float(np.median(dq[others])),
    "between_clips_continuous": float(np.median(dc[others])),
    "nearest_clip_quantized": float(np.median(dq.min(1))),
    "nearest_clip_continuous": float(np.median(dc.min(1))),
    "same_nearest_clip": float((dq.argmin(1) == dc.argmin(1)).mean()),
  }
  pairs = [p for p in items.pairs if p.target is not None]
  if pairs:
    ids = np.array([p.style_id for p in pairs])
    same = ids[:, None] == ids[None]
    for q, name in ((True, "quantized"), (False, "continuous")):
      row = list(clips).index
      style = code[q][[row(i) for i in ids]]  # [P, S]
      target = np.array([space.code(p.target, q) for p in pairs])
      d = _squared(style, target)  # [P style clips, P targets]
      spread = float(np.median(_squared(target, target)[~same]))
      out[f"to_target_{name}"] = float(np.median(np.diag(d)) / spread)
      out[f"nearest_target_of_style_{name}"] = float(
        same[np.arange(len(pairs)), d.argmin(1)].mean()
      )
    out["pairs"] = len(pairs)
  print(json.dumps(out, indent=1))


if __name__ == "__main__":
  main()
