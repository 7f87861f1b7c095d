"""What the pose pipeline alone does to real head motion: the default
data's held-out clips passed through a pose codebook (their own tokens,
decoded as the sampler decodes) and the sampler's Savitzky-Golay filter,
scored with the pose generator's metrics. No generator: a floor for its
figures.

  python benchmarks/pose_floor.py --pose_vqvae runs/pose_vqvae

Prints, per treatment (real, smoothed, codebook, codebook + smoothing):
the distance of the motion statistics to the clip's style (raw and
smoothed reference, in within-style std units), the L1 to the real pose,
jitter, and the onset-locked nod response (evaluators.pose.NodTemplate,
built on the training clips) with the clip's own audio and another clip's.
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from input_pipeline import default_data, features
from input_pipeline import synthetic as synth
from saas_jax import sampling
from saas_jax.evaluators import pose as pose_metrics
from saas_jax.inference import runs
from saas_jax.models import builders

SAVGOL = 13


def codebook_fn(workdir):
  """[T, 6] pose -> [32 floor(T/32), 6] decoded from its own tokens."""
  run = runs.load_run(workdir, "pose_vqvae", "--pose_vqvae")
  model = builders.pose_codebook_model(run.spec["model"])
  v = {"params": run.params, **run.extra}
  tokens = jax.jit(lambda x, o: model.apply(v, x, o, method=model.tokens))
  decode = jax.jit(
    lambda i, o: model.apply(v, i, o, method=model.decode_tokens)
  )

  def recon(pose):
    w = pose[: len(pose) // 32 * 32].reshape(-1, 32, 6)
    offset = np.repeat(pose.mean(0, keepdims=True), len(w), 0)
    idx = np.asarray(tokens(jnp.asarray(w), jnp.asarray(offset))).reshape(-1)
    mean = jnp.asarray(pose.mean(0))
    fn = lambda i: decode(i, jnp.broadcast_to(mean, (len(i), 6)))  # noqa: E731
    per_window = 32 // 2**model.vq.factor  # tokens per 32 frames
    return np.asarray(sampling.decode_sliding(fn, jnp.asarray(idx), per_window))

  return recon


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--pose_vqvae", default="runs/pose_vqvae")
  args = p.parse_args()
  recon = codebook_fn(args.pose_vqvae)
  train, test = [], []
  for spec in synth.plan_corpus(default_data.PRESET):
    if spec.split in ("train", "test"):
      clip = synth.render_clip(default_data.SEED, spec, audio=True)
      style = (spec.person, spec.emotion, spec.level)
      (train if spec.split == "train" else test).append((style, clip))
  labels = {s: i for i, s in enumerate(sorted({s for s, _ in train}))}
  poses = [c.pose for _, c in train]
  styles = [labels[s] for s, _ in train]
  refs = {
    "raw": pose_metrics.StyleReference.from_clips(poses, styles),
    "smoothed": pose_metrics.StyleReference.from_clips(
      poses, styles, smooth=SAVGOL
    ),
  }

  def onsets(clip):
    mel = features.log_mel(clip.wav)
    energy = pose_metrics.frame_energy(mel, len(clip.pose), features.MODEL_FPS)
    return pose_metrics.energy_onsets(energy)

  template = pose_metrics.NodTemplate.from_clips(
    poses, [onsets(c) for _, c in train]
  )
  heard = [onsets(c) for _, c in test]
  smooth = lambda x: pose_metrics.smoothed(x, SAVGOL)  # noqa: E731
  treatments = {
    "real": lambda x: x,
    "smoothed": smooth,
    "codebook": recon,
    "codebook+smoothed": lambda x: smooth(recon(x)),
  }
  print(
    f"{'':18s} dist raw  dist smoothed  L1      jitter   nod response own / shuffled"
  )
  for name, fn in treatments.items():
    dist = {k: [] for k in refs}
    l1, jit, own, other = [], [], [], []
    for i, (style, clip) in enumerate(test):
      q = fn(clip.pose)
      for k, ref in refs.items():
        dist[k].append(ref.distance(q, labels[style]))
      l1.append(np.abs(q - clip.pose[: len(q)]).mean())
      jit.append(pose_metrics.jitter(q))
      j = (i + 1) % len(test)  # another clip's audio: chance
      for out, o in ((own, heard[i]), (other, heard[j])):
        r = template.response(q, o[o < len(q)])
        if r is not None:
          out.append(r)
    print(
      f"{name:18s} {np.mean(dist['raw']):8.2f}  {np.mean(dist['smoothed']):13.2f}"
      f"  {np.mean(l1):.4f}  {np.mean(jit):.5f}  "
      f"{np.mean(own):.3f} / {np.mean(other):.3f}"
    )


if __name__ == "__main__":
  main()
