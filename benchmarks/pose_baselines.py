"""How much of a style's head motion a style clip tells, without a pose
generator: head poses made of tokens drawn independently from a token
histogram, decoded and smoothed as the pose sampler does, scored as
`python -m saas_jax.evaluate` scores sampled poses (A's speech length, B's
style: distance of the smoothed motion statistics to B's style, how often
B's style is closer than A's).

  python benchmarks/pose_baselines.py --runs RUNS [--pairs 120] [--samples 4]

RUNS holds style_vqvae, pose_vqvae and pose_generator (whose sampler
decodes) runs. Histograms of the pose tokens of:
  true style       the training clips of B's style (an oracle: the label)
  code k-NN        the k training clips nearest to B's clip by the style
                   code of its expression (what G_p is officially given)
  motion k-NN      the k training clips nearest to B's clip by the motion
                   statistics of its head pose (evaluators.pose)
  B's own clip     B's clip's own tokens
"""

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from input_pipeline import batches as batches_lib
from saas_jax import evaluate, sampling
from saas_jax.evaluators import pose as pose_metrics
from saas_jax.evaluators import windows as windows_lib
from saas_jax.inference import PoseSampler, runs
from saas_jax.models import builders


def token_fn(workdir):
  """[T, 6] pose -> its codebook tokens (32-frame windows about the clip's
  mean pose, as the pose stages code it)."""
  run = runs.load_run(workdir, "pose_vqvae")
  model = builders.pose_codebook_model(run.spec["model"])
  v = {"params": run.params, **run.extra}
  fn = jax.jit(lambda x, o: model.apply(v, x, o, method=model.tokens))

  def tokens(pose):
    w = pose[: len(pose) // 32 * 32].reshape(-1, 32, 6)
    if not len(w):
      return np.zeros(0, np.int64)
    offset = np.repeat(pose.mean(0, keepdims=True), len(w), 0)
    return np.asarray(fn(jnp.asarray(w), jnp.asarray(offset))).reshape(-1)

  return tokens, int(run.spec["model"]["num_codes"])


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--runs", required=True)
  p.add_argument("--pairs", type=int, default=120)
  p.add_argument("--samples", type=int, default=4)
  p.add_argument("--neighbours", default="5,20")
  args = p.parse_args(argv)
  ns = evaluate.test_split_args("audio", max_pairs=args.pairs)
  items = evaluate.Items.load(ns, args.runs)
  sampler = PoseSampler.load(os.path.join(args.runs, "pose_generator"))
  tokens, num_codes = token_fn(os.path.join(args.runs, "pose_vqvae"))
  data_dir, data_config, _ = evaluate.resolve_data(ns, args.runs)
  train = batches_lib.load_table(data_dir, data_config, "train")
  exps = windows_lib.table_clips(train, "exp")
  poses = windows_lib.table_clips(train, "pose")
  ref, labels = items.reference.smooth, items.reference.labels
  train_tokens = [tokens(x) for x in poses]
  train_codes = np.stack([sampler.style_code(e, warn=False) for e in exps])
  train_stats = np.stack([ref.stats(x) for x in poses]) / ref.scale
  train_labels = np.asarray(train.label)
  per_window = sampler.model.num_tokens

  def nearest(table, query, k):
    return np.argsort(((table - query) ** 2).sum(1))[:k]

  picks = {  # pair -> the training clips whose tokens to draw from
    "true style": lambda pair: np.flatnonzero(
      train_labels == labels[pair.style_id]
    )
  }
  for k in (int(x) for x in args.neighbours.split(",")):
    picks[f"code {k}-NN"] = lambda pair, k=k: nearest(
      train_codes, sampler.style_code(pair.style), k
    )
    picks[f"motion {k}-NN"] = lambda pair, k=k: nearest(
      train_stats, ref.stats(pair.style_pose) / ref.scale, k
    )
  picks["B's own clip"] = None

  rng = np.random.default_rng(0)
  print(f"{len(items.pairs)} pairs x {args.samples} samples")
  print(f"{'tokens drawn from':18s} {'dist to B':>9s} {'B closer':>9s}")
  for name, pick in picks.items():
    dist, closer = [], []
    for pair in items.pairs:
      counts = np.full(num_codes, 0.01)
      chosen = (
        [tokens(pair.style_pose)]
        if pick is None
        else [train_tokens[i] for i in pick(pair)]
      )
      for t in chosen:
        np.add.at(counts, t, 1)
      t = len(pair.content)
      n = sampling.num_tokens(t, per_window)
      b, a = labels[pair.style_id], labels[pair.content_id]
      for _ in range(args.samples):
        idx = rng.choice(num_codes, n, p=counts / counts.sum())
        pose = np.asarray(
          sampling.decode_sliding(sampler._decode_windows, idx, per_window)
        )[:t]
        pose = pose_metrics.smoothed(pose, sampler.savgol[0], sampler.savgol[1])
        d_b, d_a = ref.distance(pose, b), ref.distance(pose, a)
        dist.append(d_b)
        if a != b:
          closer.append(d_b < d_a)
    print(f"{name:18s} {np.mean(dist):9.2f} {100 * np.mean(closer):8.1f}%")
  return 0


if __name__ == "__main__":
  sys.exit(main())
