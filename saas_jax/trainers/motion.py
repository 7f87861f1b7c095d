"""Expression stage: audio-driven (E_a) and video-driven (E_v) style transfer
with the residual motion generator (reference §2.3-2.5, §2.7).

A batch pairs a content clip A (audio, or expression for video) with a style
clip B of another person. With the frozen style encoder E_s:
  res = G(A's content, s_src = E_s(A), s_t = E_s(B))   A said in B's style
  rec = G(A's content, s_src = E_s(A), s_t = E_s(A))   A reconstructed
  back = G(E_v(res, E_s(B)), s_t = E_s(A))             video: the cycle

Each step first updates the critics against the current generator's output,
then the generator against the updated critics (the official order). The
generator's forward pass runs once: its VJP turns the gradient of the
generator loss w.r.t. (res, rec, back) into parameter gradients.

Generator loss (official weights):
  1000 x recon   audio: mesh MSE (face model) + soft-DTW (gamma 1e-3) on the
                 18 mouth coefficients; video: mesh MSE + coefficient MSE
    20 x mouth   L1 of squared vertical lip gaps (outer, inner) of res and
                 rec against A's
     1 x temporal  LSGAN against the temporal PatchGAN, res and rec
    50 x style_adv LSGAN against the conditional style critic (res with B's
                   label, rec with A's)
    50 x class   CE of the frozen style classifier, res -> B, rec -> A
    10 x triplet on frozen style codes:
                 max(d(res, B) + d(rec, A) + d(res, B+) - d(res, B-)
                     - d(res, A) + 5, 0), d = MSE
  1000 x cycle   video: MSE + mesh MSE of back against A
Departures (config.loss; 0 gives the official loss): w_rest, the MSE of
rec's coefficients 18-63 against A's; w_stats, the MSE of res's time-mean
coefficients 18-63 (0-63 with loss.stats_mouth) against the mean of B's
two clips (style and positive), standardised per coefficient
(style_stats); w_keep, 1 - the cosine of res's mouth trajectory
(coefficients 0-17 minus their window mean) with A's (mouth_keep).
Past the mouth a clip's mean is its style, not its speech (static offsets,
brows, blinks), and no official term asks res for it directly.
Critics: temporal PatchGAN LSGAN (real A and B -> 1, res and rec -> 0);
conditional style critic LSGAN (+1 real with its label, -1 generated with
the label it was asked for) plus R1 = 0.5 * 10 * E ||grad_x D(real)||^2.

Departures from the official code: the HyperStyle weights are differentiable
(hyperstyle.py); the official batch also runs every pair swapped (B's audio
in A's style), here a batch holds independent random pairs instead.

Evaluation (held-out pairs; on the synthetic corpus with its style-transfer
ground truth): for the model, the canonical branch alone, the content clip's
own expression and (as a ceiling) the ground truth itself:
  mouth_lmk, face_lmk   mean landmark distance to the ground truth (the
                        face model's "mouth" and "face" landmark sets: 20
                        and 68 keypoints, or the 40 lip points and all 468
                        of the MediaPipe basis), face-model units
  exp_mouth, exp_rest   L1 to the ground truth, coefficients 0-17 and 18-63
  style_accuracy        frozen classifier (window logits averaged over the
                        clip) names the style clip's class (seen styles only)
  style_code_dist       squared distance of the clip's mean style code to
                        the style clip's, both quantized (the codebook's
                        space, whatever codes the generator takes; on a
                        style stage trained without a codebook, its
                        continuous space: `evaluate` measures such a
                        run in its runs folder's style stage instead)
  mouth_dtw             soft-DTW of the mouth coefficients per frame
  mouth_corr,           the mouth coefficients' motion against the ground
    mouth_motion        truth's: correlation, ratio of spreads
  sync_corr, sync_lag   the inner-lip gap against the speech energy, at the
                        best lag (audio corpora)
All of them per pair through saas_jax.evaluators.benchmark.score.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from input_pipeline import batches as batches_lib
from input_pipeline import default_data, features
from saas_jax import face_model as face_lib
from saas_jax import losses, speech_augment
from saas_jax.engine import data as data_lib
from saas_jax.engine import loop, optim
from saas_jax.engine import workdir as workdir_lib
from saas_jax.engine.train_state import apply_part
from saas_jax.evaluators import benchmark, windows
from saas_jax.models import builders, hyperstyle, motion_decoder

WINDOW = builders.WINDOW


Nets = builders.MotionNets


def style_model_config(config) -> dict:
  """The model block of the style run config.frozen.style names."""
  return workdir_lib.require_run(
    config.frozen.get("style") or "", "style_vqvae", "config.frozen.style"
  )["model"]


def make_nets(config, num_classes: int, style_model=None) -> Nets:
  """style_model: the style stage's config.model (default: read from the
  config.frozen.style run)."""
  if style_model is None:
    style_model = style_model_config(config)
  m = config.model
  if m.hyperstyle and m.style_branch:
    try:
      hyperstyle.kernel_widths(style_model["hidden"], m.hidden, m.hyper_width)
    except ValueError as e:
      raise ValueError(
        f"config.model.hidden={m.hidden} does not fit the style codes of "
        f"{config.frozen.style} ({style_model['hidden']}-d): {e}"
      ) from None
  return builders.motion_nets(m, config.driver, num_classes, style_model)


@functools.cache
def face(spec: str) -> face_lib.FaceModel:
  return face_lib.load(spec)


@functools.cache
def _gram(spec: str) -> np.ndarray:
  fm = face(spec)
  e = fm.exp_basis.reshape(fm.num_exp, -1).astype(np.float64)
  return (e @ e.T / e.shape[1]).astype(np.float32)


def mesh_mse(spec: str, pred, target):
  """Mean squared vertex distance of two expressions on the face model
  `spec` (the identity cancels): d^T (E E^T) d / (3 N), E the basis."""
  d = pred - target
  return jnp.mean(jnp.einsum("...i,ij,...j->...", d, _gram(spec), d))


def lip_gaps_sq(face_model, exp):  # [..., 64] -> [..., 2]
  return face_model.lip_distances(exp) ** 2


# ----------------------------------------------------------------- steps ---


def style_codes(nets: Nets, frozen, exp, cfg, quantize: bool | None = None):
  """Frozen E_s: [N, 32, 64] -> [N, S], quantized as the generator's codes
  are (cfg.quantized_style) unless `quantize` says otherwise."""
  return nets.style.apply(
    frozen["style"],
    exp,
    quantize=cfg.quantized_style if quantize is None else quantize,
    method=nets.style.style_code,
  )


def source_inputs(batch, driver: str) -> dict:
  if driver == "audio":
    keys = ("mel", "ref_exp", "blink", "mel_mean")
    return {k: batch[k] for k in keys if k in batch}
  return {"exp": batch["exp"]}


def generate(gen_params, batch_stats, batch, s_a, s_b, *, nets: Nets, cfg):
  """The generator's training forward pass -> ({res, rec[, back]}, stats)."""
  source = source_inputs(batch, nets.generator.driver)

  def forward(m):
    z = m.content(source, s_a, train=True)  # [B, T, 64]
    out, _ = m.stylize(
      jnp.concatenate([z, z]), jnp.concatenate([s_b, s_a]), train=True
    )
    res, rec = jnp.split(out, 2)  # [B, T, 64] each
    outs = {"res": res, "rec": rec}
    if cfg.w_cycle:
      z_back = m.content({"exp": res}, s_b, train=True)
      outs["back"] = m.stylize(z_back, s_a, train=True)[0]
    return outs

  variables = {"params": gen_params}
  if batch_stats:
    variables["batch_stats"] = batch_stats
  outs, mutated = nets.generator.apply(
    variables, method=forward, mutable=["batch_stats"]
  )
  return outs, mutated.get("batch_stats", {})


