"""Stylized expression from a finished audio- or video-driven run.

  stylizer = Stylizer.load("runs/audio_driven")
  s_t = stylizer.style_code(style_exp)                 # [S]
  exp = stylizer(source_exp=src, mel=mel, style_code=s_t)   # [T, 64]
  for part in stylizer.stream(source_exp=src, mel=mel, style_exp=sty):
    ...                                                # [<= chunk, 64]

Audio-driven runs read `mel` ([T, 80, 16] per-frame windows from
input_pipeline.features.mel_windows, as in training) and the source's first
expression frame (the reference expression, as the official inference
takes it; a run with mel_norm="clip_mean" subtracts the whole utterance's
band means, features.clip_mel_mean); video-driven runs read the source
expression sequence itself.
Either way the source's own 32-frame windows give the source style s_src.

The utterance runs in chunks of `chunk` frames with the adapter's LSTM state
carried across them; every other part works frame by frame, so the chunked
output equals a one-pass output. The last chunk is padded to a power of two
(the adapter is causal: padding after a frame cannot change it), so any
length compiles a few shapes once.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np

from input_pipeline import features
from saas_jax.engine import executable_cache
from saas_jax.errors import DataError, check_frames
from saas_jax.inference import runs
from saas_jax.models import builders

WINDOW = builders.WINDOW
EXP_DIM = builders.EXP_DIM
MEL_SHAPE = (80, 16)
CHUNK = 256  # frames per call


# The shortest style clip taken: a quarter window (0.32 s), which mirrored
# to a window shows each frame about four times; shorter, a clip is little
# more than a still. `benchmarks/real_clips.py --only style`
# (short_clip_retrieval, the cpu style run, 2026-12-06) finds a real clip's
# own code from one random frame of it in 57 % of draws, 2 frames 62 %,
# 4 frames 70 %, 8 frames 68 %, 16 frames 79 %, a window 83 %: a judgement,
# not a knee in that curve.
MIN_STYLE_FRAMES = 8


def check_style_length(what: str, num_frames: int) -> None:
  """A DataError for a style clip too short to show a style."""
  if num_frames < MIN_STYLE_FRAMES:
    raise DataError(
      what,
      f"{num_frames} frames at the model's {features.MODEL_FPS:g} fps; a "
      f"style clip needs at least {MIN_STYLE_FRAMES} (a style is motion as "
      f"well as a look; {WINDOW} frames fill the style window)",
    )


def style_windows(what: str, exp, warn: bool = True) -> np.ndarray:
  """[T, 64] -> [W, 32, 64] windows (stride 16). A style clip (warn) has at
  least MIN_STYLE_FRAMES frames and, shorter than 32, is mirrored to length,
  as the official code does, with a warning; a source (not warn) may be a
  single frame, the official input."""
  exp = check_frames(what, exp, EXP_DIM)
  if warn:
    check_style_length(what, len(exp))
  if warn and len(exp) < WINDOW:
    warnings.warn(
      f"{what}: {len(exp)} frames at the model's {features.MODEL_FPS:g} "
      f"fps, shorter than the {WINDOW}-frame style window; mirrored to "
      "length",
      stacklevel=3,
    )
  return features.clip_windows(exp, WINDOW, WINDOW // 2)


def check_code(what: str, code, size: int) -> np.ndarray:
  """A finite [size] style code, or a DataError naming `what`."""
  code = np.asarray(code)
  if code.shape != (size,):
    raise DataError(
      what, f"expected a [{size}] style code, got shape {list(code.shape)}"
    )
  return check_frames(what, code, (), unit="value")


def bucket(n: int, chunk: int) -> int:
  """The padded length of a last chunk of n frames: a power of two."""
  return min(chunk, max(16, 1 << (n - 1).bit_length()))


class Stylizer:
  """The expression generator of one run, with its frozen style encoder."""

  def __init__(
    self,
    generator,
    variables: dict,
    style_model,
    style_variables: dict,
    *,
    quantized_style: bool = True,
    chunk: int = CHUNK,
  ):
    if chunk < 1:
      raise DataError("chunk", f"must be >= 1 frame, got {chunk}")
    self.generator = generator  # models.motion_generator.MotionGenerator
    # On the device once (not copied in at every call).
    self.variables = jax.device_put(variables)  # {"params", "batch_stats"?}
    self.style_variables = jax.device_put(style_variables)
    self.chunk = chunk
    self.run = None  # the runs.Run it was loaded from, if any

    self.quantized_style = quantized_style  # the codes the generator takes
    # False for a style stage trained without one (its codes are continuous
    # whatever `quantize` says).
    self.has_codebook = style_model.vq.codebook

    def codes(v, x, quantize):  # [W, 32, 64] -> [S]: the mean window code
      c = style_model.apply(
        v, x, quantize=quantize, method=style_model.style_code
      )
      return c.mean(0)

    def step(v, source, s_src, s_t, carry, canonical_only):
      def forward(m):
        z = m.content(source, s_src)  # [1, C, 64]
        return m.stylize(z, s_t, carry, canonical_only=canonical_only)

      return generator.apply(v, method=forward)

    self._codes = executable_cache.Jit(
      codes, "style_codes", static_argnums=(2,)
    )
    self._step = executable_cache.Jit(step, "stylize_step", static_argnums=(5,))

  @classmethod
  def load(cls, workdir: str, driver: str | None = None, **kw) -> "Stylizer":
    """From an audio- or video-driven run (driver: require that one)."""
    kind = f"{driver}_driven" if driver else "motion"
    run = runs.load_run(workdir, kind, role=f"{driver or 'expression'} run")
    return cls.from_run(run, **kw)

  @classmethod
  def from_run(cls, run: runs.Run, **kw) -> "Stylizer":
    spec = run.spec
    stylizer = cls.from_state(
      builders.motion_generator_model(spec["model"], spec["driver"]),
      spec["style_model"],
      {"params": run.params, **run.extra},
      quantized_style=spec["quantized_style"],
      **kw,
    )
    stylizer.run = run
    run.cache(stylizer._codes, stylizer._step)
    return stylizer

  @classmethod
  def from_state(
    cls, generator, style_model_cfg, state: dict, **kw
  ) -> "Stylizer":
    """From variables laid out as the expression stage saves them:
    {"params": {"generator": ...}, "batch_stats"?, "frozen": {"style"}}."""
    variables = {"params": state["params"]["generator"]}
    if state.get("batch_stats"):
      variables["batch_stats"] = state["batch_stats"]
    return cls(
      generator,
      variables,
      builders.style_encoder(style_model_cfg),
      builders.style_encoder_variables(
        style_model_cfg, state["frozen"]["style"]
      ),
      **kw,
    )

  @property
  def driver(self) -> str:
    return self.generator.driver

  # ----------------------------------------------------------- pieces ---

  def style_code(
    self,
    exp,
    what: str = "style clip",
    warn: bool = True,
    quantize: bool | None = None,
  ) -> np.ndarray:
    """[T, 64] expression (T >= MIN_STYLE_FRAMES; any T >= 1 with
    warn=False, a source) -> [S]: the mean code of its
    32-frame windows (stride 16); quantized as the generator's codes are,
    unless `quantize` says otherwise (evaluation: always, so that
    distances compare across variants)."""
    windows = style_windows(what, exp, warn)
    if quantize is None:
      quantize = self.quantized_style
    return np.asarray(
      self._codes(self.style_variables, jnp.asarray(windows), quantize)
    )

  def _inputs(self, source_exp, mel, blink, style_exp, style_code):
    source_exp = check_frames("source expression", source_exp, EXP_DIM)
    if self.driver == "audio":
      if mel is None:
        raise DataError("mel", "an audio-driven run needs mel windows")
      mel = check_frames("mel windows", mel, MEL_SHAPE)
      num_frames = len(mel)
      blink = (
        np.zeros(num_frames, np.float32)
        if blink is None
        else check_frames("blink", blink, ())
      )
      if len(blink) != num_frames:
        raise DataError(
          "blink", f"{len(blink)} frames, the audio has {num_frames}"
        )
    else:
      num_frames = len(source_exp)
    if style_code is None:
      if style_exp is None:
        raise DataError("style", "give style_exp or style_code")
      style_code = self.style_code(style_exp)
    s_src = self.style_code(source_exp, "source expression", warn=False)
    style_code = check_code("style_code", style_code, s_src.shape[0])
    return source_exp, mel, blink, num_frames, s_src, style_code

  def _source(self, source_exp, mel, mel_mean, blink, start, stop, size):
    """The content input of frames [start, stop), padded to `size`."""
    pad = size - (stop - start)

    def take(x):  # [T, ...] -> [1, size, ...]
      part = x[start:stop]
      if pad:
        part = np.concatenate([part, np.repeat(part[-1:], pad, 0)])
      return jnp.asarray(part[None])

    if self.driver == "video":
      return {"exp": take(source_exp)}
    return {
      "mel": take(mel),
      "mel_mean": jnp.asarray(mel_mean[None]),
      "ref_exp": jnp.asarray(source_exp[None, 0]),
      "blink": take(blink),
    }

  # -------------------------------------------------------------- API ---

  def stream(
    self,
    *,
    source_exp,
    mel=None,
    blink=None,
    style_exp=None,
    style_code=None,
    source_code=None,
    canonical_only: bool = False,
  ):
    """Yields [<= chunk, 64] pieces; their concatenation equals __call__.

    source_exp [T0, 64] (T0 >= 1); audio: mel [T, 80, 16] and blink [T]
    (default none); the target style as style_exp [T', 64] or style_code
    [S]; source_code [S] overrides the source style s_src. canonical_only:
    the adapter's canonical branch alone (an ablation to evaluate with).
    """
    source_exp, mel, blink, t, s_src, s_t = self._inputs(
      source_exp, mel, blink, style_exp, style_code
    )
    if source_code is not None:
      s_src = check_code("source_code", source_code, s_src.shape[0])
    s_src, s_t = jnp.asarray(s_src[None]), jnp.asarray(s_t[None])
    # of the whole utterance, whatever the chunks (mel_norm="clip_mean")
    mel_mean = None if mel is None else features.clip_mel_mean(mel)
    carry = None
    for start in range(0, t, self.chunk):
      stop = min(t, start + self.chunk)
      size = (
        self.chunk
        if stop - start == self.chunk
        else bucket(stop - start, self.chunk)
      )
      source = self._source(source_exp, mel, mel_mean, blink, start, stop, size)
      exp, carry = self._step(
        self.variables, source, s_src, s_t, carry, canonical_only
      )
      yield np.asarray(exp[0, : stop - start])

  def __call__(self, **inputs) -> np.ndarray:
    """-> [T, 64], the whole utterance (same inputs as `stream`)."""
    return np.concatenate(list(self.stream(**inputs)))
