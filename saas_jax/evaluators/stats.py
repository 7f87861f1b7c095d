"""Means with 95% bootstrap confidence intervals: over clips, and over
seeds when several runs of one variant are given (resample the runs, then
the clips within each), so a difference between two variants is shown with
the spread a reader needs to judge it."""

import numpy as np

LEVEL = 0.95
RESAMPLES = 2000
SEED = 0  # intervals are reproducible from the same inputs


def interval(values, level: float = LEVEL, resamples: int = RESAMPLES):
  """Per-clip values -> {"mean", "low", "high", "n"}: percentile bootstrap
  of the mean over clips (NaNs, e.g. a metric a clip lacks, left out)."""
  return grouped_interval([values], level, resamples)


def grouped_interval(groups, level: float = LEVEL, resamples: int = RESAMPLES):
  """Per-clip values of several runs (seeds) of one variant -> the mean over
  runs of each run's mean, with a two-level bootstrap (runs, then clips)."""
  groups = [np.asarray(g, np.float64) for g in groups]
  groups = [g[np.isfinite(g)] for g in groups]
  groups = [g for g in groups if len(g)]
  if not groups:
    nan = float("nan")
    return {"mean": nan, "low": nan, "high": nan, "n": 0}
  rng = np.random.default_rng(SEED)
  mean = float(np.mean([g.mean() for g in groups]))
  k = len(groups)
  # boot[g, r, j]: the mean of a clip resample of run g, for pick j of
  # resample r (fresh clips for every pick).
  boot = np.stack(
    [
      g[rng.integers(len(g), size=(resamples, k, len(g)))].mean(-1)
      for g in groups
    ]
  )
  picks = (
    rng.integers(k, size=(resamples, k))
    if k > 1
    else np.zeros((resamples, 1), int)
  )
  draws = boot[picks, np.arange(resamples)[:, None], np.arange(k)].mean(1)
  alpha = (1 - level) / 2
  low, high = np.quantile(draws, [alpha, 1 - alpha])
  return {
    "mean": mean,
    "low": float(low),
    "high": float(high),
    "n": int(sum(len(g) for g in groups)),
  }


def differs(a: dict, b: dict) -> bool:
  """Two intervals that do not overlap (a conservative reading of a
  difference at the intervals' level)."""
  return a["high"] < b["low"] or b["high"] < a["low"]