def critic_loss(params, batch, fake, *, nets: Nets, cfg):
  real = (
    (batch["exp"], batch["label"]),
    (batch["style_exp"], batch["style_label"]),
  )
  generated = (fake["res"], batch["style_label"]), (fake["rec"], batch["label"])

  def temporal(x):
    return nets.temporal.apply({"params": params["temporal"]}, x)

  def style(x, label):
    return nets.style_critic.apply({"params": params["style"]}, x, label)

  tem = sum(losses.lsgan(temporal(x), 1.0) for x, _ in real) + sum(
    losses.lsgan(temporal(x), 0.0) for x, _ in generated
  )
  sty = sum(losses.lsgan(style(x, lab), 1.0) for x, lab in real) + sum(
    losses.lsgan(style(x, lab), -1.0) for x, lab in generated
  )
  r1 = 0.0
  for x, lab in real:
    grad = jax.grad(lambda x, lab=lab: style(x, lab).sum())(x)
    r1 += 0.5 * cfg.r1 * jnp.mean(jnp.sum(grad**2, axis=(1, 2)))
  total = tem + sty + r1
  return total, {"critic/temporal": tem, "critic/style": sty, "critic/r1": r1}


def style_stats(res, batch, scale: str, mouth: bool = False):
  """MSE of res's time-mean coefficients 18-63 (mouth: 0-63) against B's
  (the mean of B's two clips); scale "batch" divides each coefficient's
  error by the spread of window means across the batch's real clips, so
  that the low-variance coefficients (whose offsets name a style as surely
  as the large ones) weigh alike; "raw": coefficient units."""
  m = 0 if mouth else motion_decoder.MOUTH
  means = {
    k: batch[k][..., m:].mean(1)  # [B, C], C = 46 (mouth: 64)
    for k in ("exp", "style_exp", "pos_exp", "neg_exp")
  }
  target = 0.5 * (means["style_exp"] + means["pos_exp"])  # [B, C]
  err = res[..., m:].mean(1) - target
  if scale == "batch":
    spread = jnp.concatenate(list(means.values())).std(0)  # [C]
    err = err / (spread + 1e-3)
  elif scale != "raw":
    raise ValueError(f"loss.stats_scale: 'batch' or 'raw', not {scale!r}")
  return jnp.mean(err**2)


