"""Head pose: pose codebook, generator G_p, sampling, metrics, both stages
through the engine with frozen networks loaded from earlier runs."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from input_pipeline import features
from input_pipeline import io as io_lib
from saas_jax import sampling
from saas_jax.engine import checkpoint, config_lib, loop
from saas_jax.errors import DataError
from saas_jax.evaluators import pose as pose_metrics
from saas_jax.inference import Pipeline, PoseSampler, Request, Stylizer
from saas_jax.models import builders, pose_codebook, pose_generator, vqvae
from saas_jax.trainers import pose_generator as pose_generator_trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _count(tree):
  return loop.count_params(tree)


def _init_generator(model, batch=1):
  n = model.num_tokens
  return jax.jit(model.init)(
    jax.random.key(0),
    jnp.zeros((batch, 32, 28, 12)),
    jnp.zeros((batch, 8)),
    jnp.zeros((batch, n), jnp.int32),
    jnp.full((batch,), n),
    motion_windows=jnp.zeros((batch, 1, 32, 6)),  # used when motion_dim > 0
  )


def test_paper_size_parameter_counts():
  gen = jax.eval_shape(
    lambda: pose_generator.PoseGenerator().init(
      jax.random.key(0),
      jnp.zeros((1, 32, 28, 12)),
      jnp.zeros((1, 256)),
      jnp.zeros((1, 4), jnp.int32),
      jnp.full((1,), 4),
    )
  )["params"]
  assert abs(_count(gen) - 33.4e6) / 33.4e6 < 0.01, _count(gen)  # official
  assert abs(_count(gen["audio_cnn"]) - 27.83e6) / 27.83e6 < 0.01
  codebook = jax.eval_shape(
    lambda: pose_codebook.PoseCodebook().init(
      jax.random.key(0), jnp.zeros((1, 32, 6))
    )
  )
  assert abs(_count(codebook["params"]) - 12.91e6) / 12.91e6 < 0.01
  assert codebook["pose_norm"]["std"].shape == (6,)


SMALL = dict(
  num_codes=16,
  conv_channels=(4, 4, 8, 8, 8),
  fc_hidden=16,
  audio_dim=16,
  speaker_dim=16,
  speaker_heads=2,
  speaker_mlp=16,
  dim=16,
  heads=2,
  mlp_dim=16,
  layers=1,
)


@pytest.fixture(scope="module")
def small_generator():
  model = pose_generator.PoseGenerator(**SMALL)
  variables = _init_generator(model)
  # Non-trivial BatchNorm statistics, so eval mode is not the identity.
  variables = jax.jit(
    lambda v: jax.tree.map(
      lambda x: x + 0.1 * jax.random.normal(jax.random.key(3), x.shape), v
    )
  )(variables)
  return model, variables


def test_generator_shapes_and_past_masking(small_generator):
  model, v = small_generator
  mfcc = jax.random.normal(jax.random.key(1), (3, 32, 28, 12))
  style = jax.random.normal(jax.random.key(2), (3, 8))
  past = jnp.array([[1, 2, 3, 4]] * 3)
  other = jnp.array([[5, 6, 7, 8]] * 3)
  apply = jax.jit(model.apply)
  for keep in (0, 2, 4):
    k = jnp.full((3,), keep)
    a = apply(v, mfcc, style, past, k)
    assert a.shape == (3, 8, 16)
    b = apply(v, mfcc, style, other, k)
    # Unkept past tokens have no influence; kept ones do.
    assert np.allclose(a, b, atol=1e-6) == (keep == 0)
  # keep=2: only the last two tokens count.
  k = jnp.full((3,), 2)
  c = apply(v, mfcc, style, past.at[:, :2].set(9), k)
  np.testing.assert_allclose(apply(v, mfcc, style, past, k), c, atol=1e-6)
  # Audio features are per frame: a frame's features ignore its neighbours.
  feats = jax.jit(lambda v, x: model.apply(v, x, method=model.audio_features))
  f, g = feats(v, mfcc), feats(v, mfcc.at[:, 5].set(0.0))
  assert f.shape == (3, 32, 16)
  np.testing.assert_array_equal(np.delete(f, 5, 1), np.delete(g, 5, 1))
  assert not np.allclose(f[:, 5], g[:, 5])


def test_style_stream_reads_the_audio_only_with_audio_values():
  """Official roles (audio queries, keys/values from the style stream, one
  style vector repeated over the frames): at init, where the stream's
  position code is zero, every value is the same and the speaker tokens
  cannot depend on the audio. audio_values=True lets the stream attend to
  the audio."""
  mfcc = jax.random.normal(jax.random.key(1), (2, 2, 32, 28, 12))
  style = jax.random.normal(jax.random.key(2), (2, 8))
  for audio_values in (False, True):
    model = pose_generator.PoseGenerator(**SMALL, audio_values=audio_values)
    v = _init_generator(model)

    @jax.jit
    def speaker(v, m, model=model):
      feats = model.apply(v, m, method=model.audio_features)
      return model.apply(v, feats, style, method=model.speaker_tokens)

    a, b = speaker(v, mfcc[0]), speaker(v, mfcc[1])
    assert a.shape == (2, 4, 16)
    change = float(jnp.abs(a - b).max() / jnp.abs(a).max())
    # Measured: 0.0 with the official roles, 1.7e-3 with audio_values.
    assert change > 1e-4 if audio_values else change < 1e-6, change


def test_motion_code_reads_the_style_clips_head_motion():
  """model.motion_dim: the style clip's head motion, windows about their own
  mean in the codebook's std units, is encoded, averaged over windows and
  added to the style stream."""
  model = pose_generator.PoseGenerator(**SMALL, motion_dim=4)
  rng = np.random.default_rng(0)
  std = np.full(6, 0.1, np.float32)
  pose = rng.normal(size=(70, 6)).astype(np.float32)
  windows = sampling.motion_windows(pose, std)
  assert windows.shape == (3, 32, 6)  # starts 0, 16, 32
  np.testing.assert_allclose(windows.mean(1), 0.0, atol=1e-5)
  np.testing.assert_allclose(
    windows[1], (pose[16:48] - pose[16:48].mean(0)) / std, rtol=1e-5
  )
  # Where the head is does not matter, how it moves does.
  np.testing.assert_allclose(
    sampling.motion_windows(pose + 3.0, std), windows, atol=1e-4
  )
  assert sampling.motion_windows(pose[:20], std).shape == (1, 32, 6)  # mirrored

  v = _init_generator(model)
  code = jax.jit(lambda v, w: model.apply(v, w, method=model.motion_code))
  one = code(v, windows[None, :1])
  assert one.shape == (1, 4)
  np.testing.assert_allclose(
    code(v, np.repeat(windows[None, :1], 3, 1)), one, rtol=1e-5
  )
  feats = jax.random.normal(jax.random.key(3), (1, 32, 16))
  style = jnp.zeros((1, 8))

  @jax.jit
  def speaker(v, motion):
    return model.apply(
      v, feats, style, motion=motion, method=model.speaker_tokens
    )

  a, b = speaker(v, one), speaker(v, code(v, windows[None, 1:]))
  assert float(jnp.abs(a - b).max()) > 1e-6


def test_nucleus_sampling_keeps_the_top_mass():
  logits = jnp.log(jnp.array([0.5, 0.3, 0.15, 0.05]))
  keys = jax.random.split(jax.random.key(0), 4000)
  draws = jax.vmap(lambda k: sampling.nucleus_sample(k, logits, 1.0, 0.7))(keys)
  counts = np.bincount(np.asarray(draws), minlength=4) / len(keys)
  assert counts[2] == counts[3] == 0  # outside the 0.7 nucleus {0, 1}
  np.testing.assert_allclose(counts[:2], [0.625, 0.375], atol=0.03)
  draws = jax.vmap(lambda k: sampling.nucleus_sample(k, logits, 1.0, 0.95))(
    keys
  )
  assert set(np.unique(np.asarray(draws))) == {0, 1, 2}
  # A low temperature sharpens: top_p 0.9 then keeps the best code alone.
  draws = jax.vmap(lambda k: sampling.nucleus_sample(k, logits, 0.1, 0.9))(keys)
  assert set(np.unique(np.asarray(draws))) == {0}


def test_sampler_matches_step_by_step_and_is_reproducible(small_generator):
  model, v = small_generator
  frames = 44  # 6 tokens
  n = sampling.num_tokens(frames)
  audio = np.asarray(jax.random.normal(jax.random.key(1), (2, frames, 28, 12)))
  mfcc = np.stack([sampling.pad_audio(a, frames) for a in audio])
  assert mfcc.shape == (2, 8 * n + 24, 28, 12)
  np.testing.assert_array_equal(
    mfcc[:, frames:],
    np.broadcast_to(mfcc[:, frames - 1 : frames], (2, 28, 28, 12)),
  )
  style = jax.random.normal(jax.random.key(2), (2, 8))
  key = jax.random.key(7)
  fast = sampling.sampler(model, num_samples=3)
  a = fast(v, mfcc, style, key)
  assert a.shape == (2, 3, n)
  naive = sampling.sample_tokens_naive(
    model, v, mfcc, style, key, num_samples=3
  )
  np.testing.assert_array_equal(a, naive)
  np.testing.assert_array_equal(a, fast(v, mfcc, style, key))  # same seed
  b = fast(v, mfcc, style, jax.random.key(8))
  assert np.any(a != b)  # another seed
  assert np.any(a[:, 0] != a[:, 1])  # samples of one call differ
  one = sampling.sampler(model, num_samples=1)(v, mfcc, style, key)
  np.testing.assert_array_equal(one[:, 0], a[:, 0])  # sample 0 is sample 0
  seed = jnp.array([[1, 2, 3, 4], [5, 6, 7, 8]])
  s = fast(v, mfcc, style, key, seed)
  np.testing.assert_array_equal(
    s,
    sampling.sample_tokens_naive(
      model, v, mfcc, style, key, num_samples=3, seed_tokens=seed
    ),
  )
  assert np.any(s != a)


def test_sampler_with_eight_tokens_per_window():
  # A model.factor 2 codebook: 32 frames -> 8 tokens of 4 frames.
  model = pose_generator.PoseGenerator(**SMALL, factor=2)
  assert model.num_tokens == 8
  v = _init_generator(model)
  frames = 44  # 11 tokens of 4 frames
  n = sampling.num_tokens(frames, 8)
  assert n == 11
  audio = np.asarray(jax.random.normal(jax.random.key(1), (1, frames, 28, 12)))
  mfcc = sampling.pad_audio(audio[0], frames, num_past=8)[None]
  assert mfcc.shape == (1, 4 * n + 28, 28, 12)
  with pytest.raises(ValueError, match="4 n \\+ 28 frames"):
    sampling.steps_of(4 * n + 26, 8)
  style = jax.random.normal(jax.random.key(2), (1, 8))
  key = jax.random.key(7)
  a = sampling.sampler(model, num_samples=2)(v, mfcc, style, key)
  assert a.shape == (1, 2, n)
  np.testing.assert_array_equal(
    a, sampling.sample_tokens_naive(model, v, mfcc, style, key, num_samples=2)
  )


def test_decoding_windows_and_savgol():
  # A fake decoder that writes (first token of the window, frame) per frame.
  def decode(idx):  # [W, 4] -> [W, 32, 2]
    f = jnp.broadcast_to(jnp.arange(32.0), (*idx.shape[:1], 32))
    t = jnp.broadcast_to(idx[:, :1].astype(jnp.float32), f.shape)
    return jnp.stack([t, f], -1)

  tokens = jnp.arange(6)[None, None] + jnp.array([[[0], [10]]])  # [1, 2, 6]
  out = np.asarray(sampling.decode_sliding(decode, tokens))
  assert out.shape == (1, 2, 48, 2)
  # Windows 0, 1 give frames 0..7; the last (tokens 2..5) all 32.
  np.testing.assert_array_equal(out[0, 0, :, 0], [0] * 8 + [1] * 8 + [2] * 32)
  np.testing.assert_array_equal(
    out[0, 0, :, 1], list(range(8)) * 2 + list(range(32))
  )
  np.testing.assert_array_equal(out[0, 1, :, 0] - out[0, 0, :, 0], 10)
  x = np.random.default_rng(0).normal(size=(2, 50, 6)).astype(np.float32)
  np.testing.assert_allclose(
    sampling.savgol(jnp.asarray(x)),
    scipy.signal.savgol_filter(x, 13, 2, axis=-2),
    atol=2e-5,
  )


def test_spectral_gain_and_equalizer_reshape_the_spectrum():
  rng = np.random.default_rng(0)

  def poses(slow_gain, n=60, t=256):  # white noise, slow part x gain
    freq = np.fft.rfftfreq(t)[:, None] * 64  # in bins of a 64-frame window
    shape = 1 + (slow_gain - 1) * np.exp(-((freq / 2) ** 2))
    out = []
    for _ in range(n):
      f = np.fft.rfft(rng.normal(size=(t, 6)), axis=0) * shape
      out.append(np.fft.irfft(f, n=t, axis=0))
    return out

  real, sampled = poses(3.0), poses(1.0)  # the samples lack slow power
  gain = pose_metrics.spectral_gain(real, sampled)
  assert gain.shape == (33, 6)
  assert np.all(gain[:2] > 1.5) and np.all(np.abs(gain[8:] - 1) < 0.25)
  # Identity gain: identity filter; the gain brings the spectrum over.
  ones = sampling.equalizer_kernel(np.ones((33, 6)))
  x = jnp.asarray(sampled[0])
  np.testing.assert_allclose(sampling.equalize(x, ones, 0.5), x, atol=1e-5)
  kernel = sampling.equalizer_kernel(gain)
  fixed = [
    np.asarray(sampling.equalize(jnp.asarray(p), kernel, 0.0)) for p in sampled
  ]
  ratio = pose_metrics.mean_periodogram(fixed) / pose_metrics.mean_periodogram(
    real
  )
  # Within 1.4x (two independent draws); bin 0 only partly: a 63-tap
  # filter resolves the slowest bin coarsely.
  assert np.all(ratio[0] > 0.6) and np.all(np.abs(np.log(ratio[1:8])) < 0.34)
  before = pose_metrics.mean_periodogram(
    sampled
  ) / pose_metrics.mean_periodogram(real)
  assert np.all(np.log(before[:2]) < np.log(0.4))


def test_pose_metrics_tell_styles_apart():
  t = np.arange(200)
  rng = np.random.default_rng(0)

  def clip(amp, period):
    p = np.zeros((200, 6))
    phase = rng.uniform(0, 6, 3)[None]
    p[:, :3] = amp * np.sin(2 * np.pi * t[:, None] / period + phase)
    return p + rng.normal(0, amp * 0.05, p.shape)

  slow = [clip(0.05, 60) for _ in range(3)]
  fast = [clip(0.02, 12) for _ in range(3)]
  ref = pose_metrics.StyleReference.from_clips(slow + fast, [0] * 3 + [1] * 3)
  probe = clip(0.05, 60)
  assert ref.distance(probe, 0) < ref.distance(probe, 1)
  assert pose_metrics.nod_alignment([10, 50], [10, 50]) == 1.0
  assert pose_metrics.nod_alignment([10, 50], [30]) < 0.01
  assert pose_metrics.nod_alignment([], [3]) is None
  smooth = scipy.signal.savgol_filter(slow[0], 13, 2, axis=0)
  assert pose_metrics.jitter(smooth) < 0.5 * pose_metrics.jitter(slow[0])
  assert pose_metrics.diversity(np.stack(slow)) > 0


def test_smoothed_style_reference_measures_the_smoothed_pose():
  rng = np.random.default_rng(1)
  clips = [rng.normal(0, 0.02, (120, 6)).cumsum(0) for _ in range(4)]
  ref = pose_metrics.StyleReference.from_clips(clips, [0, 0, 1, 1], smooth=13)
  for p in clips:
    np.testing.assert_allclose(
      ref.stats(p),
      pose_metrics.motion_stats(scipy.signal.savgol_filter(p, 13, 2, axis=0)),
    )
  raw = pose_metrics.StyleReference.from_clips(clips, [0, 0, 1, 1])
  assert raw.smooth == 0 and not np.allclose(raw.scale, ref.scale)
  short = clips[0][:10]  # shorter than the filter: measured as it is
  np.testing.assert_allclose(ref.stats(short), pose_metrics.motion_stats(short))


def test_nod_response_finds_nods_locked_to_onsets():
  rng = np.random.default_rng(2)
  lags = pose_metrics.NOD_LAGS
  shape = -0.01 * np.exp(-(lags**2) / 8.0)  # a 10 mrad dip on the onset

  def clip(onsets, nods=True):
    p = rng.normal(0, 0.001, (300, 6)).cumsum(0) * 0.1
    if nods:
      for o in onsets:
        p[o + lags, 0] += shape
    return p

  onsets = [
    [30 + 40 * k + int(rng.integers(5)) for k in range(6)] for _ in range(5)
  ]
  template = pose_metrics.NodTemplate.from_clips(
    [clip(o) for o in onsets], onsets
  )
  assert np.argmin(template.kernel) == np.flatnonzero(lags == 0)[0]
  own = [30, 95, 170, 240]
  moved = [o + 17 for o in own]  # between the nods
  p = clip(own)
  assert template.response(p, own) == pytest.approx(1.0, abs=0.25)
  assert abs(template.response(p, moved)) < 0.3
  assert abs(template.response(clip(own, nods=False), own)) < 0.3
  # The gain over another clip's onsets (chance); those past the end of
  # this clip do not count.
  assert pose_metrics.nod_gain(template, p, own, [*moved, 400]) > 0.6
  still = clip(own, nods=False)
  assert abs(pose_metrics.nod_gain(template, still, own, moved)) < 0.4
  assert pose_metrics.nod_gain(template, p, own, [400]) is None
  assert template.response(p, [2, 295]) is None  # lags outside the clip
  empty = pose_metrics.NodTemplate.from_clips([p], [[]])
  assert empty.response(p, own) is None


def test_relative_codebook_codes_motion_about_the_offset():
  cfg = dict(
    hidden=16, layers=1, heads=2, mlp_dim=16, num_codes=8, beta=0.25,
    ema=False, restart_dead=False, grouping="token", attn_scale="head",
  )  # fmt: skip
  mean, std = np.arange(6) * 0.1, np.full(6, 0.05)
  model = builders.pose_codebook_model({**cfg, "relative": True}, mean, std)
  rng = np.random.default_rng(0)
  pose = jnp.asarray(rng.normal(0, 0.05, (3, 32, 6)), jnp.float32)
  offset = jnp.asarray(rng.normal(0, 0.3, (3, 6)), jnp.float32)
  v = model.init(jax.random.key(0), pose, offset)
  tokens = jax.jit(lambda p, o: model.apply(v, p, o, method=model.tokens))
  shift = jnp.asarray([0.2, -0.1, 0.05, 1.0, 2.0, -3.0], jnp.float32)
  # Moving the head and its mean pose together leaves the code unchanged.
  np.testing.assert_array_equal(
    tokens(pose, offset), tokens(pose + shift, offset + shift)
  )
  with pytest.raises(ValueError, match="offset="):
    model.apply(v, pose, method=model.tokens)
  idx = tokens(pose, offset)
  dec = lambda o: model.apply(v, idx, o, method=model.decode_tokens)  # noqa: E731
  np.testing.assert_allclose(
    dec(offset), dec(None) - mean + offset[:, None], atol=1e-5
  )
  # An absolute codebook ignores offsets.
  absolute = builders.pose_codebook_model(cfg, mean, std)
  va = absolute.init(jax.random.key(0), pose)
  a = absolute.apply(va, pose, offset, method=absolute.tokens)
  np.testing.assert_array_equal(
    a, absolute.apply(va, pose, method=absolute.tokens)
  )


def test_pose_norm_of_a_relative_codebook():
  from types import SimpleNamespace

  from saas_jax.trainers import pose_vqvae

  rng = np.random.default_rng(0)
  clips = [rng.normal(k, 0.1 + k, (20 + 5 * k, 6)) for k in range(3)]
  table = SimpleNamespace(
    pose=np.concatenate(clips),
    start=np.array([0, 20, 45]),
    length=np.array([20, 25, 30]),
    num_clips=3,
  )
  mean, std = pose_vqvae.pose_norm(table, relative=True)
  np.testing.assert_allclose(mean, np.mean([c.mean(0) for c in clips], 0))
  motion = np.concatenate([c - c.mean(0) for c in clips])
  np.testing.assert_allclose(std, motion.std(0) + 1e-6)
  mean, std = pose_vqvae.pose_norm(table, relative=False)
  np.testing.assert_allclose(mean, table.pose.mean(0))


def test_velocity_loss_weighs_the_error_of_frame_differences():
  from types import SimpleNamespace

  from saas_jax.trainers import pose_vqvae

  cfg = dict(
    hidden=16, layers=1, heads=2, mlp_dim=16, num_codes=8, beta=0.25,
    ema=False, restart_dead=False, grouping="token", attn_scale="head",
    relative=True,
  )  # fmt: skip
  model = builders.pose_codebook_model(cfg, np.zeros(6), np.full(6, 0.05))
  rng = np.random.default_rng(0)
  batch = {
    "pose": jnp.asarray(rng.normal(0, 0.05, (2, 64, 6)), jnp.float32),
    "pose_offset": jnp.zeros((2, 6)),
  }
  v = model.init(jax.random.key(0), batch["pose"][:, :32], jnp.zeros((2, 6)))
  extra = {k: x for k, x in v.items() if k != "params"}

  def loss(w):
    fn = pose_vqvae.loss_fn
    out = fn(v["params"], extra, batch, jax.random.key(1),
             apply_fn=model.apply, cfg=SimpleNamespace(w_velocity=w))  # fmt: skip
    return out[0], out[1][0]

  (l0, m0), (l2, _) = loss(0.0), loss(2.0)
  assert float(m0["velocity_l1"]) > 0
  np.testing.assert_allclose(l2 - l0, 2.0 * m0["velocity_l1"], rtol=1e-5)


# --------------------------------------------------- through the engine ---


def test_pose_residual_reads_the_audio_around_each_frame():
  """model.residual_width: the motion finer than a token, from the audio
  features of every frame through dilated convolutions (+-30 frames);
  with_residual gives __call__'s logits from the last 32 frames."""
  model = pose_generator.PoseGenerator(**SMALL, residual_width=8)
  v = _init_generator(model)
  assert not np.any(v["params"]["residual_net"]["out"]["kernel"])  # starts at 0
  v = jax.tree.map(  # a trained-looking residual head
    lambda x: x + 0.1 * jax.random.normal(jax.random.key(4), x.shape), v
  )
  mfcc = jax.random.normal(jax.random.key(1), (2, 96, 28, 12))
  style = jax.random.normal(jax.random.key(2), (2, 8))
  past, keep = jnp.array([[1, 2, 3, 4]] * 2), jnp.full((2,), 4)
  both = jax.jit(
    lambda v, m: model.apply(v, m, style, past, keep, method="with_residual")
  )
  logits, fine = both(v, mfcc)
  assert fine.shape == (2, 96, 6)
  np.testing.assert_allclose(
    logits, jax.jit(model.apply)(v, mfcc[:, 64:], style, past, keep), atol=1e-5
  )
  _, moved = both(v, mfcc.at[:, 40].set(0.0))
  changed = np.flatnonzero(np.abs(np.asarray(moved - fine)).max((0, 2)) > 0)
  assert changed.min() >= 40 - 30 and changed.max() <= 40 + 30
  assert 40 in changed and len(changed) > 30
  # sampling.pose_residual: the same, in pose units.
  std = jnp.arange(1.0, 7.0)
  np.testing.assert_allclose(
    sampling.pose_residual(model, v, mfcc, std), fine * std, atol=1e-5
  )


