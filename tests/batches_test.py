"""Batch builders: shapes, triplet semantics, determinism and resume."""

import numpy as np
import pytest

from input_pipeline import batches, features


def _table(
  persons=4, emotions=3, levels=3, clips_per_style=2, seed=0, short_clip=True
):
  """Every frame encodes where it came from: exp[:, 0] = clip, [:, 1] = frame."""
  rng = np.random.default_rng(seed)
  rows = []
  for p in range(persons):
    for e in range(emotions):
      for lv in range(1, levels + 1):
        for _ in range(clips_per_style):
          rows.append((p, e, lv, int(rng.integers(70, 120))))
  if short_clip:
    rows.append((0, 0, 1, 20))  # shorter than every window
  exps, poses, mels, mfccs = [], [], [], []
  for c, (_, _, _, n) in enumerate(rows):
    exp = np.zeros((n, 64), np.float32)
    exp[:, 0], exp[:, 1] = c, np.arange(n)
    exps.append(exp)
    pose = np.zeros((n, 6), np.float32)
    pose[:, 0], pose[:, 1] = c, np.arange(n)
    poses.append(pose)
    n_mel = 1 + int(n / 25 * 16000) // 200
    mels.append(
      np.tile(np.arange(n_mel, dtype=np.float32)[:, None], (1, 80)) + 1000 * c
    )
    n_mfcc = 1 + int(np.ceil((n / 25 * 16000 + 3840 - 400) / 160))
    mfccs.append(
      np.tile(np.arange(n_mfcc, dtype=np.float32)[:, None], (1, 12)) + 1000 * c
    )
  start, length, exp_all = batches._concat(exps, 64)
  _, _, pose_all = batches._concat(poses, 6)
  mel_start, mel_len, mel_all = batches._concat(mels, 80)
  mfcc_start, mfcc_len, mfcc_all = batches._concat(mfccs, 12)
  labels = {}
  for p, e, lv, _ in rows:
    labels.setdefault((p, e, lv), len(labels))
  return batches.ClipTable(
    clip_ids=np.array([f"c{i}" for i in range(len(rows))]),
    label=np.array([labels[r[:3]] for r in rows]),
    person=np.array([r[0] for r in rows]),
    emotion=np.array([r[1] for r in rows]),
    level=np.array([r[2] for r in rows]),
    has_audio=np.ones(len(rows), bool),
    start=start,
    length=length,
    exp=exp_all,
    pose=pose_all,
    mel_start=mel_start,
    mel_len=mel_len,
    mel=mel_all,
    mfcc_start=mfcc_start,
    mfcc_len=mfcc_len,
    mfcc=mfcc_all,
  )


@pytest.fixture(scope="module")
def data():
  return batches.StageData.single(_table())


def _clip_of(window):  # [W, 64] -> clip index, checking one clip per window
  clips = np.unique(window[:, 0])
  assert len(clips) == 1
  return int(clips[0])


def _assert_contiguous(window, length):
  frames = window[:, 1].astype(int)
  steps = np.abs(np.diff(frames))
  assert np.all(steps <= 1)  # forward, or turning at a ping-pong end
  assert frames.min() >= 0 and frames.max() < length
  if length >= len(frames):
    np.testing.assert_array_equal(np.diff(frames), 1)


def test_style_window_triplets(data):
  t = data.local
  b = batches.sample_style_windows(data, 64, seed=0, step=3)
  assert b["exp"].shape == (64, 32, 64) and b["pos_exp"].shape == (64, 32, 64)
  for k in range(64):
    a = _clip_of(b["exp"][k])
    pos, neg, oth = (
      _clip_of(b[f"{n}_exp"][k]) for n in ("pos", "neg", "other")
    )
    for c, w in (
      (a, "exp"),
      (pos, "pos_exp"),
      (neg, "neg_exp"),
      (oth, "other_exp"),
    ):
      _assert_contiguous(b[w][k], t.length[c])
    assert b["label"][k] == t.label[a]
    # Positive: same style class, another clip of it.
    assert t.label[pos] == t.label[a] and pos != a
    assert b["pos_label"][k] == t.label[pos]
    # Negative: same person, other emotion, at the highest level.
    assert t.person[neg] == t.person[a] and t.emotion[neg] != t.emotion[a]
    assert t.level[neg] == 3
    # Other: another person.
    assert t.person[oth] != t.person[a]


def test_negative_falls_back_to_other_person_without_levels():
  table = _table(persons=3, emotions=1, levels=1, short_clip=False)
  data = batches.StageData.single(table)
  b = batches.sample_style_windows(data, 32, seed=1, step=0)
  for k in range(32):
    a, neg = _clip_of(b["exp"][k]), _clip_of(b["neg_exp"][k])
    assert table.person[neg] != table.person[a]


def test_short_clips_are_ping_ponged(data):
  table = data.local
  short = int(np.flatnonzero(table.length == 20)[0])
  starts = np.array([0, 5])
  w = batches._windows(table, table.exp, np.array([short, short]), starts, 32)
  frames = w[0, :, 1].astype(int)
  expected = list(range(20)) + list(range(18, 6, -1))
  np.testing.assert_array_equal(frames, expected)