def mouth_keep(res, source):
  """1 - cosine of the mouth trajectories (coefficients 0-17, each minus
  its mean over the window) of res and the source clip A, per clip: asks
  the stylized clip to move its mouth when and as A does, at any gain."""
  m = motion_decoder.MOUTH
  r = res[..., :m] - res[..., :m].mean(1, keepdims=True)  # [B, T, 18]
  a = source[..., :m] - source[..., :m].mean(1, keepdims=True)
  dot = jnp.sum(r * a, axis=(1, 2))  # [B]
  # eps inside the root: a still window (either side) has a finite gradient
  norm = jnp.sqrt(
    jnp.sum(r**2, axis=(1, 2)) * jnp.sum(a**2, axis=(1, 2)) + 1e-12
  )
  return jnp.mean(1.0 - dot / norm)


def generator_loss(outs, critic_params, frozen, batch, codes, *, nets, cfg):
  res, rec, a = outs["res"], outs["rec"], batch["exp"]
  la, lb = batch["label"], batch["style_label"]
  fm = face(cfg.face_model)
  mouth_dims = motion_decoder.MOUTH

  recon = mesh_mse(cfg.face_model, rec, a)
  if cfg.recon == "mesh_dtw":
    recon += jnp.mean(
      losses.soft_dtw(rec[..., :mouth_dims], a[..., :mouth_dims], cfg.gamma)
    )
  else:
    recon += jnp.mean((rec - a) ** 2)
  # Coefficients past the mouth, against A's directly (loss.w_rest; 0 in
  # the official loss, where only the mesh term reaches them).
  rest = jnp.mean((rec[..., mouth_dims:] - a[..., mouth_dims:]) ** 2)
  stats = style_stats(res, batch, cfg.stats_scale, cfg.stats_mouth)
  gaps = lip_gaps_sq(fm, a)
  mouth = jnp.mean(jnp.abs(lip_gaps_sq(fm, res) - gaps)) + jnp.mean(
    jnp.abs(lip_gaps_sq(fm, rec) - gaps)
  )

  def temporal(x):
    return nets.temporal.apply({"params": critic_params["temporal"]}, x)

  def style(x, label):
    return nets.style_critic.apply({"params": critic_params["style"]}, x, label)

  def classify(x):
    return nets.classifier.apply(frozen["classifier"], x)

  temporal_adv = losses.lsgan(temporal(res), 1.0) + losses.lsgan(
    temporal(rec), 1.0
  )
  style_adv = losses.lsgan(style(res, lb), 1.0) + losses.lsgan(
    style(rec, la), 1.0
  )
  logits_res, logits_rec = jnp.split(classify(jnp.concatenate([res, rec])), 2)
  cls = losses.cross_entropy(logits_res, lb) + losses.cross_entropy(
    logits_rec, la
  )
  s_res, s_rec = jnp.split(
    style_codes(nets, frozen, jnp.concatenate([res, rec]), cfg), 2
  )
  s_a, s_b, s_pos, s_neg = codes
  d = losses.sq_dist
  hinge = (
    d(s_res, s_b)
    + d(s_rec, s_a)
    + d(s_res, s_pos)
    - d(s_res, s_neg)
    - d(s_res, s_a)
    + cfg.triplet_margin
  )
  triplet = jnp.mean(jnp.maximum(hinge, 0.0))
  terms = {
    "recon": recon,
    "rest": rest,
    "stats": stats,
    "mouth": mouth,
    "temporal": temporal_adv,
    "style_adv": style_adv,
    "class": cls,
    "triplet": triplet,
  }
  if cfg.w_keep:
    terms["keep"] = mouth_keep(res, a)
  if "back" in outs:
    back = outs["back"]
    terms["cycle"] = jnp.mean((back - a) ** 2) + mesh_mse(
      cfg.face_model, back, a
    )
  total = sum(cfg[f"w_{k}"] * v for k, v in terms.items())
  metrics = {
    **terms,
    "style_accuracy": losses.accuracy(logits_res, lb),
  }
  return total, metrics


