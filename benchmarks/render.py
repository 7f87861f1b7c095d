"""PIRender's face generator: saas_jax (Flax) beside the PyTorch module, same
random weights, 256 x 256 frames.

  python benchmarks/render.py [--batches 1,16] [--reps 3] [--threads N]

For each batch size: the Flax forward (jitted; compile time apart, as first
call minus a warm call), the PyTorch module in eval mode under no_grad with
`--threads` threads (default: all cores, as jax uses), both as ms per batch and
frames/s, and the ratio. Also Renderer.frames (windows, batching, uint8 out)
over 64 frames. The PyTorch column needs torch (the `[torch]` extra); its
module is tests/torch_pirender.py, written from PIRender's architecture
facts with PIRender's state-dict names, and the Flax weights are converted
from it by saas_jax.convert.pirender, so both compute the same function.
"""

import argparse
import json
import os
import sys
import time

import jax
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from saas_jax.convert import pirender as convert_lib  # noqa: E402
from saas_jax.render import pirender  # noqa: E402


def _median_time(fn, reps):
  times = []
  for _ in range(reps):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def time_batch(params, net, b, reps, rng) -> dict:
  """One batch size: Flax (compile apart) and, given `net`, PyTorch."""
  import torch

  renderer = pirender.Renderer(params, batch=b)
  image = rng.uniform(-1, 1, (b, 256, 256, 3)).astype(np.float32)
  driving = rng.normal(size=(b, 27, 73)).astype(np.float32)

  def flax_call():
    jax.block_until_ready(renderer.forward(image, driving)["fake_image"])

  t0 = time.perf_counter()
  flax_call()
  first = time.perf_counter() - t0
  flax_s = _median_time(flax_call, reps)
  row = {
    "flax_ms": 1e3 * flax_s,
    "flax_fps": b / flax_s,
    "flax_compile_s": first - flax_s,
  }
  if net is None:
    return row
  device = next(net.parameters()).device
  ti = torch.from_numpy(image).permute(0, 3, 1, 2).contiguous().to(device)
  td = torch.from_numpy(driving).permute(0, 2, 1).contiguous().to(device)

  def torch_call():
    with torch.no_grad():
      net(ti, td)
    if device.type == "cuda":
      torch.cuda.synchronize()

  torch_call()  # warm-up
  torch_s = _median_time(torch_call, reps)
  return row | {
    "torch_ms": 1e3 * torch_s,
    "torch_fps": b / torch_s,
    "speedup": torch_s / flax_s,
  }


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--batches", default="1,16")
  ap.add_argument("--reps", type=int, default=3)
  ap.add_argument("--threads", type=int, default=os.cpu_count())
  ap.add_argument("--no_torch", action="store_true")
  ap.add_argument("--out", help="write the figures as JSON here")
  args = ap.parse_args()

  import torch
  import torch_pirender

  torch.set_num_threads(args.threads)
  net = torch_pirender.random_generator(0, scale=30.0)
  sd = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
  params, _ = convert_lib.convert_state_dict(sd, "random weights")
  if torch.cuda.is_available():  # beside a GPU jax, PyTorch on the GPU too
    net = net.cuda()
  results = {
    "device": str(jax.devices()[0]),
    "torch_device": str(next(net.parameters()).device),
    "threads": args.threads,
  }
  rng = np.random.default_rng(0)
  for b in map(int, args.batches.split(",")):
    row = time_batch(params, None if args.no_torch else net, b, args.reps, rng)
    results[f"batch{b}"] = row
    print(f"batch {b}: " + ", ".join(f"{k} {v:.3g}" for k, v in row.items()))

  portrait = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
  coeffs = rng.normal(size=(64, 73)).astype(np.float32)
  renderer = pirender.Renderer(params, batch=16)
  list(renderer.frames(portrait, coeffs[:16]))  # compile
  t0 = time.perf_counter()
  n = sum(len(f) for f in renderer.frames(portrait, coeffs))
  results["render_fps"] = n / (time.perf_counter() - t0)
  print(
    f"Renderer.frames, 64 frames, batch 16: {results['render_fps']:.2f} fps"
  )
  if args.out:
    with open(args.out, "w") as f:
      json.dump(results, f, indent=2)


if __name__ == "__main__":
  main()
