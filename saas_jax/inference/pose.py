"""Head pose from a finished pose-generator run: tokens -> decoded, smoothed
pose, N samples in one call, streamed in chunks of bounded memory.

  sampler = PoseSampler.load("runs/pose_generator")
  poses = sampler(mfcc, style_code=sampler.style_code(style_exp),
                  num_samples=4, seed=0)            # [4, T, 6]
  for part in sampler.stream(mfcc, style_code=..., num_samples=4):
    ...                                             # [4, <= chunk, 6]

A run trained with a motion code (model.motion_dim > 0) also reads the
style clip's head pose: motion_code=sampler.motion_code(style_pose).

mfcc: [T, 28, 12] per-frame windows (input_pipeline.features.mfcc_windows).
Pose: 3 angles (radians) + 3 translations per frame, as the pose codebook
was trained on.

Work per chunk of `chunk_tokens` tokens (8 frames each): the audio CNN and
the speaker tokens of the chunk's steps (saas_jax.sampling.speaker_stream),
then the compiled sampling loop for all N samples, carrying the past tokens
to the next chunk (steps keep their global numbers, so keys and masking are
those of one long call). Decoding needs 3 tokens of look-ahead (sliding
4-token windows) and the Savitzky-Golay filter 6 frames, so a chunk's pose
is emitted as soon as those exist; the concatenation equals decoding and
smoothing the whole token sequence at once (sampling.decode_sliding and
sampling.savgol), which tests/generate_test.py checks.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.signal

from saas_jax import sampling
from saas_jax.engine import executable_cache
from saas_jax.errors import DataError, check_frames
from saas_jax.inference import runs
from saas_jax.inference.expression import check_code, style_windows
from saas_jax.models import builders
from saas_jax.models.pose_codebook import POSE_DIM

MFCC_SHAPE = (28, 12)
CHUNK_TOKENS = 32  # 256 frames per chunk
WINDOW = sampling.WINDOW
SAVGOL_WINDOW = 13  # frames of the Savitzky-Golay filter on sampled poses


class PoseSampler:
  def __init__(
    self,
    model,
    variables: dict,
    codebook,
    codebook_variables: dict,
    style_model,
    style_variables: dict,
    *,
    chunk_tokens: int = CHUNK_TOKENS,
    savgol_window: int = SAVGOL_WINDOW,
    savgol_order: int = 2,
    spectral_gain=None,
  ):
    if chunk_tokens < 1:
      raise DataError("chunk_tokens", f"must be >= 1, got {chunk_tokens}")
    self.model = model  # models.pose_generator.PoseGenerator
    # On the device once (not copied in at every call).
    self.variables = jax.device_put(variables)
    self.codebook_variables = jax.device_put(codebook_variables)
    self.style_variables = jax.device_put(style_variables)
    self.run = None  # the runs.Run it was loaded from, if any
    self.chunk_tokens = chunk_tokens
    self.code_size = style_model.vq.hidden  # S, the style codes' width
    self.savgol = (savgol_window, savgol_order)
    # A relative codebook decodes motion about the training clips' average
    # head position; `offset` moves it to the caller's head (savgol keeps
    # constants, so shifting after smoothing is the same).
    self.relative = codebook.relative
    self.mean_pose = np.asarray(codebook_variables["pose_norm"]["mean"])
    self.pose_std = np.asarray(codebook_variables["pose_norm"]["std"])
    self.motion_dim = model.motion_dim  # 0: the run reads no motion code
    # [K, 6] FIR that gives the smoothed samples a real clip's spectrum
    # (the run's spectral gain; None: as sampled). It acts about mean_pose.
    self.equalizer = None
    if spectral_gain is not None:
      self.equalizer = sampling.equalizer_kernel(spectral_gain)

    def codes(v, x):  # [W, 32, 64] -> [S]: the mean window code
      return style_model.apply(v, x, method=style_model.style_code).mean(0)

    jit = executable_cache.Jit
    self._codes = jit(codes, "pose_style_codes")
    self._motion = jit(
      lambda v, w: model.apply(v, w, method=model.motion_code), "motion_code"
    )  # [1, W, 32, 6] -> [1, E]
    self._features = jit(
      lambda v, m: model.apply(v, m, method=model.audio_features),
      "pose_audio_features",
    )  # [1, T, 28, 12] -> [1, T, A]: the audio CNN, once per frame
    self._speaker = jit(
      functools.partial(sampling.speaker_stream_of, model), "speaker_stream"
    )  # (variables, [1, 8K+24, A], [1, S], [1, E]) -> [1, K, 4, D]
    self._draw = jit(
      functools.partial(sampling.draw, model),
      "draw_tokens",
      static_argnames=("temperature", "top_p", "seeded"),
    )
    self._decode = jit(
      lambda v, idx: codebook.apply(v, idx, method=codebook.decode_tokens),
      "decode_tokens",
    )  # [M, 4] -> [M, 32, 6]
    self._residual = jit(
      lambda v, f: sampling.pose_residual_of(model, v, f, self.pose_std),
      "pose_residual",
    )  # [1, T, A] -> [1, T, 6] (model.residual_width > 0)

  @classmethod
  def load(cls, workdir: str, **kw) -> "PoseSampler":
    run = runs.load_run(workdir, "pose_generator", "pose run")
    return cls.from_run(run, **kw)

  @classmethod
  def from_run(cls, run: runs.Run, **kw) -> "PoseSampler":
    spec = run.spec
    frozen = run.extra["frozen"]
    sampler = cls(
      builders.pose_generator_model(spec["model"], spec["pose_model"]),
      {"params": run.params, "batch_stats": run.extra["batch_stats"]},
      builders.pose_codebook_model(spec["pose_model"]),
      frozen["pose_vqvae"],
      builders.style_encoder(spec["style_model"]),
      builders.style_encoder_variables(spec["style_model"], frozen["style"]),
      **{"spectral_gain": spec.get("spectral_gain"), **kw},
    )
    sampler.run = run
    run.cache(
      *[
        f for f in vars(sampler).values() if isinstance(f, executable_cache.Jit)
      ]
    )
    return sampler

  def style_code(
    self, exp, what: str = "style clip", warn: bool = True
  ) -> np.ndarray:
    """[T, 64] -> [S]: the mean style code of its 32-frame windows
    (quantized, unless the style stage had no codebook)."""
    windows = style_windows(what, exp, warn)
    return np.asarray(self._codes(self.style_variables, jnp.asarray(windows)))

  def motion_code(self, pose, what: str = "style clip's pose") -> np.ndarray:
    """[T, 6] head pose -> [E]: the motion code of its 32-frame windows
    (a run with model.motion_dim > 0)."""
    if not self.motion_dim:
      raise DataError(what, "this pose run reads no motion code")
    pose = check_frames(what, pose, (POSE_DIM,))
    windows = sampling.motion_windows(pose, self.pose_std)
    return np.asarray(self._motion(self.variables, windows[None]))[0]

  # -------------------------------------------------------------- API ---

  def stream(
    self,
    mfcc,
    *,
    style_code,
    num_samples: int = 1,
    seed: int = 0,
    temperature: float = 0.7,
    top_p: float = 0.9,
    offset=None,
    motion_code=None,
  ):
    """Yields [N, <= 8 chunk_tokens, 6] pieces of the N sampled poses.

    motion_code: [E] (`motion_code`), required by a run with one.

    offset: [6] mean head pose to move about (a relative codebook's runs;
    default the training clips' average; an absolute codebook places the
    head itself and ignores it)."""
    mfcc = check_frames("mfcc windows", mfcc, MFCC_SHAPE)
    style = check_code("style_code", style_code, self.code_size)
    motion = None
    if self.motion_dim:
      if motion_code is None:
        raise DataError(
          "motion_code",
          "this pose run also reads the style clip's head motion: pass "
          "motion_code=sampler.motion_code(style_pose)",
        )
      motion = jnp.asarray(
        check_code("motion_code", motion_code, self.motion_dim)[None]
      )
    shift = 0.0
    if offset is not None and self.relative:
      offset = np.asarray(offset, np.float32)
      if offset.shape != (6,) or not np.all(np.isfinite(offset)):
        raise DataError(
          "offset", f"expected a finite [6] pose, got {offset.tolist()}"
        )
      shift = offset - self.mean_pose
    if not 0.0 < temperature < float("inf"):
      raise DataError("temperature", f"must be > 0, got {temperature}")
    if not 0.0 <= top_p <= 1.0:
      raise DataError("top_p", f"must be within [0, 1], got {top_p}")
    if num_samples < 1:
      raise DataError("num_samples", f"must be >= 1, got {num_samples}")
    t = len(mfcc)
    per_window = self.model.num_tokens  # 4: 8 frames per token
    f = WINDOW // per_window
    n = sampling.num_tokens(t, per_window)
    k = self.chunk_tokens
    chunks = -(-n // k)
    audio = sampling.pad_audio(mfcc, t, chunks * k, per_window)  # [8Kc+24,..]
    keys = sampling.sample_keys(jax.random.key(seed), 1, num_samples)
    past = sampling.initial_past(None, 1, num_samples, per_window)
    decoder = SlidingDecoder(self._decode_windows, n, per_window)
    smoother = StreamingSavgol(f * n, *self.savgol)
    equalizer = None
    if self.equalizer is not None:
      equalizer = StreamingFIR(f * n, self.equalizer, self.mean_pose)
    # A residual needs the whole utterance's audio features at once; the
    # speaker tokens then read them too (else each chunk computes its own).
    feats = fine = None  # [1, 8 Kc + 24, A], [8 Kc + 24, 6]
    if self.model.residual_width:
      feats = self._features(self.variables, jnp.asarray(audio[None]))
      fine = np.asarray(self._residual(self.variables, feats))[0]
    decoded = emitted = 0
    style = jnp.asarray(style[None])
    for c in range(chunks):
      j0 = c * k
      part = slice(f * j0, f * (j0 + k - 1) + WINDOW)
      if feats is None:
        chunk = self._features(self.variables, jnp.asarray(audio[None, part]))
      else:
        chunk = feats[:, part]
      speaker = self._speaker(self.variables, chunk, style, motion)
      tokens, past = self._draw(
        self.variables,
        jnp.repeat(speaker, num_samples, axis=0),
        past,
        keys,
        jnp.asarray(j0, jnp.int32),
        temperature=float(temperature),
        top_p=float(top_p),
        seeded=False,
      )
      tokens = np.asarray(tokens)[:, : n - j0]  # [N, <= K]
      frames = decoder.push(tokens)  # [N, f, 6]
      if fine is not None and frames.shape[1]:
        frames = frames + fine[decoded : decoded + frames.shape[1]]
      decoded += frames.shape[1]
      pose = smoother.push(frames)
      if equalizer is not None:
        pose = equalizer.push(pose)
      if emitted < t and pose.shape[1]:
        part = pose[:, : t - emitted]
        emitted += part.shape[1]
        yield part + shift

  def __call__(self, mfcc, **kw) -> np.ndarray:
    """-> [N, T, 6] (same arguments as `stream`)."""
    return np.concatenate(list(self.stream(mfcc, **kw)), axis=1)

  def _decode_windows(self, windows: np.ndarray) -> np.ndarray:
    """[M, 4] token windows -> [M, 32, 6], padded to a power of two rows."""
    m = len(windows)
    size = max(8, 1 << (m - 1).bit_length())
    padded = np.concatenate([windows, np.repeat(windows[-1:], size - m, 0)])
    out = self._decode(self.codebook_variables, jnp.asarray(padded))
    return np.asarray(out)[:m]


class SlidingDecoder:
  """Streams sampling.decode_sliding. With p = num_past tokens per 32-frame
  window (s = 32 / p frames per token): window w (tokens w..w+p-1) gives
  frames s*w..s*w+s-1, and the last window (w = n - p) all 32 of its
  frames. p = 4 (the default codebook): frames 8w..8w+7."""

  def __init__(
    self, decode_fn, num_tokens: int, num_past: int = sampling.NUM_PAST
  ):
    self.decode_fn = decode_fn  # [M, p] -> [M, 32, C]
    self.n = num_tokens
    self.num_past = num_past  # tokens per 32-frame window
    self.tokens = None  # [N, < p] tokens of the next windows
    self.next_window = 0

  def push(self, tokens: np.ndarray) -> np.ndarray:
    """[N, k] new tokens -> [N, f, C] frames now complete."""
    buf = (
      tokens
      if self.tokens is None
      else np.concatenate([self.tokens, tokens], 1)
    )
    p = self.num_past
    count = buf.shape[1] - p + 1  # windows with all p tokens
    if count <= 0:
      self.tokens = buf
      return np.zeros((len(buf), 0, 0), np.float32)
    num = len(buf)
    idx = np.arange(count)[:, None] + np.arange(p)  # [W, 4]
    windows = buf[:, idx].reshape(num * count, p)
    frames = self.decode_fn(windows).reshape(num, count, WINDOW, -1)
    last = self.next_window + count - 1 == self.n - p
    head = frames[:, : count - 1 if last else count, : WINDOW // p]
    out = head.reshape(num, -1, frames.shape[-1])
    if last:
      out = np.concatenate([out, frames[:, -1]], 1)
    self.next_window += count
    self.tokens = buf[:, count:]
    return out


class StreamingSavgol:
  """Streams sampling.savgol (window 13, order 2; scipy's 'interp' edges)
  along the frames of [N, L, C], L known in advance."""

  def __init__(self, length: int, window: int = 13, order: int = 2):
    if length < window:
      raise ValueError(f"{length} frames, fewer than the filter's {window}")
    self.length, self.window = length, window
    self.half = window // 2
    self.coeffs = scipy.signal.savgol_coeffs(window, order, use="dot")
    x = np.arange(window, dtype=np.float64)
    vander = np.vander(x, order + 1)
    fit = vander @ np.linalg.pinv(vander)  # [window, window]
    self.first, self.last = fit[: self.half], fit[window - self.half :]
    self.raw = None  # the raw frames still needed, from global frame r0
    self.r0 = 0
    self.done = 0  # smoothed frames emitted

  def push(self, frames: np.ndarray) -> np.ndarray:
    """[N, k, C] new raw frames -> [N, f, C] smoothed frames now ready."""
    if frames.shape[1] == 0:
      return frames
    frames = frames.astype(np.float64)
    self.raw = (
      frames if self.raw is None else np.concatenate([self.raw, frames], 1)
    )
    seen = self.r0 + self.raw.shape[1]
    if seen == self.length:
      ready = self.length
    elif seen >= self.window:
      ready = seen - self.half
    else:
      return np.zeros((len(frames), 0, frames.shape[2]), np.float32)
    out = []
    f = self.done
    if f < self.half:  # the start: the fit over the first `window` frames
      head = np.einsum("ij,njc->nic", self.first, self.raw[:, : self.window])
      out.append(head[:, f:])
      f = self.half
    end = min(ready, self.length - self.half)
    if f < end:  # the middle: a plain convolution
      lo = f - self.half - self.r0
      wins = np.lib.stride_tricks.sliding_window_view(
        self.raw[:, lo : end + self.half - self.r0], self.window, axis=1
      )  # [N, end - f, C, window]
      out.append(np.einsum("nfcw,w->nfc", wins, self.coeffs))
      f = end
    if ready == self.length and f < self.length:  # the end fit
      tail = self.raw[:, self.length - self.window - self.r0 :]
      end_fit = np.einsum("ij,njc->nic", self.last, tail)
      out.append(end_fit[:, f - (self.length - self.half) :])
      f = self.length
    self.done = f
    # Still needed: frames from f - half (middle) and the last `window`.
    keep = min(f - self.half, self.length - self.window) - self.r0
    if keep > 0:
      self.raw, self.r0 = self.raw[:, keep:], self.r0 + keep
    return np.concatenate(out, 1).astype(np.float32)


class StreamingFIR:
  """Streams sampling.equalize (a zero-phase FIR of odd length K about
  `center`, ends reflected) along the frames of [N, L, C], L known in
  advance: a frame is out once the K // 2 after it are in. Keeps only the
  frames a later output still reads (from K // 2 before the next one)."""

  def __init__(self, length: int, kernel, center):
    self.length = length
    self.kernel = np.asarray(kernel, np.float64)  # [K, C]
    self.center = np.asarray(center, np.float64)  # [C]
    self.half = len(self.kernel) // 2
    self.raw = None  # the frames still needed, about center, from frame r0
    self.r0 = 0
    self.done = 0

  def push(self, frames: np.ndarray) -> np.ndarray:
    """[N, k, C] new frames -> [N, f, C] filtered frames now ready."""
    if frames.shape[1]:
      d = frames.astype(np.float64) - self.center
      self.raw = d if self.raw is None else np.concatenate([self.raw, d], 1)
    seen = 0 if self.raw is None else self.r0 + self.raw.shape[1]
    ready = self.length if seen == self.length else max(seen - self.half, 0)
    if ready <= self.done:
      return np.zeros((len(frames), 0, frames.shape[2]), np.float32)
    k = len(self.kernel)
    idx = np.arange(self.done, ready)[:, None] + np.arange(k) - self.half
    idx = sampling.reflect_index(self.length, idx) - self.r0  # [f, K]
    out = np.einsum("nfkc,kc->nfc", self.raw[:, idx], self.kernel)
    self.done = ready
    # Reflected indices stay within K // 2 of their frame, so every later
    # output reads frames from done - K // 2 on.
    keep = max(self.done - self.half, 0)
    self.raw, self.r0 = self.raw[:, keep - self.r0 :], keep
    return (out + self.center).astype(np.float32)
