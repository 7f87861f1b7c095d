"""The expression stage: module sizes, HyperStyle gradients, soft-DTW,
streaming, and audio-/video-driven training through the engine."""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from input_pipeline import features
from saas_jax import inference, losses
from saas_jax.engine import checkpoint, config_lib, loop
from saas_jax.engine import workdir as workdir_lib
from saas_jax.engine.workdir import RunError
from saas_jax.evaluators import benchmark, suite
from saas_jax.models import critics, hyperstyle, motion_generator
from saas_jax.trainers import motion

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _count(tree):
  return loop.count_params(tree) / 1e6


def _generator(driver="audio", **kw):
  return motion_generator.MotionGenerator(driver, **kw)


def _source(b, t):
  return {
    "mel": jnp.zeros((b, t, 80, 16)),
    "ref_exp": jnp.zeros((b, 64)),
    "blink": jnp.zeros((b, t)),
    "exp": jnp.zeros((b, t, 64)),
  }


def test_paper_size_parameter_counts_match_the_official_modules():
  s = jnp.zeros((2, 256))
  variables = jax.eval_shape(
    lambda: _generator().init(jax.random.key(0), _source(2, 32), s, s)
  )
  p = variables["params"]
  # Official: E_a 2.92 M, residual adapter 4.45 M including an unused
  # duplicate style LSTM (265 k), decoder 1.35 M.
  assert _count(p["encoder"]) == pytest.approx(2.92, abs=0.005)
  assert _count(p["adapter"]) + 0.265 == pytest.approx(4.45, abs=0.005)
  assert _count(p["decoder"]) == pytest.approx(1.35, abs=0.005)
  # HyperStyle per modulated layer: two kernel nets of 383 k, two bias nets.
  h = p["adapter"]["hyperstyle1"]
  assert _count(h["kernel_ih"]) == pytest.approx(0.383, abs=0.001)
  # Critics: temporal PatchGAN 0.71 M, conditional style critic 106 k and
  # classifier 3.42 M at 1323 classes.
  x = jnp.zeros((2, 32, 64))
  label = jnp.zeros((2,), jnp.int32)
  count = {
    "temporal": critics.PatchCritic(1).init(jax.random.key(0), x),
    "style": critics.ConditionalStyleCritic(1323).init(
      jax.random.key(0), x, label
    ),
    "classifier": critics.StyleClassifier(1323).init(jax.random.key(0), x),
  }
  assert _count(count["temporal"]) == pytest.approx(0.71, abs=0.01)
  assert _count(count["style"]) == pytest.approx(0.106, abs=0.003)
  assert _count(count["classifier"]) == pytest.approx(3.42, abs=0.01)


def test_hyperstyle_kernel_widths():
  assert hyperstyle.kernel_widths(256, 64) == (64, 128, 256)
  assert hyperstyle.kernel_widths(128, 64) == (64, 256)
  assert hyperstyle.kernel_widths(64, 64) == (256,)
  with pytest.raises(ValueError, match="power of two"):
    hyperstyle.kernel_widths(96, 64)


def test_every_hyperstyle_parameter_gets_a_gradient():
  """The official code's `.data` writes leave H untrained; here it learns."""
  gen = _generator("video", hidden=16)
  rng = np.random.default_rng(0)
  source = {"exp": jnp.asarray(rng.normal(size=(3, 12, 64)), jnp.float32)}
  s = jnp.asarray(rng.normal(size=(3, 32)), jnp.float32)
  s_t = jnp.asarray(rng.normal(size=(3, 32)), jnp.float32)
  variables = gen.init(jax.random.key(1), source, s, s_t)

  def loss(params):
    out, _ = gen.apply(
      {**variables, "params": params},
      source,
      s,
      s_t,
      train=True,
      mutable=["batch_stats"],
    )
    return jnp.sum(out**2)

  grads = jax.grad(loss)(variables["params"])["adapter"]
  hyper = {k: v for k, v in grads.items() if k.startswith("hyperstyle")}
  assert sorted(hyper) == [f"hyperstyle{i}" for i in (1, 2, 3, 4)]
  flat = jax.tree_util.tree_leaves_with_path(hyper)
  zero = [jax.tree_util.keystr(k) for k, g in flat if not np.any(np.asarray(g))]
  assert not zero, f"no gradient reaches {zero}"
  # ...and the modulated weights do depend on the style.
  out = gen.apply(variables, source, s, s_t)[0]
  other = gen.apply(variables, source, s, s_t[::-1])[0]
  assert np.abs(np.asarray(out[0] - other[0])).max() > 1e-4


