"""Quantizer, sequence VQ-VAE, style codebook and critics."""

import functools
import pathlib

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from saas_jax import losses
from saas_jax.engine import loop
from saas_jax.models import (
  audio_encoder,
  critics,
  layers,
  motion_decoder,
  quantizer,
  residual_adapter,
  style_codebook,
  vqvae,
)


def _init(module, *args, **kw):
  return module.init(
    {"params": jax.random.key(0), "vq": jax.random.key(1)}, *args, **kw
  )


def test_quantizer_picks_nearest_code_and_passes_gradient_straight():
  vq = quantizer.VectorQuantizer(num_codes=8, dim=4)
  z = jax.random.normal(jax.random.key(2), (3, 5, 4))
  variables = _init(vq, z)
  codes = variables["params"]["codebook"]
  zq, aux = vq.apply(variables, z)
  dist = ((z[..., None, :] - codes) ** 2).sum(-1)
  np.testing.assert_array_equal(aux["indices"], dist.argmin(-1))
  np.testing.assert_allclose(zq, codes[aux["indices"]], atol=1e-6)
  # Straight-through: d(sum(w * zq))/dz == w.
  w = jax.random.normal(jax.random.key(3), z.shape)
  grad = jax.grad(lambda z: jnp.sum(w * vq.apply(variables, z)[0]))(z)
  np.testing.assert_allclose(grad, w, atol=1e-6)
  # VQ loss = beta * commitment + codebook term, both |z - e|^2 means.
  mse = float(jnp.mean((z - zq) ** 2))
  np.testing.assert_allclose(aux["vq_loss"], 1.25 * mse, rtol=1e-5)
  assert 1 <= float(aux["perplexity"]) <= 8


def test_quantizer_channel_major_grouping():
  """The official layout: each vector mixes D/N channels of all N tokens."""
  vq = quantizer.VectorQuantizer(num_codes=4, dim=8, grouping="channel_major")
  z = jnp.arange(2 * 4 * 8, dtype=jnp.float32).reshape(2, 4, 8)
  grouped = quantizer._group(z, "channel_major")
  # Vector 0 of sample 0 = channels 0..1 of all 4 tokens, channel-major.
  np.testing.assert_array_equal(grouped[0, 0], [0, 8, 16, 24, 1, 9, 17, 25])
  np.testing.assert_array_equal(quantizer._ungroup(grouped, "channel_major"), z)
  variables = _init(vq, z)
  zq, aux = vq.apply(variables, z)
  assert zq.shape == z.shape and aux["indices"].shape == (2, 4)
  # The style stage's option for it (README "A product code").
  from saas_jax.engine import config_lib

  root = pathlib.Path(__file__).resolve().parents[1]
  c = config_lib.load(f"{root}/configs/style_vqvae.py:cpu,channel_major")
  assert c.model.grouping == "channel_major" and c.model.codebook


def test_ema_quantizer_moves_codes_and_restarts_dead_ones():
  vq = quantizer.VectorQuantizer(
    num_codes=16,
    dim=4,
    ema=True,
    decay=0.5,
    restart_dead=True,
    dead_threshold=0.5,
  )
  z = jax.random.normal(jax.random.key(0), (8, 4, 4)) + 3.0
  variables = _init(vq, z)
  assert "codebook" not in variables.get("params", {})
  before = variables["vq_stats"]["codebook"]
  stats = variables["vq_stats"]
  for i in range(5):
    (_, aux), upd = vq.apply(
      {"vq_stats": stats},
      z,
      train=True,
      mutable=["vq_stats"],
      rngs={"vq": jax.random.key(i)},
    )
    stats = upd["vq_stats"]
  after = stats["codebook"]
  # Codes followed the data (mean 3) instead of staying near 0.
  assert float(jnp.abs(after.mean() - 3)) < float(jnp.abs(before.mean() - 3))
  _, aux = vq.apply({"vq_stats": stats}, z)
  assert float(aux["perplexity"]) > 2  # restarts spread the data over codes


def test_squasher_and_expander_lengths():
  x = jnp.zeros((2, 32, 64))
  sq = layers.Squasher(16, factor=3)
  v = _init(sq, x, train=False)
  z = sq.apply(v, x, train=False)
  assert z.shape == (2, 4, 16)
  ex = layers.Expander(16, factor=3)
  v = _init(ex, z, train=False)
  assert ex.apply(v, z, train=False).shape == (2, 32, 16)


def test_attention_scale_options_differ():
  x = jax.random.normal(jax.random.key(0), (1, 4, 32))
  a = layers.Attention(32, 4, "head")
  v = _init(a, x)
  b = layers.Attention(32, 4, "hidden")
  assert not np.allclose(a.apply(v, x), b.apply(v, x))


