"""Bad and edge inputs: each gets an error naming the input and the problem
(never a traceback from inside a library), and nothing is written or
changed. Table-driven where the cases are cheap; the data-loss regressions
(stale prepare cache, a re-run that rewrote config.json) have their own."""

import json
import os

import conftest
import numpy as np
import pytest
import scipy.io
import tensorflow_datasets as tfds

from input_pipeline import batches, io, layouts, prepare
from input_pipeline.talking_face import skipped_clips
from saas_jax.engine import config_lib
from saas_jax.engine import workdir as workdir_lib
from saas_jax.errors import DataError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _snapshot(root) -> dict:
  """{relative path: (size, mtime_ns)} of everything under root."""
  out = {}
  for dirpath, _, files in os.walk(root):
    for name in files:
      p = os.path.join(dirpath, name)
      st = os.stat(p)
      out[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns)
  return out


# ------------------------------------------------------ coefficient files ---


def _coeff(t=40, seed=0):
  rng = np.random.default_rng(seed)
  return (0.1 * rng.normal(size=(t, 257))).astype(np.float32)


def _params(t):
  return np.tile(np.float32([256, 256, 1, 128, 128]), (t, 1))


def _with(t, col, value):
  """A [T, 73] array (exp, angles, trans, crop) with one value set."""
  arr = np.zeros((t, 73), np.float64)
  arr[:, 70:73] = (1.0, 128.0, 128.0)
  arr[3, col] = value
  return arr


def _npy(value):
  return ".npy", lambda path: np.save(path, value)


def _mat(**entries):
  return ".mat", lambda path: scipy.io.savemat(path, entries)


def _raw(ext, data):
  return ext, lambda path: path.write_bytes(data)


COEFF_CASES = {
  # name: ((extension, writer), load kwargs, expected message part)
  "overflow_to_inf": (_npy(_with(40, 5, 1e300)), {}, "too large for float32"),
  "implausible": (_npy(_with(40, 5, 5e4)), {}, "implausible expression"),
  "nan_angle": (_npy(_with(40, 64, np.nan)), {}, "non-finite angles"),
  "inf_crop": (_npy(_with(40, 71, np.inf)), {}, "non-finite crop"),
  "zero_crop_scale": (_npy(_with(40, 70, 0.0)), {}, "crop scale <= 0"),
  "complex": (_npy(_with(40, 5, 0.1) * 1j), {}, "complex numbers"),
  "strings": (_npy(np.full((40, 73), "a")), {}, "not numeric"),
  "fps_zero_given": (_npy(_with(40, 5, 0.1)), {"fps": 0}, "fps must be"),
  "fps_negative_given": (_npy(_with(40, 5, 0.1)), {"fps": -25}, "fps must"),
  "fps_nan_given": (_npy(_with(40, 5, 0.1)), {"fps": float("nan")}, "fps"),
  "fps_zero_in_file": (
    _mat(coeff=_coeff(), transform_params=_params(40), fps=0.0),
    {},
    "'fps' must be a positive",
  ),
  "nan_identity": (
    _mat(
      coeff=np.where(np.arange(257) == 3, np.nan, _coeff()),
      transform_params=_params(40),
    ),
    {},
    "non-finite identity",
  ),
  "zero_frames": (_npy(np.zeros((0, 73))), {}, "zero frames"),
  "wrong_width": (_npy(np.zeros((40, 72))), {}, "must be [T,257]"),
  "three_d": (_npy(np.zeros((2, 40, 73))), {}, "must be 2-D"),
  "params_frames": (
    _mat(coeff=_coeff(), transform_params=_params(39)),
    {},
    "39 frames but 'coeff' has 40",
  ),
  "no_coeff_key": (_mat(other=np.zeros(3)), {}, "missing key 'coeff'"),
  "empty_file": (_raw(".mat", b""), {}, ""),
  "garbage_mat": (_raw(".mat", b"MATLAB 5.0 x" * 20), {}, ""),
  "garbage_npy": (_raw(".npy", b"\x93NUMPY garbage"), {}, ""),
  "unknown_extension": (_raw(".txt", b"1 2 3"), {}, ""),
  "no_such_file": ((".mat", None), {}, "no such file"),
}


@pytest.mark.parametrize("case", sorted(COEFF_CASES))
def test_bad_coefficient_files(case, tmp_path):
  (ext, writer), kwargs, message = COEFF_CASES[case]
  path = tmp_path / f"{case}{ext}"
  if writer is not None:
    writer(path)
  with pytest.raises(DataError) as info:
    io.load_coefficients(path, **kwargs)
  assert str(path) in str(info.value)
  assert message in str(info.value)


