"""The evaluators' metrics against direct computations."""

import numpy as np
import pytest

from saas_jax import losses
from saas_jax.engine import mesh as mesh_lib
from saas_jax.evaluators import (
  benchmark,
  codebook,
  expression,
  image,
  judge,
  lip_sync,
  stats,
  style,
  windows,
)


class _PointFace:
  """A face model whose landmark k of a frame is exp[3k : 3k + 3]: the
  landmark distances of a test are then computed by hand."""

  def points(self, exp, landmarks=None):
    k = {"mouth": 2, "face": 4}[landmarks]
    return np.asarray(exp)[:, : 3 * k].reshape(len(exp), k, 3)


def test_landmark_and_coefficient_errors_by_hand():
  t = 5
  target = np.zeros((t, 64))
  pred = np.zeros((t, 64))
  pred[:, 0:3] = [3.0, 4.0, 0.0]  # mouth point 0 off by 5, point 1 exact
  pred[:, 9:12] = [0.0, 0.0, 2.0]  # face point 3 off by 2
  pred[:, 40] = 1.0  # a non-mouth coefficient
  e = expression.errors(_PointFace(), pred, target)
  assert e["mouth_lmk"] == pytest.approx(5.0 / 2)
  assert e["face_lmk"] == pytest.approx((5.0 + 2.0) / 4)
  assert e["exp_mouth"] == pytest.approx((3 + 4 + 2) / 18)
  assert e["exp_rest"] == pytest.approx(1.0 / 46)


def test_mouth_motion_tells_a_still_mouth_from_a_moving_one():
  """A still mouth at the ground truth's mean: small errors, no motion; the
  truth at half amplitude plus an offset: correlation 1, motion 0.5;
  motion unrelated to the truth: correlation near 0."""
  rng = np.random.default_rng(0)
  target = rng.normal(size=(200, 64))
  still = np.broadcast_to(target.mean(0), target.shape)
  m = expression.mouth_motion(still, target)
  assert m == pytest.approx({"mouth_corr": 0.0, "mouth_motion": 0.0}, abs=1e-9)
  m = expression.mouth_motion(0.5 * target + 3.0, target)
  assert m["mouth_corr"] == pytest.approx(1.0)
  assert m["mouth_motion"] == pytest.approx(0.5)
  m = expression.mouth_motion(rng.normal(size=target.shape), target)
  assert abs(m["mouth_corr"]) < 0.05
  assert m["mouth_motion"] == pytest.approx(1.0, abs=0.05)
  assert set(expression.errors(_PointFace(), still, target)) >= set(m)


def test_soft_dtw_matches_the_training_loss_and_forgives_a_shift():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(2, 20, 3))
  want = float(losses.soft_dtw(x[None], y[None], 0.1)[0])
  assert expression.soft_dtw(x, y, 0.1) == pytest.approx(want, rel=1e-5)
  # A sequence against itself delayed by two frames: small DTW, while the
  # frame-wise error is large.
  s = np.cumsum(rng.normal(size=(40, 2)), 0)
  late = np.concatenate([s[:2], s[:-2]])
  assert expression.soft_dtw(s, late) < 0.05 * np.sum((s - late) ** 2)
  assert expression.soft_dtw(s[:30], s) > 0  # any lengths


@pytest.mark.parametrize("shift", [-4, 0, 3])
def test_sync_lag_recovered(shift):
  rng = np.random.default_rng(1)
  env = np.convolve(rng.normal(size=300), np.ones(5) / 5, "same")
  mouth = np.roll(env, shift)  # mouth(t) = env(t - shift)
  corr, lag = lip_sync.best_lag(mouth, env)
  assert lag == shift and corr > 0.99
  noise = rng.normal(size=300)
  assert abs(lip_sync.correlation(noise, env)) < 0.2