def test_audio_pairs(data):
  t = data.local
  b = batches.sample_pairs(data, 32, seed=0, step=7)
  assert b["mel"].shape == (32, 32, 80, 16) and b["ref_exp"].shape == (32, 64)
  assert b["blink"].shape == (32, 32) and b["blink"].max() == 1.0
  for k in range(32):
    a, style = _clip_of(b["exp"][k]), _clip_of(b["style_exp"][k])
    assert t.person[style] != t.person[a]
    assert t.label[_clip_of(b["pos_exp"][k])] == t.label[style]
    assert b["style_label"][k] == t.label[style]
    assert int(b["ref_exp"][k, 0]) == a
    # The mel windows are the reference's windows of A's frames.
    first = int(b["exp"][k, 0, 1])
    clip_mel = t.mel[t.mel_start[a] : t.mel_start[a] + t.mel_len[a]]
    expected = features.mel_windows(clip_mel, 32, 25.0, start=first)
    np.testing.assert_array_equal(b["mel"][k], expected)
    # mel_mean: the band means of all of A's windows, not of this window's
    whole = features.mel_windows(clip_mel, int(t.length[a]), 25.0)
    np.testing.assert_allclose(b["mel_mean"][k], whole.mean((0, 2)), 1e-5)
  assert np.abs(b["mel_mean"] - b["mel"].mean((1, 3))).max() > 1e-3
  # The short clip is never an audio anchor (its windows would be fake audio).
  assert 20 not in {t.length[_clip_of(w)] for w in b["exp"]}


def test_video_pairs_have_no_audio(data):
  b = batches.sample_pairs(data, 8, seed=0, step=0, with_audio=False)
  assert "mel" not in b and b["exp"].shape == (8, 32, 64)


def test_pose_windows(data):
  t = data.local
  b = batches.sample_pose_windows(data, 16, seed=0, step=2)
  assert b["pose"].shape == (16, 64, 6) and b["mfcc"].shape == (16, 64, 28, 12)
  assert b["style_exp"].shape == (16, 32, 64)
  for k in range(16):
    c = int(b["pose"][k, 0, 0])
    assert np.all(b["pose"][k, :, 0] == c)
    assert _clip_of(b["style_exp"][k]) == c
    assert t.label[_clip_of(b["style_pos_exp"][k])] == t.label[c]
    clip_pose = t.pose[t.start[c] : t.start[c] + t.length[c]]
    np.testing.assert_allclose(b["pose_offset"][k], clip_pose.mean(0))
    first = int(b["pose"][k, 0, 1])
    clip_mfcc = t.mfcc[t.mfcc_start[c] : t.mfcc_start[c] + t.mfcc_len[c]]
    if t.length[c] >= 64:
      np.testing.assert_array_equal(
        b["mfcc"][k], features.mfcc_windows(clip_mfcc, 64, 25.0, start=first)
      )
  # Another clip of the style class where it has one.
  pos = [_clip_of(w) for w in b["style_pos_exp"]]
  assert any(p != int(c) for p, c in zip(pos, b["pose"][:, 0, 0], strict=True))


@pytest.mark.parametrize(
  "builder", ["style_windows", "audio_pairs", "video_pairs", "pose_windows"]
)
def test_determinism_and_resume(data, builder):
  fn = getattr(batches, builder)
  full = list(fn(data, batch_size=4, seed=3, num_steps=6).as_numpy_iterator())
  again = list(fn(data, batch_size=4, seed=3, num_steps=6).as_numpy_iterator())
  resumed = list(
    fn(
      data, batch_size=4, seed=3, start_step=4, num_steps=2
    ).as_numpy_iterator()
  )
  other_seed = next(
    fn(data, batch_size=4, seed=4, num_steps=1).as_numpy_iterator()
  )
  for a, b in zip(full, again, strict=True):
    for k in a:
      np.testing.assert_array_equal(a[k], b[k])
  for a, b in zip(full[4:], resumed, strict=True):
    for k in a:
      np.testing.assert_array_equal(a[k], b[k])
  assert not np.array_equal(
    full[0]["exp" if "exp" in full[0] else "pose"],
    full[1]["exp" if "exp" in full[0] else "pose"],
  )
  key = "exp" if "exp" in other_seed else "pose"
  assert not np.array_equal(full[0][key], other_seed[key])


def test_shards_assemble_the_global_batch(data):
  """Two processes holding one shard each see the two halves of the batch
  that one process holding both shards sees."""
  t = data.local
  both = batches.StageData([(0, t), (1, t)], data.partners, num_shards=2)
  full = batches.sample_style_windows(both, 8, seed=0, step=5)
  for p in range(2):
    one = batches.StageData([(p, t)], data.partners, num_shards=2)
    part = batches.sample_style_windows(one, 8, seed=0, step=5)
    for k in full:
      np.testing.assert_array_equal(part[k], full[k][4 * p : 4 * p + 4])
  assert not np.array_equal(full["exp"][:4], full["exp"][4:])
  with pytest.raises(ValueError, match="not divisible"):
    batches.sample_style_windows(both, 7, seed=0, step=0)
