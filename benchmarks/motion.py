"""Expression stage timings: the generator + critics train step, the
generator's forward + backward alone, and inference for 60 s of audio.

  python benchmarks/motion.py                        # paper size, batch 128, 32
  python benchmarks/motion.py --size cpu --batch 32  # the cpu config's model
  python benchmarks/motion.py --driver video

Random weights and inputs of the real shapes (timings do not depend on the
values). The train step is the stage's module-level train_step, jitted with
the state donated, as the engine runs it; compile time is reported apart.
Beside it, the official train pass's scope (../shared/tools/refbench
section b "full"): the generator alone, forward and backward, on random
style codes.
"""

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import profiling

from input_pipeline import features
from saas_jax import inference
from saas_jax.engine import config_lib, loop
from saas_jax.engine.train_state import TrainState
from saas_jax.models import audio_encoder
from saas_jax.trainers import motion

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_CLASSES = 1323  # MEAD's person x emotion x level styles


# The official model's decoder D([y, s_t]) and loss (the audio config's
# defaults depart from them), so that the official code's times compare.
OFFICIAL = "styled_decoder,no_stats"


def _nets(size: str, driver: str, style_model, ablation=""):
  variant = "" if size == "paper" else size
  arg = ",".join([variant, OFFICIAL] + ([ablation] if ablation else []))
  config = config_lib.load(
    os.path.join(ROOT, f"configs/{driver}_driven.py:{arg}")
  )
  return config, motion.make_nets(config, NUM_CLASSES, style_model)


def _batch(rng, b, driver):
  t = motion.WINDOW
  batch = {
    k: rng.normal(0, 0.3, (b, t, 64)).astype(np.float32)
    for k in ("exp", "style_exp", "pos_exp", "neg_exp")
  }
  batch["label"] = rng.integers(NUM_CLASSES, size=b)
  batch["style_label"] = rng.integers(NUM_CLASSES, size=b)
  batch["ref_exp"] = batch["exp"][:, 0]
  if driver == "audio":
    batch["mel"] = rng.normal(0, 1, (b, t, 80, 16)).astype(np.float32)
    batch["blink"] = np.zeros((b, t), np.float32)
  return jax.tree.map(jnp.asarray, batch)


def train_step_time(config, nets, batch_size, steps=2, profile=False):
  rng = np.random.default_rng(0)
  style_dim = nets.style.vq.hidden
  variables = dict(motion.init_variables(nets, jax.random.key(0), style_dim))
  params = variables.pop("params")
  state = TrainState.create(
    apply_fn=nets,
    params=params,
    tx=motion.make_optimizer(config, 1000),
    extra=variables,
    cfg=motion.stage_cfg(config),
  )
  gen = loop.count_params(state.params["generator"]) / 1e6
  step = jax.jit(motion.train_step, donate_argnums=0)
  batch = _batch(rng, batch_size, nets.generator.driver)
  key = jax.random.key(0)
  t0 = time.perf_counter()
  compiled = step.lower(state, batch, key).compile()
  compile_s = time.perf_counter() - t0
  state, m = compiled(state, batch, key)
  jax.block_until_ready(m)
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    state, m = compiled(state, batch, key)
    jax.block_until_ready(m)
    times.append(time.perf_counter() - t0)
  if profile:
    holder = [state]  # the step donates its state: keep the new one

    def run():
      holder[0], m = compiled(holder[0], batch, key)
      jax.block_until_ready(m)

    result = profiling.profile(run, compiled.as_text(), depth=3)
    profiling.print_table(result, title=f"train step, batch {batch_size}")
  return gen, compile_s, float(np.median(times)), profiling.memory(compiled)


def generator_pass(config, nets, batch_size):
  """The official train pass's scope (refbench section b, "full"): content
  encoder, adapter on transfer + reconstruction, decoder on both, an MSE
  to random targets, forward + backward; no critics, no style encoder
  (random style codes), no optimizer. -> (compiled gradient, its input)."""
  rng = np.random.default_rng(0)
  style_dim = nets.style.vq.hidden
  variables = dict(motion.init_variables(nets, jax.random.key(0), style_dim))
  gen = variables.pop("params")["generator"]
  stats = variables.get("batch_stats", {})
  batch = _batch(rng, batch_size, nets.generator.driver)
  s_a, s_b = (
    jnp.asarray(rng.normal(size=(batch_size, style_dim)), jnp.float32)
    for _ in range(2)
  )
  cfg = motion.stage_cfg(config)
  targets = jnp.asarray(rng.normal(size=(2, *batch["exp"].shape)), jnp.float32)

  def loss(gen):
    outs, _ = motion.generate(gen, stats, batch, s_a, s_b, nets=nets, cfg=cfg)
    return jnp.mean((outs["res"] - targets[0]) ** 2) + jnp.mean(
      (outs["rec"] - targets[1]) ** 2
    )

  return jax.jit(jax.grad(loss)).lower(gen).compile(), gen


def generator_pass_time(config, nets, batch_size, steps=2):
  """-> median seconds of `steps` passes after a warm-up, memory."""
  compiled, gen = generator_pass(config, nets, batch_size)
  jax.block_until_ready(compiled(gen))
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(gen))
    times.append(time.perf_counter() - t0)
  return float(np.median(times)), profiling.memory(compiled)


