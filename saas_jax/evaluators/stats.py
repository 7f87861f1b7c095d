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


def paired_difference(
  a, b, level: float = LEVEL, resamples: int = RESAMPLES
) -> dict:
  """Two variants scored on the same items: a [runs_a, items] and b
  [runs_b, items], columns aligned -> the mean of a minus that of b with a
  bootstrap that draws the items once for both (a hard item is hard for
  every variant) and each variant's runs on their own. Tighter than
  reading two intervals for overlap whenever items vary more than the
  difference does; items not finite in every run of both are left out."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  ok = np.isfinite(a).all(0) & np.isfinite(b).all(0)
  a, b = a[:, ok], b[:, ok]  # [ka, n], [kb, n]
  n = a.shape[1]
  if not n:
    nan = float("nan")
    return {"mean": nan, "low": nan, "high": nan, "n": 0}
  rng = np.random.default_rng(SEED)
  picks_a = rng.integers(len(a), size=(resamples, len(a)))
  picks_b = rng.integers(len(b), size=(resamples, len(b)))
  items = rng.integers(n, size=(resamples, n))
  per_item = a[picks_a].mean(1) - b[picks_b].mean(1)  # [resamples, n]
  draws = np.take_along_axis(per_item, items, 1).mean(1)
  alpha = (1 - level) / 2
  low, high = np.quantile(draws, [alpha, 1 - alpha])
  return {
    "mean": float(a.mean() - b.mean()),
    "low": float(low),
    "high": float(high),
    "n": int(n),
  }


def excludes_zero(ci: dict) -> bool:
  return ci["low"] > 0 or ci["high"] < 0


def differs(a: dict, b: dict) -> bool:
  """Two intervals that do not overlap (a conservative reading of a
  difference at the intervals' level)."""
  return a["high"] < b["low"] or b["high"] < a["low"]
