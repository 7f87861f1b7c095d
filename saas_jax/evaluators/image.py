"""Frames against reference frames (photoreal rendering, reconstruction):
PSNR and SSIM on uint8 RGB, the figures the talking-head papers report."""

import numpy as np
import scipy.ndimage

SSIM_SIGMA = 1.5  # Gaussian window (Wang et al. 2004), truncated at 3.5 sigma
SSIM_K1, SSIM_K2 = 0.01, 0.03


def psnr(frames: np.ndarray, reference: np.ndarray) -> float:
  """[..., H, W, 3] uint8 pair -> dB over all pixels (inf when equal)."""
  a = np.asarray(frames, np.float64)
  b = np.asarray(reference, np.float64)
  mse = np.mean((a - b) ** 2)
  return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ssim(frames: np.ndarray, reference: np.ndarray) -> float:
  """[..., H, W, 3] uint8 pair -> mean SSIM over frames and channels
  (Gaussian-weighted local statistics, on 0..255 values)."""
  a = np.asarray(frames, np.float64).reshape(-1, *np.shape(frames)[-3:])
  b = np.asarray(reference, np.float64).reshape(a.shape)
  c1, c2 = (SSIM_K1 * 255) ** 2, (SSIM_K2 * 255) ** 2

  def blur(x):  # over H and W only
    return scipy.ndimage.gaussian_filter(
      x, sigma=(0, SSIM_SIGMA, SSIM_SIGMA, 0), truncate=3.5
    )

  mu_a, mu_b = blur(a), blur(b)
  var_a = blur(a * a) - mu_a**2
  var_b = blur(b * b) - mu_b**2
  cov = blur(a * b) - mu_a * mu_b
  s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
    (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
  )
  return float(s.mean())
