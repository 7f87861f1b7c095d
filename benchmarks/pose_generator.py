"""Pose generator: sampling time for an utterance and train step time.

  python benchmarks/pose_generator.py [--config configs/pose_generator.py]
      [--seconds 60] [--samples 1,8] [--naive_seconds 4]
      [--train_batch_sizes 8] [--steps 2]

Random weights and inputs at the config's size (paper size by default); a
200-code pose codebook and a 256-d style code. Prints, compile time apart:
  * sampling `seconds` of audio at 25 fps (sampling.sampler: audio CNN once
    per frame, speaker tokens of all steps in one call, a lax.scan over the
    steps), for each sample count; and its parts (the per-frame audio CNN
    alone, the scan alone);
  * the step-by-step form (sampling.sample_tokens_naive, the official
    cost model: whole model per step and per sample) on `naive_seconds` of
    audio, extrapolated linearly to `seconds`;
  * with model.residual_width > 0 (the cpu config), the audio-driven
    residual over the utterance (sampling.pose_residual: the audio CNN once
    more and the residual's convolutions);
  * with eval.calibrate_spectrum (the cpu config), the spectral equaliser
    on the samples (sampling.equalize, a 63-tap FIR per channel);
  * the generator's train step (teacher forcing on random tokens; the frozen
    style encoder and pose codebook are not part of this timing).

A config with model.motion_dim > 0 samples with a zero motion code and
trains on zero motion windows (their encoder is a few small convolutions).
"""

import argparse
import functools
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from saas_jax import sampling
from saas_jax.engine import config_lib, loop, optim
from saas_jax.engine.train_state import TrainState
from saas_jax.models import builders

FPS = 25
NUM_CODES = 200
STYLE_DIM = 256


def _timed(fn, *args, repeats=1):
  """(compile s, mean run s) of jitted fn."""
  t0 = time.perf_counter()
  compiled = fn.lower(*args).compile()
  compile_s = time.perf_counter() - t0
  jax.block_until_ready(compiled(*args))  # warm-up
  t0 = time.perf_counter()
  for _ in range(repeats):
    out = compiled(*args)
  jax.block_until_ready(out)
  return compile_s, (time.perf_counter() - t0) / repeats


def bench_sampling(config, model, variables, seconds, samples):
  frames = int(seconds * FPS)
  rng = np.random.default_rng(0)
  audio = rng.normal(size=(frames, 28, 12)).astype(np.float32)
  mfcc = jnp.asarray(sampling.pad_audio(audio, frames)[None])
  style = jnp.asarray(rng.normal(size=(1, STYLE_DIM)), jnp.float32)
  n = sampling.num_tokens(frames)
  print(f"sampling {seconds:g} s of audio: {frames} frames, {n} tokens")
  feats = jax.jit(lambda v, m: model.apply(v, m, method=model.audio_features))
  c, r = _timed(feats, variables, mfcc)
  print(
    f"  audio CNN alone (once per frame): compile {c:5.1f} s, run {r:6.2f} s"
  )
  motion = None
  if model.motion_dim:
    motion = jnp.zeros((1, model.motion_dim))
  for num in samples:
    fn = jax.jit(
      lambda v, m, s, k, num=num: sampling.sample_tokens(
        model, v, m, s, k, num_samples=num, motion=motion
      )
    )
    c, r = _timed(fn, variables, mfcc, style, jax.random.key(0))
    print(f"  {num} sample(s): compile {c:5.1f} s, run {r:6.2f} s")
  if model.residual_width:
    fn = jax.jit(lambda v, m: sampling.pose_residual(model, v, m, jnp.ones(6)))
    c, r = _timed(fn, variables, mfcc)
    print(f"  residual (all samples): compile {c:5.1f} s, run {r:6.2f} s")
  if config.eval.get("calibrate_spectrum"):
    gain = rng.uniform(0.5, 2.0, size=(33, 6))  # a run's spectral gain
    kernel = sampling.equalizer_kernel(gain)
    poses = jnp.asarray(rng.normal(size=(max(samples), frames, 6)), jnp.float32)
    fn = jax.jit(lambda x: sampling.equalize(x, kernel, jnp.zeros(6)))
    c, r = _timed(fn, poses)
    print(
      f"  spectral equaliser ({max(samples)} samples): compile {c:5.1f} s, "
      f"run {r:6.3f} s"
    )
  return frames


def bench_naive(model, variables, seconds, full_seconds, num):
  frames = int(seconds * FPS)
  rng = np.random.default_rng(0)
  audio = rng.normal(size=(frames, 28, 12)).astype(np.float32)
  mfcc = jnp.asarray(sampling.pad_audio(audio, frames)[None])
  style = jnp.asarray(rng.normal(size=(1, STYLE_DIM)), jnp.float32)
  n = sampling.num_tokens(frames)
  args = (model, variables, mfcc, style, jax.random.key(0))
  # First call compiles the per-step forward; the second is timed.
  sampling.sample_tokens_naive(*args, num_samples=num).block_until_ready()
  t0 = time.perf_counter()
  sampling.sample_tokens_naive(*args, num_samples=num).block_until_ready()
  run = time.perf_counter() - t0
  full = run * sampling.num_tokens(int(full_seconds * FPS)) / n
  print(
    f"  step-by-step, {num} sample(s): {run:6.2f} s for {seconds:g} s "
    f"({n} steps) -> ~{full:6.1f} s for {full_seconds:g} s"
  )