def _smoke(name, data, **overrides):
  c = config_lib.load(os.path.join(ROOT, f"configs/{name}.py:smoke"))
  c.data.data_dir, c.data.config = data
  c.data.eval_split = "test_person"
  c.mesh.shape = (1, 1)  # one device: the engine tests cover sharding
  for key, value in overrides.items():
    node = c
    *path, last = key.split(".")
    for p in path:
      node = node[p]
    node[last] = value
  return c


def test_missing_frozen_runs_are_named(tmp_path, prepared_corpus):
  c = _smoke("pose_generator", prepared_corpus)
  c.loss.style_from = "classes"
  with pytest.raises(DataError, match=r"config\.loss\.style_from.*'classes'"):
    pose_generator_trainer.train_and_evaluate(c, str(tmp_path / "gen"))
  c.loss.style_from = "class"
  c.frozen.style = str(tmp_path / "nowhere")
  c.frozen.pose_vqvae = str(tmp_path / "nowhere")
  with pytest.raises(FileNotFoundError, match=r"config\.frozen\.style = .*"):
    pose_generator_trainer.train_and_evaluate(c, str(tmp_path / "gen"))
  with pytest.raises(FileNotFoundError, match=r"configs/style_vqvae\.py:cpu"):
    pose_generator_trainer.train_and_evaluate(c, str(tmp_path / "gen"))
  c.frozen.style = ""
  with pytest.raises(ValueError, match=r"config\.frozen\.style is empty"):
    pose_generator_trainer.train_and_evaluate(c, str(tmp_path / "gen"))
  # A run of another stage is refused by name.
  other = tmp_path / "other"
  os.makedirs(other / "checkpoints" / "4")
  (other / "config.json").write_text(json.dumps({"trainer": "pose_vqvae"}))
  c.frozen.style = str(other)
  with pytest.raises(ValueError, match="'pose_vqvae' run, not style_vqvae"):
    pose_generator_trainer.train_and_evaluate(c, str(tmp_path / "gen"))


