"""Pose generator stage: G_p trained with teacher forcing (reference §2.6).

Per 64-frame window: past = the frozen pose codebook's 4 tokens of frames
0-31 (8 with a model.factor 2 codebook), targets = its tokens of frames
32-63, audio = MFCC windows of frames 32-63, style = the frozen style
encoder's code of a 32-frame expression window of the same clip (with
loss.style_from="class": of another clip of its style class); with
model.motion_dim > 0 also the motion code of 96 frames of that clip's head
pose (motion_input). Loss = CE of output positions 0..3 against the
targets; with model.residual_width > 0 also loss.w_residual x the MSE of
PoseResidual's output over all 64 frames against what the frozen codebook
leaves out of the pose (codebook_residual, in its std units). Random
masking of the past as the official code does: k ~ U{0..20} and only the last min(k, 4) past tokens are embedded, so a full
past is seen 17 times in 21 and none or part of it otherwise (drawn per
example here; the official draws one k per batch).

Frozen networks (config.frozen, loaded by the engine on a fresh start):
  style       the style stage's workdir (configs/style_vqvae.py): encoder,
              quantizer and pooling, i.e. StyleCodebook.style_code.
  pose_vqvae  the pose codebook's workdir (configs/pose_vqvae.py).
Their sizes are read from the config.json of those runs.

Evaluation on held-out clips (config.data.eval_split):
  token_accuracy, token_perplexity   teacher-forced next-token prediction on
                      every 64-frame window (stride 32), full past;
                      unigram_perplexity: the training tokens' marginal,
                      the perplexity of a model that ignores its inputs.
  residual_mse, residual_explained   (a residual) the same windows: MSE of
                      the residual and the share of its target's mean
                      square it removes.
  sampled poses, per clip: audio of the clip, style code of a training clip
  of its style ("right") or of another style ("wrong"), num_samples seeds:
  style_dist_right    distance of the samples' motion statistics
                      (evaluators.pose: amplitude, velocity, tempo) to the real
                      training clips of the clip's style, in within-style
                      std units; style_dist_wrong: the same for samples
                      conditioned on the wrong style (still measured to the
                      clip's style); style_closer_rate: fraction of
                      (clip, seed) with right < wrong; style_dist_wrong_own:
                      wrong-style samples to the wrong style they were given.
                      style_dist_real: the held-out real clips themselves.
                      *_smooth: the same with every pose (the reference
                      clips too) Savitzky-Golay smoothed as the sampler
                      smooths (evaluators.pose.StyleReference.smooth).
  diversity           mean pairwise RMS (rad) of the angles across seeds;
                      real_angle_std: the real clips' angle std, for scale.
  same_seed_max_diff  max |difference| of two draws with one seed (0: bit
                      reproducible); distinct_seed_fraction: fraction of
                      seed pairs whose token sequences differ.
  nod_align_*         nods at audio energy onsets (evaluators.pose): generated,
                      real, and generated against another clip's audio
                      (chance level).
  nod_response_*      the onset-locked pitch projected on the real training
                      clips' nod template (evaluators.pose.NodTemplate; 1:
                      an average real nod at every onset): generated, real,
                      generated against another clip's onsets; gain: per
                      clip generated minus shuffled, mean over seeds, with
                      a 95 % bootstrap interval over clips (_low, _high).
  jitter_gen, jitter_real   mean |second difference| of the angles.
With eval.calibrate_spectrum, every sample is equalised with the run's
spectral gain (spectral_gain, from training clips; written to spec.json
when the run finishes, where PoseSampler reads it) and the style_*
figures of the samples as drawn are kept as style_*_unequalized.
"""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from input_pipeline import batches as batches_lib
from input_pipeline import features
from saas_jax import losses, sampling
from saas_jax.engine import data as data_lib
from saas_jax.engine import loop
from saas_jax.engine import workdir as workdir_lib
from saas_jax.engine.train_state import apply_loss
from saas_jax.errors import DataError
from saas_jax.evaluators import codebook, stats
from saas_jax.evaluators import pose as pose_metrics
from saas_jax.models import builders

WINDOW = sampling.WINDOW  # 32
FROZEN = {"style": "style_vqvae", "pose_vqvae": "pose_vqvae"}
CALIBRATION_SAMPLES = 2  # poses per training clip for spectral_gain