def test_bootstrap_interval_covers_the_mean_at_its_level():
  rng = np.random.default_rng(2)
  n, sigma, hits, widths = 100, 2.0, 0, []
  for _ in range(200):
    ci = stats.interval(rng.normal(1.0, sigma, n), resamples=500)
    hits += ci["low"] <= 1.0 <= ci["high"]
    widths.append(ci["high"] - ci["low"])
  assert 0.88 <= hits / 200 <= 0.99
  # The normal-theory width 2 * 1.96 sigma / sqrt(n).
  assert np.mean(widths) == pytest.approx(2 * 1.96 * sigma / n**0.5, rel=0.1)
  # NaNs (a metric a clip lacks) are left out.
  assert stats.interval([1.0, np.nan, 3.0])["n"] == 2


def test_seed_spread_widens_the_interval():
  rng = np.random.default_rng(3)
  same = [rng.normal(0, 1, 200) for _ in range(3)]
  apart = [rng.normal(m, 1, 200) for m in (-1.0, 0.0, 1.0)]
  a, b = stats.grouped_interval(same), stats.grouped_interval(apart)
  assert b["high"] - b["low"] > 3 * (a["high"] - a["low"])
  assert stats.differs({"low": 0, "high": 1}, {"low": 1.5, "high": 2})
  assert not stats.differs({"low": 0, "high": 1}, {"low": 0.5, "high": 2})


def test_paired_difference_sees_a_shift_that_item_spread_hides():
  """Two variants on the same items, one 0.05 above on each: the item
  spread (sd 1) makes their own intervals overlap; paired, the shift
  stands out, and the mean is the difference of the means."""
  rng = np.random.default_rng(4)
  items = rng.normal(0, 1, 120)
  a = items + rng.normal(0, 0.02, (3, 120))  # [runs, items]
  b = items - 0.05 + rng.normal(0, 0.02, (2, 120))
  assert not stats.differs(stats.grouped_interval(a), stats.grouped_interval(b))
  d = stats.paired_difference(a, b)
  assert d["mean"] == pytest.approx(a.mean() - b.mean())
  assert 0 < d["low"] < 0.05 < d["high"] < 0.1 and stats.excludes_zero(d)
  # No shift: the interval holds 0; items missing on either side drop out.
  b[:, :10] = np.nan
  same = stats.paired_difference(a, a[:2] + rng.normal(0, 0.02, (2, 120)))
  assert not stats.excludes_zero(same)
  assert stats.paired_difference(a, b)["n"] == 110


def test_codebook_health_and_retrieval_by_hand():
  h = codebook.health(np.array([[0, 1], [2, 3]]), num_codes=8)
  assert h["perplexity"] == pytest.approx(4.0)
  assert h["dead_fraction"] == 0.5
  first = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
  second = np.array([[1.0, 0.0], [0.0, 9.0], [9.0, 0.0]])
  assert style.retrieval(first, second).tolist() == [1.0, 0.0, 0.0]
  logits = np.array([[0.1, 0.9], [0.8, 0.2]])
  assert style.accuracy(logits, [1, 1]).tolist() == [1.0, 0.0]


def test_windows_per_clip_mean_through_the_mesh():
  rng = np.random.default_rng(4)
  clips = [rng.normal(size=(t, 3)).astype(np.float32) for t in (40, 20, 64)]
  w = windows.Windows.of(clips)
  assert w.x.shape[1:] == (32, 3)
  assert np.bincount(w.owner).tolist() == [1, 1, 3]  # 20 frames: ping-pong
  mesh = mesh_lib.make_mesh()
  got = windows.apply_per_clip(_MeanFrame(), {}, clips, mesh, batch_size=4)
  want = [w.x[w.owner == c].mean((0, 1)) for c in range(3)]
  np.testing.assert_allclose(got, want, rtol=1e-6)


class _MeanFrame:
  def __call__(self, variables, x):  # [B, 32, 3] -> [B, 3]
    return x.mean(1)