def train_step(state, batch, rng):
  """Critic step, then generator step; a non-finite loss changes nothing.
  rng draws the speech augmentation (audio, when config.augment asks)."""
  nets, cfg = state.apply_fn, state.cfg
  if "mel" in batch and speech_augment.enabled(cfg.augment):
    mel, mel_mean = speech_augment.augment(
      rng, batch["mel"], batch["mel_mean"], cfg.augment
    )
    batch = {**batch, "mel": mel, "mel_mean": mel_mean}
  frozen = state.extra["frozen"]
  stats = state.extra.get("batch_stats", {})
  real = jnp.concatenate(
    [batch["exp"], batch["style_exp"], batch["pos_exp"], batch["neg_exp"]]
  )
  codes = jnp.split(style_codes(nets, frozen, real, cfg), 4)  # [B, S] each

  def forward(gen_params):
    return generate(
      gen_params, stats, batch, codes[0], codes[1], nets=nets, cfg=cfg
    )

  outs, gen_vjp, new_stats = jax.vjp(
    forward, state.params["generator"], has_aux=True
  )

  (d_loss, d_metrics), d_grads = jax.value_and_grad(critic_loss, has_aux=True)(
    state.params["critics"],
    batch,
    jax.lax.stop_gradient(outs),
    nets=nets,
    cfg=cfg,
  )
  new = apply_part(state, "critics", d_grads)

  (g_loss, g_metrics), out_grads = jax.value_and_grad(
    generator_loss, has_aux=True
  )(outs, new.params["critics"], frozen, batch, codes, nets=nets, cfg=cfg)
  (g_grads,) = gen_vjp(out_grads)
  new = apply_part(new, "generator", g_grads)
  if stats:
    new = new.replace(extra={**state.extra, "batch_stats": new_stats})

  finite = jnp.isfinite(g_loss) & jnp.isfinite(d_loss)
  new = jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, state)
  new = new.replace(step=state.step + 1)
  metrics = {
    "loss": g_loss,
    "critic_loss": d_loss,
    "grad_norm": jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(g_grads))),
    **g_metrics,
    **d_metrics,
  }
  return new, metrics


# ------------------------------------------------------------ evaluation ---


def eval_pairs(config, inputs, num_pairs: int) -> list[benchmark.Pair]:
  """Held-out (content, style) pairs: the synthetic corpus's style-transfer
  pairs with ground truth when the data is the default corpus (or
  config.eval.pairs_dir names one), else random cross-person pairs of the
  eval split."""
  data_dir, data_config = data_lib.resolve(config)
  tables = [inputs.eval_table]
  pairs_dir = config.eval.pairs_dir
  if not pairs_dir and not config.data.data_dir:
    pairs_dir = default_data.corpus_dir(speech=config.data.speech)
  unseen = config.eval.unseen_split
  if pairs_dir and batches_lib.has_split(data_dir, data_config, unseen):
    tables.append(
      batches_lib.load_table(
        data_dir,
        data_config,
        unseen,
        with_audio=config.driver == "audio",
      )
    )
  return benchmark.load_pairs(
    tables,
    seen=set(str(c) for c in inputs.eval_table.clip_ids),
    pairs_dir=pairs_dir,
    with_audio=config.driver == "audio",
    seed=config.seed,
    num_pairs=num_pairs,
  )


@dataclasses.dataclass(frozen=True)
class _Codes:  # hashable, so batched_apply compiles it once per shape
  nets: Nets
  cfg: ml_collections.FrozenConfigDict
  quantize: bool | None = None

  def __call__(self, frozen, x):
    return style_codes(self.nets, frozen, x, self.cfg, self.quantize)


