"""Time to load one clip: coefficients + audio + resampling + both features.

  python benchmarks/load_clip.py [--seconds 30] [--repeats 10]

Writes a synthetic 30 fps clip (PIRender .mat + 16 kHz wav) of the given
length to a temporary folder, then loads it through the public API as the
dataset builder does, and reports CPU and wall time per clip.
"""

import argparse
import tempfile
import time

import numpy as np
import soundfile

from input_pipeline import features, io


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--seconds", type=float, default=30.0)
  parser.add_argument("--repeats", type=int, default=10)
  args = parser.parse_args()

  rng = np.random.default_rng(0)
  frames = int(args.seconds * 30)
  with tempfile.TemporaryDirectory() as tmp:
    wav = 0.1 * rng.normal(size=int(args.seconds * 16000))
    soundfile.write(f"{tmp}/clip.wav", wav, 16000)
    coeff = rng.normal(size=(frames, 257)).astype(np.float32)
    params = np.tile([256, 256, 1, 128, 128], (frames, 1))
    io.save_coefficients_mat(f"{tmp}/clip.mat", coeff, params)

    def load():
      return features.load_clip(
        f"{tmp}/clip.mat", f"{tmp}/clip.wav", source_fps=30
      )

    t0, c0 = time.perf_counter(), time.process_time()
    load()
    first = (time.perf_counter() - t0, time.process_time() - c0)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(args.repeats):
      clip = load()
    wall = (time.perf_counter() - t0) / args.repeats
    cpu = (time.process_time() - c0) / args.repeats
  print(
    f"{args.seconds:g} s clip -> {clip.num_frames} frames at 25 fps, "
    f"mel {clip.mel.shape}, mfcc {clip.mfcc.shape}"
  )
  print(f"first load (imports, filter banks): {first[0]:.3f} s wall")
  print(f"steady state: {wall * 1e3:.1f} ms wall, {cpu * 1e3:.1f} ms CPU/clip")


if __name__ == "__main__":
  main()
