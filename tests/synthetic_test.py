"""The synthetic corpus: formats, determinism, resumability, ground truth, and
the difficulty that keeps it an honest benchmark (printed numbers: run with
-s to see them)."""

import collections
import itertools
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import scipy.io

from input_pipeline import features, io
from input_pipeline import synthetic as syn
from input_pipeline.synthetic import (
  baselines,
  corpus,
  motion,
  real_space,
  realism,
  styles,
)
from input_pipeline.synthetic.__main__ import main as cli_main
from saas_jax.errors import DataError

SEED = 0
_MANIFEST_KEYS = {
  "audio_path",
  "coeff_path",
  "emotion",
  "fps",
  "id",
  "level",
  "num_frames",
  "person",
  "phones",
  "split",
}
_ID = re.compile(
  r"^P\d{3}#(" + "|".join(syn.EMOTIONS) + r")#level_[123]#\d{3}$"
)
_OPEN_VOWELS = {"AA", "AE", "AO", "AW", "AY"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  out = tmp_path_factory.mktemp("synthetic") / "tiny"
  syn.generate_corpus(out, "tiny", SEED, workers=1, progress=False)
  return out


@pytest.fixture(scope="module")
def manifest(tiny):
  return syn.load_manifest(tiny)


def _files(root) -> dict[str, bytes]:
  out = {}
  for dirpath, _, names in os.walk(root):
    for name in names:
      path = os.path.join(dirpath, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, root)] = f.read()
  return out


# ------------------------------------------------------------------ layout ---


def test_manifest_and_info(tiny, manifest):
  lines = (tiny / "manifest.jsonl").read_text().splitlines()
  ids = [json.loads(line)["id"] for line in lines]
  assert ids == sorted(ids) and len(set(ids)) == len(ids) == 72
  splits = {s: set() for s in syn.SPLITS}
  for line, rec in zip(lines, manifest, strict=True):
    assert line == json.dumps(rec, sort_keys=True)
    assert set(rec) == _MANIFEST_KEYS
    assert _ID.match(rec["id"]), rec["id"]
    person, emotion, level, _ = syn.parse_clip_id(rec["id"])
    assert (rec["person"], rec["emotion"], rec["level"]) == (
      person,
      emotion,
      level,
    )
    folder = f"{person}/{emotion}/level_{level}/{rec['id']}"
    assert rec["audio_path"] == folder + ".wav"
    assert rec["coeff_path"] == folder + ".mat"
    assert rec["fps"] == 25 and rec["split"] in syn.SPLITS
    phones = rec["phones"]
    assert phones[0][1] == 0.0
    assert phones[-1][2] == pytest.approx(rec["num_frames"] / 25)
    for (_, _, end), (_, start, _) in itertools.pairwise(phones):
      assert end == start
    assert all(syn.base_phone(p[0]) in syn.PHONE_NAMES for p in phones)
    assert 3.0 <= rec["num_frames"] / 25 <= 8.5
    splits[rec["split"]].add(rec["person"])
  assert all(splits.values()), "every split must be present"
  assert not splits["test_person"] & splits["train"]
  assert splits["val"] | splits["test"] <= splits["train"]

  info = json.loads((tiny / "corpus_info.json").read_text())
  assert info["complete"] and info["preset"] == "tiny"
  assert info["seed"] == SEED
  assert info["generator_version"] == syn.GENERATOR_VERSION
  assert info["space"] == "real"
  assert sum(info["counts"].values()) == info["num_clips"] == len(manifest)
  for s in syn.SPLITS:
    assert info["counts"][s] == sum(r["split"] == s for r in manifest)
  assert info["test_persons"] == sorted(splits["test_person"])
  assert info["emotions"] == list(syn.EMOTIONS) and info["levels"] == [2]
  total = sum(r["num_frames"] for r in manifest) / 25
  assert info["total_seconds"] == pytest.approx(total, abs=0.05)
  assert len(syn.PHONE_NAMES) >= 20