def test_psnr_and_ssim_by_hand():
  a = np.full((2, 16, 16, 3), 100, np.uint8)
  b = a + np.uint8(5)
  assert image.psnr(a, b) == pytest.approx(20 * np.log10(255 / 5))
  assert image.psnr(a, a) == float("inf")
  # Flat images: SSIM reduces to its luminance term.
  c1 = (0.01 * 255) ** 2
  want = (2 * 100 * 105 + c1) / (100**2 + 105**2 + c1)
  assert image.ssim(a, b) == pytest.approx(want, rel=1e-6)
  rng = np.random.default_rng(5)
  x = rng.integers(0, 256, (1, 32, 32, 3)).astype(np.uint8)
  noisy = np.clip(x + rng.normal(0, 40, x.shape), 0, 255).astype(np.uint8)
  assert image.ssim(x, x) == pytest.approx(1.0)
  assert image.ssim(x, noisy) < 0.9


def test_judge_distances_by_hand_and_styles_told_apart():
  rng = np.random.default_rng(0)

  def clip(style):  # style 0/1: its mean offset and how fast it moves
    walk = np.cumsum(rng.normal(size=(40, 2)), 0) * (0.1 + 0.2 * style)
    return walk - walk.mean(0) + 3.0 * style

  train = [clip(s) for s in (0, 1) for _ in range(6)]
  labels = [0] * 6 + [1] * 6
  # Shrinkage 1: the precision is the identity, so the distance is the sum
  # of squared standardised feature differences.
  flat = judge.Judge.fit(train, labels, shrinkage=1.0)
  a, b = clip(0), clip(1)
  fa, fb = judge.features(a), judge.features(b)
  assert fa.shape == (6,)
  k = judge.SMOOTH
  smooth = np.stack([a[t : t + k].mean(0) for t in range(len(a) - k + 1)])
  np.testing.assert_allclose(fa[:2], smooth.mean(0))
  np.testing.assert_allclose(fa[2:4], np.log(smooth.std(0) + 1e-6))
  velocity = np.diff(smooth, axis=0).std(0)
  np.testing.assert_allclose(fa[4:], np.log(velocity + 1e-6))
  by_hand = np.sum(((fa - fb) / flat.scale) ** 2)
  assert flat.distance(a, b) == pytest.approx(by_hand)
  assert flat.distance(a, a) == 0.0
  means = np.stack(
    [
      np.mean([judge.features(c) for c in train[:6]], 0),
      np.mean([judge.features(c) for c in train[6:]], 0),
    ]
  )
  want = np.sum(((fa - means) / flat.scale) ** 2, -1)
  np.testing.assert_allclose(flat.distances(a), want, rtol=1e-9)
  # Held-out clips of each style are told apart; an unknown style is NaN.
  j = judge.Judge.fit(train, labels)
  held = [(clip(s), s) for s in (0, 1) for _ in range(10)]
  assert np.mean([j.hit(c, s) for c, s in held]) == 1.0
  assert np.isnan(j.hit(a, 7))
  with pytest.raises(ValueError, match="T >= 7"):
    judge.features(a[:6])


def test_drawn_pairs_take_their_speech_from_clips_that_have_some():
  """Without listed pairs, every clip with speech is a pair's content; a
  clip without audio (a StyleTalk style clip) is only ever a style clip."""
  import dataclasses

  from batches_test import _table

  table = _table(persons=3, emotions=1, levels=1, short_clip=False)
  mute = np.arange(table.num_clips) % 2 == 1
  table = dataclasses.replace(table, has_audio=~mute)
  pairs = benchmark.load_pairs(
    [table], seen=set(), pairs_dir=None, with_audio=True
  )
  ids = [str(c) for c in table.clip_ids]
  assert [p.content_id for p in pairs] == [
    c for c, m in zip(ids, mute, strict=True) if not m
  ]
  assert all(p.energy is not None for p in pairs)
  assert {p.style_id for p in pairs} & set(np.array(ids)[mute])  # as style