def bench_train(config, model, variables, batch_sizes, steps):
  tx = optim.make_optimizer(config.optim, config.num_train_steps)
  for b in batch_sizes:
    rng = np.random.default_rng(0)
    params = jax.tree.map(jnp.array, variables["params"])
    state = TrainState.create(
      apply_fn=model.apply,
      params=params,
      tx=tx,
      extra={"batch_stats": jax.tree.map(jnp.array, variables["batch_stats"])},
      cfg=ml_collections.FrozenConfigDict(config.loss),
    )
    batch = {
      # 64 frames with a residual (its target: the pose of all 64), else 32
      "mfcc": jnp.asarray(
        rng.normal(size=(b, 64 if model.residual_width else 32, 28, 12)),
        jnp.float32,
      ),
      "residual": jnp.asarray(rng.normal(size=(b, 64, 6)), jnp.float32),
      "style": jnp.asarray(rng.normal(size=(b, STYLE_DIM)), jnp.float32),
      "past": jnp.asarray(rng.integers(NUM_CODES, size=(b, 4)), jnp.int32),
      "target": jnp.asarray(rng.integers(NUM_CODES, size=(b, 4)), jnp.int32),
      "motion_windows": jnp.zeros((b, 5, 32, 6)),  # [B, W, 32, 6]
    }
    step = jax.jit(
      functools.partial(_train_step, residual=bool(model.residual_width)),
      donate_argnums=0,
    )
    t0 = time.perf_counter()
    compiled = step.lower(state, batch, jax.random.key(0)).compile()
    compile_s = time.perf_counter() - t0
    state, m = compiled(state, batch, jax.random.key(0))
    jax.block_until_ready(m)
    t0 = time.perf_counter()
    for i in range(steps):
      state, m = compiled(state, batch, jax.random.key(i))
    jax.block_until_ready(m)
    step_s = (time.perf_counter() - t0) / steps
    print(
      f"train step, batch {b:3d}: compile {compile_s:5.1f} s, "
      f"step {step_s:6.2f} s, {b / step_s:6.1f} windows/s"
    )


def _train_step(state, batch, rng, residual=False):
  """trainer.loss_fn without the frozen networks (inputs given)."""
  from saas_jax import losses
  from saas_jax.engine.train_state import apply_loss

  def loss_fn(params, extra, batch, rng):
    k = jax.random.randint(rng, batch["past"].shape[:1], 0, 21)
    out, updates = state.apply_fn(
      {"params": params, **extra},
      batch["mfcc"],
      batch["style"],
      batch["past"],
      jnp.minimum(k, 4),
      train=True,
      motion_windows=batch["motion_windows"],
      method="with_residual" if residual else None,
      mutable=["batch_stats"],
    )
    logits = out[0] if residual else out
    loss = ce = losses.cross_entropy(logits[:, :4], batch["target"])
    if residual:
      loss = ce + jnp.mean((out[1] - batch["residual"]) ** 2)
    return loss, ({"ce": ce}, {**extra, **updates})

  return apply_loss(state, batch, rng, loss_fn)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  parser.add_argument(
    "--config", default=os.path.join(root, "configs/pose_generator.py")
  )
  parser.add_argument("--seconds", type=float, default=60.0)
  parser.add_argument("--samples", default="1,8")
  parser.add_argument("--naive_seconds", type=float, default=4.0)
  parser.add_argument("--train_batch_sizes", default="8")
  parser.add_argument("--steps", type=int, default=2)
  args = parser.parse_args()
  config = config_lib.load(args.config)
  model = builders.pose_generator_model(config.model, {"num_codes": NUM_CODES})
  variables = jax.jit(model.init)(
    jax.random.key(0),
    jnp.zeros((1, 32, 28, 12)),
    jnp.zeros((1, STYLE_DIM)),
    jnp.zeros((1, 4), jnp.int32),
    jnp.full((1,), 4),
    motion_windows=jnp.zeros((1, 1, 32, 6)),  # used when motion_dim > 0
  )
  print(
    f"{args.config}: {loop.count_params(variables['params']) / 1e6:.2f} M "
    f"parameters, {jax.device_count()} {jax.devices()[0].platform} device(s)"
  )
  samples = [int(s) for s in args.samples.split(",")]
  bench_sampling(config, model, variables, args.seconds, samples)
  if args.naive_seconds > 0:
    for num in samples:
      bench_naive(model, variables, args.naive_seconds, args.seconds, num)
  sizes = [int(b) for b in args.train_batch_sizes.split(",") if b]
  bench_train(config, model, variables, sizes, args.steps)


if __name__ == "__main__":
  main()