def test_every_clip_loads(tiny, manifest):
  identity = {}
  for rec in manifest:
    coeffs = io.load_coefficients(tiny / rec["coeff_path"])
    wav = io.load_audio(tiny / rec["audio_path"])
    assert coeffs.fps == 25 and coeffs.num_frames == rec["num_frames"]
    assert abs(len(wav) / 16000 * 25 - rec["num_frames"]) <= 1
    # Within the real clips' range (StyleTalk samples: |angle| <= 0.98
    # rad, |translation| <= 0.85).
    assert np.all(np.abs(coeffs.angles) <= 1.0)
    assert np.abs(coeffs.trans).max() < 1.5
    std = coeffs.exp.std(axis=0)
    assert 0.02 < np.median(std) < 1.0
    raw = scipy.io.loadmat(tiny / rec["coeff_path"])["coeff"]
    for cols in (io.ID, io.TEX, io.GAMMA):
      assert np.all(raw[:, cols] == raw[:1, cols])
    identity.setdefault(rec["person"], coeffs.identity)
    np.testing.assert_array_equal(identity[rec["person"]], coeffs.identity)
  assert len(identity) == 3
  # The input pipeline's own loader takes the clip as it is.
  rec = manifest[0]
  clip = features.load_clip(tiny / rec["coeff_path"], tiny / rec["audio_path"])
  assert clip.num_frames == rec["num_frames"]


# ------------------------------------------------- determinism and resume ---


def test_same_seed_same_bytes_for_any_workers(tiny, tmp_path):
  again = tmp_path / "again"
  syn.generate_corpus(again, "tiny", SEED, workers=2, progress=False)
  ours, theirs = _files(tiny), _files(again)
  assert sorted(ours) == sorted(theirs)
  assert all(ours[k] == theirs[k] for k in ours)

  other = tmp_path / "seed1"
  syn.generate_corpus(other, "tiny", SEED + 1, workers=2, progress=False)
  different = _files(other)
  assert different["manifest.jsonl"] != ours["manifest.jsonl"]
  common = [k for k in ours if k.endswith((".wav", ".mat")) and k in different]
  assert common and all(ours[k] != different[k] for k in common)


def test_resume_completes_an_interrupted_corpus(tiny, manifest, tmp_path):
  copy = tmp_path / "copy"
  shutil.copytree(tiny, copy)
  victim = manifest[5]
  for key in ("audio_path", "coeff_path"):
    os.remove(copy / victim[key])
  pair = json.loads(
    (copy / "style_transfer/pairs.jsonl").read_text().splitlines()[0]
  )
  os.remove(copy / pair["target_path"])
  os.remove(copy / "manifest.jsonl")
  stale = copy / (victim["audio_path"] + ".tmp-99999999")  # a dead writer
  stale.write_bytes(b"half a file")
  untouched = copy / manifest[6]["audio_path"]
  mtime = os.stat(untouched).st_mtime_ns

  syn.generate_corpus(copy, "tiny", SEED, workers=1, progress=False)
  assert _files(copy) == _files(tiny)
  assert os.stat(untouched).st_mtime_ns == mtime  # skipped, not rewritten


def test_refuses_another_corpus_and_unknown_presets(tiny, tmp_path, capsys):
  before = (tiny / "corpus_info.json").read_bytes()
  assert cli_main(["--out_dir", str(tiny), "--preset", "tiny", "--seed", "1"])
  assert "refusing to mix" in capsys.readouterr().err
  assert cli_main(["--out_dir", str(tiny), "--preset", "small", "--quiet"])
  assert "preset='tiny'" in capsys.readouterr().err
  assert cli_main(
    ["--out_dir", str(tiny), "--preset", "tiny", "--space", "semantic"]
  )
  assert "space='real'" in capsys.readouterr().err
  assert (tiny / "corpus_info.json").read_bytes() == before
  with pytest.raises(DataError, match="seed=0"):
    syn.generate_corpus(tiny, "full", 0, progress=False)

  foreign = tmp_path / "foreign"
  foreign.mkdir()
  (foreign / "notes.txt").write_text("mine")
  assert cli_main(["--out_dir", str(foreign), "--preset", "tiny"])
  assert "no synthetic corpus" in capsys.readouterr().err

  with pytest.raises(SystemExit) as info:
    cli_main(["--out_dir", str(tmp_path / "x"), "--preset", "huge"])
  assert info.value.code == 2
  assert "invalid choice: 'huge'" in capsys.readouterr().err
  proc = subprocess.run(
    [sys.executable, "-m", "input_pipeline.synthetic", "--help"],
    cwd=pathlib.Path(__file__).resolve().parents[1],
    capture_output=True,
    text=True,
    check=False,
  )
  assert proc.returncode == 0 and "--preset" in proc.stdout


