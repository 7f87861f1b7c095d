"""How a VQ codebook is used: a collapsed codebook (few entries, most dead)
quantizes everything alike, whatever its reconstruction loss says."""

import numpy as np


def usage(indices, num_codes: int) -> np.ndarray:
  """Code indices of any shape -> [num_codes] frequency of each entry."""
  counts = np.bincount(np.asarray(indices).reshape(-1), minlength=num_codes)
  return counts / max(counts.sum(), 1)


def perplexity(use: np.ndarray) -> float:
  """exp(entropy) of a usage distribution: the number of equally used
  entries it amounts to."""
  p = np.asarray(use)
  p = p[p > 0]
  return float(np.exp(-(p * np.log(p)).sum()))


def health(indices, num_codes: int) -> dict:
  """{"perplexity", "dead_fraction"} of the entries the indices use."""
  use = usage(indices, num_codes)
  return {
    "perplexity": perplexity(use),
    "dead_fraction": float(np.mean(use == 0)),
  }
