"""Style codebook train step: compile time and step time.

  python benchmarks/style_vqvae.py [--config configs/style_vqvae.py]
      [--batch_sizes 256,32] [--steps 5] [--classes 1323]

Runs the stage's real train_step (the anchor window and its three partners
per example, i.e. 4 x batch windows through the model) on random windows,
on whatever devices JAX sees, with the parameters replicated.
"""

import argparse
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

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
  args = parser.parse_args()
  config = config_lib.load(args.config)
  model = builders.style_codebook_model(config.model, args.classes)
  tx = optim.make_optimizer(config.optim, config.num_train_steps)
  variables = model.init(jax.random.key(0), jnp.zeros((2, 32, 64)))
  params = variables.pop("params")
  print(
    f"{args.config}: {loop.count_params(params) / 1e6:.2f} M parameters, "
    f"{jax.device_count()} {jax.devices()[0].platform} device(s)"
  )
  for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
    state = TrainState.create(
      apply_fn=model.apply,
      params=jax.tree.map(jnp.array, params),  # fresh: the step donates
      tx=tx,
      extra=jax.tree.map(jnp.array, variables),
      # Unit std for the offset jitter (the trainer uses the data's).
      cfg=ml_collections.FrozenConfigDict(
        {**config.loss.to_dict(), "exp_std": (1.0,) * 64}
      ),
    )
    rng = np.random.default_rng(0)
    batch = {
      k: jnp.asarray(rng.normal(size=(batch_size, 32, 64)), jnp.float32)
      for k in ("exp", "pos_exp", "neg_exp", "other_exp")
    }
    for k in ("label", "pos_label", "neg_label", "other_label"):
      batch[k] = jnp.asarray(rng.integers(args.classes, size=batch_size))
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
      f"batch {batch_size:4d}: compile {compile_s:6.1f} s, "
      f"step {step_s * 1e3:8.1f} ms, "
      f"{batch_size / step_s:8.1f} examples/s, loss {float(m['loss']):.3f}"
    )


if __name__ == "__main__":
  main()
