"""Corpus layouts -> TFDS shards: prepare, read back, resume, shard, Beam."""

import os
import signal
import subprocess
import sys
import time

import conftest
import numpy as np
import pytest
import tensorflow_datasets as tfds

from input_pipeline import batches, io, layouts, prepare
from input_pipeline.talking_face import skipped_clips


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  root = tmp_path_factory.mktemp("corpus")
  records = conftest.write_manifest_corpus(root)
  return root, records


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("tfds")
  builder = prepare.prepare("manifest", str(corpus[0]), str(data_dir))
  return builder, data_dir


def _read_all(data_dir, config, split):
  ds = tfds.load(f"talking_face/{config}", data_dir=str(data_dir), split=split)
  return {ex["clip_id"].decode(): ex for ex in ds.as_numpy_iterator()}


def test_manifest_prepare_and_load(corpus, prepared):
  root, records = corpus
  builder, data_dir = prepared
  splits = {k: v.num_examples for k, v in builder.info.splits.items()}
  assert sum(splits.values()) == len(records) - 1
  assert set(splits) <= set(layouts.SPLITS) and splits["train"] > 0
  assert "test_person" in splits  # 5 persons -> one held out
  skipped = skipped_clips(builder.data_dir)
  assert [s["id"] for s in skipped] == ["PBAD#angry#level_1#000"]
  assert (
    "NaN" in skipped[0]["reason"] and "nan_clip.mat" in skipped[0]["reason"]
  )
  train = _read_all(data_dir, "manifest", "train")
  meta = builder.info.metadata
  ex = next(iter(train.values()))
  assert ex["exp"].shape == (ex["num_frames"], 64)
  assert ex["mel"].shape[1] == 80 and ex["mfcc"].shape[1] == 12
  assert meta["style_classes"][ex["style_label"]] == ex["style_class"].decode()
  # Values survive the round trip (50 frames at 25 fps, no resampling).
  rec = next(r for r in records if r["id"] in train)
  coeffs = io.load_coefficients(root / rec["coeff_path"])
  got = train[rec["id"]]
  np.testing.assert_array_equal(got["exp"], coeffs.exp[: got["num_frames"]])


def test_held_out_persons_are_disjoint(prepared):
  _, data_dir = prepared
  train = _read_all(data_dir, "manifest", "train")
  heldout = _read_all(data_dir, "manifest", "test_person")
  persons = lambda d: {ex["person"] for ex in d.values()}  # noqa: E731
  assert persons(train).isdisjoint(persons(heldout))


def test_rerun_after_success_is_a_noop(corpus, prepared):
  builder, data_dir = prepared
  before = os.path.getmtime(os.path.join(builder.data_dir, "dataset_info.json"))
  again = prepare.prepare("manifest", str(corpus[0]), str(data_dir))
  assert (
    os.path.getmtime(os.path.join(again.data_dir, "dataset_info.json"))
    == before
  )


def test_processes_read_disjoint_shards(prepared):
  _, data_dir = prepared
  full = batches.load_table(str(data_dir), "manifest", "train")
  parts = [
    batches.load_table(
      str(data_dir), "manifest", "train", shard=i, num_shards=2
    )
    for i in range(2)
  ]
  ids = [set(p.clip_ids) for p in parts]
  assert ids[0].isdisjoint(ids[1]) and ids[0] and ids[1]
  assert ids[0] | ids[1] == set(full.clip_ids)
  data = batches.load_stage_data(
    str(data_dir), "manifest", "train", process_index=1, process_count=2
  )
  assert set(data.local.clip_ids) == ids[1]
  assert set(data.partners.table.clip_ids) == set(full.clip_ids)
  b = batches.sample_style_windows(data, 8, seed=0, step=0)
  assert b["exp"].shape == (4, 32, 64)  # this process's half of the batch


def _tfrecords(path):
  out = {}
  for name in sorted(os.listdir(path)):
    if ".tfrecord" in name:
      with open(os.path.join(path, name), "rb") as f:
        out[name] = f.read()
  return out