def test_pose_stages_run_through_the_engine(smoke_runs):
  """The smoke pipeline's pose runs (trained by train_pipeline, each
  evaluated at its end)."""
  style_dir, pose_dir, gen_dir = (
    os.path.join(smoke_runs, n)
    for n in ("style_vqvae", "pose_vqvae", "pose_generator")
  )
  res = json.load(open(os.path.join(pose_dir, "eval_results.json")))
  num_codes = json.load(open(os.path.join(pose_dir, "config.json")))["model"][
    "num_codes"
  ]
  assert res["recon_l1"] > 0 and 0 < res["perplexity"] <= num_codes
  saved_pose = checkpoint.load_params(pose_dir)
  assert np.all(np.asarray(saved_pose["extra"]["pose_norm"]["std"]) > 0)

  # The frozen networks are the earlier runs' arrays, unchanged by training.
  frozen = checkpoint.load_params(gen_dir)["extra"]["frozen"]
  np.testing.assert_array_equal(
    frozen["pose_vqvae"]["pose_norm"]["std"],
    saved_pose["extra"]["pose_norm"]["std"],
  )
  saved_style = checkpoint.load_params(style_dir)["params"]
  np.testing.assert_array_equal(
    frozen["style"]["params"]["pool"]["w"], saved_style["pool"]["w"]
  )
  assert "classifier" not in frozen["style"]["params"]  # encoder side only
  res = json.load(open(os.path.join(gen_dir, "eval_results.json")))
  for k in (
    "token_accuracy",
    "token_perplexity",
    "style_dist_right",
    "style_dist_wrong",
    "diversity",
    "nod_align_gen",
    "nod_response_real",
    "jitter_gen",
  ):
    assert np.isfinite(res[k]), k
  assert res["same_seed_max_diff"] == 0.0
  assert res["diversity"] > 0

  # The smoke config calibrates the samples' spectrum: the finished run's
  # gain is in spec.json, the sampler equalises with it, the trainer's
  # eval keeps the samples as drawn beside.
  gain = np.asarray(
    json.load(open(os.path.join(gen_dir, "spec.json")))["spectral_gain"]
  )
  assert gain.shape == (33, 6) and np.all((gain >= 0.25) & (gain <= 4.0))
  assert np.isfinite(res["style_dist_right_smooth_unequalized"])
  sampler = PoseSampler.load(gen_dir)
  np.testing.assert_allclose(
    sampler.equalizer, sampling.equalizer_kernel(gain), atol=1e-7
  )
  rng = np.random.default_rng(0)
  mfcc = rng.normal(size=(80, 28, 12)).astype(np.float32)
  kw = dict(style_code=rng.normal(size=sampler.code_size), num_samples=2)
  if sampler.motion_dim:
    kw["motion_code"] = sampler.motion_code(rng.normal(size=(64, 6)) * 0.02)
  out = sampler(mfcc, **kw)  # [2, 80, 6]
  sampler.equalizer = None
  raw = sampler(mfcc, **kw)
  center = sampler.mean_pose
  want = sampling.equalize(
    jnp.asarray(raw), sampling.equalizer_kernel(gain), center
  )
  np.testing.assert_allclose(out, want, atol=1e-4)
  assert np.abs(out - raw).max() > 1e-4


