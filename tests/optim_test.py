"""Optimizer construction: the Noam schedule, clipping and freezing."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from saas_jax.engine import checkpoint, config_lib, optim


def test_noam_matches_the_reference_formula():
  sched = optim.noam(2.0, 256, 100_000)
  for step in (0, 99, 99_999, 400_000):
    n = step + 1
    want = 2.0 * 256**-0.5 * min(n**-0.5, n * 100_000**-1.5)
    assert float(sched(step)) == pytest.approx(want, rel=1e-5)
  # Peak at the warmup step, about 3.95e-4 (reference §2.2).
  assert float(sched(99_999)) == pytest.approx(3.95e-4, rel=1e-2)


def _cfg(**kw):
  c = config_lib.base("x").optim
  c.update({"schedule": "constant", "lr": 0.1, **kw})
  return ml_collections.FrozenConfigDict(c)


def test_freeze_gives_zero_updates_to_matching_params():
  params = {"encoder": {"w": jnp.ones(3)}, "head": {"w": jnp.ones(3)}}
  tx = optim.make_optimizer(_cfg(freeze=("^encoder/",)), 10)
  grads = jax.tree.map(jnp.ones_like, params)
  updates, _ = tx.update(grads, tx.init(params), params)
  np.testing.assert_array_equal(updates["encoder"]["w"], 0)
  assert np.all(np.asarray(updates["head"]["w"]) != 0)


def test_clipping_bounds_the_update():
  params = {"w": jnp.zeros(4)}
  tx = optim.make_optimizer(
    _cfg(name="adam", clip_norm=1e-3, b2=0.999, eps=1e-8), 10
  )
  grads = {"w": jnp.full(4, 1e6)}
  updates, _ = tx.update(grads, tx.init(params), params)
  assert np.all(np.isfinite(updates["w"]))


def test_unknown_names_are_rejected():
  with pytest.raises(ValueError, match="unknown optimizer"):
    optim.make_optimizer(_cfg(name="sgdx"), 10)
  with pytest.raises(ValueError, match="unknown schedule"):
    optim.make_optimizer(
      ml_collections.FrozenConfigDict({**_cfg().to_dict(), "schedule": "x"}),
      10,
    )


def test_cosine_warmup_longer_than_the_run_is_named():
  cfg = _cfg(schedule="cosine", warmup_steps=200)
  with pytest.raises(ValueError, match=r"warmup_steps \(200\).*\(20\)"):
    optim.make_optimizer(cfg, 20)
  optim.make_optimizer(cfg, 201)  # one decay step is enough


def test_merge_matching_copies_same_path_and_shape():
  target = {"a": {"w": np.zeros(3), "b": np.zeros(2)}, "c": np.zeros(1)}
  source = {"w": np.ones(3), "b": np.ones(5)}
  merged, copied = checkpoint.merge_matching(target, source, prefix="a")
  assert copied == ["a/w"]
  np.testing.assert_array_equal(merged["a"]["w"], 1)
  np.testing.assert_array_equal(merged["a"]["b"], 0)
