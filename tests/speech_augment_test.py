"""Speech augmentation: off is the identity, each transform does what it
says, one channel per clip, and a clip's band means go through the same
channel as its windows."""

import os

import jax
import numpy as np

from input_pipeline import features
from saas_jax import speech_augment
from saas_jax.engine import config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cfg(**kw):
  """The audio-driven config's settings (all off) with kw changed."""
  c = config_lib.load(os.path.join(ROOT, "configs/audio_driven.py")).augment
  c.update(kw)
  return c


def _augment(key, mel, cfg):
  """The windows alone, their clip means passed along."""
  return speech_augment.augment(key, mel, mel.mean((1, 3)), cfg)[0]


def _mel(rng, clips=2, frames=6):
  """Mid-range values, away from the features' clipping at +-4."""
  return rng.uniform(-2.5, -0.5, (clips, frames, 80, 16)).astype(np.float32)


def test_off_is_identity():
  mel = _mel(np.random.default_rng(0))
  assert not speech_augment.enabled(_cfg())
  out = _augment(jax.random.key(0), mel, _cfg())
  np.testing.assert_allclose(out, mel, atol=1e-5)


def test_gain_is_one_offset_per_clip():
  mel = _mel(np.random.default_rng(1), clips=8)
  cfg = _cfg(gain_db=6.0)
  out = np.asarray(_augment(jax.random.key(1), mel, cfg))
  shift = (out - mel) / features.NORM_PER_DB  # dB
  per_clip = shift.reshape(8, -1)
  # the same offset everywhere in a clip, within the range, clips differ
  np.testing.assert_allclose(
    per_clip, np.broadcast_to(per_clip[:, :1], per_clip.shape), atol=1e-3
  )
  assert np.all(np.abs(per_clip[:, 0]) <= 6.0 + 1e-3)
  assert np.unique(per_clip[:, 0].round(3)).size == 8


def test_tilt_is_a_slope_across_bands():
  mel = _mel(np.random.default_rng(2))
  out = _augment(jax.random.key(2), mel, _cfg(tilt_db=12.0))
  shift = np.asarray(out - mel) / features.NORM_PER_DB  # [B, T, 80, 16]
  by_band = shift[:, 0, :, 0]  # [B, 80]
  steps = np.diff(by_band, axis=1)
  np.testing.assert_allclose(  # linear
    steps, np.broadcast_to(steps[:, :1], steps.shape), atol=1e-3
  )
  span = by_band[:, -1] - by_band[:, 0]
  assert np.all(np.abs(span) <= 12.0 + 1e-3) and np.all(np.abs(span) > 0)


def test_warp_moves_a_formant_up_or_down():
  peak = np.full((1, 4, 80, 16), -3.5, np.float32)
  peak[:, :, 40] = -0.5  # energy in band 40
  seen = set()
  for seed in range(12):
    out = _augment(jax.random.key(seed), peak, _cfg(warp=0.1))
    band = int(np.argmax(np.asarray(out)[0, 0, :, 0]))
    assert 34 <= band <= 46  # exp(+-0.1) x 40 = 36.2 .. 44.2
    seen.add(np.sign(band - 40))
  assert seen >= {-1, 1}


def test_noise_fills_silence_to_its_floor():
  silence = np.full((4, 3, 80, 16), -features.MAX_ABS_VALUE, np.float32)
  cfg = _cfg(noise=True, noise_db_min=-90.0, noise_db_max=-80.0)
  out = np.asarray(_augment(jax.random.key(3), silence, cfg))
  db = features.norm_to_db(out)
  median = np.median(db.reshape(4, -1), axis=1)
  assert np.all((median > -91) & (median < -79)), median
  # loud speech is barely changed by a floor 40 dB below it
  loud = np.full((1, 3, 80, 16), 0.0, np.float32)  # -50 dB
  out = np.asarray(_augment(jax.random.key(4), loud, cfg))
  assert np.abs(out).max() < 0.01


def test_deterministic_in_its_key():
  mel = _mel(np.random.default_rng(5))
  cfg = _cfg(gain_db=6.0, tilt_db=15.0, warp=0.1, noise=True)
  a = _augment(jax.random.key(7), mel, cfg)
  b = _augment(jax.random.key(7), mel, cfg)
  c = _augment(jax.random.key(8), mel, cfg)
  np.testing.assert_array_equal(a, b)
  assert np.abs(np.asarray(a) - np.asarray(c)).mean() > 0.05
  assert np.all(np.abs(np.asarray(a)) <= features.MAX_ABS_VALUE)


def test_clip_means_go_through_the_same_channel():
  """mel_norm="clip_mean" subtracts the clip's band means: augmented, they
  are the band means of the augmented windows (level, tilt and warp are
  linear in the bands; values away from the clipping)."""
  mel = _mel(np.random.default_rng(6), clips=4)
  cfg = _cfg(gain_db=6.0, tilt_db=15.0, warp=0.1)
  means = np.stack([features.clip_mel_mean(m) for m in mel])  # [4, 80]
  out, out_means = speech_augment.augment(jax.random.key(9), mel, means, cfg)
  np.testing.assert_allclose(out_means, np.asarray(out).mean((1, 3)), atol=1e-4)
  assert np.abs(np.asarray(out_means) - means).mean() > 0.05
