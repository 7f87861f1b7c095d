"""Time to generate a synthetic corpus preset from scratch.

  python benchmarks/synthetic_corpus.py [--preset small] [--seed 0]
      [--workers N] [--out_dir DIR]

Writes the preset into a temporary folder (or --out_dir, which must be new
or hold the same preset and seed: then only missing clips are rendered) with
input_pipeline.synthetic.generate_corpus, as the CLI does, and reports the
clips, seconds of speech, wall time, clips per second and the real-time
factor (seconds of speech generated per wall-clock second).
"""

import argparse
import os
import tempfile
import time

from input_pipeline import synthetic


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument(
    "--preset", default="small", choices=sorted(synthetic.PRESETS)
  )
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
  parser.add_argument("--out_dir", default=None)
  args = parser.parse_args()

  with tempfile.TemporaryDirectory() as tmp:
    out_dir = args.out_dir or os.path.join(tmp, args.preset)
    t0 = time.perf_counter()
    info = synthetic.generate_corpus(
      out_dir, args.preset, args.seed, workers=args.workers, progress=False
    )
    wall = time.perf_counter() - t0
  clips, seconds = info["num_clips"], info["total_seconds"]
  print(
    f"preset {args.preset}, seed {args.seed}, {args.workers} workers: "
    f"{clips} clips ({info['counts']}), {seconds:.0f} s "
    f"({seconds / 60:.1f} min) of speech"
  )
  print(
    f"wall {wall:.1f} s, {clips / wall:.1f} clips/s, "
    f"{seconds / wall:.0f}x real time"
  )


if __name__ == "__main__":
  main()
