"""The style space of a finished style run: codes, codebook tokens, usage.

  space = StyleSpace.load("runs/style_vqvae")
  code = space.code(exp)               # [S]: the clip's style code
  tokens = space.tokens(exp)           # [W, N] codebook entries per window
  space.usage([exp, ...])              # [num_codes] share of all tokens

A clip's style code is the mean over its 32-frame windows (stride 16), as
the expression and pose stages compute it from their frozen copy of this
encoder (same weights: Pipeline.load checks their fingerprints).
"""

import jax.numpy as jnp
import numpy as np

from saas_jax.engine import executable_cache
from saas_jax.evaluators.codebook import perplexity  # noqa: F401 (API)
from saas_jax.inference import runs
from saas_jax.inference.expression import style_windows
from saas_jax.models import builders


def _padded(windows: np.ndarray) -> np.ndarray:
  """Window count padded to a power of two: a few shapes, compiled once."""
  n = len(windows)
  size = 1 << (n - 1).bit_length()
  return np.concatenate([windows, np.repeat(windows[-1:], size - n, 0)])


class StyleSpace:
  """The style encoder of one style run (E_s, the codebook, the pooling)."""

  def __init__(self, run: runs.Run):
    self.run = run
    cfg = run.spec["model"]
    self.num_codes = int(cfg["num_codes"])
    model = builders.style_encoder(cfg)
    self._variables = builders.style_encoder_variables(
      cfg, {"params": run.params, **run.extra}
    )

    def codes(v, x, quantize):  # [W, 32, 64] -> [W, S]
      return model.apply(v, x, quantize=quantize, method=model.style_code)

    def tokens(v, x):  # [W, 32, 64] -> [W, N]
      def indices(m, x):
        return m.vq.quantize(m.vq.encode(x))[1]["indices"]

      return model.apply(v, x, method=indices)

    self._codes = executable_cache.Jit(
      codes, "style_space_codes", static_argnums=(2,)
    )
    self._tokens = executable_cache.Jit(tokens, "style_space_tokens")
    run.cache(self._codes, self._tokens)

  @classmethod
  def load(cls, workdir: str) -> "StyleSpace":
    return cls(runs.load_run(workdir, "style_vqvae"))

  def window_codes(self, exp, quantize: bool = True) -> np.ndarray:
    """[T, 64] -> [W, S]: one code per 32-frame window. quantize=False pools
    the encoder's continuous tokens instead of their codebook entries."""
    windows = style_windows("style clip", exp)
    out = self._codes(self._variables, jnp.asarray(_padded(windows)), quantize)
    return np.asarray(out)[: len(windows)]

  def code(self, exp, quantize: bool = True) -> np.ndarray:
    """[T, 64] -> [S]: the clip's style code (mean over its windows)."""
    return self.window_codes(exp, quantize).mean(0)

  def tokens(self, exp) -> np.ndarray:
    """[T, 64] -> [W, N] int: the codebook entry of each window's tokens."""
    windows = style_windows("style clip", exp)
    out = self._tokens(self._variables, jnp.asarray(_padded(windows)))
    return np.asarray(out)[: len(windows)]

  def usage(self, clips) -> np.ndarray:
    """[num_codes]: how often each entry is used over the clips' tokens."""
    counts = np.zeros(self.num_codes)
    for exp in clips:
      counts += np.bincount(self.tokens(exp).ravel(), minlength=self.num_codes)
    return counts / max(counts.sum(), 1)