@dataclasses.dataclass(frozen=True)
class _Logits:
  nets: Nets

  def __call__(self, frozen, x):
    return self.nets.classifier.apply(frozen["classifier"], x)


@dataclasses.dataclass(frozen=True)
class _Transfer:
  """Generator output and the canonical branch alone, eval mode."""

  nets: Nets

  def __call__(self, variables, x):
    def forward(m, canonical_only):
      z = m.content(x["source"], x["s_src"])
      return m.stylize(z, x["s_t"], canonical_only=canonical_only)[0]

    gen = self.nets.generator
    return {
      "model": gen.apply(variables, False, method=forward),
      "canonical": gen.apply(variables, True, method=forward),
    }


def _per_clip(fn, state, mesh, clips) -> np.ndarray:
  return windows.apply_per_clip(fn, state.extra["frozen"], clips, mesh)


def clip_style_codes(state, mesh, clips, cfg, quantize=None) -> np.ndarray:
  """[num clips, S] mean frozen style code over each clip's windows
  (quantize: None, as the generator's codes are)."""
  return _per_clip(_Codes(state.apply_fn, cfg, quantize), state, mesh, clips)


def clip_logits(state, mesh, clips) -> np.ndarray:
  """[num clips, classes] frozen classifier logits, averaged per clip."""
  return _per_clip(_Logits(state.apply_fn), state, mesh, clips)


def transfer(
  state, mesh, pairs: list[benchmark.Pair], cfg, batch_size=32, s_t=None
) -> dict:
  """Runs the generator on every pair (whole clips, one pass) -> {"model":
  [T, 64] per pair, "canonical": the canonical branch alone}. s_t: the
  style clips' codes, if the caller has them already."""
  nets = state.apply_fn
  s_src = clip_style_codes(state, mesh, [p.content for p in pairs], cfg)
  if s_t is None:
    s_t = clip_style_codes(state, mesh, [p.style for p in pairs], cfg)
  variables = {"params": state.params["generator"]}
  if "batch_stats" in state.extra:
    variables["batch_stats"] = state.extra["batch_stats"]
  driver = nets.generator.driver
  run = _Transfer(nets)

  out = {"model": [None] * len(pairs), "canonical": [None] * len(pairs)}
  lengths = np.array([len(p.content) for p in pairs])
  buckets = sorted({_bucket(n) for n in lengths})
  for bucket in buckets:
    idx = np.flatnonzero([_bucket(n) == bucket for n in lengths])
    source = {}
    if driver == "audio":
      mel = np.zeros((len(idx), bucket, 80, 16), np.float32)
      mel_mean = np.zeros((len(idx), 80), np.float32)
      for k, i in enumerate(idx):
        mel[k, : lengths[i]] = pairs[i].mel
        mel_mean[k] = features.clip_mel_mean(mel[k, : lengths[i]])
      source = {
        "mel": mel,
        "mel_mean": mel_mean,
        "ref_exp": np.stack([pairs[i].content[0] for i in idx]),
        "blink": np.zeros((len(idx), bucket), np.float32),
      }
    else:
      exp = np.zeros((len(idx), bucket, 64), np.float32)
      for k, i in enumerate(idx):
        exp[k, : lengths[i]] = pairs[i].content
      source = {"exp": exp}
    x = {"source": source, "s_src": s_src[idx], "s_t": s_t[idx]}
    # The adapter is causal: padding after a clip cannot change its frames.
    result = windows.batched_apply(run, variables, x, mesh, batch_size)
    for k, i in enumerate(idx):
      for name in out:
        out[name][i] = result[name][k, : lengths[i]]
  return out


def _bucket(n: int) -> int:
  return max(64, 1 << int(np.ceil(np.log2(n))))