def test_pose_vqvae_sizes_follow_the_config():
  c = config_lib.load(os.path.join(ROOT, "configs/pose_vqvae.py"))
  model = builders.pose_codebook_model(c.model)
  assert isinstance(model.vq, vqvae.SequenceVQVAE)
  assert (model.vq.in_dim, model.vq.num_codes) == (6, 200)


def test_a_motion_code_and_residual_run_trains_and_samples(
  smoke_runs, prepared_tiny, tmp_path
):
  """model.motion_dim and model.residual_width through the engine on the
  smoke pipeline's frozen runs, then sampled as a user would: the sampler
  asks for the motion code, which reads how the style clip's head moves,
  not where it is, and adds the audio-driven residual to the decoded
  tokens before smoothing."""
  c = _smoke("pose_generator", prepared_tiny["data"])
  c.data.eval_split = "test"
  c.eval_every = c.num_train_steps  # evaluated at its end
  c.model.motion_dim = 4
  c.model.residual_width = 4
  c.loss.style_from = "class"
  c.eval.calibrate_spectrum = False  # the samples as drawn (equaliser: above)
  c.frozen.style = os.path.join(smoke_runs, "style_vqvae")
  c.frozen.pose_vqvae = os.path.join(smoke_runs, "pose_vqvae")
  workdir = str(tmp_path / "gen")
  pose_generator_trainer.train_and_evaluate(c, workdir)
  res = json.load(open(os.path.join(workdir, "eval_results.json")))
  assert np.isfinite(res["style_dist_right"]) and np.isfinite(
    res["token_perplexity"]
  )
  assert res["residual_mse"] > 0 and res["residual_explained"] < 1

  sampler = PoseSampler.load(workdir)
  assert sampler.motion_dim == 4
  rng = np.random.default_rng(0)
  mfcc = rng.normal(size=(40, 28, 12)).astype(np.float32)
  code = sampler.style_code(rng.normal(size=(40, 64)).astype(np.float32))
  with pytest.raises(DataError, match="motion_code"):
    sampler(mfcc, style_code=code)
  pose = (0.05 * rng.normal(size=(50, 6))).astype(np.float32)
  motion = sampler.motion_code(pose)
  assert motion.shape == (4,)
  np.testing.assert_allclose(sampler.motion_code(pose + 1.0), motion, atol=1e-4)
  out = sampler(mfcc, style_code=code, motion_code=motion, num_samples=2)
  assert out.shape == (2, 40, 6) and np.all(np.isfinite(out))
  # Same tokens without the residual: the difference is the residual of
  # the padded utterance (8 n = 40 frames), smoothed.
  fine = sampling.pose_residual(
    sampler.model, sampler.variables, mfcc[None], sampler.pose_std
  )[0]
  assert float(jnp.abs(fine).max()) > 1e-6  # trained away from its zero start
  plain = PoseSampler.load(workdir)
  plain.variables["params"]["residual_net"] = jax.tree.map(
    jnp.zeros_like, plain.variables["params"]["residual_net"]
  )
  bare = plain(mfcc, style_code=code, motion_code=motion, num_samples=2)
  np.testing.assert_allclose(
    out - bare, np.broadcast_to(sampling.savgol(fine), out.shape), atol=1e-5
  )
  # The pipeline hands the sampler the style clip's motion code.
  pipe = Pipeline(
    Stylizer.load(os.path.join(smoke_runs, "audio_driven")), sampler
  )

  def clip(n):
    angles, trans = (0.05 * rng.normal(size=(2, n, 3))).astype(np.float32)
    return io_lib.Coefficients(
      exp=(0.3 * rng.normal(size=(n, 64))).astype(np.float32),
      angles=angles,
      trans=trans,
      crop=np.tile(np.float32([1.0, 128.0, 128.0]), (n, 1)),
      identity=None,
      fps=25.0,
    )

  style, source = clip(70), clip(30)
  wav = (0.1 * rng.normal(size=32000)).astype(np.float32)
  got = pipe(
    Request(style=style, source=source, wav=wav, num_samples=2, seed=3)
  )
  n = features.num_frames_for_audio(len(wav))
  want = sampler(
    features.mfcc_windows(features.mfcc(wav), n),
    style_code=sampler.style_code(style.exp),
    motion_code=sampler.motion_code(style.pose),
    num_samples=2,
    seed=3,
    offset=source.pose.mean(0),
  )
  np.testing.assert_allclose(got.pose, want, atol=1e-5)
  with pytest.raises(DataError, match="reads no motion code"):
    PoseSampler.load(os.path.join(smoke_runs, "pose_generator")).motion_code(
      pose
    )
