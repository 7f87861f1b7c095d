"""Feature baselines for the style stage's evaluation, on the same clips.

  python benchmarks/style_baselines.py [--data_dir D --config manifest]

Nearest-centroid style classification of held-out clips (eval split, default
"test") from training clips, on per-clip mean expression and on the temporal
features of input_pipeline.synthetic.baselines (articulators, blink, brows
and head pose; also without head pose, which the style codebook never sees);
and half-clip retrieval with the same features (a clip's first half
retrieves its second half among all held-out clips), which is what the
style stage reports as style_accuracy and style_retrieval.
"""

import argparse

import numpy as np

from input_pipeline import batches, default_data
from input_pipeline.synthetic import baselines


def _clips(table):
  for c in range(table.num_clips):
    s, n = table.start[c], table.length[c]
    yield table.exp[s : s + n], table.pose[s : s + n]


def _scaled(x, train_x):
  return (x - train_x.mean(0)) / (train_x.std(0) + 1e-9)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_dir", default="")
  parser.add_argument("--config", default="manifest")
  parser.add_argument("--eval_split", default="test")
  args = parser.parse_args()
  if args.data_dir:
    data_dir, config = args.data_dir, args.config
  else:
    data_dir, config = default_data.ensure()
  train = batches.load_table(data_dir, config, "train", with_audio=False)
  held = batches.load_table(data_dir, config, args.eval_split, with_audio=False)
  feats = [
    baselines.clip_features(e, p) for e in (train, held) for e, p in _clips(e)
  ]
  mean = np.array([f[0] for f in feats])
  temporal = np.array([f[1] for f in feats])
  labels = np.concatenate([train.label, held.label])
  is_train = np.arange(len(labels)) < train.num_clips
  print(
    f"{train.num_clips} train clips, {held.num_clips} held-out clips "
    f"({args.eval_split}), {len(set(train.label))} styles "
    f"(chance {1 / len(set(train.label)):.3f})"
  )
  # The style codebook sees expression only: the same temporal features
  # without the 3 head angles (the last 3 of each of the 4 statistics).
  blocks = temporal.reshape(len(temporal), 4, -1)
  exp_only = blocks[:, :, :-3].reshape(len(temporal), -1)
  for name, x in (
    ("mean expression", mean),
    ("temporal features", temporal),
    ("both", np.concatenate([mean, temporal], 1)),
    ("temporal, expression only", exp_only),
    ("mean + temporal, expression only", np.concatenate([mean, exp_only], 1)),
  ):
    pred = baselines.nearest_centroid(x, labels, is_train)
    print(f"classification, {name:32s}: {np.mean(pred == held.label):.3f}")
  # Half-clip retrieval among held-out clips.
  halves = []
  for e, p in _clips(held):
    mid = len(e) // 2
    halves.append(
      [
        baselines.clip_features(e[:mid], p[:mid]),
        baselines.clip_features(e[mid:], p[mid:]),
      ]
    )
  for k, name in ((0, "mean expression"), (1, "temporal features")):
    first = np.array([h[0][k] for h in halves])
    second = np.array([h[1][k] for h in halves])
    ref = np.array([f[k] for f in feats])[is_train]
    first, second = _scaled(first, ref), _scaled(second, ref)
    dist = ((first[:, None] - second[None]) ** 2).sum(-1)
    acc = np.mean(dist.argmin(1) == np.arange(len(first)))
    print(f"half-clip retrieval, {name:32s}: {acc:.3f}")


if __name__ == "__main__":
  main()
