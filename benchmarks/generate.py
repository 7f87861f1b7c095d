"""Generation end to end at paper size (random weights): speech + a style
clip -> expression and head pose, and the preview renderer.

  python benchmarks/generate.py [--seconds 60] [--long_seconds 600]
      [--size paper|cpu]

Prints, with compile time apart (first call minus a second identical call):
  * features (mel + MFCC) for `seconds` of audio;
  * expression alone, expression + 1 pose sample, + 8 pose samples, each
    as time and real-time factor (seconds of audio per second of compute);
  * the latency of Pipeline.stream's first chunk (compiled);
  * `long_seconds` of audio (default 10 minutes) with 1 pose sample, in a
    fresh process: time and peak resident memory (ru_maxrss);
  * preview frames/s at 256 x 256 for the MediaPipe basis and the synthetic
    face (batch 32, compile apart).
The official code has no end-to-end generator to compare with; the
per-stage official comparisons are in benchmarks/motion.py and
benchmarks/pose_generator.py.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from input_pipeline import features  # noqa: E402
from input_pipeline import io as io_lib  # noqa: E402
from saas_jax.engine import config_lib  # noqa: E402
from saas_jax.inference import Pipeline, PoseSampler, Request, Stylizer  # noqa: E402
from saas_jax.models import builders  # noqa: E402
from saas_jax.trainers import motion  # noqa: E402

NUM_CLASSES = 1323  # MEAD's styles (sizes the frozen classifier only)


def _config(name, size, options=""):
  arg = f":{'' if size == 'paper' else size}{options}"
  return config_lib.load(os.path.join(ROOT, f"configs/{name}.py{arg}"))


def random_pipeline(size: str) -> Pipeline:
  style_model = _config("style_vqvae", size).model.to_dict()
  # The official decoder D([y, s_t]), as the official code's times have it.
  config = _config("audio_driven", size, ",styled_decoder")
  nets = motion.make_nets(config, NUM_CLASSES, style_model)
  state = motion.init_variables(nets, jax.random.key(0), style_model["hidden"])
  stylizer = Stylizer.from_state(nets.generator, style_model, state)

  pose_cfg = _config("pose_generator", size)
  codebook_cfg = _config("pose_vqvae", size).model.to_dict()
  model = builders.pose_generator_model(pose_cfg.model, codebook_cfg)
  keys = jax.random.split(jax.random.key(1), 3)
  variables = jax.jit(model.init)(
    keys[0],
    jnp.zeros((1, 32, 28, 12)),
    jnp.zeros((1, style_model["hidden"])),
    jnp.zeros((1, 4), jnp.int32),
    jnp.full((1,), 4),
    motion_windows=jnp.zeros((1, 1, 32, 6)),  # read when motion_dim > 0
  )
  codebook = builders.pose_codebook_model(codebook_cfg)
  codebook_vars = jax.jit(codebook.init)(
    keys[1], jnp.zeros((1, 32, 6)), jnp.zeros((1, 6))
  )
  style_enc = builders.style_encoder(style_model)
  style_vars = jax.jit(
    lambda k: style_enc.init(
      k, jnp.zeros((1, 32, 64)), method=style_enc.style_code
    )
  )(keys[2])
  sampler = PoseSampler(
    model, variables, codebook, codebook_vars, style_enc, style_vars
  )
  return Pipeline(stylizer, sampler)


def _clip(t, seed):
  rng = np.random.default_rng(seed)
  return io_lib.Coefficients(
    exp=(0.3 * rng.normal(size=(t, 64))).astype(np.float32),
    angles=np.zeros((t, 3), np.float32),
    trans=np.zeros((t, 3), np.float32),
    crop=np.tile(np.float32([1.0, 128.0, 128.0]), (t, 1)),
    identity=None,
    fps=25.0,
  )


def _speech(seconds):
  rng = np.random.default_rng(0)
  return (0.1 * rng.normal(size=int(seconds * 16000))).astype(np.float32)


def _twice(fn):
  """(first call s, second call s)."""
  t0 = time.perf_counter()
  fn()
  first = time.perf_counter() - t0
  t0 = time.perf_counter()
  fn()
  return first, time.perf_counter() - t0


def bench(pipe, seconds):
  wav = _speech(seconds)
  t0 = time.perf_counter()
  t = features.num_frames_for_audio(len(wav))
  features.mel_windows(features.log_mel(wav), t)
  features.mfcc_windows(features.mfcc(wav), t)
  print(
    f"features for {seconds:g} s of audio: {time.perf_counter() - t0:.2f} s"
  )
  base = dict(style=_clip(250, 1), source=_clip(1, 2), wav=wav)
  runs = [
    ("expression alone", Request(**base, pose="still")),
    ("expression + 1 pose sample", Request(**base, num_samples=1)),
    ("expression + 8 pose samples", Request(**base, num_samples=8)),
  ]
  for name, req in runs:
    first, again = _twice(lambda req=req: pipe(req))
    print(
      f"{name}: {again:.2f} s (real-time factor {seconds / again:.1f}x); "
      f"compile ~{max(first - again, 0):.1f} s"
    )
  req = runs[1][1]
  t0 = time.perf_counter()
  next(iter(pipe.stream(req)))
  print(f"stream: first chunk after {time.perf_counter() - t0:.2f} s")


def long_run(size, seconds):
  """In this (fresh) process: one generation of `seconds` of speech."""
  pipe = random_pipeline(size)
  req = Request(style=_clip(250, 1), source=_clip(1, 2), wav=_speech(seconds))
  t0 = time.perf_counter()
  frames = sum(len(c.exp) for c in pipe.stream(req))
  took = time.perf_counter() - t0
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB
  print(json.dumps({"seconds": took, "frames": frames, "peak_mib": peak}))


def bench_preview(frames=256):
  from saas_jax import face_model
  from saas_jax.render import preview

  rng = np.random.default_rng(0)
  driving = np.zeros((frames, 73), np.float32)
  driving[:, :64] = 0.3 * rng.normal(size=(frames, 64))
  driving[:, 64:67] = 0.05 * rng.normal(size=(frames, 3))
  driving[:, 70:73] = io_lib.DEFAULT_CROP
  for name in ("mediapipe", "synthetic"):
    renderer = preview.PreviewRenderer(face_model.load(name), batch=32)
    first, again = _twice(lambda r=renderer: r(driving))
    print(
      f"preview ({name}, {len(renderer.mesh.triangles)} triangles): "
      f"{frames / again:.0f} frames/s at 256x256; first call {first:.1f} s"
    )


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--size", choices=("paper", "cpu"), default="paper")
  p.add_argument("--seconds", type=float, default=60.0)
  p.add_argument("--long_seconds", type=float, default=600.0)
  p.add_argument("--long_only", action="store_true", help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.long_only:
    long_run(args.size, args.long_seconds)
    return
  print(
    f"{args.size} size, {jax.device_count()} {jax.devices()[0].platform} "
    "device(s), random weights"
  )
  bench(random_pipeline(args.size), args.seconds)
  if args.long_seconds:
    proc = subprocess.run(
      [
        sys.executable,
        __file__,
        "--long_only",
        "--size",
        args.size,
        "--long_seconds",
        str(args.long_seconds),
      ],
      capture_output=True,
      text=True,
      check=True,
    )
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
      f"{args.long_seconds:g} s of audio ({r['frames']} frames), 1 pose "
      f"sample, fresh process: {r['seconds']:.1f} s (compile included), "
      f"peak RSS {r['peak_mib']:.0f} MiB"
    )
  bench_preview()


if __name__ == "__main__":
  main()