def test_hyperstyle_layer_norm_gives_each_style_its_own_kernel():
  """With BatchNorm (official) the kernel one style gets in training
  depends on the other styles of its batch; per-sample LayerNorm not."""
  rng = np.random.default_rng(0)
  s = jnp.asarray(rng.normal(size=(3, 64)), jnp.float32)  # [3, S]
  mixed = s.at[1:].set(s[1:] * 3.0 + 1.0)  # other styles, same first one

  def first_kernel(norm, codes):
    net = hyperstyle.HyperStyle(16, norm=norm)
    variables = net.init(jax.random.key(0), s)
    out, _ = net.apply(variables, codes, train=True, mutable=["batch_stats"])
    return np.asarray(out["w_ih"][0])  # [16, 64]

  for norm, apart in (("batch", True), ("layer", False)):
    d = np.abs(first_kernel(norm, s) - first_kernel(norm, mixed)).max()
    assert (d > 1e-3) == apart, (norm, d)
  with pytest.raises(ValueError, match="norm"):
    first_kernel("group", s)


def _soft_dtw_reference(x, y, gamma):
  """Direct dynamic programming, in float64."""
  cost = ((x[:, None] - y[None]) ** 2).sum(-1)
  r = np.full((len(x) + 1, len(y) + 1), np.inf)
  r[0, 0] = 0.0
  for i in range(1, len(x) + 1):
    for j in range(1, len(y) + 1):
      prev = np.array([r[i - 1, j - 1], r[i - 1, j], r[i, j - 1]])
      m = prev.min()
      softmin = m - gamma * np.log(np.exp(-(prev - m) / gamma).sum())
      r[i, j] = cost[i - 1, j - 1] + softmin
  return r[-1, -1]


@pytest.mark.parametrize("gamma", [1e-3, 0.1, 1.0])
def test_soft_dtw_matches_dynamic_programming(gamma):
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(3, 9, 4)), rng.normal(size=(3, 6, 4))
  got = jax.jit(lambda a, b: losses.soft_dtw(a, b, gamma))(x, y)
  want = [_soft_dtw_reference(x[k], y[k], gamma) for k in range(3)]
  np.testing.assert_allclose(got, want, rtol=1e-5)
  # A time-warped copy costs less than a shifted one.
  warped = np.repeat(x[:, :, None], 2, 2).reshape(3, 18, 4)
  assert np.all(losses.soft_dtw(x, warped, 1e-3) < 1e-3)
  assert np.all(np.isfinite(jax.grad(lambda a: losses.soft_dtw(a, y).sum())(x)))


def test_streaming_equals_one_pass_on_60_seconds():
  """60 s at 25 fps through the paper-size audio-driven generator."""
  t = 1500
  rng = np.random.default_rng(0)
  config = config_lib.load(os.path.join(ROOT, "configs/audio_driven.py"))
  style = config_lib.load(os.path.join(ROOT, "configs/style_vqvae.py")).model
  nets = motion.make_nets(config, 8, style)
  variables = motion.init_variables(nets, jax.random.key(0), 256)
  whole_pass, chunked = (
    inference.Stylizer.from_state(nets.generator, style, variables, chunk=c)
    for c in (t, 400)
  )
  wav = rng.normal(0, 0.1, t * 640).astype(np.float32)
  mel = features.mel_windows(features.log_mel(wav), t)
  inputs = dict(
    style_exp=rng.normal(size=(90, 64)),
    source_exp=rng.normal(size=(1, 64)),
    mel=mel,
    blink=features.blink_ratio(rng, t),
  )
  whole = whole_pass(**inputs)
  parts = list(chunked.stream(**inputs))
  assert whole.shape == (t, 64) and [len(p) for p in parts] == [400] * 3 + [300]
  np.testing.assert_allclose(np.concatenate(parts), whole, atol=2e-5)