def test_transformer_dropout_only_while_training():
  x = jax.random.normal(jax.random.key(0), (2, 4, 32))
  net = layers.Transformer(32, 2, 4, 64, 4, dropout=0.5)
  v = _init(net, x)
  np.testing.assert_allclose(
    net.apply(v, x), layers.Transformer(32, 2, 4, 64, 4).apply(v, x)
  )
  train = [
    net.apply(v, x, train=True, rngs={"dropout": jax.random.key(k)})
    for k in (1, 2)
  ]
  assert not np.allclose(train[0], train[1])
  with pytest.raises(flax.errors.InvalidRngError, match="dropout"):
    net.apply(v, x, train=True)  # no "dropout" rng


def _count(tree):
  return loop.count_params(tree)


def test_paper_size_parameter_counts():
  model = style_codebook.StyleCodebook(num_classes=1323)
  shapes = jax.eval_shape(
    lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 64)))
  )["params"]
  total = _count(shapes)
  assert abs(total - 13.47e6) / 13.47e6 < 0.01, total  # official 13.47 M
  clf = jax.eval_shape(
    lambda: critics.StyleClassifier(1323).init(
      jax.random.key(0), jnp.zeros((1, 32, 64))
    )
  )["params"]
  assert abs(_count(clf) - 3.42e6) / 3.42e6 < 0.01  # official 3.42 M
  pose = jax.eval_shape(
    lambda: vqvae.SequenceVQVAE(in_dim=6, num_codes=200).init(
      jax.random.key(0), jnp.zeros((1, 32, 6))
    )
  )["params"]
  assert abs(_count(pose) - 12.91e6) / 12.91e6 < 0.01  # official 12.91 M


def test_style_codebook_shapes_and_style_code():
  model = style_codebook.StyleCodebook(
    num_classes=5,
    vq=vqvae.SequenceVQVAE(
      hidden=32, layers=1, heads=2, mlp_dim=64, num_codes=16
    ),
  )
  x = jax.random.normal(jax.random.key(0), (3, 32, 64))
  v = _init(model, x)
  out = model.apply(v, x)
  assert out["recon"].shape == (3, 32, 64)
  assert out["style"].shape == (3, 32) and out["logits"].shape == (3, 5)
  s = model.apply(v, x, method=model.style_code)
  np.testing.assert_allclose(s, out["style"], atol=1e-5)
  # decode=n (loss.reconstruct="anchor"): the first n windows' reconstruction
  # only, everything else as before.
  part = model.apply(v, x, decode=2)
  assert part["recon"].shape == (2, 32, 64)
  np.testing.assert_allclose(part["recon"], out["recon"][:2], atol=1e-5)
  np.testing.assert_allclose(part["logits"], out["logits"], atol=1e-5)


def test_style_codebook_without_codebook_passes_continuous_tokens():
  """codebook=False (the paper's no-codebook ablation): the decoder and the
  style code get the encoder's tokens as they are, quantize or not, and
  nothing pulls the tokens toward codes (no VQ loss)."""
  vq = dict(hidden=32, layers=1, heads=2, mlp_dim=64, num_codes=16)
  model = style_codebook.StyleCodebook(
    num_classes=5, vq=vqvae.SequenceVQVAE(**vq, codebook=False)
  )
  x = jax.random.normal(jax.random.key(0), (3, 32, 64))
  v = _init(model, x)
  out = model.apply(v, x)
  assert out["indices"].shape == (3, 4)  # usage is still reported
  # Its loss moves the (gradient-trained) codebook, never the encoder.
  grads = jax.grad(lambda p: model.apply({**v, "params": p}, x)["vq_loss"])(
    v["params"]
  )
  vq_grads = grads["vq"]
  assert float(jnp.abs(vq_grads["quantizer"]["codebook"]).max()) > 0
  for name, g in vq_grads.items():
    if name != "quantizer":
      assert all(float(jnp.abs(a).max()) == 0 for a in jax.tree.leaves(g))
  quantized = model.apply(v, x, method=model.style_code)
  continuous = model.apply(v, x, quantize=False, method=model.style_code)
  np.testing.assert_allclose(quantized, continuous, atol=1e-6)
  np.testing.assert_allclose(quantized, out["style"], atol=1e-5)
  # With the codebook the same weights give other (snapped) codes.
  with_codebook = style_codebook.StyleCodebook(
    num_classes=5, vq=vqvae.SequenceVQVAE(**vq)
  )
  snapped = with_codebook.apply(v, x, method=with_codebook.style_code)
  assert np.abs(np.asarray(snapped) - np.asarray(continuous)).max() > 1e-3


