"""End to end: train_pipeline (smoke) -> inference package -> generate CLI.

The pipeline is trained once per session on the tiny synthetic corpus, in a
subprocess on one device, as a user runs it (conftest.smoke_runs).
"""

import json
import os
import shutil
import subprocess

import conftest
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile

from input_pipeline import features
from input_pipeline import io as io_lib
from saas_jax import generate, sampling
from saas_jax.engine import executable_cache
from saas_jax.errors import DataError
from saas_jax.inference import (
  Pipeline,
  PoseSampler,
  Request,
  RunError,
  StyleSpace,
  load_run,
  style_space,
)
from saas_jax.inference.pose import (
  SlidingDecoder,
  StreamingFIR,
  StreamingSavgol,
)
from saas_jax.models import builders
from saas_jax.render import video

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def pipe(smoke_runs):
  return Pipeline.load(smoke_runs)


def _clip(t, seed, fps=25.0, identity=True):
  rng = np.random.default_rng(seed)
  return io_lib.Coefficients(
    exp=(0.3 * rng.normal(size=(t, 64))).astype(np.float32),
    angles=(0.05 * rng.normal(size=(t, 3))).astype(np.float32),
    trans=(0.05 * rng.normal(size=(t, 3))).astype(np.float32),
    crop=np.tile(np.float32([1.0, 128.0, 128.0]), (t, 1)),
    identity=np.zeros(80, np.float32) if identity else None,
    texture=np.zeros(80, np.float32) if identity else None,
    gamma=np.zeros(27, np.float32) if identity else None,
    fps=fps,
  )


def _speech(seconds, seed=0):
  rng = np.random.default_rng(seed)
  t = np.arange(int(seconds * 16000)) / 16000
  env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
  wav = env * np.sin(2 * np.pi * 150 * t) + 0.05 * rng.normal(size=t.size)
  return wav.astype(np.float32)


# ------------------------------------------------------------- the runs ---


def test_train_pipeline_skips_finished_and_refuses_another_config(smoke_runs):
  for name in builders_stage_names():
    spec = json.load(open(os.path.join(smoke_runs, name, "spec.json")))
    assert spec["format"] == 1
  again = conftest.python(
    [
      "-m",
      "saas_jax.train_pipeline",
      "--variant",
      "smoke",
      "--runs",
      smoke_runs,
      "--data_dir",
      "unused",
    ]
  )
  # Another data_dir is another config: refused before anything runs.
  assert again.returncode == 2 and "holds a run of another config" in (
    again.stderr
  )
  assert "data.data_dir" in again.stderr


def builders_stage_names():
  from saas_jax import train_pipeline

  return [s.name for s in train_pipeline.STAGES]


def test_train_pipeline_passes_its_data_settings_to_every_stage():
  from saas_jax import train_pipeline

  flags = "--variant smoke --data_dir d --data_config mead_fps25_src30"
  args = train_pipeline.parse_args([*flags.split(), "--eval_split", "val"])
  for stage in train_pipeline.STAGES:
    c = train_pipeline.stage_config(stage, "smoke", "runs", args).data
    assert (c.data_dir, c.config, c.eval_split) == (
      "d",
      "mead_fps25_src30",
      "val",
    )


def test_runs_record_what_loaders_need(smoke_runs):
  audio = load_run(os.path.join(smoke_runs, "audio_driven"), "audio_driven")
  pose = load_run(os.path.join(smoke_runs, "pose_generator"), "pose_generator")
  style = load_run(os.path.join(smoke_runs, "style_vqvae"), "style_vqvae")
  # The frozen encoder's fingerprint is the style run's own.
  assert audio.spec["style_encoder"] == style.spec["style_encoder"]
  assert pose.spec["style_encoder"] == style.spec["style_encoder"]
  recomputed = builders.style_encoder_fingerprint(
    audio.spec["style_model"], audio.extra["frozen"]["style"]
  )
  assert recomputed == audio.spec["style_encoder"]
  assert audio.spec["num_classes"] == style.spec["num_classes"]
  with pytest.raises(RunError, match="video-driven one is needed"):
    load_run(os.path.join(smoke_runs, "audio_driven"), "video_driven")