def test_mel_mean_norm_cancels_a_fixed_channel():
  """mel_norm="clip_mean": a constant per band over the whole utterance (a
  microphone, a level, a tilt) changes nothing, through inference.Stylizer;
  without it the output moves."""
  t = 40
  rng = np.random.default_rng(0)
  style = config_lib.load(os.path.join(ROOT, "configs/style_vqvae.py:cpu"))
  inputs = dict(
    style_exp=rng.normal(size=(40, 64)),
    source_exp=rng.normal(size=(1, 64)),
    blink=features.blink_ratio(rng, t),
  )
  mel = rng.uniform(-3, 1, (t, 80, 16)).astype(np.float32)
  channel = np.linspace(-1.5, 1.0, 80, dtype=np.float32)[:, None]  # [80, 1]
  moved = {}
  for option in ("", ",mel_mean"):
    config = config_lib.load(
      os.path.join(ROOT, f"configs/audio_driven.py:cpu{option}")
    )
    nets = motion.make_nets(config, 8, style.model)
    variables = motion.init_variables(nets, jax.random.key(0), 128)
    stylizer = inference.Stylizer.from_state(
      nets.generator, style.model, variables, chunk=64
    )
    a = stylizer(mel=mel, **inputs)
    b = stylizer(mel=mel + channel, **inputs)
    moved[option] = np.abs(a - b).max()
  # (an initialised decoder's output is small: compare the two)
  assert moved[",mel_mean"] < 0.01 * moved[""], moved
  with pytest.raises(ValueError, match="mel_mean"):
    source = {k: v[:1] for k, v in _source(1, 4).items()}
    nets.generator.init(jax.random.key(0), source, jnp.zeros((1, 128)), None)


def test_style_stats_against_a_direct_computation():
  """The style-statistics term: res's mean coefficients 18-63 against the
  mean of B's two clips, raw or divided by the batch's spread."""
  rng = np.random.default_rng(0)
  b, t = 4, 32
  batch = {
    k: rng.normal(size=(b, t, 64)).astype(np.float32)
    for k in ("exp", "style_exp", "pos_exp", "neg_exp")
  }
  target = 0.5 * (batch["style_exp"].mean(1) + batch["pos_exp"].mean(1))
  res = np.repeat(target[:, None], t, axis=1)  # [B, T, 64]: B's means
  res[..., :18] = 7.0  # the mouth is not a style statistic
  for scale in ("raw", "batch"):
    assert float(motion.style_stats(res, batch, scale)) < 1e-10
  shifted = res.copy()
  shifted[:, :, 50] += 0.3  # one coefficient off by 0.3 in every clip
  raw = float(motion.style_stats(shifted, batch, "raw"))
  np.testing.assert_allclose(raw, 0.3**2 / 46, rtol=1e-4)
  means = np.concatenate([batch[k][..., 50].mean(1) for k in batch])
  z = float(motion.style_stats(shifted, batch, "batch"))
  np.testing.assert_allclose(z, (0.3 / (means.std() + 1e-3)) ** 2 / 46, 1e-4)
  with pytest.raises(ValueError, match="stats_scale"):
    motion.style_stats(res, batch, "per_clip")
  # mouth=True: the mouth's mean is a style statistic too (,stats_mouth)
  off = (7.0 - target[:, :18]) ** 2  # [B, 18]
  np.testing.assert_allclose(
    float(motion.style_stats(res, batch, "raw", mouth=True)),
    off.sum() / (b * 64),
    rtol=1e-4,
  )
  res[..., :18] = target[:, None, :18]
  assert float(motion.style_stats(res, batch, "raw", mouth=True)) < 1e-10


