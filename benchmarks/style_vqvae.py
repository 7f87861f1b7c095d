"""Style codebook train step: compile time and step time.

  python benchmarks/style_vqvae.py [--config configs/style_vqvae.py]
      [--batch_sizes 256,32] [--steps 5] [--classes 1323]

Runs the stage's real train_step (the anchor window and its three partners
per example, i.e. 4 x batch windows through the encoder) on random windows,
on whatever devices JAX sees, with the parameters replicated, once per
--reconstruct scope: "anchor" decodes the anchors only, which is the
official step's scope (../shared/tools/refbench section a), "all" decodes
all four windows. --profile adds the time per model part and op kind.
"""

import argparse
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import profiling

from saas_jax.engine import config_lib, loop, optim
from saas_jax.engine.train_state import TrainState
from saas_jax.models import builders
from saas_jax.trainers import style_vqvae


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  parser.add_argument(
    "--config", default=os.path.join(root, "configs/style_vqvae.py")
  )
  parser.add_argument("--batch_sizes", default="256,32")
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--classes", type=int, default=1323)
  parser.add_argument("--reconstruct", default="anchor,all")
  parser.add_argument(
    "--profile", action="store_true", help="time per model part and op kind"
  )
  args = parser.parse_args()
  config = config_lib.load(args.config)
  model, tx, params, variables = make_model(config, args.classes)
  print(
    f"{args.config}: {loop.count_params(params) / 1e6:.2f} M parameters, "
    f"{jax.device_count()} {jax.devices()[0].platform} device(s)"
  )
  runs = [
    (int(b), scope)
    for b in args.batch_sizes.split(",")
    for scope in args.reconstruct.split(",")
  ]
  for batch_size, scope in runs:
    state, batch = make_inputs(
      config, model, tx, params, variables, batch_size, scope, args.classes
    )
    step = jax.jit(style_vqvae.train_step, donate_argnums=0)
    t0 = time.perf_counter()
    compiled = step.lower(state, batch, jax.random.key(0)).compile()
    compile_s = time.perf_counter() - t0
    state, m = compiled(state, batch, jax.random.key(0))  # warm-up
    jax.block_until_ready(m)
    t0 = time.perf_counter()
    for i in range(args.steps):
      state, m = compiled(state, batch, jax.random.key(i))
    jax.block_until_ready(m)
    step_s = (time.perf_counter() - t0) / args.steps
    print(
      f"batch {batch_size:4d}, reconstruct {scope:6s}: compile {compile_s:6.1f} s, "
      f"step {step_s * 1e3:8.1f} ms, "
      f"{1 / step_s:7.2f} steps/s, {batch_size / step_s:8.1f} examples/s, "
      f"{profiling.flops(compiled) / 1e9 / step_s:6.1f} GFLOP/s, "
      f"loss {float(m['loss']):.3f}, {profiling.memory(compiled)}"
    )
    if args.profile:
      _profile(compiled, state, batch, f"batch {batch_size} {scope}")


def make_model(config, classes):
  """The stage's model, its optimizer and initial variables (params apart)."""
  model = builders.style_codebook_model(config.model, classes)
  tx = optim.make_optimizer(config.optim, config.num_train_steps)
  variables = model.init(jax.random.key(0), jnp.zeros((2, 32, 64)))
  params = variables.pop("params")
  return model, tx, params, variables


def make_inputs(
  config, model, tx, params, variables, batch_size, scope, classes
):
  """A fresh train state (the step donates it) and a random batch."""
  state = TrainState.create(
    apply_fn=model.apply,
    params=jax.tree.map(jnp.array, params),
    tx=tx,
    extra=jax.tree.map(jnp.array, variables),
    # Unit std for the offset jitter (the trainer uses the data's).
    cfg=ml_collections.FrozenConfigDict(
      {
        **config.loss.to_dict(),
        "exp_std": (1.0,) * 64,
        "reconstruct": scope,
      }
    ),
  )
  rng = np.random.default_rng(0)
  batch = {
    k: jnp.asarray(rng.normal(size=(batch_size, 32, 64)), jnp.float32)
    for k in ("exp", "pos_exp", "neg_exp", "other_exp")
  }
  for k in ("label", "pos_label", "neg_label", "other_label"):
    batch[k] = jnp.asarray(rng.integers(classes, size=batch_size))
  return state, batch


def _profile(compiled, state, batch, title):
  holder = [state]  # the step donates its state: keep the new one

  def run():
    holder[0], m = compiled(holder[0], batch, jax.random.key(0))
    jax.block_until_ready(m)

  result = profiling.profile(run, compiled.as_text())
  profiling.print_table(result, title=title)


if __name__ == "__main__":
  main()