# ------------------------------------------------------------- face model ---


def test_face_model_semantics():
  face = syn.face_model()
  assert face.num_points == 68 and face.num_exp == 64
  np.testing.assert_array_equal(
    face.landmark_sets["keypoints68"], np.arange(68)
  )
  np.testing.assert_array_equal(face.landmark_sets["lips4"], [51, 57, 62, 66])
  assert set(face.edges) == {"jaw", "brows", "nose", "eyes", "lips"}
  assert all(e.min() >= 0 and e.max() < 68 for e in face.edges.values())
  mean = face.mean_shape
  np.testing.assert_allclose(mean.mean(axis=0), 0, atol=1e-6)
  assert 1.3 < np.ptp(mean[:, 0]) < 1.6
  assert mean[8, 1] < mean[57, 1] < mean[30, 1] < mean[27, 1] < mean[19, 1]

  def unit(k, value=1.0):
    e = np.zeros(64, np.float32)
    e[k] = value
    return face.points(e)

  rest = face.points(np.zeros(64, np.float32))
  gap = lambda p: p[62, 1] - p[66, 1]  # noqa: E731
  assert gap(unit(styles.JAW)) > gap(rest) + 0.1
  assert gap(unit(styles.CLOSE)) < gap(rest) - 0.04
  for blink, (upper, lower) in ((18, (37, 41)), (19, (44, 46))):
    assert rest[upper, 1] - rest[lower, 1] > 0.07
    eyes = unit(blink)
    assert abs(eyes[upper, 1] - eyes[lower, 1]) < 0.01
  for brow in (styles.BROW_INNER, styles.BROW_OUTER):
    raised = unit(brow)[17:27, 1] - rest[17:27, 1]
    assert np.all(raised >= 0) and raised.max() > 0.05
  assert np.all(unit(styles.BROW_LOWER)[17:27, 1] < rest[17:27, 1])
  assert np.all(unit(styles.SMILE)[[48, 54], 1] > rest[[48, 54], 1])


def test_bilabials_close_and_open_vowels_open_the_lips(tiny, manifest):
  """Through the shipped real-data landmark basis (the corpus writes
  Deep3DFaceRecon's expression space)."""
  from saas_jax import face_model as face_lib

  clips = [
    (io.load_coefficients(tiny / r["coeff_path"]).exp, r["phones"])
    for r in manifest
  ]
  closed, opened = realism.lip_gaps_by_phone(clips)
  print(
    f"\ninner lip gap (real basis): M/B/P frames median "
    f"{np.median(closed):.4f} (n={closed.size}), open-vowel frames median "
    f"{np.median(opened):.4f} (n={opened.size})"
  )
  assert np.median(closed) < 0.15 * np.median(opened)
  assert np.percentile(closed, 90) < 0.5 * np.median(opened)
  assert np.mean(closed < np.median(opened)) > 0.97

  # One clip as landmarks in the image: finite and in frame.
  face = face_lib.load("mediapipe")
  coeffs = io.load_coefficients(tiny / manifest[0]["coeff_path"])
  points = face.points(coeffs.exp)
  pixels = face.project(points, coeffs.angles, coeffs.trans, coeffs.crop)
  assert pixels.shape == (coeffs.num_frames, face.num_points, 2)
  assert np.all(np.isfinite(pixels)) and pixels.min() > 0
  assert pixels.max() < 256


# -------------------------------------------------------------- difficulty ---