def test_fps_zero_is_not_25(tmp_path):
  """fps=0 used to mean 'the default' silently."""
  path = tmp_path / "clip.npy"
  np.save(path, _with(40, 5, 0.1))
  assert io.load_coefficients(path).fps == io.DEFAULT_SOURCE_FPS
  with pytest.raises(DataError, match="fps must be a positive"):
    io.load_coefficients(path, fps=0)


# ------------------------------------------------------------- manifests ---

GOOD_ROW = {
  "id": "P00#angry#level_1#000",
  "coeff_path": "a.mat",
  "audio_path": "a.wav",
  "person": "P00",
  "emotion": "angry",
  "level": 1,
}

MANIFEST_CASES = {
  "level_null": ([{**GOOD_ROW, "level": None}], "line 1: 'level' must be"),
  "level_float": ([{**GOOD_ROW, "level": 1.5}], "'level' must be an integer"),
  "level_text": ([{**GOOD_ROW, "level": "high"}], "'level' must be"),
  "bare_number": ([3], "line 1: expected an object, got 3"),
  "a_list": ([[1, 2]], "expected an object"),
  "fps_text": ([{**GOOD_ROW, "fps": "abc"}], "'fps' must be a positive"),
  "fps_zero": ([{**GOOD_ROW, "fps": 0}], "'fps' must be a positive"),
  "person_hash": (
    [{**GOOD_ROW, "person": "A#angry"}],
    "'person' 'A#angry' contains '#'",
  ),
  "emotion_hash": (
    [{**GOOD_ROW, "emotion": "angry#x"}],
    "'emotion' 'angry#x' contains '#'",
  ),
  "person_object": ([{**GOOD_ROW, "person": {"a": 1}}], "must be text"),
  "missing_key": (
    [{k: v for k, v in GOOD_ROW.items() if k != "person"}],
    "line 1 lacks person",
  ),
  "duplicate_id": ([GOOD_ROW, GOOD_ROW], "line 2: duplicate clip id"),
  "unknown_split": ([{**GOOD_ROW, "split": "dev"}], "unknown split 'dev'"),
  "empty_id": ([{**GOOD_ROW, "id": " "}], "'id' must be non-empty"),
  "coeff_path_number": ([{**GOOD_ROW, "coeff_path": 3}], "must be a path"),
  "empty_coeff_path": ([{**GOOD_ROW, "coeff_path": ""}], "'coeff_path' is"),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_bad_manifest_values_name_file_and_line(case, tmp_path):
  rows, message = MANIFEST_CASES[case]
  path = tmp_path / "manifest.jsonl"
  path.write_text("".join(json.dumps(r) + "\n" for r in rows))
  with pytest.raises(DataError) as info:
    layouts.scan_manifest(str(tmp_path))
  assert str(path) in str(info.value) and message in str(info.value)


def test_labels_with_hash_cannot_merge_styles(tmp_path):
  """person 'A#angry' + emotion 'x' and person 'A' + emotion 'angry#x'
  both made the class 'A#angry#x#1'."""
  rows = [
    {**GOOD_ROW, "id": "1", "person": "A#angry", "emotion": "x"},
    {**GOOD_ROW, "id": "2", "person": "A", "emotion": "angry#x"},
  ]
  (tmp_path / "manifest.jsonl").write_text(
    "".join(json.dumps(r) + "\n" for r in rows)
  )
  with pytest.raises(DataError, match="contains '#'"):
    layouts.scan_manifest(str(tmp_path))


def test_a_manifest_with_a_bom_and_a_csv_read_fine(tmp_path):
  text = json.dumps(GOOD_ROW) + "\n"
  (tmp_path / "manifest.jsonl").write_bytes(b"\xef\xbb\xbf" + text.encode())
  (spec,) = layouts.scan_manifest(str(tmp_path))
  assert spec.style_class == "P00#angry#1"
  os.remove(tmp_path / "manifest.jsonl")
  (tmp_path / "manifest.csv").write_text(
    "id,coeff_path,audio_path,person,emotion,level\n"
    "x,a.mat,,P00,angry,2\ny,b.mat,,P00,angry,oops\n"
  )
  with pytest.raises(DataError, match=r"manifest\.csv: line 3: 'level'"):
    layouts.scan_manifest(str(tmp_path))


# --------------------------------------------------- prepare and shards ---


def _read(data_dir, split="train"):
  ds = tfds.load("talking_face/manifest", data_dir=str(data_dir), split=split)
  return {ex["clip_id"].decode(): ex for ex in ds.as_numpy_iterator()}


def test_prepare_cache_follows_file_content(tmp_path):
  """Edit a clip, delete the shards, rebuild: the shards hold the new
  values, and a fixed clip is no longer skipped (the cache was keyed on the
  manifest entry alone)."""
  root, data_dir = tmp_path / "corpus", tmp_path / "tfds"
  records = conftest.write_manifest_corpus(root, persons=2, clips=1)
  prepare.prepare("manifest", str(root), str(data_dir))
  first = _read(data_dir)
  rec = next(r for r in records if r["id"] in first)
  path = root / rec["coeff_path"]
  coeffs = io.load_coefficients(path)
  n = coeffs.num_frames
  io.save_coefficients_mat(path, np.full((n, 257), 0.25), _params(n))
  bad = root / "bad" / "nan_clip.mat"
  io.save_coefficients_mat(bad, np.zeros((50, 257)), _params(50))
  import shutil

  shutil.rmtree(data_dir / "talking_face" / "manifest")
  builder = prepare.prepare("manifest", str(root), str(data_dir))
  again = {}
  for split in builder.info.splits:
    again.update(_read(data_dir, split))
  np.testing.assert_allclose(again[rec["id"]]["exp"], 0.25)
  assert "PBAD#angry#level_1#000" in again
  assert skipped_clips(builder.data_dir) == []


def test_prepare_into_a_folder_of_another_corpus_is_refused(tmp_path):
  root, data_dir = tmp_path / "corpus", tmp_path / "tfds"
  conftest.write_manifest_corpus(root, persons=2, clips=1, with_bad=False)
  prepare.prepare("manifest", str(root), str(data_dir))
  before = _snapshot(data_dir)
  prepare.prepare("manifest", str(root), str(data_dir))  # the same: reused
  assert _snapshot(data_dir) == before
  other = tmp_path / "other"
  conftest.write_manifest_corpus(other, persons=3, clips=1, with_bad=False)
  with pytest.raises(DataError, match=r"already holds the dataset prepared"):
    prepare.prepare("manifest", str(other), str(data_dir))
  assert _snapshot(data_dir) == before
  # The same corpus with another clip list (a manifest line edited): the
  # shards made from the old list are not reported as its dataset.
  manifest = next(root.glob("manifest.*"))
  lines = manifest.read_text().splitlines()
  manifest.write_text("\n".join(lines[:-1]) + "\n")  # one clip fewer
  with pytest.raises(DataError, match=r"prepared from another clip list"):
    prepare.prepare("manifest", str(root), str(data_dir))
  assert _snapshot(data_dir) == before


@pytest.mark.parametrize("beam", [False, True])
def test_a_split_whose_clips_are_all_skipped_is_left_out(beam, tmp_path):
  """Locally the clips are processed before the splits are fixed; Beam
  finds the empty split when TFDS checks it, and prepare builds again."""
  root, data_dir = tmp_path / "corpus", tmp_path / "tfds"
  records = conftest.write_manifest_corpus(root, persons=2, clips=1)
  records[-1]["split"] = "val"  # the NaN clip alone in val
  for r in records[:-1]:
    r["split"] = "train"
  (root / "manifest.jsonl").write_text(
    "".join(json.dumps(r) + "\n" for r in records)
  )
  builder = prepare.prepare("manifest", str(root), str(data_dir), beam=beam)
  assert set(builder.info.splits) == {"train"}
  (skip,) = skipped_clips(builder.data_dir)
  assert "nan_clip.mat" in skip["reason"]


def test_a_corpus_with_no_usable_clip_says_why(tmp_path):
  root = tmp_path / "corpus"
  conftest.write_manifest_corpus(root, persons=1, clips=1, with_bad=False)
  for mat in root.rglob("*.mat"):  # too short to use
    io.save_coefficients_mat(mat, np.zeros((5, 257)), _params(5))
  with pytest.raises(DataError, match="no usable clip: all 4 were skipped"):
    prepare.prepare("manifest", str(root), str(tmp_path / "tfds"))


def test_a_wrong_data_dir_says_there_is_no_dataset(tmp_path):
  with pytest.raises(DataError, match="no prepared talking_face/manifest"):
    batches.load_table(str(tmp_path), "manifest", "train")
  with pytest.raises(DataError, match=r"input_pipeline\.prepare --layout"):
    batches.load_table(str(tmp_path), "manifest", "train")


def test_hdtf_skips_an_unreadable_recording(tmp_path):
  good = tmp_path / "good.mat"
  io.save_coefficients_mat(good, _coeff(200), _params(200))
  (tmp_path / "broken.mat").write_bytes(b"not a mat file")
  specs = layouts.scan(
    "hdtf",
    str(tmp_path),
    num_frames_fn=lambda p: io.load_coefficients(p).num_frames,
  )
  ids = sorted(s.clip_id for s in specs)
  assert ids == ["broken#unreadable", "good#000", "good#001"]


# ------------------------------------------------------------ the engine ---


def test_a_setting_added_later_matches_runs_saved_without_it():
  """Runs saved before loss.reconstruct existed decoded all windows."""
  saved = {"trainer": "style_vqvae", "loss": {"w_ce": 0.01}}
  same = {
    "trainer": "style_vqvae",
    "loss": {"w_ce": 0.01, "reconstruct": "all"},
  }
  assert workdir_lib.config_diff(saved, same) == []
  other = {**same, "loss": {"w_ce": 0.01, "reconstruct": "anchor"}}
  assert workdir_lib.config_diff(saved, other) == [
    "loss.reconstruct: saved 'all', now 'anchor'"
  ]
  # A style run from before model.codebook had one.
  today = config_lib.load(os.path.join(ROOT, "configs/style_vqvae.py:cpu"))
  before = json.loads(today.to_json())
  del before["model"]["codebook"]
  assert workdir_lib.config_diff(before, today.to_dict()) == []
  today.model.codebook = False
  assert workdir_lib.config_diff(before, today.to_dict()) == [
    "model.codebook: saved True, now False"
  ]


def test_a_rerun_with_another_config_changes_nothing(prepared_corpus, tmp_path):
  """It used to rewrite config.json before failing to restore, so the run
  and every later stage reading it were broken."""
  from saas_jax.trainers import style_vqvae

  c = config_lib.load(os.path.join(ROOT, "configs/style_vqvae.py:smoke"))
  c.data.data_dir, c.data.config = prepared_corpus
  c.data.eval_split = "test_person"
  c.num_train_steps = 2
  workdir = tmp_path / "run"
  style_vqvae.train_and_evaluate(c, str(workdir))
  before = _snapshot(workdir)
  saved = (workdir / "config.json").read_bytes()
  c.model.hidden = 64
  with pytest.raises(workdir_lib.RunError) as info:
    style_vqvae.train_and_evaluate(c, str(workdir))
  assert "model.hidden: saved 32, now 64" in str(info.value)
  assert (workdir / "config.json").read_bytes() == saved
  assert _snapshot(workdir) == before
  # A workdir of another stage is refused the same way.
  from saas_jax.trainers import pose_vqvae

  p = config_lib.load(os.path.join(ROOT, "configs/pose_vqvae.py:smoke"))
  p.data.data_dir, p.data.config = prepared_corpus
  p.data.eval_split = "test_person"
  with pytest.raises(workdir_lib.RunError, match="trainer: saved 'style_vq"):
    pose_vqvae.train_and_evaluate(p, str(workdir))
  assert _snapshot(workdir) == before
  # The same settings resume (here: report done) and change no checkpoint.
  c.model.hidden = 32
  style_vqvae.train_and_evaluate(c, str(workdir))
  assert (workdir / "config.json").read_bytes() == saved
  # A damaged checkpoint is named, not a wall of orbax errors.
  state = workdir / "checkpoints" / "2" / "state"
  for f in state.rglob("*"):
    if f.is_file() and f.stat().st_size > 1000:
      f.write_bytes(f.read_bytes()[:100])
  with pytest.raises(workdir_lib.RunError, match="could not be restored"):
    style_vqvae.train_and_evaluate(c, str(workdir))


# ------------------------------------------------------------------ audio ---


def _wav(path, data, rate=16000):
  import soundfile

  soundfile.write(path, data, rate, subtype="FLOAT")


def _truncated(path):
  _wav(path, 0.1 * np.ones(16000, np.float32))
  data = path.read_bytes()
  path.write_bytes(data[: len(data) // 2])


def _cancelling(path):
  x = 0.3 * np.sin(np.arange(16000) / 7.0)
  _wav(path, np.stack([x, -x], 1).astype(np.float32))


def _video_only(path):
  import subprocess

  from saas_jax.render import video

  subprocess.run(
    [
      video._ffmpeg(),
      "-v",
      "error",
      "-f",
      "lavfi",
      "-i",
      "color=c=black:s=32x32:d=1",
      str(path),
    ],
    check=True,
  )


def _nan_wav(path):
  x = 0.1 * np.ones(1600, np.float32)
  x[7] = np.nan
  _wav(path, x)


AUDIO_CASES = {
  "truncated.wav": (_truncated, "truncated: the header declares"),
  "cancelling.wav": (_cancelling, "channels cancel out"),
  "video_only.mp4": (_video_only, "no audio stream"),
  "nan.wav": (_nan_wav, "NaN/Inf"),
  "silent.wav": (lambda p: _wav(p, np.zeros(1600, np.float32)), "silent"),
  "empty.wav": (lambda p: p.write_bytes(b""), "unreadable audio file"),
  "garbage.m4a": (lambda p: p.write_bytes(b"\x00" * 100), "ffmpeg could not"),
  "text.txt": (lambda p: p.write_text("hi"), "unknown audio extension"),
}


@pytest.mark.parametrize("name", sorted(AUDIO_CASES))
def test_bad_audio_files(name, tmp_path):
  writer, message = AUDIO_CASES[name]
  path = tmp_path / name
  writer(path)
  with pytest.raises(DataError) as info:
    io.load_audio(path)
  assert str(path) in str(info.value) and message in str(info.value)


def test_a_colon_in_a_path_is_not_an_ffmpeg_protocol(tmp_path, monkeypatch):
  import subprocess

  from saas_jax.render import video

  _wav(tmp_path / "a.wav", 0.1 * np.sin(np.arange(16000) / 9.0))
  subprocess.run(
    [
      video._ffmpeg(),
      "-v",
      "error",
      "-i",
      str(tmp_path / "a.wav"),
      str(tmp_path / "x:y.m4a"),
    ],
    check=True,
  )
  monkeypatch.chdir(tmp_path)  # a relative 'x:y.m4a' reads as protocol x
  assert abs(len(io.load_audio("x:y.m4a")) - 16000) < 2048


# ---------------------------------------------------------- configs, API ---

CONFIG_CASES = {
  "data.batch_size": (0, -8, 2.5),
  "seed": (-1,),
  "num_train_steps": (-5,),
  "ckpt.every": (0,),
  "eval_every": (-1,),
}


@pytest.mark.parametrize(
  "key,value", [(k, v) for k, vs in CONFIG_CASES.items() for v in vs]
)
def test_config_values_out_of_range_are_named(key, value):
  c = config_lib.load(os.path.join(ROOT, "configs/style_vqvae.py:smoke"))
  node = c
  *path, last = key.split(".")
  for p in path:
    node = node[p]
  with node.ignore_type():
    node[last] = value
  with pytest.raises(DataError, match=rf"config\.{key}: {value!r}"):
    config_lib.validate(c)


def test_main_cli_reports_bad_settings_in_one_line(tmp_path):
  import subprocess
  import sys

  def main(*args, config="configs/style_vqvae.py:smoke", workdir="run"):
    return subprocess.run(
      [
        sys.executable,
        "-m",
        "saas_jax.main",
        "--config",
        os.path.join(ROOT, config),
        "--workdir",
        str(tmp_path / workdir),
        *args,
      ],
      capture_output=True,
      text=True,
      cwd=ROOT,
    )

  smoke = "configs/style_vqvae.py:smoke"
  for config, args, message in (
    (smoke, ["--config.no_such_key=1"], "no setting 'no_such_key'"),
    (smoke, ["--config.seed=-1"], "config.seed: -1 is out of range"),
    (smoke, ["--config.num_train_steps=abc"], "invalid literal for int()"),
    ("configs/style_vqvae.py:smok", [], "unknown variant 'smok'"),
    ("configs/style_vqva.py:smoke", [], "--config: no such file"),
  ):
    proc = main(*args, config=config)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
  assert not (tmp_path / "run").exists()
  # A workdir through a link to a folder moved away: said, nothing made.
  (tmp_path / "link").symlink_to(tmp_path / "moved")
  for workdir in ("link", "link/", "link/run"):
    proc = main(workdir=workdir)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    said = f"link is a link to {tmp_path / 'moved'}, which does not exist"
    assert said in proc.stderr, proc.stderr
  assert not (tmp_path / "moved").exists()


def test_sampler_inputs():
  import jax
  import jax.numpy as jnp

  from saas_jax import sampling

  logits = jnp.log(jnp.asarray([[0.1, 0.5, 0.4]]))
  keys = jax.random.split(jax.random.key(0), 64)
  greedy = jax.vmap(lambda k: sampling.nucleus_sample(k, logits, 1.0, 0.0))
  assert set(np.asarray(greedy(keys)).ravel()) == {1}  # top_p 0: the best
  with pytest.raises(ValueError, match="pad the per-frame windows"):
    sampling.steps_of(50)  # not 8 n + 24
  with pytest.raises(ValueError, match="the filter needs at least 13"):
    sampling.savgol(jnp.zeros((1, 12, 6)))


def test_inference_arguments_are_checked():
  from saas_jax.inference import expression, pose

  with pytest.raises(DataError, match="chunk: must be >= 1"):
    expression.Stylizer(None, {}, None, {}, chunk=0)
  with pytest.raises(DataError, match="chunk_tokens: must be >= 1"):
    pose.PoseSampler(None, {}, None, {}, None, {}, chunk_tokens=0)
  with pytest.raises(DataError, match=r"style_code: expected a \[8\] style"):
    expression.check_code("style_code", np.zeros((2, 4)), 8)
  with pytest.raises(DataError, match="style_code: non-finite"):
    expression.check_code("style_code", np.full(8, np.nan), 8)


def _interrupted_main(workdir, delay: float, *flags) -> str:
  """Ctrl-C `delay` s after the second training step of a smoke run: its
  stderr, after checking exit code 130."""
  import signal
  import subprocess
  import sys
  import threading

  proc = subprocess.Popen(
    [
      sys.executable,
      "-m",
      "saas_jax.main",
      "--config",
      os.path.join(ROOT, "configs/style_vqvae.py:smoke"),
      "--config.num_train_steps=100000",
      "--workdir",
      str(workdir),
      *flags,
    ],
    stderr=subprocess.PIPE,
    text=True,
    cwd=ROOT,
    # as from a terminal, even where this runs with Ctrl-C ignored (a shell's
    # background job): an ignored SIGINT is inherited
    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
  )
  guard = threading.Timer(300, proc.kill)  # a log line renamed: no hang
  guard.start()
  lines = []
  for line in proc.stderr:  # training has started: interrupt it
    lines.append(line)
    if "second step ran" in line:
      threading.Timer(delay, proc.send_signal, [signal.SIGINT]).start()
      break
  err = "".join(lines) + proc.stderr.read()
  guard.cancel()
  assert proc.wait(timeout=120) == 130, err[-3000:]
  return err


def test_main_interrupted_says_how_to_resume(tmp_path):
  """Ctrl-C: one line and exit code 130, no KeyboardInterrupt traceback."""
  err = _interrupted_main(tmp_path / "run", 0.0)
  assert "interrupted: the run keeps its last saved checkpoint" in err
  assert "KeyboardInterrupt" not in err


@pytest.mark.parametrize("async_save", [False, True])
def test_main_interrupted_while_saving_leaves_whole_checkpoints(
  tmp_path, async_save
):
  """Saving every step, Ctrl-C lands in a save or while one is written in
  the background: the save completes first (it used to print orbax's
  threads' tracebacks, "cannot schedule new futures after shutdown", and
  leave a tmp folder)."""
  flags = (
    "--config.ckpt.every=1",
    "--config.log.every=1",
    f"--config.ckpt.async_save={async_save}",
  )
  err = _interrupted_main(tmp_path / "run", 1.5, *flags)
  assert "interrupted: the run keeps" in err
  assert "Traceback" not in err and "cannot schedule" not in err, err[-3000:]
  saved = os.listdir(tmp_path / "run" / "checkpoints")
  assert saved and all(name.isdigit() for name in saved), saved


def test_interrupt_after_defers_one_ctrl_c_and_not_two():
  import signal

  from saas_jax.engine.checkpoint import interrupt_after

  before = signal.getsignal(signal.SIGINT)
  done = []
  with pytest.raises(KeyboardInterrupt):
    with interrupt_after():
      os.kill(os.getpid(), signal.SIGINT)
      done.append("the block ran on")
  assert done == ["the block ran on"]
  with pytest.raises(KeyboardInterrupt):
    with interrupt_after():
      os.kill(os.getpid(), signal.SIGINT)
      os.kill(os.getpid(), signal.SIGINT)  # a second one: at once
      done.append("not reached")
  assert done == ["the block ran on"]
  assert signal.getsignal(signal.SIGINT) is before
  with pytest.raises(ValueError, match="inside"):  # others pass through
    with interrupt_after():
      raise ValueError("inside")
