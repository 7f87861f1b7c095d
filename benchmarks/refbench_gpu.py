"""The official PyTorch modules on a GPU, through ../shared/tools/refbench.

  python benchmarks/refbench_gpu.py [--refbench PATH/run.py] [--tree DIR]
      -- --repo <bare git dir of tanshuai0219/SAAS> --out ref.json [run.py's options]

refbench times on the CPU. Here tensors and modules default to CUDA, every
timer read waits for the GPU first (a repetition covers its kernels), modules
move to the GPU when put in train or eval mode (some official modules keep
CPU-typed parameters that their inference path never moves), and float32
matrix products and convolutions may use TF32, as JAX's default precision
does on this GPU. `--tree` takes an already extracted official tree, for
machines without git.
"""

import argparse
import importlib.util
import os
import shutil
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument(
    "--refbench",
    default=os.path.join(ROOT, "..", "shared", "tools", "refbench", "run.py"),
  )
  parser.add_argument("--tree", help="extracted official tree (no git)")
  parser.add_argument("--commit", default="unknown", help="with --tree")
  args, rest = parser.parse_known_args()
  if not os.path.isfile(args.refbench):
    sys.exit(f"{args.refbench}: refbench's run.py not found (--refbench)")

  import torch

  if not torch.cuda.is_available():
    sys.exit("no CUDA device: use refbench's run.py directly on a CPU")
  torch.set_default_device("cuda")
  torch.backends.cuda.matmul.allow_tf32 = True
  torch.backends.cudnn.allow_tf32 = True
  wall = time.perf_counter

  def synced():
    torch.cuda.synchronize()
    return wall()

  time.perf_counter = synced
  set_mode = torch.nn.Module.train

  def set_mode_on_gpu(self, mode=True):
    out = set_mode(self, mode)
    self.cuda()
    return out

  torch.nn.Module.train = set_mode_on_gpu

  spec = importlib.util.spec_from_file_location("refbench_run", args.refbench)
  refbench = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(refbench)
  if args.tree:

    def extract(_git_dir, dest):
      shutil.copytree(args.tree, dest, dirs_exist_ok=True)
      return args.commit

    refbench.extract_repo = extract
    if "--repo" not in rest:
      rest += ["--repo", args.tree]
  sys.argv = [args.refbench] + [a for a in rest if a != "--"]
  refbench.main()
  peak = torch.cuda.max_memory_allocated() / 2**30
  print(
    f"torch peak allocated: {peak:.2f} GiB ({torch.cuda.get_device_name()})"
  )


if __name__ == "__main__":
  main()
