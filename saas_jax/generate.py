"""Inference for the expression stage: content + a style clip -> expression.

  stylizer = generate.Stylizer.load("runs/audio_driven")
  exp = stylizer(style_exp=..., source_exp=..., mel=...)          # one pass
  for part in stylizer.stream(style_exp=..., source_exp=..., mel=...,
                              chunk=250):                          # streaming
    ...

Audio-driven runs take `mel` ([T, 80, 16] per-frame windows from
input_pipeline.features.mel_windows, the same windows training used) and
the source's expression (at least one frame: its first frame is the
reference expression, and its 32-frame windows give the source style;
one frame is repeated, as the official inference does). Video-driven runs
take the source expression sequence itself as the content.

The stream carries the adapter's LSTM states across chunks; every other
part works frame by frame, so the streamed output equals the one-pass
output (tests/motion_test.py shows it on 60 s).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from saas_jax.engine import checkpoint, evaluation
from saas_jax.trainers import motion

WINDOW = motion.WINDOW


class Stylizer:
  def __init__(self, nets: motion.Nets, params, extra, cfg):
    self.nets = nets
    self.cfg = cfg
    self.generator = {"params": params["generator"]}
    if extra.get("batch_stats"):
      self.generator["batch_stats"] = extra["batch_stats"]
    self.frozen = extra["frozen"]
    self._codes = jax.jit(functools.partial(motion.style_codes, nets, cfg=cfg))
    self._content = jax.jit(self._content_fn)
    self._stylize = jax.jit(self._stylize_fn)

  @classmethod
  def load(cls, workdir: str) -> "Stylizer":
    """From a finished audio- or video-driven run's workdir."""
    config = motion.run_config(workdir, "Stylizer.load")
    loaded = checkpoint.load_params(workdir)
    critic = loaded["params"]["critics"]["style"]
    num_classes = critic["cond0"]["kernel"].shape[0]
    nets = motion.make_nets(config, num_classes)
    return cls(
      nets, loaded["params"], loaded["extra"], motion.stage_cfg(config)
    )

  # ----------------------------------------------------------- pieces ---

  def style_code(self, exp: np.ndarray) -> jax.Array:
    """[T, 64] (any T >= 1) -> [S]: the mean code over 32-frame windows."""
    exp = np.asarray(exp, np.float32)
    if exp.ndim != 2 or exp.shape[1] != 64 or not len(exp):
      raise ValueError(f"expected a [T, 64] expression, got {exp.shape}")
    windows = evaluation.clip_windows(exp, WINDOW, WINDOW // 2)
    return self._codes(self.frozen, jnp.asarray(windows)).mean(0)

  def _content_fn(self, variables, source, s_src):
    return self.nets.generator.apply(
      variables, source, s_src, method=self.nets.generator.content
    )

  def _stylize_fn(self, variables, z, s_t, carry):
    return self.nets.generator.apply(
      variables, z, s_t, carry, method=self.nets.generator.stylize
    )

  def _source(self, source_exp, mel, blink, start, stop):
    driver = self.nets.generator.driver
    if driver == "video":
      return {"exp": jnp.asarray(source_exp[None, start:stop])}
    if mel is None:
      raise ValueError("an audio-driven model needs `mel` [T, 80, 16]")
    blink = np.zeros(len(mel), np.float32) if blink is None else blink
    return {
      "mel": jnp.asarray(mel[None, start:stop]),
      "ref_exp": jnp.asarray(source_exp[None, 0]),
      "blink": jnp.asarray(blink[None, start:stop], jnp.float32),
    }

  def _prepare(self, style_exp, source_exp, mel):
    source_exp = np.asarray(source_exp, np.float32)
    num_frames = len(source_exp) if mel is None else len(mel)
    if self.nets.generator.driver == "audio" and mel is not None:
      mel = np.asarray(mel, np.float32)
      if mel.ndim != 3 or mel.shape[1:] != (80, 16):
        raise ValueError(f"expected mel windows [T, 80, 16], got {mel.shape}")
    s_src = self.style_code(source_exp)[None]
    s_t = self.style_code(style_exp)[None]
    return source_exp, mel, num_frames, s_src, s_t

  # -------------------------------------------------------------- API ---

  def __call__(self, *, style_exp, source_exp, mel=None, blink=None):
    """-> [T, 64], the whole sequence in one pass."""
    source_exp, mel, t, s_src, s_t = self._prepare(style_exp, source_exp, mel)
    source = self._source(source_exp, mel, blink, 0, t)
    z = self._content(self.generator, source, s_src)
    exp, _ = self._stylize(self.generator, z, s_t, None)
    return np.asarray(exp[0])

  def stream(self, *, style_exp, source_exp, mel=None, blink=None, chunk=250):
    """Yields [<= chunk, 64] pieces; their concatenation equals __call__."""
    source_exp, mel, t, s_src, s_t = self._prepare(style_exp, source_exp, mel)
    carry = None
    for start in range(0, t, chunk):
      stop = min(t, start + chunk)
      source = self._source(source_exp, mel, blink, start, stop)
      z = self._content(self.generator, source, s_src)
      exp, carry = self._stylize(self.generator, z, s_t, carry)
      yield np.asarray(exp[0])