def test_a_audio_carries_the_phones(tiny, manifest):
  """Ridge regression from one mel window [80, 16] to the frame's phone
  (and, for scale, to the mouth coefficients: carried, but not solved)."""
  from saas_jax import face_model as face_lib

  face = face_lib.load("mediapipe")
  index = {p: i for i, p in enumerate(syn.PHONE_NAMES)}
  x, y, mouth, held = [], [], [], []
  for rec in manifest:
    mel = features.log_mel(io.load_audio(tiny / rec["audio_path"]))
    win = features.mel_windows(mel, rec["num_frames"])  # [T, 80, 16]
    labels = syn.frame_labels(rec["phones"], rec["num_frames"])
    x.append(win.reshape(len(win), -1))
    y.extend(index[syn.base_phone(lab)] for lab in labels)
    exp = io.load_coefficients(tiny / rec["coeff_path"]).exp
    mouth.append(face.lip_distances(exp)[:, 1:])  # inner lip gap [T, 1]
    held.extend([rec["split"] != "train"] * len(win))
  x, y, held = np.concatenate(x), np.array(y), np.array(held)
  mouth = np.concatenate(mouth)  # [N, 6]
  mu, sd = x[~held].mean(0), x[~held].std(0) + 1e-3
  x = (x - mu) / sd
  k = len(syn.PHONE_NAMES)
  onehot = np.eye(k)[y[~held]]
  xt = x[~held]
  w = np.linalg.solve(xt.T @ xt + 1000.0 * np.eye(x.shape[1]), xt.T @ onehot)
  pred = np.argmax(x[held] @ w, axis=1)
  acc = float(np.mean(pred == y[held]))
  majority = float(np.mean(y[held] == np.bincount(y[~held]).argmax()))
  present = len(set(y[~held].tolist()))
  print(
    f"\n(a) phone from one mel window, held-out clips: accuracy {acc:.3f} "
    f"over {present} phones (majority class {majority:.3f}, uniform "
    f"{1 / present:.3f}); {(~held).sum()} train / {held.sum()} held frames"
  )
  assert acc > 0.4 and acc > 2 * majority

  # The mouth shows a phone before it is heard: frame t against the mel
  # window of t + lead. Real-space mouths also drift in ways audio cannot
  # tell (as real ones do: phone labels explain about a quarter of a real
  # lip gap's variance, calibration.json), so R^2 stays low.
  lead = -int(real_space.tables()["mouth_lag"])
  x, held, mouth = x[lead:], held[lead:], mouth[:-lead]
  xt = x[~held]
  target = mouth[~held] - mouth[~held].mean(0)
  w = np.linalg.solve(xt.T @ xt + 1000.0 * np.eye(x.shape[1]), xt.T @ target)
  resid = mouth[held] - mouth[~held].mean(0) - x[held] @ w
  r2 = 1 - (resid**2).sum() / ((mouth[held] - mouth[held].mean(0)) ** 2).sum()
  print(f"    linear mel -> inner lip gap, held-out R^2 {r2:.3f}")
  assert 0.1 < r2 < 0.8


def _clip_features(clip):
  return baselines.clip_features(clip.exp, clip.pose)


def test_b_style_is_not_a_static_offset():
  """Styles classified from held-out clips by their mean expression vs by
  temporal statistics, over all styles and within twin-emotion pairs."""
  preset = corpus.Preset("difficulty", 3, syn.EMOTIONS, (1, 3), 12, 0)
  specs = corpus.plan_corpus(preset)
  feats = [_clip_features(syn.render_clip(SEED, s, audio=False)) for s in specs]
  mean = np.array([f[0] for f in feats])
  temporal = np.array([f[1] for f in feats])
  style = np.array([f"{s.person}/{s.emotion}/{s.level}" for s in specs])
  train = np.array([s.split == "train" for s in specs])
  held_style = style[~train]
  acc = {
    name: float(
      np.mean(baselines.nearest_centroid(x, style, train) == held_style)
    )
    for name, x in (("mean", mean), ("temporal", temporal))
  }
  # Twins (same person and level, emotions sharing their static offset).
  twin = {"mean": [], "temporal": []}
  group = np.array(
    [f"{s.person}/{syn.OFFSET_GROUP[s.emotion]}/{s.level}" for s in specs]
  )
  for g in sorted(set(group)):
    rows = group == g
    for name, x in (("mean", mean), ("temporal", temporal)):
      pred = baselines.nearest_centroid(x[rows], style[rows], train[rows])
      twin[name].extend(pred == style[rows][~train[rows]])
  twin = {k: float(np.mean(v)) for k, v in twin.items()}
  print(
    f"\n(b) {len(set(style))} styles, {train.sum()} train / "
    f"{(~train).sum()} held-out clips: nearest centroid on mean expression "
    f"{acc['mean']:.3f}, on temporal features {acc['temporal']:.3f} "
    f"(chance {1 / len(set(style)):.3f}); between twin emotions: mean "
    f"{twin['mean']:.3f}, temporal {twin['temporal']:.3f} (chance 0.5)"
  )
  assert acc["temporal"] > 0.7
  assert acc["temporal"] > acc["mean"] + 0.2
  assert twin["mean"] < 0.7 and twin["temporal"] > 0.85