def generator_pass_flops(config, nets, batch_size) -> float:
  """XLA's operation count of the pass, compiled with the mel CNN's kernel
  gradient in one piece: XLA counts a loop's body once, and the pieces do
  the same operations."""
  piece = audio_encoder.GRAD_PIECE_BYTES
  audio_encoder.GRAD_PIECE_BYTES = 1 << 62
  try:
    return profiling.flops(generator_pass(config, nets, batch_size)[0])
  finally:
    audio_encoder.GRAD_PIECE_BYTES = piece


def inference_time(nets, style_model, seconds=60.0, profile=False, reps=1):
  t = int(seconds * features.MODEL_FPS)
  rng = np.random.default_rng(0)
  style_dim = nets.style.vq.hidden
  variables = motion.init_variables(nets, jax.random.key(0), style_dim)
  stylizer = inference.Stylizer.from_state(
    nets.generator, style_model, variables, chunk=t
  )
  wav = rng.normal(0, 0.1, int(seconds * 16000)).astype(np.float32)
  inputs = dict(
    style_exp=rng.normal(0, 0.3, (100, 64)).astype(np.float32),
    source_exp=rng.normal(0, 0.3, (1, 64)).astype(np.float32),
  )
  if nets.generator.driver == "audio":
    for _ in range(2):  # the first call also loads the mel filter bank
      t0 = time.perf_counter()
      inputs["mel"] = features.mel_windows(features.log_mel(wav), t)
      mel_s = time.perf_counter() - t0
  else:
    inputs["source_exp"] = rng.normal(0, 0.3, (t, 64)).astype(np.float32)
    mel_s = 0.0
  t0 = time.perf_counter()
  stylizer(**inputs)
  first = time.perf_counter() - t0
  times = []
  for _ in range(reps):
    t0 = time.perf_counter()
    stylizer(**inputs)
    times.append(time.perf_counter() - t0)
  steady = float(np.median(times))  # first call apart: compile included
  if profile:
    result = profiling.profile(
      lambda: jax.block_until_ready(stylizer(**inputs))
    )
    profiling.print_table(result, title="inference, 60 s")
  return mel_s, first, steady


def inference_flops(nets, seconds=60.0) -> float:
  """XLA's operation count of generating `seconds` of expression in one
  call (the content encoder over every frame's mel window, the adapter and
  the decoder), as inference.Stylizer runs it with chunk = the whole
  utterance. The LSTMs' recurrent products sit in loops, which XLA counts
  once: about 0.5 of 259 GFLOP at paper size go uncounted."""
  t = int(seconds * features.MODEL_FPS)
  g = nets.generator
  style_dim = nets.style.vq.hidden
  variables = motion.init_variables(nets, jax.random.key(0), style_dim)
  gv = {"params": variables["params"]["generator"]}
  if "batch_stats" in variables:
    gv["batch_stats"] = variables["batch_stats"]
  source = {
    "mel": jnp.zeros((1, t, 80, 16)),
    "ref_exp": jnp.zeros((1, 64)),
    "blink": jnp.zeros((1, t)),
    "exp": jnp.zeros((1, t, 64)),
  }
  s = jnp.zeros((1, style_dim))

  def generate(v, source, s):
    return g.apply(v, method=lambda m: m.stylize(m.content(source, s), s)[0])

  return profiling.flops(jax.jit(generate).lower(gv, source, s).compile())


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--size", default="paper", choices=["paper", "cpu"])
  parser.add_argument("--driver", default="audio", choices=["audio", "video"])
  parser.add_argument("--batch", type=int, nargs="*", default=None)
  parser.add_argument("--ablation", default="")
  parser.add_argument("--steps", type=int, default=2, help="timed steps")
  parser.add_argument("--no_inference", action="store_true")
  parser.add_argument("--no_train", action="store_true")
  parser.add_argument(
    "--profile", action="store_true", help="time per model part and op kind"
  )
  args = parser.parse_args()
  style = config_lib.load(os.path.join(ROOT, "configs/style_vqvae.py")).model
  if args.size == "cpu":
    style = config_lib.load(
      os.path.join(ROOT, "configs/style_vqvae.py:cpu")
    ).model
  config, nets = _nets(args.size, args.driver, style, args.ablation)
  batches = args.batch or ([128, 32] if args.size == "paper" else [32])
  print(
    f"{args.size} {args.driver}-driven {args.ablation or 'full'} model "
    f"({OFFICIAL}), "
    f"{jax.device_count()} {jax.devices()[0].platform} device(s)"
  )
  for b in [] if args.no_train else batches:
    gen, compile_s, step_s, mem = train_step_time(
      config, nets, b, args.steps, profile=args.profile
    )
    print(
      f"train step, batch {b}: generator {gen:.2f} M params, compile "
      f"{compile_s:.1f} s, step {step_s:.3f} s, {1 / step_s:.2f} steps/s "
      f"(generator + critics, style encoder, optimizers), {mem}"
    )
    pass_s, mem = generator_pass_time(config, nets, b, args.steps)
    print(
      f"generator pass, batch {b}: {pass_s:.3f} s (official scope: encoder "
      f"+ adapter x2 + decoder x2, fwd+bwd), {mem}"
    )
  if not args.no_inference:
    mel_s, first, steady = inference_time(nets, style, profile=args.profile)
    print(
      f"inference, 60 s: mel features {mel_s:.2f} s; generation first call "
      f"(compile included) {first:.2f} s, again {steady:.2f} s; mel "
      f"features + generation {mel_s + steady:.2f} s"
    )


if __name__ == "__main__":
  main()