# ------------------------------------------------------ frozen networks ---


def frozen_run_config(config, name: str) -> dict:
  """The config.json of the earlier run config.frozen.<name> names."""
  return workdir_lib.require_run(
    config.frozen.get(name) or "", FROZEN[name], f"config.frozen.{name}"
  )


def frozen_models(cfg):
  """(style encoder, pose codebook) at the sizes of the frozen runs."""
  style = builders.style_encoder(cfg.style_model)
  pose = builders.pose_codebook_model(cfg.pose_model)
  return style, pose


def frozen_features(cfg, frozen, style_exp, pose, offset):
  """Style codes [B, S] of [B, 32, 64] and pose tokens [B, 2T/32*4] of
  pose [B, 2T, 6] (offset [B, 6]: the clip's mean pose)."""
  style_model, pose_model = frozen_models(cfg)
  style = style_model.apply(
    frozen["style"], style_exp, method=style_model.style_code
  )
  b, t = pose.shape[:2]
  tokens = pose_model.apply(
    frozen["pose_vqvae"],
    pose.reshape(-1, WINDOW, pose.shape[-1]),
    jnp.repeat(offset, t // WINDOW, 0),
    method=pose_model.tokens,
  ).reshape(b, -1)
  return jax.lax.stop_gradient(style), tokens


# ---------------------------------------------------------------- loss ---


def motion_input(frozen, pose):
  """[B, T, 6] a style clip's head pose -> [B, W, 32, 6] its motion windows
  (stride 16; sampling.normalize_motion, in the frozen pose codebook's std
  units), as PoseSampler.motion_code windows a style clip."""
  std = frozen["pose_vqvae"]["pose_norm"]["std"]
  starts = np.arange(0, pose.shape[1] - WINDOW + 1, WINDOW // 2)
  idx = starts[:, None] + np.arange(WINDOW)  # [W, 32]
  return sampling.normalize_motion(pose[:, idx], std)


def codebook_residual(cfg, frozen, pose, offset, tokens):
  """What the frozen pose codebook leaves out of pose [B, T, 6]: pose minus
  its tokens [B, T/32*n] decoded window by window, in the codebook's std
  units (PoseResidual's target)."""
  _, pose_model = frozen_models(cfg)
  b, t = pose.shape[:2]
  recon = pose_model.apply(
    frozen["pose_vqvae"],
    tokens.reshape(b * (t // WINDOW), -1),
    jnp.repeat(offset, t // WINDOW, 0),
    method=pose_model.decode_tokens,
  ).reshape(pose.shape)
  std = frozen["pose_vqvae"]["pose_norm"]["std"]
  return jax.lax.stop_gradient((pose - recon) / std)  # [B, T, 6]


def loss_fn(params, extra, batch, rng, *, apply_fn, cfg):
  by_class = cfg.get("style_from") == "class"
  style, tokens = frozen_features(
    cfg,
    extra["frozen"],
    batch["style_pos_exp" if by_class else "style_exp"],
    batch["pose"],
    batch["pose_offset"],
  )  # [B, S], [B, 2n]
  n = tokens.shape[1] // 2  # tokens per 32 frames
  past, target = tokens[:, :n], tokens[:, n:]
  b = past.shape[0]
  k = jax.random.randint(
    rng, (b,), 0, cfg.max_mask_len + 1 + cfg.extra_unmasked
  )
  keep = jnp.minimum(k, n)
  args = (
    style,
    past,
    keep,
    True,  # train
    motion_input(
      extra["frozen"], batch["style_pos_pose" if by_class else "style_pose"]
    ),
  )
  variables = {"params": params, "batch_stats": extra["batch_stats"]}
  if cfg.get("residual"):  # the audio CNN sees all 64 frames once
    (logits, residual), updates = apply_fn(
      variables,
      batch["mfcc"],
      *args,
      method="with_residual",
      mutable=["batch_stats"],
    )  # [B, 8, K], [B, 64, 6]
  else:
    logits, updates = apply_fn(
      variables, batch["mfcc"][:, WINDOW:], *args, mutable=["batch_stats"]
    )
  logits = logits[:, :n]  # [B, n, K]
  ce = loss = losses.cross_entropy(logits, target)
  metrics = {
    "ce": ce,
    "accuracy": losses.accuracy(logits, target),
    "perplexity": jnp.exp(ce),
  }
  if cfg.get("residual"):
    want = codebook_residual(
      cfg, extra["frozen"], batch["pose"], batch["pose_offset"], tokens
    )
    metrics["residual_mse"] = jnp.mean((residual - want) ** 2)
    metrics["residual_var"] = jnp.mean(want**2)  # the mse of predicting 0
    loss = loss + cfg.w_residual * metrics["residual_mse"]
  return loss, (metrics, {**extra, "batch_stats": updates["batch_stats"]})


def train_step(state, batch, rng):
  fn = functools.partial(loss_fn, apply_fn=state.apply_fn, cfg=state.cfg)
  return apply_loss(state, batch, rng, fn)


# ---------------------------------------------------------- evaluation ---


def _clip(table, c, stream):
  s = table.start[c]
  return getattr(table, stream)[s : s + table.length[c]]


def _mfcc(table, c, num_frames):
  s = table.mfcc_start[c]
  m = table.mfcc[s : s + table.mfcc_len[c]]
  return features.mfcc_windows(m, num_frames, table.fps)  # [T, 28, 12]


def _motion_frames(pose):
  """A clip's first MOTION_WINDOW frames of head pose (ping-ponged), as
  training draws a style clip's."""
  t = np.arange(batches_lib.MOTION_WINDOW)
  return pose[features.ping_pong_index(np.array(len(pose)), t)]


def _pad_to(x, pad):
  """x with its last row repeated `pad` times."""
  return np.concatenate([x, np.repeat(x[-1:], pad, 0)])


def _chunks(n, size):
  return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def token_metrics(state, model, table, batch_size=64) -> dict:
  """Teacher-forced CE / accuracy on every 64-frame window (stride 32);
  clips shorter than 64 frames are extended by ping-pong, as in training."""
  rows = []
  for c in np.flatnonzero(table.has_audio & (table.length >= WINDOW)):
    t = int(table.length[c])
    pose, exp = _clip(table, c, "pose"), _clip(table, c, "exp")
    motion = _motion_frames(pose)
    mfcc = _mfcc(table, c, t)
    for s in range(0, max(t - 2 * WINDOW, 0) + 1, WINDOW):
      idx = features.ping_pong_index(np.array(t), s + np.arange(2 * WINDOW))
      rows.append(
        (
          pose[idx],
          pose.mean(0),
          mfcc[idx],
          exp[:WINDOW],
          motion,
        )
      )
  if not rows:
    return {}
  pose, offset, mfcc, exp, style_pose = (
    np.stack(x) for x in zip(*rows, strict=True)
  )
  gen = {"params": state.params, "batch_stats": state.extra["batch_stats"]}

  @jax.jit
  def run(frozen, gen, pose, offset, mfcc, exp, style_pose):
    style, tokens = frozen_features(state.cfg, frozen, exp, pose, offset)
    n = model.num_tokens
    past, target = tokens[:, :n], tokens[:, n:]
    keep = jnp.full((past.shape[0],), n)
    motion = motion_input(frozen, style_pose)
    args = (style, past, keep, False, motion)
    if model.residual_width:
      logits, fine = model.apply(gen, mfcc, *args, method="with_residual")
      want = codebook_residual(state.cfg, frozen, pose, offset, tokens)
      err = jnp.stack(
        [jnp.mean((fine - want) ** 2, (1, 2)), jnp.mean(want**2, (1, 2))], 1
      )  # [B, 2]
    else:
      logits = model.apply(gen, mfcc[:, WINDOW:], *args)
      err = jnp.zeros((len(pose), 2))
    logits = logits[:, :n]
    nll = -jnp.take_along_axis(
      jax.nn.log_softmax(logits), target[..., None], -1
    )[..., 0]
    return nll, jnp.argmax(logits, -1) == target, err

  nll, hit, err = [], [], []
  for sl in _chunks(len(pose), batch_size):
    a, b, e = run(
      state.extra["frozen"],
      gen,
      pose[sl],
      offset[sl],
      mfcc[sl],
      exp[sl],
      style_pose[sl],
    )
    nll.append(np.asarray(a))
    hit.append(np.asarray(b))
    err.append(np.asarray(e))
  nll, hit, err = (np.concatenate(x) for x in (nll, hit, err))
  out = {
    "token_accuracy": float(hit.mean()),
    "token_perplexity": float(np.exp(nll.mean())),
  }
  if model.residual_width:  # held out: the share of it the audio explains
    mse, var = err.mean(0)
    out["residual_mse"] = float(mse)
    out["residual_explained"] = float(1.0 - mse / var)
  return out


def unigram_perplexity(state, table, num_codes, max_clips=256) -> float:
  """Perplexity of the training tokens' marginal distribution."""
  wins, offsets = [], []
  for c in range(min(table.num_clips, max_clips)):
    p = _clip(table, c, "pose")
    starts = range(0, len(p) - WINDOW + 1, WINDOW)
    wins += [p[s : s + WINDOW] for s in starts]
    offsets += [p.mean(0)] * len(starts)
  _, pose_model = frozen_models(state.cfg)
  tok = jax.jit(
    lambda v, x, o: pose_model.apply(v, x, o, method=pose_model.tokens)
  )(state.extra["frozen"]["pose_vqvae"], np.stack(wins), np.stack(offsets))
  return codebook.perplexity(codebook.usage(tok, num_codes))


def pose_sampler(state, model, eval_cfg, num_samples, gain=None):
  """(mfcc [C, Tpad, 28, 12], style [C, S], motion [C, E] or None, key)
  -> smoothed poses [C, N, 8 n, 6] and tokens [C, N, n]; compiled once
  per shape. gain [33, 6]: the spectral gain (spectral_gain) the smoothed
  poses are equalised with, as PoseSampler does."""
  gen = {"params": state.params, "batch_stats": state.extra["batch_stats"]}
  _, pose_model = frozen_models(state.cfg)
  frozen_pose = state.extra["frozen"]["pose_vqvae"]
  draw = sampling.sampler(
    model,
    num_samples=num_samples,
    temperature=eval_cfg.temperature,
    top_p=eval_cfg.top_p,
  )

  @jax.jit
  def decode(v, g, tokens, mfcc):
    frames = sampling.decode_sliding(
      lambda idx: pose_model.apply(v, idx, method=pose_model.decode_tokens),
      tokens,
      model.num_tokens,
    )  # [C, N, 8n, 6]
    if model.residual_width:
      std = v["pose_norm"]["std"]
      fine = sampling.pose_residual(model, g, mfcc, std)  # [C, T, 6]
      frames = frames + fine[:, None, : frames.shape[2]]
    frames = sampling.savgol(
      frames, eval_cfg.savgol_window, eval_cfg.savgol_order
    )
    if kernel is None:
      return frames
    return sampling.equalize(frames, kernel, v["pose_norm"]["mean"])

  kernel = None if gain is None else sampling.equalizer_kernel(gain)

  def run(mfcc, style, motion, key):
    tokens = draw(gen, mfcc, style, key, motion=motion)
    poses = decode(frozen_pose, gen, tokens, mfcc)
    return np.asarray(poses), np.asarray(tokens)

  return run


def _style_inputs(state, model, table, clips):
  """Style codes [C, S] of the clips' first 32 frames of expression and
  motion codes [C, E] (None without) of their first MOTION_WINDOW frames
  of head pose, as training reads a style clip."""
  style_model, _ = frozen_models(state.cfg)
  frozen = state.extra["frozen"]
  exp = np.stack([_clip(table, c, "exp")[:WINDOW] for c in clips])
  codes = jax.jit(
    lambda v, x: style_model.apply(v, x, method=style_model.style_code)
  )(frozen["style"], exp)
  if not model.motion_dim:
    return np.asarray(codes), None
  pose = np.stack([_motion_frames(_clip(table, c, "pose")) for c in clips])
  motion = jax.jit(
    lambda v, f, p: model.apply(v, motion_input(f, p), method=model.motion_code)
  )({"params": state.params}, frozen, pose)
  return np.asarray(codes), np.asarray(motion)


def _sample_clips(run, model, table, clips, style, motion, key, batch_size):
  """Poses [C, N, 8 n, 6] and tokens [C, N, n] for the clips' speech in
  the given styles (rows of style [C, S] and motion [C, E] or None), in
  batches of one shape (one compilation)."""
  lengths = [int(table.length[c]) for c in clips]
  per_window = model.num_tokens
  n = max(sampling.num_tokens(t, per_window) for t in lengths)
  mfcc = np.stack(
    [
      sampling.pad_audio(_mfcc(table, c, t), t, n, per_window)
      for c, t in zip(clips, lengths, strict=True)
    ]
  )
  size = min(batch_size, len(clips))
  poses, tokens = [], []
  for k, sl in enumerate(_chunks(len(clips), size)):
    pad = size - len(mfcc[sl])
    m, st = _pad_to(mfcc[sl], pad), _pad_to(style[sl], pad)
    mo = None if motion is None else _pad_to(motion[sl], pad)
    p, t = run(m, st, mo, jax.random.fold_in(key, k))
    poses.append(p[: size - pad])
    tokens.append(t[: size - pad])
  return np.concatenate(poses), np.concatenate(tokens)


def spectral_gain(state, model, inputs, eval_cfg) -> np.ndarray:
  """[33, 6]: the gain per frequency bin (evaluators.pose.spectral_gain)
  that turns the spectrum of poses sampled for training clips, each in its
  own style, into that of their recorded poses (smoothed as the sampler
  smooths). Samples of an autoregressive token model wander too little
  below 1 Hz and wobble at the token rate; the gain, applied to every
  sample (sampling.equalize), reshapes that, from training data alone."""
  table = inputs.train.partners.table
  frames = pose_metrics.SPECTRUM_FRAMES
  clips = [
    c
    for c in range(table.num_clips)
    if table.has_audio[c] and table.length[c] >= frames
  ][: eval_cfg.calibration_clips]
  if not clips:
    raise DataError(
      "eval.calibrate_spectrum",
      f"no training clip with audio of at least {frames} frames",
    )
  style, motion = _style_inputs(state, model, table, clips)
  run = pose_sampler(state, model, eval_cfg, CALIBRATION_SAMPLES)
  key = jax.random.fold_in(jax.random.key(eval_cfg.seed), 1)
  poses, _ = _sample_clips(
    run, model, table, clips, style, motion, key, eval_cfg.batch_size
  )
  smooth = (eval_cfg.savgol_window, eval_cfg.savgol_order)
  real, sampled = [], []
  for i, c in enumerate(clips):
    t = int(table.length[c])
    pose = _clip(table, c, "pose")
    real.append(pose_metrics.smoothed(pose, *smooth))
    sampled += [poses[i, s, :t] for s in range(CALIBRATION_SAMPLES)]
  return pose_metrics.spectral_gain(real, sampled)


def sampled_metrics(state, model, inputs, eval_cfg, gain=None) -> dict:
  table = inputs.eval_table
  train = inputs.train.partners.table

  # Style codes: the first 32 frames of the first training clip of a style.
  first = {}
  for c in range(train.num_clips):
    if train.length[c] >= WINDOW:
      first.setdefault(int(train.label[c]), c)
  labels = sorted(first)
  codes, motion = _style_inputs(state, model, train, [first[b] for b in labels])
  code_of = dict(zip(labels, codes, strict=True))
  motion_of = dict.fromkeys(labels)  # and the same window's head motion
  if motion is not None:
    motion_of = dict(zip(labels, motion, strict=True))
  train_poses = [_clip(train, c, "pose") for c in range(train.num_clips)]
  references = {  # "_smooth": head motion without the frame-to-frame tremor
    suffix: pose_metrics.StyleReference.from_clips(
      train_poses, train.label, smooth=smooth
    )
    for suffix, smooth in (("", 0), ("_smooth", eval_cfg.savgol_window))
  }
  template = pose_metrics.table_template(train)

  clips = [
    c
    for c in range(table.num_clips)
    if table.has_audio[c]
    and int(table.label[c]) in code_of
    and table.length[c] >= WINDOW
  ][: eval_cfg.max_clips]
  if not clips:
    return {}
  rng = np.random.default_rng(0)
  right = [int(table.label[c]) for c in clips]
  wrong = [int(rng.choice([lb for lb in labels if lb != r])) for r in right]
  lengths = [int(table.length[c]) for c in clips]
  key = jax.random.key(eval_cfg.seed)
  num = eval_cfg.num_samples
  run = pose_sampler(state, model, eval_cfg, num, gain)

  def draw(style_labels, key):
    style = np.stack([code_of[lb] for lb in style_labels])
    motion = None
    if model.motion_dim:
      motion = np.stack([motion_of[lb] for lb in style_labels])
    return _sample_clips(
      run, model, table, clips, style, motion, key, eval_cfg.batch_size
    )

  gen_right, tok_right = draw(right, key)  # [C, N, 8n, 6], [C, N, n]
  again, _ = draw(right, key)
  gen_wrong, _ = draw(wrong, key)

  res = {
    k + suffix: []
    for k in ("right", "wrong", "wrong_own", "real", "closer")
    for suffix in references
  }
  align = {"gen": [], "real": [], "shuffled": []}
  nod = {"gen": [], "real": [], "shuffled": [], "gain": []}
  div, jit_gen, jit_real, real_std, distinct = [], [], [], [], []
  for i, c in enumerate(clips):
    t = lengths[i]
    real = _clip(table, c, "pose")
    for suffix, ref in references.items():
      res["real" + suffix].append(ref.distance(real, right[i]))
    real_std.append(float(real[:, :3].std(0).mean()))
    jit_real.append(pose_metrics.jitter(real))
    onsets = pose_metrics.table_onsets(table, c)
    align["real"].append(
      pose_metrics.nod_alignment(onsets, pose_metrics.nods(real))
    )
    nod["real"].append(template.response(real, onsets))
    j = (i + 1) % len(clips)  # another clip's audio: chance alignment
    m = min(t, lengths[j])
    other = pose_metrics.table_onsets(table, clips[j])
    other = other[other < m]
    gain = []
    for s in range(num):
      g, w = gen_right[i, s, :t], gen_wrong[i, s, :t]
      for suffix, ref in references.items():
        d_right = ref.distance(g, right[i])
        d_wrong = ref.distance(w, right[i])
        res["right" + suffix].append(d_right)
        res["wrong" + suffix].append(d_wrong)
        res["wrong_own" + suffix].append(ref.distance(w, wrong[i]))
        res["closer" + suffix].append(float(d_right < d_wrong))
      jit_gen.append(pose_metrics.jitter(g))
      nod_frames = pose_metrics.nods(g)
      align["gen"].append(pose_metrics.nod_alignment(onsets, nod_frames))
      align["shuffled"].append(
        pose_metrics.nod_alignment(other, nod_frames[nod_frames < m])
      )
      own, chance = template.response(g, onsets), template.response(g, other)
      nod["gen"].append(own)
      nod["shuffled"].append(chance)
      if own is not None and chance is not None:
        gain.append(own - chance)
    if gain:
      nod["gain"].append(float(np.mean(gain)))  # per clip, over seeds
    div.append(pose_metrics.diversity(gen_right[i, :, :t]))
    for a in range(num):
      for b in range(a + 1, num):
        distinct.append(float(np.any(tok_right[i, a] != tok_right[i, b])))

  gain_ci = stats.interval(nod["gain"])

  def mean(xs):
    xs = [x for x in xs if x is not None]
    return float(np.mean(xs)) if xs else float("nan")

  styled = {}
  for suffix in references:
    styled.update(
      {
        f"style_dist_right{suffix}": mean(res["right" + suffix]),
        f"style_dist_wrong{suffix}": mean(res["wrong" + suffix]),
        f"style_closer_rate{suffix}": mean(res["closer" + suffix]),
        f"style_dist_wrong_own{suffix}": mean(res["wrong_own" + suffix]),
        f"style_dist_real{suffix}": mean(res["real" + suffix]),
      }
    )
  return {
    **styled,
    "diversity": mean(div),
    "real_angle_std": mean(real_std),
    "same_seed_max_diff": float(np.abs(again - gen_right).max()),
    "distinct_seed_fraction": mean(distinct) if distinct else float("nan"),
    "nod_align_gen": mean(align["gen"]),
    "nod_align_real": mean(align["real"]),
    "nod_align_shuffled": mean(align["shuffled"]),
    "nod_response_gen": mean(nod["gen"]),
    "nod_response_real": mean(nod["real"]),
    "nod_response_shuffled": mean(nod["shuffled"]),
    **{
      f"nod_response_gain{k}": v
      for k, v in (
        ("", gain_ci["mean"]),
        ("_low", gain_ci["low"]),
        ("_high", gain_ci["high"]),
      )
    },
    "jitter_gen": mean(jit_gen),
    "jitter_real": mean(jit_real),
    "sampled_clips": float(len(clips)),
  }


def evaluate(state, mesh, model, inputs, config, gain_of) -> dict:
  del mesh  # small: the generator's eval runs unsharded on every host
  out = token_metrics(state, model, inputs.eval_table)
  out["unigram_perplexity"] = unigram_perplexity(
    state, inputs.train.partners.table, model.num_codes
  )
  gain = gain_of(state)
  if gain is not None:  # as sampled without it, then as a user gets them
    raw = sampled_metrics(state, model, inputs, config.eval)
    out.update({f"{k}_unequalized": v for k, v in raw.items() if "style_" in k})
  out.update(sampled_metrics(state, model, inputs, config.eval, gain))
  return out


# ------------------------------------------------------------- wiring ---


def stage_cfg(config) -> ml_collections.FrozenConfigDict:
  if config.loss.style_from not in ("clip", "class"):
    raise DataError(
      "config.loss.style_from",
      f"must be 'clip' or 'class', got {config.loss.style_from!r}",
    )
  return ml_collections.FrozenConfigDict(
    {
      **config.loss.to_dict(),
      "residual": bool(config.model.get("residual_width", 0)),
      "style_model": frozen_run_config(config, "style")["model"],
      "pose_model": frozen_run_config(config, "pose_vqvae")["model"],
    }
  )


def describe(config, cfg, state, gain_of) -> dict:
  style = jax.tree.map(loop.fetch, state.extra["frozen"]["style"])
  spec = {
    "model": config.model.to_dict(),
    "num_codes": cfg.pose_model.num_codes,
    "style_model": cfg.style_model.to_dict(),
    "pose_model": cfg.pose_model.to_dict(),
    "frozen": config.frozen.to_dict(),
    "style_encoder": builders.style_encoder_fingerprint(cfg.style_model, style),
  }
  # Only a finished run's samples are calibrated (PoseSampler reads it).
  if int(state.step) >= config.num_train_steps:
    gain = gain_of(state)
    if gain is not None:
      spec["spectral_gain"] = gain.tolist()  # [33, 6]
  return spec


def train_and_evaluate(config, workdir: str):
  cfg = stage_cfg(config)  # fails early, naming a missing frozen run
  inputs = data_lib.load(config, with_audio=True)
  style_model, pose_model = frozen_models(cfg)
  model = builders.pose_generator_model(config.model, cfg.pose_model)
  n = 2

  def init(rng):
    k1, k2, k3 = jax.random.split(rng, 3)
    variables = model.init(
      {"params": k1},
      jnp.zeros((n, WINDOW, 28, 12)),
      jnp.zeros((n, cfg.style_model.hidden)),
      jnp.zeros((n, model.num_tokens), jnp.int32),
      jnp.full((n,), model.num_tokens),
      motion_windows=jnp.zeros((n, 1, WINDOW, 6)),  # [B, W, 32, 6]
    )
    style = style_model.init(
      {"params": k2},
      jnp.zeros((n, WINDOW, 64)),
      method=style_model.style_code,
    )
    pose = pose_model.init(
      {"params": k3}, jnp.zeros((n, WINDOW, 6)), jnp.zeros((n, 6))
    )
    return {**variables, "frozen": {"style": style, "pose_vqvae": pose}}

  gains = {}  # step -> spectral gain: the final eval and spec.json share it

  def gain_of(state):
    if not config.eval.get("calibrate_spectrum"):
      return None
    step = int(state.step)
    if step not in gains:
      gain = spectral_gain(state, model, inputs, config.eval)
      gains[step] = np.round(gain, 5)  # as spec.json keeps it
    return gains[step]

  stage = loop.Stage(
    init=init,
    apply_fn=model.apply,
    train_step=train_step,
    batches=data_lib.batch_iterator(batches_lib.pose_windows, config, inputs),
    evaluate=lambda state, mesh: evaluate(
      state, mesh, model, inputs, config, gain_of
    ),
    cfg=cfg,
    describe=lambda state: describe(config, cfg, state, gain_of),
  )
  return loop.train_and_evaluate(config, workdir, stage)