def test_c_no_near_duplicates(tiny, manifest):
  sentences = [
    tuple(p[0] for p in r["phones"] if p[0] != "SIL") for r in manifest
  ]
  assert len(set(sentences)) == len(sentences)
  stats, keys = [], []
  for rec in manifest:
    exp = io.load_coefficients(tiny / rec["coeff_path"]).exp
    stats.append(np.concatenate([exp.mean(0), exp.std(0)]))
    keys.append((rec["person"], rec["emotion"], rec["level"]))
  stats = np.array(stats)
  stats = (stats - stats.mean(0)) / stats.std(0)
  dist = np.sqrt(((stats[:, None] - stats[None]) ** 2).sum(-1))
  same = np.array([[a == b for b in keys] for a in keys])
  upper = np.triu(np.ones_like(same), 1)
  same_d = dist[same & upper]
  other_d = dist[~same & upper]
  ratio = same_d.min() / np.median(other_d)
  print(
    f"\n(c) expression statistics (mean and std of 64 coefficients, "
    f"standardised): closest same-style pair {same_d.min():.2f}, median "
    f"same-style {np.median(same_d):.2f}, median different-style "
    f"{np.median(other_d):.2f}; closest / median different = {ratio:.2f}"
  )
  assert ratio > 0.25


# ------------------------------------------------------------ ground truth ---


def test_style_transfer_ground_truth(tiny, manifest):
  by_id = {r["id"]: r for r in manifest}
  lines = (tiny / "style_transfer/pairs.jsonl").read_text().splitlines()
  pairs = [json.loads(line) for line in lines]
  content = {r["id"] for r in manifest if r["split"] in ("test", "test_person")}
  assert {p["content_id"] for p in pairs} == content
  correlations = []
  for line, pair in zip(lines, pairs, strict=True):
    assert line == json.dumps(pair, sort_keys=True)
    assert set(pair) == {"content_id", "style_id", "target_path", "num_frames"}
    a, b = by_id[pair["content_id"]], by_id[pair["style_id"]]
    assert a["person"] != b["person"]
    assert b["split"] in ("test", "test_person")
    target = np.load(tiny / pair["target_path"])
    assert target.dtype == np.float32
    assert target.shape == (a["num_frames"], 64) == (pair["num_frames"], 64)
    style = syn.style_for(SEED, b["person"], b["emotion"], b["level"])
    np.testing.assert_array_equal(
      target,
      syn.render_expression(a["phones"], style, a["num_frames"], space="real"),
    )
    # The content's mouth timing survives; its static face does not.
    own = io.load_coefficients(tiny / a["coeff_path"]).exp
    jaw = [real_space.roles(e)[:, styles.JAW] for e in (own, target)]
    correlations.append(np.corrcoef(*jaw)[0, 1])
    assert np.abs(own.mean(0) - target.mean(0)).max() > 0.1
  print(
    f"\njaw correlation, clip vs its transferred target: min "
    f"{np.min(correlations):.2f}, median {np.median(correlations):.2f}"
  )
  assert np.median(correlations) > 0.7