def evaluate_pairs(state, mesh, pairs, cfg) -> dict:
  """Mean metrics over the pairs of the model, its canonical branch alone,
  the content clip's own expression and (ground truth) the target, each
  prefixed "<system>/"."""
  if not pairs:  # e.g. an eval split of one person: nothing to pair
    return {"num_pairs": 0.0}
  # Style-code distances in the codebook's quantized space whatever codes
  # the generator uses, so that they compare across variants.
  s_t = clip_style_codes(state, mesh, [p.style for p in pairs], cfg, True)
  generated = transfer(
    state, mesh, pairs, cfg, s_t=s_t if cfg.quantized_style else None
  )
  systems = {
    "model": generated["model"],
    "canonical": generated["canonical"],
    "content": [p.content for p in pairs],
  }
  if all(p.target is not None for p in pairs):
    systems["target"] = [p.target for p in pairs]
  fm = face(cfg.face_model)
  per_pair = [{} for _ in pairs]
  for name, seqs in systems.items():
    codes = clip_style_codes(state, mesh, seqs, cfg, True)
    logits = clip_logits(state, mesh, seqs)
    for i, p in enumerate(pairs):
      if name == "target":  # no errors against itself
        p = dataclasses.replace(p, target=None)
      row = benchmark.score(p, seqs[i], codes[i], s_t[i], logits[i], fm)
      per_pair[i].update({f"{name}/{k}": v for k, v in row.items()})
  results = benchmark.summarize(per_pair)
  results["num_pairs"] = float(len(pairs))
  return results


# ---------------------------------------------------------------- wiring ---


def stage_cfg(config) -> ml_collections.FrozenConfigDict:
  """The static settings train_step reads (state.cfg)."""
  return ml_collections.FrozenConfigDict(
    {
      **config.loss.to_dict(),
      "face_model": config.face_model,
      "quantized_style": config.model.quantized_style,
      "augment": config.augment.to_dict(),
    }
  )


def make_optimizer(config, total: int):
  return optim.partitioned(
    {
      "critics": optim.make_optimizer(config.optim, total),
      "generator": optim.make_optimizer(config.optim, total),
    }
  )


def init_variables(nets: Nets, rng, style_dim: int) -> dict:
  b = 2
  keys = jax.random.split(rng, 5)
  s = jnp.zeros((b, style_dim))
  exp = jnp.zeros((b, WINDOW, 64))
  source = {
    "mel": jnp.zeros((b, WINDOW, 80, 16)),
    "mel_mean": jnp.zeros((b, 80)),
    "ref_exp": jnp.zeros((b, 64)),
    "blink": jnp.zeros((b, WINDOW)),
    "exp": exp,
  }
  gen = dict(nets.generator.init(keys[0], source, s, s))
  label = jnp.zeros((b,), jnp.int32)
  variables = {
    "params": {
      "generator": gen.pop("params"),
      "critics": {
        "temporal": nets.temporal.init(keys[1], exp)["params"],
        "style": nets.style_critic.init(keys[2], exp, label)["params"],
      },
    },
    "frozen": {
      "style": nets.style.init(keys[3], exp),
      "classifier": nets.classifier.init(keys[4], exp),
    },
  }
  if "batch_stats" in gen:
    variables["batch_stats"] = gen["batch_stats"]
  return variables


def describe(config, inputs, style_model, state) -> dict:
  """spec.json: what inference.Stylizer rebuilds the run from."""
  style = jax.tree.map(loop.fetch, state.extra["frozen"]["style"])
  return {
    "driver": config.driver,
    "model": config.model.to_dict(),
    "num_classes": inputs.num_classes,
    "style_model": dict(style_model),
    "quantized_style": config.model.quantized_style,
    "face_model": config.face_model,
    "frozen": config.frozen.to_dict(),
    "style_encoder": builders.style_encoder_fingerprint(style_model, style),
  }


def train_and_evaluate(config, workdir: str):
  inputs = data_lib.load(config, with_audio=config.driver == "audio")
  style_model = style_model_config(config)
  nets = make_nets(config, inputs.num_classes, style_model)
  style_dim = nets.style.vq.hidden
  builder = (
    batches_lib.audio_pairs
    if config.driver == "audio"
    else batches_lib.video_pairs
  )
  cfg = stage_cfg(config)
  pairs = None

  def evaluate(state, mesh):
    nonlocal pairs
    if pairs is None:
      pairs = eval_pairs(config, inputs, config.eval.num_pairs)
    return evaluate_pairs(state, mesh, pairs, cfg)

  stage = loop.Stage(
    init=lambda rng: init_variables(nets, rng, style_dim),
    apply_fn=nets,
    train_step=train_step,
    batches=data_lib.batch_iterator(builder, config, inputs),
    evaluate=evaluate,
    cfg=cfg,
    optimizer=make_optimizer,
    describe=lambda state: describe(config, inputs, style_model, state),
  )
  return loop.train_and_evaluate(config, workdir, stage)