def test_velocity_channels_are_the_scaled_frame_differences():
  net = vqvae.SequenceVQVAE(
    hidden=32, layers=1, heads=2, mlp_dim=64, num_codes=16, velocity_scale=4.0
  )
  x = jax.random.normal(jax.random.key(0), (3, 32, 64))
  v = _init(net, x)
  conv = v["params"]["squasher"]["down0"]["Conv_0"]
  assert conv["kernel"].shape == (5, 128, 32)  # coefficients + velocities
  enc = functools.partial(net.apply, method=net.encode)
  # With the coefficient half of the first conv zeroed, the encoder sees
  # velocities only: blind to a constant offset, not to a time reversal.
  flat = flax.traverse_util.flatten_dict(v["params"])
  flat["squasher", "down0", "Conv_0", "kernel"] = (
    conv["kernel"].at[:, :64].set(0)
  )
  vel_only = {**v, "params": flax.traverse_util.unflatten_dict(flat)}
  np.testing.assert_allclose(
    enc(vel_only, x), enc(vel_only, x + 0.7), atol=1e-4
  )
  assert not np.allclose(enc(vel_only, x), enc(vel_only, x[:, ::-1]))
  # ... and scaled as configured: velocities x4 equal input x4 at scale 1.
  slow = vqvae.SequenceVQVAE(
    hidden=32, layers=1, heads=2, mlp_dim=64, num_codes=16, velocity_scale=1.0
  )
  np.testing.assert_allclose(
    enc(vel_only, x),
    slow.apply(vel_only, 4.0 * x, method=slow.encode),
    rtol=1e-4,
    atol=1e-4,
  )


def test_factorized_classifier_is_one_linear_layer_with_shared_weights():
  # Classes 0..3 = (person, emotion, level): (0,0,1) (0,1,1) (1,0,1) (1,1,3).
  factors = ((0, 0, 1, 1), (0, 1, 0, 1), (1, 1, 1, 3))
  model = style_codebook.StyleCodebook(
    num_classes=4,
    vq=vqvae.SequenceVQVAE(
      hidden=32, layers=1, heads=2, mlp_dim=64, num_codes=16
    ),
    class_factors=factors,
  )
  x = jax.random.normal(jax.random.key(0), (3, 32, 64))
  v = _init(model, x)
  p = v["params"]
  assert [p[f"factor_heads_{i}"]["kernel"].shape for i in range(3)] == [
    (32, 2),
    (32, 2),
    (32, 4),
  ]
  w = p["classifier"]["kernel"] + sum(
    p[f"factor_heads_{i}"]["kernel"][:, list(values)]
    for i, values in enumerate(factors)
  )  # [32, 4]: the one linear layer the heads amount to
  out = model.apply(v, x)
  np.testing.assert_allclose(
    out["logits"], out["style"] @ w + p["classifier"]["bias"], atol=1e-5
  )
  # Classes 0 and 2 share emotion 0: moving that emotion's weights moves both.
  p2 = {**p}
  p2["factor_heads_1"] = {
    "kernel": p["factor_heads_1"]["kernel"].at[:, 0].add(1)
  }
  moved = model.apply({**v, "params": p2}, x)["logits"] - out["logits"]
  assert np.all(np.abs(moved[:, [0, 2]]) > 0)
  np.testing.assert_allclose(moved[:, [1, 3]], 0.0, atol=1e-6)


@pytest.mark.parametrize("pieces", [1, 3])
@pytest.mark.parametrize(
  "kernel, strides, padding",
  [(3, (1, 1), 1), (3, (3, 1), 1), (3, (3, 2), 1), (1, (1, 1), 0)],
)
def test_mel_cnn_conv_gradient_is_the_convolution_gradient(
  kernel, strides, padding, pieces, monkeypatch
):
  """The mel CNN's convolution has its own backward pass (im2col kernel
  gradient, summed over pieces of the batch): both gradients equal those
  of the plain convolution, also when 5 examples make 3 pieces of 2 (the
  last padded)."""
  kx, kw, kg = jax.random.split(jax.random.key(0), 3)
  x = jax.random.normal(kx, (5, 11, 7, 5))
  w = jax.random.normal(kw, (kernel, kernel, 5, 4))
  pads = ((padding, padding),) * 2
  out = audio_encoder._lax_conv(x, w, strides, pads)
  patch_bytes = np.prod(out.shape[:3]) * kernel**2 * 5 * 4  # all 5 examples
  monkeypatch.setattr(
    audio_encoder, "GRAD_PIECE_BYTES", int(patch_bytes / pieces * 1.2)
  )
  g = jax.random.normal(kg, out.shape)

  def grads(conv):
    return jax.grad(
      lambda x, w: jnp.sum(conv(x, w, strides, pads) * g), (0, 1)
    )(x, w)

  for ours, ref in zip(
    grads(audio_encoder._conv), grads(audio_encoder._lax_conv), strict=True
  ):
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