def test_mouth_keep_asks_for_the_sources_motion_at_any_gain():
  """0 for A's mouth trajectory at another gain and offset, 1 for a still
  mouth, 2 for the trajectory reversed; the coefficients past the mouth
  do not count."""
  rng = np.random.default_rng(0)
  a = rng.normal(size=(3, 32, 64)).astype(np.float32)  # [B, T, 64]
  restyled = a.copy()
  restyled[..., :18] = 2.5 * a[..., :18] + 0.7
  restyled[..., 18:] = rng.normal(size=(3, 32, 46))
  still = np.broadcast_to(a.mean(1, keepdims=True), a.shape)
  reversed_ = 2 * a.mean(1, keepdims=True) - a
  np.testing.assert_allclose(motion.mouth_keep(restyled, a), 0.0, atol=1e-5)
  np.testing.assert_allclose(motion.mouth_keep(still, a), 1.0, atol=1e-5)
  np.testing.assert_allclose(motion.mouth_keep(reversed_, a), 2.0, atol=1e-5)
  other = rng.normal(size=a.shape).astype(np.float32)  # unrelated motion
  assert 0.7 < float(motion.mouth_keep(other, a)) < 1.3
  # a still window on either side still has a finite gradient
  flat = np.full_like(a, 0.25)  # exactly 0 about its mean
  for res, src in ((flat, a), (a, flat), (flat, flat)):
    g = jax.grad(motion.mouth_keep)(jnp.asarray(res), jnp.asarray(src))
    assert np.isfinite(np.asarray(g)).all()


# ------------------------------------------------------------- training ---


