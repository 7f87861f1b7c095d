"""Speech augmentation on normalised log-mel windows, inside the train step.

The default corpus speaks with a handful of source-filter voices recorded
through no room and no microphone; real speech differs in level, spectral
tilt, vocal-tract length and background noise. Each training clip gets one
draw of each (the whole clip through the same "channel"), applied to the
audio CNN's input only, so that the generator cannot lean on cues the
synthetic voices share and real ones do not:

  gain     level change, uniform in +-gain_db
  tilt     a linear slope in dB across the 80 bands, uniform in +-tilt_db
           from the lowest band to the highest
  warp     vocal-tract length: frequencies scaled by exp(uniform +-warp)
           (the bands resampled on the mel axis, which is near-logarithmic
           above 1 kHz, so a shift there)
  noise    (noise=True) a stationary floor at uniform [noise_db_min,
           noise_db_max] dB (the features' scale: -100 is silence, 0 the
           loudest; speech sits around -75), each band's level jittered by
           3 dB, added in power

All of them are off in the defaults (config.augment).
"""

import jax
import jax.numpy as jnp

from input_pipeline import features

NOISE_JITTER_DB = 3.0


def enabled(cfg) -> bool:
  return bool(cfg.gain_db or cfg.tilt_db or cfg.warp or cfg.noise)


def _warp(x, alpha):  # [T, 80, 16], scalar -> band b reads band b / alpha
  bands = x.shape[-2]
  src = jnp.clip(jnp.arange(bands) / alpha, 0, bands - 1)
  lo = jnp.floor(src).astype(jnp.int32)
  hi = jnp.minimum(lo + 1, bands - 1)
  w = (src - lo)[:, None]  # [80, 1]
  return x[..., lo, :] * (1 - w) + x[..., hi, :] * w


def _channel(rng, cfg, bands: int) -> dict:
  """One random channel: warp factor, level, per-band tilt, noise floor."""
  k_gain, k_tilt, k_warp, k_noise, k_band = jax.random.split(rng, 5)
  ch = {}
  if cfg.warp:
    ch["alpha"] = jnp.exp(
      jax.random.uniform(k_warp, (), minval=-1, maxval=1) * cfg.warp
    )
  gain = jax.random.uniform(k_gain, (), minval=-1, maxval=1) * cfg.gain_db
  slope = jax.random.uniform(k_tilt, (), minval=-1, maxval=1) * cfg.tilt_db
  ramp = jnp.linspace(-0.5, 0.5, bands)[:, None]  # [80, 1]
  ch["gain"], ch["tilt"] = gain, slope * ramp
  if cfg.noise:
    floor = jax.random.uniform(
      k_noise, (), minval=cfg.noise_db_min, maxval=cfg.noise_db_max
    )
    ch["floor"] = floor + NOISE_JITTER_DB * jax.random.normal(
      k_band, (bands, 1)
    )
  return ch


def _through(x, ch):
  """[..., 80, W] normalised log-mel -> the same, through channel ch."""
  db = features.norm_to_db(x)
  if "alpha" in ch:
    db = _warp(db, ch["alpha"])
  db = db + ch["gain"] + ch["tilt"]
  if "floor" in ch:
    db = 10.0 * jnp.log10(10.0 ** (db / 10.0) + 10.0 ** (ch["floor"] / 10.0))
  x = features.db_to_norm(db)
  return jnp.clip(x, -features.MAX_ABS_VALUE, features.MAX_ABS_VALUE)


def augment_clip(rng, mel, mel_mean, cfg):
  """One clip's normalised log-mel windows [T, 80, 16] and its band means
  [80] (features.clip_mel_mean of the whole clip) -> both through one random
  channel (the means as a one-step window: exact for the level, tilt and
  warp where nothing reaches the features' clipping at +-4, close for the
  noise floor)."""
  ch = _channel(rng, cfg, mel.shape[-2])
  return _through(mel, ch), _through(mel_mean[:, None], ch)[:, 0]


def augment(rng, mel, mel_mean, cfg):
  """[B, T, 80, 16], [B, 80] -> the same, one channel per clip."""
  keys = jax.random.split(rng, mel.shape[0])
  return jax.vmap(augment_clip, in_axes=(0, 0, 0, None))(
    keys, mel, mel_mean, cfg
  )
