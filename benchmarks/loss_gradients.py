"""Which loss terms move an expression run's generator, and where? Per-term
gradient norms of the weighted generator loss, by module, at a run's last
checkpoint (or at initialisation), averaged over a few training batches.

  python benchmarks/loss_gradients.py --runs runs [--driver video] [--init]

Each row is one term (its weight applied), each column a module's
parameters (encoder, canonical branch with its initial state,
content_skip, style branch with its initial state, HyperStyle, decoder):
the mean over the batches of the gradient's norm. The last column is the
cosine of the term's gradient with the reconstruction term's on the
content path (encoder, canonical branch, content_skip), both averaged over
the batches first: near 0, the term pushes the parameters that carry the
content somewhere the reconstruction does not ask for.
"""

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from input_pipeline import batches as batches_lib
from saas_jax.engine import checkpoint
from saas_jax.engine import data as data_lib
from saas_jax.engine import workdir as workdir_lib
from saas_jax.trainers import motion

CONTENT_PATH = ("encoder", "canonical", "content_skip")


def module_of(path) -> str:
  """A parameter's module: the adapter's parts by name, its initial
  states with their branch, the HyperStyle nets together."""
  keys = [str(getattr(k, "key", k)) for k in path]
  name = keys[1] if keys[0] == "adapter" else keys[0]
  if name.startswith("hyperstyle"):
    return "hyperstyle"
  if name.endswith(("_h0", "_c0")):  # a branch's initial state
    return name[:-3]
  return name


def term_gradients(workdir: str, init: bool, num_batches: int):
  """{term: {module: [num_batches, n] flat gradients}} over the run's first
  num_batches training batches (without speech augmentation)."""
  config = workdir_lib.read_config(workdir)
  audio = config.driver == "audio"
  inputs = data_lib.load(config, with_audio=audio)
  nets = motion.make_nets(config, inputs.num_classes)
  cfg = motion.stage_cfg(config)
  loaded = checkpoint.load_params(workdir)
  params, extra = loaded["params"], loaded["extra"]
  if init:
    v = motion.init_variables(
      nets, jax.random.PRNGKey(config.seed), nets.style.vq.hidden
    )
    params = v["params"]
    extra = {**extra, "batch_stats": v.get("batch_stats", {})}
  frozen, stats = extra["frozen"], extra.get("batch_stats", {})
  weights = {
    k[2:]: float(w) for k, w in cfg.items() if k.startswith("w_") and w
  }

  @jax.jit
  def grads(gen_params, batch):
    real = jnp.concatenate(
      [batch[k] for k in ("exp", "style_exp", "pos_exp", "neg_exp")]
    )
    codes = jnp.split(motion.style_codes(nets, frozen, real, cfg), 4)

    def terms(gp):
      outs, _ = motion.generate(
        gp, stats, batch, codes[0], codes[1], nets=nets, cfg=cfg
      )
      _, metrics = motion.generator_loss(
        outs, params["critics"], frozen, batch, codes, nets=nets, cfg=cfg
      )
      return {k: w * metrics[k] for k, w in weights.items() if k in metrics}

    return jax.jacrev(terms)(gen_params)

  builder = batches_lib.audio_pairs if audio else batches_lib.video_pairs
  batches = data_lib.batch_iterator(builder, config, inputs)(0, num_batches)
  out = {}
  for batch in batches:
    for term, g in grads(params["generator"], batch).items():
      by_module = {}
      for path, leaf in jax.tree_util.tree_flatten_with_path(g)[0]:
        by_module.setdefault(module_of(path), []).append(
          np.asarray(leaf).ravel()
        )
      for name, leaves in by_module.items():
        out.setdefault(term, {}).setdefault(name, []).append(
          np.concatenate(leaves)
        )
  return {t: {n: np.stack(v) for n, v in m.items()} for t, m in out.items()}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--runs", required=True)
  p.add_argument("--driver", choices=("audio", "video"), default="audio")
  p.add_argument("--init", action="store_true", help="at initialisation")
  p.add_argument("--batches", type=int, default=4)
  args = p.parse_args(argv)
  workdir = os.path.join(args.runs, f"{args.driver}_driven")
  g = term_gradients(workdir, args.init, args.batches)
  modules = sorted({n for m in g.values() for n in m})
  print("term".ljust(10) + "".join(n[:11].rjust(12) for n in modules), end="")
  print("  cos(recon), content path")

  def content(term):  # the batches' mean gradient on the content path
    return np.concatenate(
      [g[term][n].mean(0) for n in CONTENT_PATH if n in g[term]]
    )

  for term, by_module in g.items():
    row = term.ljust(10)
    for n in modules:
      x = by_module.get(n)
      norm = 0.0 if x is None else np.linalg.norm(x, axis=1).mean()
      row += f"{norm:12.3g}"
    a, b = content(term), content("recon")
    cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12)
    print(f"{row}  {cos:.3f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
