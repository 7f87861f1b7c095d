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
to its style. Both also over the pairs of a style seen in training and
those of the held-out person's (suffixes _seen, _new).

Then what each code carries of a clip's static shape (its time-mean
expression, mouth 0-17 and rest 18-63): a ridge read-out of the code,
fitted on the training clips and scored (L1) on the split's, predicting the
clip's own mean and its style's mean over the training clips; and on the
synthetic corpus how far a pair's ground truth mean lies from the style
clip's own mean and from its style's mean (seen styles): which of the two a
generator should take from the code.
"""

import argparse
import json
import os

import numpy as np

from saas_jax import evaluate
from saas_jax.evaluators import windows
from saas_jax.inference import StyleSpace
from saas_jax.models.motion_decoder import MOUTH

PARTS = {"mouth": slice(0, MOUTH), "rest": slice(MOUTH, None)}


def _squared(a, b):  # [N, S], [M, S] -> [N, M]
  return ((a[:, None] - b[None]) ** 2).sum(-1)


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--runs", default="runs")
  p.add_argument("--split", default="test")
  args = p.parse_args()
  ns = evaluate.parse(
    ["--runs", args.runs, "--out", "-", "--split", args.split]
  )
  items = evaluate.Items.load(ns, args.runs)
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
    seen = np.array([p.style_label >= 0 for p in pairs], bool)
    # All pairs, then those asking for a style seen in training and those
    # asking for the held-out person's (the codebook's two halves).
    halves = {"": np.ones_like(seen), "_seen": seen, "_new": ~seen}
    same = ids[:, None] == ids[None]
    for q, name in ((True, "quantized"), (False, "continuous")):
      row = list(clips).index
      style = code[q][[row(i) for i in ids]]  # [P, S]
      target = np.array([space.code(p.target, q) for p in pairs])
      d = _squared(style, target)  # [P style clips, P targets]
      spread = float(np.median(_squared(target, target)[~same]))
      hit = same[np.arange(len(pairs)), d.argmin(1)]  # [P]
      for half, keep in halves.items():
        if keep.any():
          out[f"to_target_{name}{half}"] = float(
            np.median(np.diag(d)[keep]) / spread
          )
          out[f"nearest_target_of_style_{name}{half}"] = float(hit[keep].mean())
    out["pairs"] = len(pairs)
    out["pairs_new"] = int(halves["_new"].sum())
  out.update(static_shape(space, ns, items))
  print(json.dumps(out, indent=1))


def static_shape(space, args, items, ridge: float = 1.0) -> dict:
  """What a linear read-out of either code predicts of a clip's mean
  expression and of its style's mean (module docstring); args: the
  evaluation's arguments that loaded `items`."""
  from input_pipeline import batches

  data_dir, data_config, _ = evaluate.resolve_data(args, args.runs)
  train = batches.load_table(data_dir, data_config, "train")
  held = batches.load_table(data_dir, data_config, args.split)
  clips = {
    n: windows.table_clips(t) for n, t in (("train", train), ("held", held))
  }
  mean = {
    n: np.array([e.mean(0) for e in c]) for n, c in clips.items()
  }  # [N, 64]
  style_mean = {
    int(k): mean["train"][train.label == k].mean(0) for k in set(train.label)
  }
  proto = {  # [N, 64] each clip's style's mean (held-out: its own label's)
    "train": np.array([style_mean[int(k)] for k in train.label]),
    "held": np.array([style_mean.get(int(k), np.nan) for k in held.label]),
  }
  seen = ~np.isnan(proto["held"][:, 0])
  out = {"probe_train_clips": len(train.label), "probe_clips": int(seen.sum())}
  for q, name in ((True, "quantized"), (False, "continuous")):
    x = {n: np.array([space.code(e, q) for e in c]) for n, c in clips.items()}
    mu, sd = x["train"].mean(0), x["train"].std(0) + 1e-6
    a = {n: np.c_[(v - mu) / sd, np.ones(len(v))] for n, v in x.items()}
    y = np.c_[mean["train"], proto["train"]]  # [N, 128]
    w = np.linalg.solve(
      a["train"].T @ a["train"] + ridge * np.eye(a["train"].shape[1]),
      a["train"].T @ y,
    )
    pred = (a["held"] @ w)[seen]
    for k, part in PARTS.items():
      own = pred[:, :64][:, part] - mean["held"][seen][:, part]
      sty = pred[:, 64:][:, part] - proto["held"][seen][:, part]
      out[f"probe_{name}_own_{k}"] = float(np.abs(own).mean())
      out[f"probe_{name}_style_{k}"] = float(np.abs(sty).mean())
  # Where each pair's ground-truth mean lies: [P, 64] means of each kind
  truth = [p for p in items.pairs if p.target is not None]
  is_seen = np.array([p.style_label >= 0 for p in truth], bool)
  t = np.array([p.target.mean(0) for p in truth])
  clip = np.array([p.style.mean(0) for p in truth])
  nan = np.full(t.shape[1:], np.nan)  # an unseen style has no mean
  sty = np.array([style_mean.get(p.style_label, nan) for p in truth])
  for k, part in PARTS.items():
    if truth:
      gap_clip = np.abs(t - clip)[:, part].mean(1)  # [P]
      gap_style = np.abs(t - sty)[:, part].mean(1)
      out[f"target_to_style_clip_{k}"] = float(gap_clip.mean())
    if is_seen.any():
      out[f"seen_target_to_style_clip_{k}"] = float(gap_clip[is_seen].mean())
      out[f"seen_target_to_style_mean_{k}"] = float(gap_style[is_seen].mean())
  out["seen_pairs"] = int(is_seen.sum())
  return out


if __name__ == "__main__":
  main()
