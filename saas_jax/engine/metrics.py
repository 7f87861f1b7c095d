"""Metrics: workdir/metrics.jsonl, TensorBoard events, a progress line."""

import json
import os
import sys
import time

import numpy as np


class MetricWriter:
  """One JSON object per log step ({"step": s, "train/x": ...}) + TensorBoard.

  Only process 0 writes; other processes get a no-op writer.
  """

  def __init__(
    self,
    workdir: str,
    enabled: bool = True,
    tensorboard: bool = True,
    start_step: int = 0,
  ):
    self.enabled = enabled
    self._tb = None
    if not enabled:
      return
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "metrics.jsonl")
    _drop_after(path, start_step)
    self._file = open(path, "a")
    if tensorboard:
      import tensorflow as tf  # only the writing process

      self._tb = tf.summary.create_file_writer(os.path.join(workdir, "tb"))

  def write(self, step: int, metrics: dict) -> None:
    if not self.enabled:
      return
    record = {"step": int(step)}
    record.update({k: float(np.asarray(v)) for k, v in sorted(metrics.items())})
    self._file.write(json.dumps(record) + "\n")
    self._file.flush()
    if self._tb is not None:
      import tensorflow as tf

      with self._tb.as_default(step=int(step)):
        for k, v in record.items():
          if k != "step":
            tf.summary.scalar(k, v)
      self._tb.flush()

  def close(self):
    if self.enabled:
      self._file.close()
      if self._tb is not None:
        self._tb.close()


def _drop_after(path: str, step: int) -> None:
  """A resumed run logs the steps after its checkpoint again: their
  records from before the interruption go, so that each step has one."""
  if not os.path.isfile(path):
    return
  with open(path) as f:
    lines = f.readlines()
  keep = []
  for line in lines:
    if not line.endswith("\n"):  # cut off by the interruption
      continue
    try:
      later = json.loads(line)["step"] > step
    except (ValueError, KeyError, TypeError):
      later = False  # not ours to judge: kept
    if not later:
      keep.append(line)
  if len(keep) < len(lines):
    from input_pipeline.io import atomic_write_bytes

    atomic_write_bytes(path, "".join(keep).encode())


class Progress:
  """steps/s and ETA, printed at log steps."""

  def __init__(self, total_steps: int, start_step: int, enabled=True):
    self.total, self.enabled = total_steps, enabled
    self._t0, self._s0 = time.perf_counter(), start_step

  def report(self, step: int, metrics: dict) -> str:
    elapsed = time.perf_counter() - self._t0
    rate = (step - self._s0) / elapsed if elapsed > 0 else 0.0
    eta = (self.total - step) / rate if rate > 0 else float("nan")
    shown = ", ".join(
      f"{k}={float(np.asarray(v)):.4g}"
      for k, v in sorted(metrics.items())
      if k.count("/") == 1 and not k.endswith("indices")
    )
    line = (
      f"step {step}/{self.total} | {rate:.2f} steps/s | "
      f"eta {eta / 60:.1f} min | {shown}"
    )
    if self.enabled:
      print(line, file=sys.stderr, flush=True)
    return line