def test_patch_critic_patches():
  critic = critics.PatchCritic(1)
  x = jnp.zeros((2, 32, 64))
  v = _init(critic, x)
  assert critic.apply(v, x).shape == (2, 7, 1)


def test_losses():
  p = jnp.zeros((2, 3, 64))
  t = jnp.ones((2, 3, 64))
  assert float(losses.grouped_l1(p, t)) == pytest.approx(3.0)
  assert float(losses.grouped_l1(p, t, ())) == pytest.approx(1.0)
  s = jnp.zeros((4, 8))
  far = jnp.full((4, 8), 10.0)
  # Positive at the anchor, negatives far: no loss; the reverse: a big one.
  assert float(losses.style_triplet(s, s, far, far)) == 0.0
  assert float(losses.style_triplet(s, far, s, s)) == pytest.approx(205.0)


def test_decoder_sees_the_style_code_only_when_styled():
  y = jnp.ones((2, 5, 16))  # [B, T, H]
  s_a, s_b = jnp.zeros((2, 32)), jnp.ones((2, 32))  # [B, S]
  outs = {}
  for styled in (True, False):
    dec = motion_decoder.MotionDecoder((8,), styled=styled)
    params = dec.init(jax.random.PRNGKey(0), y, s_a)
    first = params["params"]["Dense_0"]["kernel"]
    assert first.shape == ((16 + 32) if styled else 16, 8)
    outs[styled] = [dec.apply(params, y, s) for s in (s_a, s_b)]
    assert outs[styled][0].shape == (2, 5, 64)
  assert not np.allclose(*outs[True])
  np.testing.assert_array_equal(*outs[False])


def test_gated_hyperstyle_starts_as_the_branch_without_it():
  """hyper_gate: HyperStyle's offsets start at 0, so the style branch's
  first output is that of the same weights without HyperStyle; ungated
  (official) offsets change it from the start; the gate gets a gradient."""
  z = jax.random.normal(jax.random.key(0), (2, 7, 64))  # [B, T, 64]
  s_t = jax.random.normal(jax.random.key(1), (2, 256))  # [B, S]

  def adapter(**kw):
    return residual_adapter.ResidualAdapter(64, hyper_width=0.25, **kw)

  def run(model, v):  # -> y [B, T, 64]
    return model.apply(v, z, s_t, train=True, mutable=["batch_stats"])[0][0]

  plain = adapter(hyperstyle=False)
  shared = plain.init(jax.random.key(2), z, s_t)["params"]
  outs = {}
  for name, gate in (("gated", True), ("official", False)):
    model = adapter(hyper_gate=gate)
    v = model.init(jax.random.key(3), z, s_t)
    v = {**v, "params": {**v["params"], **shared}}  # same LSTM weights
    outs[name] = run(model, v)
    if gate:
      grads = jax.grad(
        lambda p, m=model, v=v: run(m, {**v, "params": p}).sum()
      )(v["params"])
      for k in ("gate_ih", "gate_hh"):
        assert float(jnp.abs(grads["hyperstyle1"][k]).max()) > 0
  base = run(plain, {"params": shared})
  np.testing.assert_allclose(outs["gated"], base, atol=1e-6)
  assert float(jnp.abs(outs["official"] - base).max()) > 1e-2


@pytest.mark.parametrize("canonical_only", [False, True])
def test_content_skip_adds_a_linear_map_of_the_content(canonical_only):
  """content_skip: y gains W z + b past the LSTM stacks (in the canonical
  branch alone too); with the same LSTM weights, the rest is unchanged."""
  z = jax.random.normal(jax.random.key(0), (2, 7, 64))  # [B, T, 64]
  s_t = jax.random.normal(jax.random.key(1), (2, 256))  # [B, S]

  def adapter(skip):
    return residual_adapter.ResidualAdapter(
      16, hyper_width=0.25, content_skip=skip
    )

  v = adapter(True).init(jax.random.key(2), z, s_t)
  without = {k: w for k, w in v["params"].items() if k != "content_skip"}

  def run(skip, params):  # -> y [B, T, 16]
    variables = {**v, "params": params}
    return adapter(skip).apply(
      variables, z, s_t, canonical_only=canonical_only
    )[0]

  skip = v["params"]["content_skip"]
  assert skip["kernel"].shape == (64, 16)
  np.testing.assert_allclose(
    run(True, v["params"]) - run(False, without),
    z @ skip["kernel"] + skip["bias"],
    atol=1e-5,
  )