def test_noise_free_expressions_are_the_clips_without_noise(tiny, manifest):
  recs = manifest[:3]
  clean = syn.noise_free_expressions(str(tiny), [r["id"] for r in recs])
  for r, e in zip(recs, clean, strict=True):
    style = syn.style_for(SEED, r["person"], r["emotion"], r["level"])
    want = syn.render_expression(
      r["phones"], style, r["num_frames"], space="real"
    )
    np.testing.assert_array_equal(e, want)
    tracked = io.load_coefficients(tiny / r["coeff_path"]).exp
    # Same clip: same timing; tracked adds noise and blinks, so it moves more.
    assert e.shape == tracked.shape
    assert (
      np.abs(np.diff(tracked, axis=0)).mean()
      > np.abs(np.diff(e, axis=0)).mean()
    )
  assert syn.noise_free_expressions(str(tiny / "P000"), [recs[0]["id"]]) is None
  with pytest.raises(DataError, match="lists no clip 'P999"):
    syn.noise_free_expressions(str(tiny), ["P999#angry#level_1#001"])


def test_render_api_and_styles():
  phones = syn.clip_utterance(SEED, corpus.plan_corpus("tiny")[0]).phones()
  style = syn.style_for(SEED, "P000", "angry", 3)
  assert style is syn.style_for(SEED, "P000", "angry", 3)
  a = syn.render_expression(phones, style, 100)
  np.testing.assert_array_equal(a, syn.render_expression(phones, style, 100))
  assert a.shape == (100, 64) and a.dtype == np.float32
  assert np.all(a[:, [styles.BLINK_L, styles.BLINK_R]] == 0)  # no blinks
  rng = np.random.default_rng(1)
  b = syn.render_expression(phones, style, 100, rng=rng)
  assert not np.allclose(a, b)
  minute = syn.render_expression(phones, style, 1500, rng=rng)
  blinks = np.diff((minute[:, styles.BLINK_L] > 0.5).astype(int)) == 1
  assert 0.3 * style.blink_rate < blinks.sum() < 2 * style.blink_rate + 3
  pose = syn.render_pose(phones, style, 100, rng=rng)
  assert pose.shape == (100, 6) and np.abs(pose[:, :3]).max() <= 0.3
  # Without noise the pose is the static pose plus nods on stressed vowels.
  calm = syn.render_pose(phones, style, 100)
  accents = [
    round((p[1] + p[2]) / 2 * 25 - 1) for p in phones if p[0].endswith("1")
  ]
  pitch = calm[:, 0] - style.pose_offset[0]
  assert accents and pitch[[a for a in accents if a < 100]].min() > 0

  # Twins share their static face and differ in dynamics; seeds matter.
  twin = syn.style_for(SEED, "P000", "disgusted", 3)
  np.testing.assert_array_equal(style.exp_offset, twin.exp_offset)
  assert style.art_gain > 1.3 * twin.art_gain
  assert style.pose_tempo > 1.5 * twin.pose_tempo
  other_seed = syn.style_for(SEED + 1, "P000", "angry", 3)
  assert not np.allclose(style.exp_offset, other_seed.exp_offset)
  neutral = [syn.style_for(SEED, "P000", "neutral", lv) for lv in (1, 2, 3)]
  assert len({s.art_gain for s in neutral}) == 3
  with pytest.raises(ValueError, match="unknown emotion"):
    syn.style_for(SEED, "P000", "bored", 1)
  assert motion.render_pose(phones, style, 10).shape == (10, 6)


@pytest.mark.parametrize(
  "preset, counts",
  [
    ("small", {"train": 336, "val": 56, "test": 56, "test_person": 64}),
    ("medium", {"train": 1008, "val": 168, "test": 168, "test_person": 192}),
  ],
)
def test_presets_hold_out_whole_persons(preset, counts):
  """The split plan (no rendering): every style of a training person in
  train, every emotion in val and test, the held-out persons in
  test_person only."""
  specs = corpus.plan_corpus(preset)
  assert collections.Counter(s.split for s in specs) == counts
  p = corpus.get_preset(preset)
  held = {s.person for s in specs if s.split == "test_person"}
  assert held == set(corpus.persons(p)[-p.num_test_persons :])
  for split in ("train", "val", "test"):
    assert not held & {s.person for s in specs if s.split == split}
  styles = {
    (s.person, s.emotion, s.level) for s in specs if s.person not in held
  }
  for split in ("train", "val", "test"):
    emotions = {s.emotion for s in specs if s.split == split}
    assert emotions == set(p.emotions), split
  assert {
    (s.person, s.emotion, s.level) for s in specs if s.split == "train"
  } == styles