@pytest.mark.parametrize("driver", ["audio", "video"])
def test_training_through_the_engine(driver, smoke_runs):
  """The smoke pipeline's run of this stage (trained by train_pipeline,
  evaluated at its end on the tiny corpus's style-transfer pairs)."""
  run = os.path.join(smoke_runs, f"{driver}_driven")
  config = json.load(open(os.path.join(run, "config.json")))
  with open(os.path.join(run, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  train = [r for r in rows if "train/loss" in r]
  assert train[-1]["step"] == config["num_train_steps"] == 2
  terms = {
    "recon",
    "rest",
    "stats",
    "mouth",
    "temporal",
    "style_adv",
    "class",
    "triplet",
  }
  if driver == "video":
    terms.add("cycle")
  for term in terms | {"critic_loss", "critic/r1"}:
    assert np.isfinite(train[-1][f"train/{term}"]), term
  with open(os.path.join(run, "eval_results.json")) as f:
    results = json.load(f)
  for system in ("model", "canonical", "content"):
    for key in ("mouth_lmk", "face_lmk", "exp_mouth", "style_code_dist"):
      assert np.isfinite(results[f"{system}/{key}"])
  assert results["num_pairs"] == config["eval"]["num_pairs"]
  # The frozen style encoder is the style stage's arrays, unchanged.
  saved = checkpoint.load_params(os.path.join(smoke_runs, "style_vqvae"))
  frozen = checkpoint.load_params(run)["extra"]["frozen"]["style"]
  np.testing.assert_array_equal(
    jax.tree.leaves(saved["params"])[0], jax.tree.leaves(frozen["params"])[0]
  )
  # A trained run loads for inference and stylizes a new clip.
  stylizer = inference.Stylizer.load(run, driver)
  rng = np.random.default_rng(0)
  source = rng.normal(size=(40, 64)).astype(np.float32)
  mel = rng.normal(size=(40, 80, 16)).astype(np.float32)
  out = stylizer(
    style_exp=rng.normal(size=(50, 64)),
    source_exp=source,
    mel=mel if driver == "audio" else None,
  )
  assert out.shape == (40, 64) and np.all(np.isfinite(out))
  # Without naming the driver (README's Stylizer.load("runs/audio_driven")):
  # the same run; naming the other driver is refused.
  assert inference.Stylizer.load(run).driver == driver
  other = "video" if driver == "audio" else "audio"
  with pytest.raises(RunError, match=f"a {other}-driven one is needed"):
    inference.Stylizer.load(run, other)


def test_style_code_distance_is_measured_in_one_space(smoke_runs):
  """A continuous-code generator takes unquantized codes, but evaluation
  measures every variant's style-code distance between quantized codes:
  the same clips get the same distance whichever codes the run uses."""
  models = suite.Models.load(smoke_runs)
  st = models.stylizer
  run = st.run
  continuous = inference.Stylizer.from_state(
    st.generator,
    run.spec["style_model"],
    {"params": run.params, **run.extra},
    quantized_style=False,
  )
  rng = np.random.default_rng(1)
  content, style = rng.normal(size=(2, 48, 64)).astype(np.float32)
  assert st.quantized_style and not continuous.quantized_style
  own = continuous.style_code(style)
  quantized = st.style_code(style)
  assert np.abs(own - quantized).max() > 1e-3
  np.testing.assert_allclose(
    continuous.style_code(style, quantize=True), quantized
  )
  pose = np.zeros((48, 6), np.float32)
  mel = rng.normal(size=(160, 80)).astype(np.float32)  # 2 s at 80 fps
  pair = benchmark.Pair("a", "b", content, style, -1, None, pose, pose, mel)
  # A generator on a style stage trained without a codebook (the paper's
  # no-codebook ablation) has no quantized space of its own: its distances
  # are measured in the runs folder's style stage.
  no_codebook = inference.Stylizer.from_state(
    st.generator,
    {**run.spec["style_model"], "codebook": False},
    {"params": run.params, **run.extra},
    quantized_style=False,
  )
  assert not no_codebook.has_codebook and st.has_codebook
  np.testing.assert_allclose(no_codebook.style_code(style, quantize=True), own)
  rows = [
    suite.pair_row(dataclasses.replace(models, stylizer=s), pair, None, {})
    for s in (st, continuous, no_codebook)
  ]
  expected = np.sum((st.style_code(content) - quantized) ** 2)
  space = models.space
  np.testing.assert_allclose(
    np.sum((space.code(content) - space.code(style)) ** 2), expected, 1e-5
  )
  own_dist = np.sum((continuous.style_code(content) - own) ** 2)
  assert abs(own_dist - expected) > 1e-3 * expected
  for row in rows:
    np.testing.assert_allclose(row["content/style_code_dist"], expected, 1e-5)


@pytest.mark.parametrize("driver", ["audio", "video"])
def test_official_options_undo_exactly_the_defaults(driver):
  """The README resumes runs made before the defaults changed with
  ,styled_decoder,no_stats,lr_constant (and ,no_keep for video): those must
  differ from today's defaults in the documented settings only (a resumed
  run is refused on any other difference)."""

  def load(arg):
    path = os.path.join(ROOT, f"configs/{driver}_driven.py:{arg}")
    return json.loads(config_lib.load(path).to_json())

  undo = ",styled_decoder,no_stats,lr_constant"
  redo = ",lr_cosine,style_stats,unstyled_decoder"
  if driver == "video":  # since 2026-12-07
    undo, redo = undo + ",no_keep", redo + ",mouth_keep"
  official = load("cpu" + undo)
  diff = workdir_lib.config_diff(official, load("cpu"))
  assert sorted(d.split(":")[0] for d in diff) == sorted(
    ["loss.w_stats", "model.decoder_style", "optim.schedule"]
    + ["optim.warmup_steps"]
    + (["loss.w_keep"] if driver == "video" else [])
  )
  assert official["model"]["decoder_style"] and official["loss"]["w_stats"] == 0
  assert official["loss"]["w_keep"] == 0
  assert load("cpu" + redo) == load("cpu")
  # A video run of the 2026-12-05 defaults resumes with ,no_keep alone.
  if driver == "video":
    diff = workdir_lib.config_diff(load("cpu,no_keep"), load("cpu"))
    assert [d.split(":")[0] for d in diff] == ["loss.w_keep"]


def test_missing_frozen_runs_are_named(prepared_tiny, tmp_path):
  c = config_lib.load(os.path.join(ROOT, "configs/audio_driven.py:smoke"))
  c.data.data_dir, c.data.config = prepared_tiny["data"]
  c.frozen.style = str(tmp_path / "nowhere")
  with pytest.raises(FileNotFoundError, match="style_vqvae"):
    motion.train_and_evaluate(c, str(tmp_path / "run"))