def test_killed_prepare_resumes_to_the_same_dataset(corpus, prepared, tmp_path):
  builder, _ = prepared
  data_dir = tmp_path / "tfds"
  cache = data_dir / "talking_face_cache" / "manifest"
  cmd = [
    sys.executable,
    "-m",
    "input_pipeline.prepare",
    "--layout",
    "manifest",
    "--manual_dir",
    str(corpus[0]),
    "--data_dir",
    str(data_dir),
  ]
  proc = subprocess.Popen(
    cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
  )
  deadline = time.time() + 120
  while time.time() < deadline and proc.poll() is None:
    if cache.is_dir() and len(list(cache.glob("*.npz"))) >= 5:
      break
    time.sleep(0.02)
  assert proc.poll() is None, "prepare finished before it could be killed"
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  final = data_dir / "talking_face" / "manifest" / "1.0.0"
  assert not final.exists()  # nothing half-written is visible
  assert 5 <= len(list(cache.glob("*.npz"))) < len(corpus[1])
  resumed = prepare.prepare("manifest", str(corpus[0]), str(data_dir))
  assert _tfrecords(resumed.data_dir) == _tfrecords(builder.data_dir)
  config_dir = final.parent
  assert [n for n in os.listdir(config_dir) if n.startswith("incomplete")] == []


def test_beam_on_tiny_synthetic_builds_the_same_dataset(
  tiny_synthetic, tmp_path
):
  pytest.importorskip("apache_beam")
  local = prepare.prepare("manifest", str(tiny_synthetic), str(tmp_path / "a"))
  beam = prepare.prepare(
    "manifest", str(tiny_synthetic), str(tmp_path / "b"), beam=True
  )
  assert skipped_clips(local.data_dir) == skipped_clips(beam.data_dir) == []
  assert set(local.info.splits) == set(beam.info.splits) == set(layouts.SPLITS)
  for split in local.info.splits:
    ref = _read_all(tmp_path / "a", "manifest", split)
    got = _read_all(tmp_path / "b", "manifest", split)
    assert sorted(ref) == sorted(got) and ref
    for cid, ex in ref.items():
      for key in ("exp", "angles", "mel", "mfcc"):
        np.testing.assert_array_equal(ex[key], got[cid][key])
      assert ex["style_label"] == got[cid]["style_label"]


def test_styletalk_layout(shared_data, tmp_path):
  builder = prepare.prepare(
    "styletalk", str(shared_data / "styletalk"), str(tmp_path)
  )
  splits = {k: v.num_examples for k, v in builder.info.splits.items()}
  assert sum(splits.values()) == 22
  assert skipped_clips(builder.data_dir) == []
  clips = {}
  for split in splits:
    clips.update(_read_all(tmp_path, "styletalk", split))
  reagan = clips["reagan_clip1"]
  assert reagan["num_frames"] == 650 and reagan["has_audio"]  # 30 -> 25 fps
  style = clips["style/happyenglish_clip1"]
  assert not style["has_audio"] and style["mel"].shape == (0, 80)
  assert style["style_class"] == b"happyenglish"


def test_mead_and_hdtf_scanners(tmp_path):
  mead = tmp_path / "mead"
  conftest.write_clip(mead, "M003#angry#level_3#001", 2.0, 0)
  conftest.write_clip(mead, "M030_front_happy_level1_002", 2.0, 1)
  conftest.write_clip(mead, "W009/sad/level_2/003", 2.0, 2)
  specs = {s.clip_id: s for s in layouts.scan("mead", str(mead))}
  assert set(specs) == {
    "M003#angry#level_3#001",
    "M030#happy#level_1#002",
    "W009#sad#level_2#003",
  }
  assert specs["M030#happy#level_1#002"].style_class == "M030#happy#1"
  assert all(s.audio_path.endswith(".wav") for s in specs.values())

  hdtf = tmp_path / "hdtf"
  conftest.write_clip(hdtf, "WDA_Speaker_000", 13.0, 3)  # 5 s + 5 s + 3 s
  conftest.write_clip(hdtf, "WRA_Other_001", 7.0, 4)  # 5 s + 2 s (dropped)
  specs = layouts.scan(
    "hdtf",
    str(hdtf),
    num_frames_fn=lambda p: io.load_coefficients(p).num_frames,
  )
  segs = {s.clip_id: s.segment for s in specs}
  assert segs == {
    "WDA_Speaker_000#000": (0, 125),
    "WDA_Speaker_000#001": (125, 250),
    "WDA_Speaker_000#002": (250, 325),
    "WRA_Other_001#000": (0, 125),
  }
  builder = prepare.prepare("hdtf", str(hdtf), str(tmp_path / "tfds"))
  total = sum(v.num_examples for v in builder.info.splits.values())
  assert total == 4 and skipped_clips(builder.data_dir) == []