def test_runs_that_do_not_fit_are_named(smoke_runs, tmp_path):
  missing = tmp_path / "nowhere"
  with pytest.raises(RunError, match=r"configs/audio_driven\.py:cpu"):
    Pipeline.load(str(missing))
  # A pose run trained against another style encoder.
  other = tmp_path / "pose_generator"
  shutil.copytree(os.path.join(smoke_runs, "pose_generator"), other)
  spec = json.load(open(other / "spec.json"))
  spec["style_encoder"] = "0" * 64
  (other / "spec.json").write_text(json.dumps(spec))
  with pytest.raises(RunError, match="different style encoders") as e:
    Pipeline.load(smoke_runs, pose_run=str(other))
  assert str(other) in str(e.value) and "audio_driven" in str(e.value)
  # A run without spec.json (trained before runs saved one).
  os.remove(other / "spec.json")
  with pytest.raises(RunError, match=r"no spec\.json"):
    PoseSampler.load(str(other))
  # One stage's run given as the runs folder.
  with pytest.raises(RunError, match="is one stage's run") as e:
    Pipeline.load(os.path.join(smoke_runs, "audio_driven"))
  assert f"(here {smoke_runs})" in str(e.value)


# Orbax's reads still in flight after the failure call back into its closed
# event loop; the CLIs leave those unprinted, pytest reports them per test.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_damaged_checkpoint_is_named(smoke_runs, tmp_path):
  """The checkpoint named, in one short message, not orbax's pages."""
  damaged = tmp_path / "style_classifier"
  shutil.copytree(os.path.join(smoke_runs, "style_classifier"), damaged)
  for root, _, files in os.walk(damaged / "checkpoints"):
    for name in files:
      if os.path.basename(root) == "d":  # the array data, not the metadata
        path = os.path.join(root, name)
        with open(path, "r+b") as f:
          f.truncate(os.path.getsize(path) // 2)
  with pytest.raises(RunError, match="the checkpoint cannot be read") as e:
    load_run(str(damaged), "style_classifier")
  assert str(damaged) in str(e.value) and len(str(e.value)) < 600


# ----------------------------------------------------- the inference API ---


def _direct(pipe, req):
  """The same generation from the stage modules, one pass, no chunks."""
  st, ps = pipe.stylizer, pipe.pose_sampler
  wav, t = req.wav, features.num_frames_for_audio(len(req.wav))
  gen, spec = st.generator, st.run.spec
  style_model = builders.style_encoder(spec["style_model"])

  def code(model, variables, exp, quantize=True):
    w = features.clip_windows(exp, 32, 16)
    return model.apply(
      variables, w, quantize=quantize, method=model.style_code
    ).mean(0)

  s_src = code(style_model, st.style_variables, req.source.exp)
  s_t = code(style_model, st.style_variables, req.style.exp)
  mel = features.mel_windows(features.log_mel(wav), t)
  blink = features.blink_ratio(np.random.default_rng(req.seed), t)
  source = {
    "mel": mel[None],
    "ref_exp": req.source.exp[None, 0],
    "blink": blink[None],
  }
  exp = gen.apply(st.variables, source, s_src[None], s_t[None])[0]

  pose_style = builders.style_encoder(ps.run.spec["style_model"])
  p_t = code(pose_style, ps.style_variables, req.style.exp)
  mfcc = features.mfcc_windows(features.mfcc(wav), t)
  per_window = ps.model.num_tokens  # tokens per 32 frames
  tokens = sampling.sample_tokens(
    ps.model,
    ps.variables,
    sampling.pad_audio(mfcc, t, num_past=per_window)[None],
    p_t[None],
    jax.random.key(req.seed),
    num_samples=req.num_samples,
  )[0]
  codebook = builders.pose_codebook_model(ps.run.spec["pose_model"])
  assert codebook.relative  # the default: about the source's mean pose
  head = jnp.asarray(req.source.pose.mean(0), jnp.float32)
  frames = sampling.decode_sliding(
    lambda idx: codebook.apply(
      ps.codebook_variables,
      idx,
      jnp.broadcast_to(head, (len(idx), 6)),
      method=codebook.decode_tokens,
    ),
    tokens,
    per_window,
  )
  pose = sampling.savgol(frames)
  if ps.equalizer is not None:  # the run's spectral gain, about the head
    pose = sampling.equalize(pose, ps.equalizer, head)
  return np.asarray(exp), np.asarray(pose[:, :t])


def test_style_space_is_the_stages_style_encoder(smoke_runs, pipe):
  space = StyleSpace.load(os.path.join(smoke_runs, "style_vqvae"))
  exp = _clip(70, seed=5).exp
  np.testing.assert_allclose(
    space.code(exp), pipe.stylizer.style_code(exp), rtol=1e-5, atol=1e-6
  )
  assert not np.allclose(space.code(exp), space.code(exp, quantize=False))
  tokens = space.tokens(exp)  # 70 frames: windows at 0, 16 and 32
  assert tokens.shape[0] == 3 and tokens.dtype.kind == "i"
  assert 0 <= tokens.min() and tokens.max() < space.num_codes
  usage = space.usage([exp, exp[:40]])
  assert usage.shape == (space.num_codes,) and abs(usage.sum() - 1) < 1e-9
  assert style_space.perplexity(np.full(8, 1 / 8)) == pytest.approx(8.0)
  assert style_space.perplexity(np.eye(8)[0]) == pytest.approx(1.0)


def test_pipeline_equals_the_stage_modules(pipe):
  req = Request(
    style=_clip(90, 1), source=_clip(40, 2), wav=_speech(3.3), num_samples=3
  )
  result = pipe(req)
  exp, pose = _direct(pipe, req)
  t = features.num_frames_for_audio(len(req.wav))
  assert result.exp.shape == (t, 64) and result.pose.shape == (3, t, 6)
  np.testing.assert_allclose(result.exp, exp, atol=2e-5)
  np.testing.assert_allclose(result.pose, pose, atol=2e-5)
  # Streamed chunks are the same frames.
  chunks = list(pipe.stream(req))
  np.testing.assert_allclose(
    np.concatenate([c.exp for c in chunks]), result.exp, atol=1e-6
  )
  assert chunks[0].start == 0
  np.testing.assert_array_equal(
    np.concatenate([c.pose for c in chunks], 1), result.pose
  )


def test_seeds_reproduce_and_samples_differ(pipe):
  base = dict(style=_clip(60, 3), source=_clip(1, 4), wav=_speech(4.0))
  a = pipe(Request(**base, num_samples=3, seed=7))
  b = pipe(Request(**base, num_samples=3, seed=7))
  np.testing.assert_array_equal(a.pose, b.pose)
  np.testing.assert_array_equal(a.exp, b.exp)
  assert np.abs(a.pose[0] - a.pose[1]).max() > 1e-4
  assert np.abs(a.pose[1] - a.pose[2]).max() > 1e-4
  one = pipe(Request(**base, num_samples=1, seed=7))
  np.testing.assert_array_equal(one.pose[0], a.pose[0])  # sample 0 is sample 0
  other = pipe(Request(**base, num_samples=1, seed=8))
  assert np.abs(other.pose[0] - a.pose[0]).max() > 1e-4


def test_style_controls_and_pose_modes(pipe):
  base = dict(style=_clip(60, 5), source=_clip(30, 6), wav=_speech(2.0))
  full = pipe(Request(**base, pose="still"))
  none = pipe(Request(**base, pose="still", style_strength=0.0))
  more = pipe(Request(**base, pose="still", style_strength=1.5))
  assert np.abs(full.exp - none.exp).max() > 1e-5
  assert np.abs(more.exp - full.exp).max() > 1e-5
  mixed = pipe(Request(**base, pose="still", style2=_clip(50, 7), mix=0.0))
  np.testing.assert_allclose(mixed.exp, full.exp, atol=1e-5)
  # Pose modes: the source's first frame, the source or style track looped.
  src = base["source"]
  np.testing.assert_allclose(full.pose[0], np.repeat(src.pose[:1], 50, 0))
  looped = pipe(Request(**base, pose="source"))
  np.testing.assert_allclose(looped.pose[0, :30], src.pose)
  np.testing.assert_allclose(looped.pose[0, 30:40], src.pose[28:18:-1])
  styled = pipe(Request(**base, pose="style"))
  np.testing.assert_allclose(styled.pose[0], base["style"].pose[:50])
  # Results resample to another frame rate, to a given length.
  at30 = full.at_fps(30.0, 60)
  assert at30.exp.shape == (60, 64) and at30.fps == 30.0
  assert at30.driving(0).shape == (60, 73)


def test_video_driven_editing_keeps_the_clip_length(smoke_runs):
  pipe = Pipeline.load(smoke_runs, "video", with_pose=False)
  content = _clip(70, 8)
  res = pipe(
    Request(
      style=_clip(50, 9), source=content, source_video=content, pose="source"
    )
  )
  assert res.exp.shape == (70, 64) and res.wav is None
  with_audio = pipe(
    Request(
      style=_clip(50, 9),
      source=content,
      source_video=content,
      pose="source",
      wav=_speech(70 / 25 + 0.05),
    )
  )
  assert with_audio.exp.shape == (70, 64)
  np.testing.assert_allclose(with_audio.exp, res.exp, atol=1e-6)


def test_bad_inputs_are_named(pipe):
  good = dict(style=_clip(60, 10), source=_clip(30, 11), wav=_speech(1.0))
  nan = _clip(60, 12)
  nan.exp[17, 5] = np.nan
  with pytest.raises(DataError, match=r"style clip: .*frame 17, column 5"):
    pipe(Request(**{**good, "style": nan}))
  noisy = _speech(1.0)
  noisy[100] = np.inf
  with pytest.raises(DataError, match=r"audio: .*sample 100"):
    pipe(Request(**{**good, "wav": noisy}))
  with pytest.raises(DataError, match="shorter than one frame"):
    pipe(Request(**{**good, "wav": np.zeros(100, np.float32) + 0.1}))
  with pytest.raises(DataError, match="style_strength"):
    pipe(Request(**good, style_strength=1.6))
  with pytest.raises(DataError, match="need pose 'generate'"):
    pipe(Request(**good, pose="still", num_samples=2))
  with pytest.raises(DataError, match="audio-driven run needs speech"):
    pipe(Request(**{**good, "wav": None}))
  with pytest.raises(DataError, match="top_p"):
    next(
      pipe.pose_sampler.stream(
        np.zeros((40, 28, 12), np.float32),
        style_code=np.zeros(pipe.pose_sampler.code_size),
        top_p=1.5,
      )
    )
  # A style clip shorter than a window is mirrored, with a warning.
  with pytest.warns(UserWarning, match="shorter than the 32-frame"):
    short = pipe(Request(**{**good, "style": _clip(12, 13)}, pose="still"))
  assert np.all(np.isfinite(short.exp))
  # Too short to show a style: refused, named.
  with pytest.raises(
    DataError, match=r"second style clip: 7 frames.*at least 8"
  ):
    pipe(Request(**good, style2=_clip(7, 14), pose="still"))
  # The arrays the stylizer is handed are checked too.
  with pytest.raises(DataError, match=r"mel windows: expected shape"):
    pipe.stylizer(
      source_exp=np.zeros((1, 64)),
      mel=np.zeros((5, 80)),
      style_exp=np.zeros((40, 64)),
    )


def test_streaming_decoder_and_filter_equal_the_one_pass_forms():
  rng = np.random.default_rng(0)
  table = rng.normal(size=(50, 32, 6)).astype(np.float32)

  def decode(w):  # [M, p] -> [M, 32, 6], depends on the first and last
    return table[w[:, 0]] + 0.1 * table[w[:, 1]] + 0.01 * table[w[:, -1]]

  # 4 tokens per 32 frames (the official codebook) and 8 (model.factor 2).
  cases = [
    (p, n, k) for p in (4, 8) for n in (p, p + 1, 33, 64) for k in (1, 3, 32)
  ]
  for p, n, k in cases:
    tokens = rng.integers(0, 50, size=(2, n))
    want = np.asarray(sampling.decode_sliding(decode, tokens, p))
    assert want.shape[1] == 32 // p * n
    want_s = np.asarray(sampling.savgol(want))
    dec, smooth = SlidingDecoder(decode, n, p), StreamingSavgol(32 // p * n)
    raw, smoothed = [], []
    for j in range(0, n, k):
      part = dec.push(tokens[:, j : j + k])
      raw.append(part)
      smoothed.append(smooth.push(part))
    raw = np.concatenate([r for r in raw if r.shape[1]], 1)
    smoothed = np.concatenate([s for s in smoothed if s.shape[1]], 1)
    np.testing.assert_allclose(raw, want, atol=1e-6)
    np.testing.assert_allclose(smoothed, want_s, atol=1e-4)


def test_streaming_equalizer_equals_the_one_pass_form():
  rng = np.random.default_rng(1)
  gain = rng.uniform(0.5, 2.0, size=(33, 6))
  kernel = sampling.equalizer_kernel(gain)  # [63, 6]
  center = rng.normal(size=6)
  for length, k in ((32, 8), (40, 1), (100, 7), (256, 256)):
    x = rng.normal(size=(2, length, 6)).astype(np.float32)
    want = np.asarray(sampling.equalize(jnp.asarray(x), kernel, center))
    fir, got = StreamingFIR(length, kernel, center), []
    for j in range(0, length, k):
      got.append(fir.push(x[:, j : j + k]))
      # Nothing comes out before the 31 frames after it are in.
      assert fir.done <= max(j + k - 31, 0) or j + k >= length
      # Once frames come out, it holds only the 2 x 31 a later one reads.
      assert fir.done == 0 or fir.raw.shape[1] <= 62
    got = np.concatenate([g for g in got if g.shape[1]], 1)
    np.testing.assert_allclose(got, want, atol=1e-4)


# ------------------------------------------------------------------ CLI ---

CHECK_NO_TF = (
  "import sys\n"
  "from saas_jax import generate\n"
  "rc = generate.main(sys.argv[1:])\n"
  "bad = [m for m in sys.modules if m.split('.')[0] == 'tensorflow' or "
  "m.startswith(('saas_jax.trainers', 'input_pipeline.synthetic', "
  "'input_pipeline.batches'))]\n"
  "assert not bad, bad[:5]\n"
  "sys.exit(rc)\n"
)


def _generate(args):
  return conftest.python(["-c", CHECK_NO_TF, *args])


def _check_outputs(out, name, samples, audio_s, fps=25.0, with_video=True):
  files = sorted(os.listdir(out))
  for k in range(samples):
    for ext in (".mat", ".npy") + ((".mp4",) if with_video else ()):
      assert f"{name}_{k}{ext}" in files, files
    npy = np.load(os.path.join(out, f"{name}_{k}.npy"))
    mat = io_lib.load_coefficients(os.path.join(out, f"{name}_{k}.mat"))
    assert npy.shape[1] == 73 and mat.num_frames == len(npy)
    np.testing.assert_allclose(mat.exp, npy[:, :64], atol=1e-6)
    if with_video:
      info = video.probe(os.path.join(out, f"{name}_{k}.mp4"))
      assert info["frames"] == len(npy) and info["fps"] == fps
      assert info["audio_duration"] is not None  # an audio stream
      assert abs(info["duration"] - audio_s) <= 1.0 / fps
      # The speech itself (AAC pads its end to whole 1024-sample frames).
      assert -0.01 <= info["audio_duration"] - audio_s <= video.AAC_FRAME_S
  provenance = json.load(open(os.path.join(out, f"{name}.json")))
  assert not [f for f in files if ".tmp" in f or f.startswith(".")]
  return provenance


def _speech_job(runs, shared_data, out, *extra) -> list[str]:
  """generate's arguments: real speech, a StyleTalk style clip and source."""
  st = shared_data / "styletalk"
  return [
    "--runs",
    runs,
    "--audio",
    str(shared_data / "speech" / "arctic_a0007.wav"),
    "--style",
    str(st / "style_clips/3DMM/happyenglish_clip1.mat"),
    "--style_fps",
    "30",
    "--source",
    str(st / "source_video/3DMM/reagan_clip1.mat"),
    "--source_fps",
    "30",
    "--out",
    str(out),
    *extra,
  ]


def test_generate_second_process_loads_compiled_functions(
  smoke_runs, shared_data, tmp_path, monkeypatch
):
  """A second generate process loads the generation's compiled functions
  (keyed on the runs' spec and weights; a load touches the entry) instead
  of tracing and compiling them, and writes the same coefficients."""
  monkeypatch.setenv("SAAS_JAX_COMPILATION_CACHE", str(tmp_path / "cache"))
  entries = tmp_path / "cache" / executable_cache.FOLDER
  seen = []
  for run in ("a", "b"):
    proc = _generate(
      _speech_job(smoke_runs, shared_data, tmp_path / run, "--no_video")
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "not stored" not in proc.stderr and "not loaded" not in proc.stderr
    seen.append(
      {n: os.stat(entries / n).st_mtime_ns for n in os.listdir(entries)}
    )
  names = {n.split("-")[0] for n in seen[0]}
  assert {
    "style_codes",
    "stylize_step",
    "draw_tokens",
    "decode_tokens",
  } <= names
  assert seen[1].keys() == seen[0].keys()  # nothing new compiled
  assert all(seen[1][n] > seen[0][n] for n in seen[0])  # each one loaded
  a, b = (tmp_path / r / "arctic_a0007_0.npy" for r in "ab")
  assert a.read_bytes() == b.read_bytes()


def test_generate_cli_end_to_end(smoke_runs, shared_data, tmp_path):
  st = shared_data / "styletalk"
  wav = shared_data / "speech" / "arctic_a0007.wav"
  out = tmp_path / "out"
  args = _speech_job(smoke_runs, shared_data, out, "--num_samples", "3")
  proc = _generate(args)
  assert proc.returncode == 0, proc.stderr[-3000:]
  audio_s = soundfile.info(str(wav)).frames / 16000
  prov = _check_outputs(out, "arctic_a0007", 3, audio_s)
  assert prov["inputs"]["audio"]["sha256"] == generate.sha256(str(wav))
  assert prov["runs"]["pose"]["step"] == 4 and prov["seeds"]["seed"] == 0
  # The source's identity is in the .mat; three different poses.
  src = io_lib.load_coefficients(
    st / "source_video/3DMM/reagan_clip1.mat", fps=30
  )
  mats = [
    io_lib.load_coefficients(out / f"arctic_a0007_{k}.mat") for k in range(3)
  ]
  np.testing.assert_allclose(mats[0].identity, src.identity, atol=1e-5)
  assert np.abs(mats[0].angles - mats[1].angles).max() > 1e-4

  # The same with m4a speech, a SAAS .npy dict as the style clip, 30 fps
  # output, in one process through a jobs file.
  m4a = tmp_path / "speech.m4a"
  subprocess.run(
    [video._ffmpeg(), "-v", "error", "-i", str(wav), str(m4a)], check=True
  )
  style = io_lib.load_coefficients(
    st / "style_clips/3DMM/happyenglish_clip1.mat"
  )
  coeff = np.zeros((style.num_frames, 257), np.float32)
  coeff[:, io_lib.EXP] = style.exp
  npy_style = tmp_path / "style.npy"
  np.save(
    npy_style,
    {
      "coeff": coeff,
      "trans_param": np.tile(
        np.float32([256, 256, 1, 128, 128]), (style.num_frames, 1)
      ),
    },
  )
  jobs = tmp_path / "jobs.jsonl"
  jobs.write_text(
    json.dumps({"audio": str(m4a), "out": str(tmp_path / "m4a")})
    + "\n"
    + json.dumps(
      {
        "style": str(npy_style),
        "out": str(tmp_path / "npy"),
        "fps": 30.0,
        "pose": "style",
      }
    )
    + "\n"
  )
  proc = _generate([*args[:-4], "--jobs", str(jobs)])
  assert proc.returncode == 0, proc.stderr[-3000:]
  m4a_s = len(io_lib.load_audio(m4a)) / 16000
  _check_outputs(tmp_path / "m4a", "speech", 1, m4a_s)
  _check_outputs(tmp_path / "npy", "arctic_a0007", 1, audio_s, fps=30.0)


def test_generate_cli_video_driven(smoke_runs, shared_data, tmp_path):
  st = shared_data / "styletalk"
  clip = st / "source_video/3DMM/feifeili_clip3.mat"
  wav = st / "source_video/wav/feifeili_clip3.wav"
  proc = _generate(
    [
      "--runs",
      smoke_runs,
      "--source_video",
      str(clip),
      "--source_fps",
      "30",
      "--audio",
      str(wav),
      "--style",
      str(st / "style_clips/3DMM/sadgirl_clip1.mat"),
      "--style_fps",
      "30",
      "--out",
      str(tmp_path),
      "--pose",
      "source",
    ]
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "video-driven run" in proc.stderr
  coeffs = io_lib.load_coefficients(clip, fps=30)
  n = round(coeffs.num_frames * 25 / 30)
  audio_s = min(n / 25, soundfile.info(str(wav)).frames / 16000)
  _check_outputs(tmp_path, "feifeili_clip3", 1, audio_s)


def test_generate_cli_bad_inputs(smoke_runs, shared_data, tmp_path, capsys):
  """Each bad input: exit code 2, one line naming the file and the
  problem, no traceback, nothing written; all before the runs load. In this
  process (the CLI itself runs as a subprocess in the tests above)."""
  st = shared_data / "styletalk"
  good = {
    "--runs": smoke_runs,
    "--audio": str(shared_data / "speech/arctic_a0007.wav"),
    "--style": str(st / "style_clips/3DMM/nice_clip1.mat"),
    "--source": str(st / "source_video/3DMM/reagan_clip1.mat"),
  }
  silent = tmp_path / "silent.wav"
  soundfile.write(silent, np.zeros(16000, np.float32), 16000)
  nan_style = tmp_path / "nan.npy"
  arr = np.zeros((40, 73), np.float32)
  arr[3, 70] = np.nan
  np.save(nan_style, arr)
  no_identity = tmp_path / "plain.npy"
  plain = np.zeros((40, 73), np.float32)
  plain[:, 70:] = [1.0, 128.0, 128.0]  # a valid crop
  np.save(no_identity, plain)
  short_style = tmp_path / "short.npy"
  np.save(short_style, plain[:5])
  a_file = tmp_path / "a_file"
  a_file.write_text("x")
  cases = [
    ({"--style": str(short_style)}, "short.npy: 5 frames at the model's 25"),
    ({"--audio": str(silent)}, "silent.wav: audio is silent"),
    ({"--audio": str(tmp_path / "none.wav")}, "none.wav: no such file"),
    ({"--style": str(nan_style)}, "nan.npy: non-finite crop value"),
    ({"--source": str(no_identity)}, "plain.npy: has no identity"),
    ({"--runs": str(tmp_path / "runs")}, "configs/audio_driven.py:cpu"),
    ({"--out": str(a_file / "sub")}, "cannot write the output folder"),
    ({"--style_strength": "2"}, "style_strength: 2.0 is outside"),
    ({"--source_fps": "0"}, "--source_fps: must be a positive number"),
    ({"--top_p": "1.5"}, "top_p: must be within [0, 1]"),
    ({"--preview_face": "nonsense", "--no_video": False}, "not a face model"),
    ({"--name": "../x"}, "--name: must be a file name, not a path"),
    ({"--image": str(a_file)}, "only --renderer pirender:DIR animates"),
    ({"--mix": "0.9"}, "--mix: blends in --style2, which is not given"),
    ({"--runs": os.path.join(smoke_runs, "audio_driven")}, "one stage's run"),
  ]
  for change, message in cases:
    out = tmp_path / "out"
    args = {**good, "--out": str(out), "--no_video": None, **change}
    argv = [x for k, v in args.items() if v is not False for x in (k, v) if x]
    assert generate.main(argv) == 2, change
    stderr = capsys.readouterr().err
    assert stderr.startswith("error: ") and message in stderr, (change, stderr)
    assert stderr.count("\n") == 1, (change, stderr)  # one line
    assert not out.exists(), change  # not even the folder
  # Without identity the preview and .npy still work (--no_mat).
  argv = [x for kv in good.items() for x in kv]
  argv += [
    "--source",
    str(no_identity),
    "--no_mat",
    "--out",
    str(tmp_path / "o"),
  ]
  assert generate.main([*argv, "--pose", "still"]) == 0, capsys.readouterr()
  assert sorted(os.listdir(tmp_path / "o")) == [
    "arctic_a0007.json",
    "arctic_a0007_0.mp4",
    "arctic_a0007_0.npy",
  ]
  # Again without a video: the earlier generation's video goes too, so the
  # folder holds one generation, the one its .json describes.
  assert generate.main([*argv, "--pose", "still", "--no_video"]) == 0
  assert "removed the earlier generation's arctic_a0007_0.mp4" in (
    capsys.readouterr().err
  )
  assert sorted(os.listdir(tmp_path / "o")) == [
    "arctic_a0007.json",
    "arctic_a0007_0.npy",
  ]
  with pytest.raises(SystemExit):  # a renderer that does not exist
    generate.parse_args([*argv, "--renderer", "foo"])
  assert "expected preview or pirender:DIR" in capsys.readouterr().err


def test_generate_jobs_name_their_line_and_do_not_stop_each_other(
  shared_data, tmp_path, monkeypatch, capsys
):
  """A jobs file: two jobs writing the same files are refused before any
  work; a job that fails while running is named by its line and the
  others still run (exit status 2)."""
  st = shared_data / "styletalk"
  job = {
    "audio": str(shared_data / "speech/arctic_a0007.wav"),
    "style": str(st / "style_clips/3DMM/nice_clip1.mat"),
    "source": str(st / "source_video/3DMM/reagan_clip1.mat"),
    "out": str(tmp_path / "out"),
  }
  jobs = tmp_path / "jobs.jsonl"
  jobs.write_text(json.dumps(job) + "\n" + json.dumps(job) + "\n")
  argv = ["--jobs", str(jobs), "--runs", str(tmp_path / "none"), "--no_video"]
  assert generate.main(argv) == 2
  err = capsys.readouterr().err
  assert (
    f"error: {jobs} line 2: writes " in err and f"{jobs} line 1 does" in err
  )
  jobs.write_text(
    "\n".join(json.dumps({**job, "name": n}) for n in ("a", "b", "c")) + "\n"
  )
  monkeypatch.setattr(Pipeline, "load", lambda *a, **k: None)
  ran = []

  def run_job(pipe, job, *a, **k):
    if job["name"] == "b":
      raise DataError("--audio", "does not fit")
    ran.append(job["name"])

  monkeypatch.setattr(generate, "run_job", run_job)
  assert generate.main(argv) == 2
  err = capsys.readouterr().err
  assert f"error: {jobs} line 2: --audio: does not fit" in err
  assert f"error: {jobs}: 1 of 3 jobs failed" in err
  assert ran == ["a", "c"]


def test_generate_jobs_paths_are_relative_to_the_jobs_file(
  shared_data, tmp_path, monkeypatch
):
  """A folder of inputs and its jobs file run from anywhere: a line's
  relative paths are read from the jobs file's folder, absolute ones and
  the command line's (from the current folder) as they are."""
  st = shared_data / "styletalk"
  folder = tmp_path / "batch"
  (folder / "clips").mkdir(parents=True)
  for name, src in (
    ("speech.wav", shared_data / "speech/arctic_a0007.wav"),
    ("style.mat", st / "style_clips/3DMM/nice_clip1.mat"),
  ):
    (folder / "clips" / name).write_bytes(src.read_bytes())
  job = {"audio": "clips/speech.wav", "style": "clips/style.mat", "out": "o"}
  (folder / "jobs.jsonl").write_text(json.dumps(job) + "\n")
  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  monkeypatch.chdir(elsewhere)
  source = st / "source_video/3DMM/reagan_clip1.mat"
  monkeypatch.setattr(Pipeline, "load", lambda *a, **k: None)
  ran = []
  monkeypatch.setattr(
    generate, "run_job", lambda p, job, *a, **k: ran.append(job)
  )
  argv = ["--jobs", "../batch/jobs.jsonl", "--source", str(source)]
  assert generate.main([*argv, "--no_video"]) == 0
  (job,) = ran
  assert job["audio"] == str(folder / "clips/speech.wav")
  assert job["style"] == str(folder / "clips/style.mat")
  assert job["out"] == str(folder / "o")
  assert job["source"] == str(source)
