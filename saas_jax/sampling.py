"""Sampling head poses from the pose generator G_p (reference §2.6).

One token (8 frames) per step, from the 4 previous tokens and the 32 frames
of audio starting at the token's first frame, with nucleus sampling
(temperature 0.7, top-p 0.9); then the tokens are decoded with sliding
4-token windows (the first 8 frames of each window, all 32 of the last) and
smoothed with a Savitzky-Golay filter (window 13, order 2). A model with
an audio-driven residual (residual_width > 0) adds pose_residual to the
decoded frames before smoothing. A run with a spectral gain (its trainer's
eval.calibrate_spectrum) then filters the smoothed motion with `equalize`.

Where the time goes, and why this is fast: the official sampler runs the
whole generator at every step, so each frame's MFCC CNN (0.64 GFLOP at
paper size, 90 % of the work) is computed in 4 consecutive steps and once
per sample. Nothing in the audio and style streams depends on the sampled
tokens, so here
  1. the CNN runs once per frame of the utterance (audio_features),
  2. the speaker tokens of every step are computed together, in one
     batched call, before the loop (speaker_tokens),
  3. the compiled loop (lax.scan over fixed shapes) only embeds the 4 past
     tokens and runs the 8-position head, for all N samples at once.
N samples cost little more than 1. `sample_tokens_naive` is the step-by-step
form (whole model per step and sample); the two give the same tokens.

Past tokens: by default the first steps embed only the tokens generated so
far (keep = min(step, 4)), which is what the official sampler ends up doing
with its seed tokens (it masks them all). `seed_tokens` (the pose tokens of
the style clip's first 32 frames) starts with a full past instead. (The
official loop also hands each step the past shifted one token too far back;
here step j sees tokens j-4..j-1, as in training.) Instead of the official
last step that emits 4 tokens from one window, the audio is extended by
repeating its last frame, so every token gets its own window.

Randomness: sample i of utterance b draws from fold_in(fold_in(key, b), i),
then fold_in(., step): bit-reproducible for a key, and sample i is the same
whether 1 or 8 are drawn.

The figures above are the official codebook's (32 frames -> 4 tokens of 8
frames); a codebook with model.factor 2 codes 32 frames as 8 tokens of 4
frames, and every function here takes that count as `num_past` (the
model's `num_tokens`).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.signal

from input_pipeline import features

WINDOW = 32  # frames of audio per step
TOKEN_FRAMES = 8  # frames per pose token (the official codebook)
NUM_PAST = WINDOW // TOKEN_FRAMES  # 4 tokens per window (the official)


# ------------------------------------------------------------- nucleus ---


def nucleus_sample(key, logits, temperature=0.7, top_p=0.9):
  """Samples [...] indices from [..., K] logits: the smallest set of codes
  whose probability (at `temperature`) reaches top_p, renormalised; top_p
  0 keeps the best code alone (greedy)."""
  logits = logits / temperature
  order = jnp.sort(logits, axis=-1)[..., ::-1]  # descending
  probs = jax.nn.softmax(order, axis=-1)
  before = jnp.cumsum(probs, axis=-1) - probs  # mass of the better codes
  num = jnp.maximum(jnp.sum(before < top_p, axis=-1, keepdims=True), 1)
  cutoff = jnp.take_along_axis(order, num - 1, axis=-1)
  masked = jnp.where(logits >= cutoff, logits, -jnp.inf)
  return jax.random.categorical(key, masked, axis=-1)


def sample_keys(key, batch: int, num_samples: int):
  """[batch * num_samples] keys, utterance-major (see module docstring)."""
  per_b = jax.vmap(lambda b: jax.random.fold_in(key, b))(jnp.arange(batch))
  keys = jax.vmap(
    lambda k: jax.vmap(lambda i: jax.random.fold_in(k, i))(
      jnp.arange(num_samples)
    )
  )(per_b)
  return keys.reshape(batch * num_samples)


def num_tokens(num_frames: int, num_past: int = NUM_PAST) -> int:
  """Tokens that cover num_frames (at least one window of num_past)."""
  return max(-(-num_frames // (WINDOW // num_past)), num_past)


def pad_audio(
  mfcc: np.ndarray, num_frames: int, tokens: int = 0, num_past=NUM_PAST
):
  """[T, ...] per-frame windows -> [8 n + 24, ...] (8: the frames per
  token): the window of every token (n = max(tokens, num_tokens(T))), by
  repeating the last frame (as the official sampler pads)."""
  n = max(tokens, num_tokens(num_frames, num_past))
  f = WINDOW // num_past
  need = f * n + WINDOW - f
  idx = np.minimum(np.arange(need), num_frames - 1)
  return mfcc[idx]


def normalize_motion(windows, std):
  """[..., 32, 6] pose windows -> each about its own mean, over std [6]
  (the pose codebook's spread): how the head moves, not where it is."""
  return (windows - windows.mean(-2, keepdims=True)) / std


def motion_windows(pose: np.ndarray, std) -> np.ndarray:
  """[T, 6] a style clip's head pose -> [W, 32, 6] normalised windows
  (stride 16; a clip shorter than 32 frames is mirrored to length)."""
  windows = features.clip_windows(np.asarray(pose), WINDOW, WINDOW // 2)
  return np.asarray(normalize_motion(windows, np.asarray(std)), np.float32)


# ------------------------------------------------------------- sampler ---


def _keep(step, seeded: bool, num_past: int):
  return jnp.asarray(num_past if seeded else jnp.minimum(step, num_past))


def steps_of(num_audio_frames: int, num_past: int = NUM_PAST) -> int:
  """The steps that padded audio of this length covers; anything but
  pad_audio's 8 n + 24 frames (n >= 4) is an error (it used to cover a
  part of the utterance silently)."""
  f = WINDOW // num_past
  n, rest = divmod(num_audio_frames - (WINDOW - f), f)
  if rest or n < num_past:
    raise ValueError(
      f"{num_audio_frames} audio frames: pad the per-frame windows with "
      f"sampling.pad_audio ({f} n + {WINDOW - f} frames for n >= "
      f"{num_past} tokens)"
    )
  return n


def speaker_stream(model, variables, mfcc, style, motion=None):
  """mfcc [B, 8n + 24, 28, 12] (pad_audio), style [B, S] (motion [B, E]
  with a motion code) -> [B, n, 4, D]: the speaker tokens of every step,
  the audio CNN run once per frame."""
  feats = model.apply(variables, mfcc, method=model.audio_features)  # [B,T,A]
  return speaker_stream_of(model, variables, feats, style, motion)


def speaker_stream_of(model, variables, feats, style, motion=None):
  """speaker_stream from the audio features [B, 8n + 24, A] of the padded
  frames (model.audio_features), when they are computed anyway."""
  b, t = feats.shape[:2]
  n = steps_of(t, model.num_tokens)
  f = WINDOW // model.num_tokens
  idx = f * jnp.arange(n)[:, None] + jnp.arange(WINDOW)  # [n, 32]
  windows = feats[:, idx].reshape(b * n, WINDOW, -1)  # [B n, 32, A]
  speaker = model.apply(
    variables,
    windows,
    jnp.repeat(style, n, axis=0),
    motion=None if motion is None else jnp.repeat(motion, n, axis=0),
    method=model.speaker_tokens,
  )  # [B n, 4, D]
  return speaker.reshape(b, n, *speaker.shape[1:])


def pose_residual(model, variables, mfcc, std):
  """mfcc [B, T, 28, 12] -> [B, T, 6]: the audio-driven motion finer than
  a token (a model with residual_width > 0), in pose units (std [6]: the
  pose codebook's spread); added to the decoded tokens before smoothing."""
  feats = model.apply(variables, mfcc, method=model.audio_features)
  return pose_residual_of(model, variables, feats, std)


def pose_residual_of(model, variables, feats, std):
  """pose_residual from the audio features [B, T, A]."""
  return model.apply(variables, feats, method=model.pose_residual) * std


def initial_past(seed_tokens, batch: int, num_samples: int, num_past=NUM_PAST):
  """[B N, 4] the past of the first step (zeros, all masked, by default)."""
  if seed_tokens is None:
    return jnp.zeros((batch * num_samples, num_past), jnp.int32)
  return jnp.repeat(jnp.asarray(seed_tokens, jnp.int32), num_samples, axis=0)


def draw(
  model,
  variables,
  speaker,
  past,
  keys,
  start,
  *,
  temperature: float,
  top_p: float,
  seeded: bool,
):
  """The compiled loop: speaker [M, n, 4, D] for M draws, past [M, 4], keys
  [M] -> (tokens [M, n], past after the last step). Steps are numbered from
  `start` (their keys and past masking), so consecutive calls that pass the
  past on give the tokens of one long call."""

  def step(past, xs):
    j, spk = xs  # spk [M, 4, D]
    keep = _keep(j, seeded, past.shape[1])
    keep = jnp.broadcast_to(keep, (past.shape[0],))
    logits = model.apply(variables, past, keep, spk, method=model.predict)
    step_keys = jax.vmap(jax.random.fold_in, (0, None))(keys, j)
    tok = jax.vmap(nucleus_sample, (0, 0, None, None))(
      step_keys, logits[:, 0], temperature, top_p
    ).astype(jnp.int32)
    return jnp.concatenate([past[:, 1:], tok[:, None]], axis=1), tok

  n = speaker.shape[1]
  past, tokens = jax.lax.scan(
    step, past, (start + jnp.arange(n), jnp.swapaxes(speaker, 0, 1))
  )  # [n, M]
  return tokens.T, past


def sample_tokens(
  model,
  variables,
  mfcc,
  style,
  key,
  *,
  num_samples: int = 1,
  temperature: float = 0.7,
  top_p: float = 0.9,
  seed_tokens=None,
  motion=None,
):
  """mfcc [B, 8n + 24, 28, 12] (pad_audio), style [B, S] -> [B, N, n] tokens.

  Jit it with model, num_samples, temperature, top_p static (see `sampler`).
  seed_tokens [B, 4] (optional): the past of the first step. motion [B, E]:
  the motion code, for a model with one.
  """
  b = mfcc.shape[0]
  speaker = speaker_stream(model, variables, mfcc, style, motion)  # [B,n,4,D]
  tokens, _ = draw(
    model,
    variables,
    jnp.repeat(speaker, num_samples, axis=0),
    initial_past(seed_tokens, b, num_samples, model.num_tokens),
    sample_keys(key, b, num_samples),
    0,
    temperature=temperature,
    top_p=top_p,
    seeded=seed_tokens is not None,
  )
  return tokens.reshape(b, num_samples, -1)


def sampler(model, *, num_samples=1, temperature=0.7, top_p=0.9):
  """The compiled sampler: (variables, mfcc, style, key, seed_tokens=None,
  motion=None)."""
  fn = functools.partial(
    sample_tokens,
    model,
    num_samples=num_samples,
    temperature=temperature,
    top_p=top_p,
  )
  return jax.jit(
    lambda variables, mfcc, style, key, seed_tokens=None, motion=None: fn(
      variables, mfcc, style, key, seed_tokens=seed_tokens, motion=motion
    )
  )


def sample_tokens_naive(
  model,
  variables,
  mfcc,
  style,
  key,
  *,
  num_samples: int = 1,
  temperature: float = 0.7,
  top_p: float = 0.9,
  seed_tokens=None,
):
  """The step-by-step form (as the official sampler computes): the whole
  model, audio CNN included, per step and per sample. Same tokens."""
  b, t = mfcc.shape[:2]
  n = steps_of(t, model.num_tokens)
  f = WINDOW // model.num_tokens
  mfcc = jnp.repeat(mfcc, num_samples, axis=0)
  style = jnp.repeat(style, num_samples, axis=0)
  keys = sample_keys(key, b, num_samples)
  seeded = seed_tokens is not None
  past = initial_past(seed_tokens, b, num_samples, model.num_tokens)
  forward = _whole_model(model)
  out = []
  for j in range(n):
    window = mfcc[:, f * j : f * j + WINDOW]
    keep = _keep(j, seeded, model.num_tokens)
    keep = jnp.broadcast_to(keep, (past.shape[0],))
    logits = forward(variables, window, style, past, keep)
    step_keys = jax.vmap(jax.random.fold_in, (0, None))(keys, j)
    tok = jax.vmap(nucleus_sample, (0, 0, None, None))(
      step_keys, logits[:, 0], temperature, top_p
    ).astype(jnp.int32)
    past = jnp.concatenate([past[:, 1:], tok[:, None]], axis=1)
    out.append(tok)
  return jnp.stack(out, 1).reshape(b, num_samples, n)


@functools.cache
def _whole_model(model):
  return jax.jit(lambda v, m, s, p, k: model.apply(v, m, s, p, k))


# ------------------------------------------------------------ decoding ---


def decode_sliding(decode_fn, tokens, num_past: int = NUM_PAST):
  """[..., n] tokens -> [..., 8 n, C] frames: sliding 4-token windows, the
  first 8 frames of each and all 32 of the last (the official decoding;
  num_past tokens of 32 / num_past frames for another codebook).

  decode_fn: [W, 4] int -> [W, 32, C].
  """
  lead, n = tokens.shape[:-1], tokens.shape[-1]
  f = WINDOW // num_past
  w = n - num_past + 1
  idx = jnp.arange(w)[:, None] + jnp.arange(num_past)  # [w, 4]
  windows = tokens.reshape(-1, n)[:, idx]  # [M, w, 4]
  m = windows.shape[0]
  frames = decode_fn(windows.reshape(m * w, num_past))
  frames = frames.reshape(m, w, WINDOW, -1)
  c = frames.shape[-1]
  head = frames[:, :-1, :f].reshape(m, (w - 1) * f, c)
  out = jnp.concatenate([head, frames[:, -1]], axis=1)  # [M, 8 n, C]
  return out.reshape(*lead, n * f, c)


@functools.cache
def _savgol_matrices(window: int, order: int):
  half = window // 2
  coeffs = scipy.signal.savgol_coeffs(window, order, use="dot")  # [window]
  # Edges ('interp', scipy's default): the polynomial fitted to the first
  # (last) `window` samples, evaluated at the first (last) `half` of them.
  x = np.arange(window, dtype=np.float64)
  vander = np.vander(x, order + 1)
  fit = vander @ np.linalg.pinv(vander)  # [window, window]
  return (
    coeffs.astype(np.float32),
    fit[:half].astype(np.float32),
    fit[window - half :].astype(np.float32),
  )


def savgol(x, window: int = 13, order: int = 2):
  """Savitzky-Golay smoothing along axis -2 of [..., T, C] (T >= window);
  equals scipy.signal.savgol_filter(x, window, order, axis=-2)."""
  coeffs, first, last = _savgol_matrices(window, order)
  t = x.shape[-2]
  if t < window:
    raise ValueError(f"{t} frames: the filter needs at least {window}")
  mid = sum(
    coeffs[k] * x[..., k : t - window + 1 + k, :] for k in range(window)
  )
  start = jnp.einsum("ij,...jc->...ic", first, x[..., :window, :])
  end = jnp.einsum("ij,...jc->...ic", last, x[..., t - window :, :])
  return jnp.concatenate([start, mid, end], axis=-2)


# ----------------------------------------------------------- equaliser ---


def equalizer_kernel(gain) -> np.ndarray:
  """[F, C] amplitude gain per frequency bin of an n = 2 (F - 1) frame
  window -> [n - 1, C] zero-phase FIR taps (frequency sampling, Hann
  tapered), centred on tap n / 2 - 1."""
  gain = np.asarray(gain, np.float64)
  n = 2 * (len(gain) - 1)
  taps = np.roll(np.fft.irfft(gain, n=n, axis=0), n // 2, axis=0)[1:]
  return (taps * np.hanning(n + 1)[1:-1, None]).astype(np.float32)


def reflect_index(length: int, idx):
  """Indices into `length` frames with reflection at both ends (numpy's
  'reflect' padding, any distance)."""
  if length == 1:
    return np.zeros_like(idx)
  period = 2 * (length - 1)
  k = np.mod(idx, period)
  return np.where(k > length - 1, period - k, k)


def equalize(x, kernel, center):
  """[..., T, C] -> [..., T, C]: x - center filtered with the zero-phase
  FIR `kernel` [K, C] (K odd; ends reflected), plus center.

  Why: the sampled motion's spectrum is not a real clip's (too little
  wander below 1 Hz, too much at the token rate); the kernel, from the
  run's spectral gain, reshapes it."""
  k, t = kernel.shape[0], x.shape[-2]
  half = k // 2
  idx = reflect_index(t, np.arange(t)[:, None] + np.arange(k) - half)  # [T,K]
  d = x - center
  return center + jnp.einsum("...tkc,kc->...tc", d[..., idx, :], kernel)
