"""Batches per second of each stage's batch builder.

  python benchmarks/batch_throughput.py [--data_dir D --config manifest]
      [--seconds 10]

Without --data_dir it uses the embedded default data (the small synthetic
corpus; generated and prepared on first use). Batch sizes are the paper's:
style windows 256, audio-driven pairs 128, video-driven pairs 128, pose
windows 64, all drawn through tf.data as in training.
"""

import argparse
import time

from input_pipeline import batches, default_data

BUILDERS = (
  ("style_windows", 256, False),
  ("audio_pairs", 128, True),
  ("video_pairs", 128, False),
  ("pose_windows", 64, True),
)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_dir", default="")
  parser.add_argument("--config", default="manifest")
  parser.add_argument("--split", default="train")
  parser.add_argument("--seconds", type=float, default=10.0)
  args = parser.parse_args()
  if args.data_dir:
    data_dir, config = args.data_dir, args.config
  else:
    data_dir, config = default_data.ensure()
  t0 = time.perf_counter()
  data = batches.load_stage_data(
    data_dir, config, args.split, process_index=0, process_count=1
  )
  table = data.local
  print(
    f"loaded {table.num_clips} clips ({table.exp.shape[0]} frames) in "
    f"{time.perf_counter() - t0:.1f} s"
  )
  for name, batch_size, _ in BUILDERS:
    ds = getattr(batches, name)(data, batch_size=batch_size, seed=0)
    it = ds.as_numpy_iterator()
    first = next(it)
    size = sum(v.nbytes for v in first.values()) / 2**20
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < args.seconds:
      next(it)
      n += 1
    rate = n / (time.perf_counter() - t0)
    print(
      f"{name:14s} batch {batch_size:3d}: {rate:7.1f} batches/s "
      f"({rate * batch_size:8.0f} examples/s, {size:6.1f} MiB/batch)"
    )


if __name__ == "__main__":
  main()
