"""The realism test and the real-space calibration, on the StyleTalk
sample clips (../shared/data; skipped without them)."""

import os

import numpy as np
import pytest

from input_pipeline.synthetic import calibrate, realism


@pytest.fixture
def real(shared_data):
  return realism.real_clips(str(shared_data / "styletalk"))


def test_two_sample_test_tells_only_real_differences(real):
  assert len(real) == 22
  # Real against real (alternate clips): no better than chance, give or
  # take the spread of 11 clips per side.
  assert realism.classify_cv(real[::2], real[1::2]) <= 0.7
  # Against the same clips with every expression moved by two standard
  # deviations, or their motion sped up two-fold: told apart.
  std = np.concatenate([c.exp for c in real]).std(0)
  shifted = [realism.Clip(c.name + "+", c.exp + 2 * std, c.pose) for c in real]
  assert realism.classify_cv(real[::2], shifted[1::2]) >= 0.9
  fast = [realism.Clip(c.name, c.exp[::2], c.pose[::2]) for c in real]
  fast = [c for c in fast if len(c.exp) >= realism.WINDOW]
  assert realism.classify_cv(real[::2], fast[1::2]) >= 0.7
  ratio = realism.pca_std_ratio(real[::2], real[::2])
  np.testing.assert_allclose(ratio, 1.0, atol=1e-9)


def test_calibration_refits_the_shipped_tables(shared_data):
  tables, report = calibrate.fit(str(shared_data / "styletalk"))
  # The mouth map predicts clips left out of its fit.
  assert report["mouth_held_out_corr_median"] >= 0.4
  assert report["mouth_lag_frames"] < 0  # real mouths lead the labels
  with np.load(calibrate.DEFAULT_OUT) as shipped:
    assert sorted(shipped.files) == sorted(tables)
    for key, value in tables.items():
      np.testing.assert_allclose(
        shipped[key], value, rtol=1e-6, atol=1e-9, err_msg=key
      )
  assert os.path.isfile(os.path.splitext(calibrate.DEFAULT_OUT)[0] + ".json")


def test_eye_and_brow_directions_move_the_landmarks(shared_data):
  from saas_jax import face_model as face_lib

  face = face_lib.load("mediapipe")
  with np.load(calibrate.DEFAULT_OUT) as t:
    tables = {k: t[k] for k in t.files}
  mean = tables["exp_mean"]
  for side, (upper, lower) in calibrate.LIDS.items():

    def gap(e, upper=upper, lower=lower):
      p = face.points(e.astype(np.float32))
      return p[upper, 1] - p[lower, 1]

    open_ = gap(mean)
    assert open_ > 0
    closed = gap(mean + tables[f"blink_{side}"])
    assert abs(closed) < 0.05 * open_, side
  for brow, lid in calibrate.BROWS.values():

    def height(e, brow=brow, lid=lid):  # brow above the upper lid
      p = face.points(e.astype(np.float32))
      return p[brow, 1] - p[lid, 1]

    assert height(mean + tables["brow_raise"]) > height(mean)


def test_real_space_passes_the_two_sample_test(real):
  from input_pipeline.synthetic import corpus, motion, styles

  # The semantic layout (version 1's corpus) is what it was: the real
  # space only lays the same components out differently.
  spec = corpus.plan_corpus("tiny")[0]
  clip = corpus.render_clip(0, spec, audio=False, space="semantic")
  style, utt = corpus.clip_style(0, spec), corpus.clip_utterance(0, spec)
  rng = styles.rng_for(0, "clip", spec.id, "expression")
  exp = motion.render_expression(utt.phones(), style, utt.num_frames, rng=rng)
  np.testing.assert_array_equal(exp, clip.exp)
  frames = sum(len(c.exp) for c in real)
  synth = {
    space: realism.synthetic_clips("small", num_frames=frames, space=space)
    for space in ("semantic", "real")
  }
  acc = {k: realism.classify_cv(real, v) for k, v in synth.items()}
  ratio = realism.pca_std_ratio(real, synth["real"])
  print(f"\nreal vs synthetic balanced accuracy: {acc}; PCA std ratio {ratio}")
  assert np.all((ratio >= 0.5) & (ratio <= 2.0))
  assert acc["semantic"] >= 0.99 and acc["real"] <= 0.75
