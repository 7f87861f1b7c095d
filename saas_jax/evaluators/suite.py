"""A trained pipeline (a train_pipeline runs folder) scored item by item: the
style-transfer pairs end to end, and the split's clips stage by stage. Each
item gives one row of metrics, computed from that item alone (so rows can be
computed on any process); `finish` adds the metrics that need every row
(retrieval among all clips, codebook use).

Uses the inference package to run the models, as a user would: no trainer.
"""

import dataclasses
import functools
import os

import jax.numpy as jnp
import numpy as np

from saas_jax import face_model as face_lib
from saas_jax.engine import executable_cache
from saas_jax.evaluators import benchmark, codebook, pose, style
from saas_jax.evaluators import windows as windows_lib
from saas_jax.inference import PoseSampler, StyleSpace, Stylizer, runs
from saas_jax.inference import pose as pose_inference
from saas_jax.models import builders, critics

FACE_MODEL = "mediapipe"  # when no expression run names one


@dataclasses.dataclass
class Models:
  """The runs of one pipeline; None where a run is missing."""

  stylizer: Stylizer | None
  sampler: PoseSampler | None
  space: StyleSpace | None
  classify: object | None  # [T, 64] -> [classes] mean window logits
  pose_recon: object | None  # [T, 6] -> its windows, reconstructed and not
  missing: list  # "stage: why"
  face: object = None  # the expression run's face model (landmarks)

  @classmethod
  def load(cls, runs_dir: str, driver: str = "audio") -> "Models":
    missing = []

    def get(stage, make):
      path = os.path.join(runs_dir, stage)
      try:
        return make(path)
      except runs.RunError as e:
        missing.append(f"{stage}: {e}")
        return None

    stylizer = get(f"{driver}_driven", lambda p: Stylizer.load(p, driver))
    spec = stylizer.run.spec if stylizer else {}
    return cls(
      stylizer,
      get("pose_generator", PoseSampler.load),
      get("style_vqvae", StyleSpace.load),
      get("style_classifier", _classifier),
      get("pose_vqvae", _pose_codebook),
      missing,
      _face_model(spec.get("face_model", FACE_MODEL)),
    )


@functools.lru_cache(maxsize=4)
def _face_model(spec: str):
  return face_lib.load(spec)


def _classifier(path):
  run = runs.load_run(path, "style_classifier")
  model = critics.StyleClassifier(run.spec["num_classes"])
  fn = executable_cache.Jit(model.apply, "classify")  # [W, 32, 64] -> [W, K]
  run.cache(fn)
  variables = {"params": run.params}

  def classify(exp):
    x, n = _windows(exp)
    return np.asarray(fn(variables, x))[:n].mean(0)

  return classify


def _pose_codebook(path):
  run = runs.load_run(path, "pose_vqvae")
  model = builders.pose_codebook_model(run.spec["model"])
  fn = executable_cache.Jit(
    lambda v, x, o: model.apply(v, x, o, train=False)["recon"], "pose_recon"
  )
  run.cache(fn)
  variables = {"params": run.params, **run.extra}

  def recon(pose_seq):  # -> (reconstructed, original) [W, 32, 6] windows
    x, n = _windows(pose_seq)
    offset = np.repeat(np.mean(pose_seq, 0, keepdims=True), len(x), 0)
    return np.asarray(fn(variables, x, offset))[:n], np.asarray(x)[:n]

  return recon


def _windows(seq) -> tuple[jnp.ndarray, int]:
  """[T, D] -> ([2^k, 32, D] windows (stride 16), their number n): the
  count padded to a power of two with copies of the last window, so that a
  few shapes are compiled; callers keep the first n rows."""
  w = windows_lib.Windows.of([np.asarray(seq, np.float32)]).x
  size = 1 << (len(w) - 1).bit_length()
  pad = np.repeat(w[-1:], size - len(w), 0)
  return jnp.asarray(np.concatenate([w, pad])), len(w)


# ----------------------------------------------------------------- pairs ---


def pair_row(
  models: Models,
  pair,
  reference,
  sampling: dict,
  judge=None,
  chance=None,
):
  """End to end on one pair: A's speech in B's style (expression and head
  pose) against the ground truth and B's motion statistics; A's own
  expression as the do-nothing baseline ("content/"); the generator's
  canonical branch alone ("canonical/": what the style branch adds is
  model minus canonical). With a style judge
  (evaluators.judge), its verdict on each system and on the ground truth
  ("target/judge_accuracy") and their distance to B in its feature space
  ("judge_dist"). sampling: the pose sampler's num_samples, seed (and
  temperature, top_p). chance: another pair, whose speech onsets are the nods'
  chance baseline."""
  fm = models.face
  row, systems = {}, {}
  st = models.stylizer
  if st is not None:
    s_t = st.style_code(pair.style)
    systems["content"] = pair.content
    source = {"source_exp": pair.content}
    if st.driver == "audio":
      source.update(mel=pair.mel)
    systems["model"] = st(**source, style_exp=pair.style)
    systems["canonical"] = st(**source, style_code=s_t, canonical_only=True)
    # Distances in the codebook's quantized space for every variant; for a
    # generator whose style stage had no codebook, in the runs folder's
    # style stage (without one: its own continuous codes).
    if st.has_codebook or models.space is None:
      code_of = functools.partial(st.style_code, quantize=True)
    else:
      code_of = models.space.code
    s_q = s_t if st.quantized_style and st.has_codebook else code_of(pair.style)
    for name, exp in systems.items():
      logits = models.classify(exp) if models.classify else None
      code = code_of(exp)
      scores = benchmark.score(pair, exp, code, s_q, logits, fm)
      row.update({f"{name}/{k}": v for k, v in scores.items()})
  if judge is not None:
    if pair.target is not None:
      systems["target"] = pair.target
    for name, exp in systems.items():
      row[f"{name}/judge_accuracy"] = judge.hit(exp, pair.style_label)
      row[f"{name}/judge_dist"] = judge.distance(exp, pair.style)
  if models.sampler is not None and pair.mfcc is not None:
    sampler = models.sampler
    code = sampler.style_code(pair.style)
    if sampler.motion_dim:  # the style clip's head motion too
      sampling = {
        **sampling,
        "motion_code": sampler.motion_code(pair.style_pose),
      }
    samples = sampler(pair.mfcc, style_code=code, **sampling)  # [N, T, 6]
    row.update(pose_scores(samples, pair, reference, chance or pair))
  return row


def pose_scores(samples, pair, reference: "PoseReference", chance) -> dict:
  """Sampled head poses of a pair: distance of their motion statistics to
  the style clip's style and to the content clip's (in within-style std
  units; "_smooth": every pose smoothed as the sampler smooths), how often
  the asked style is the closer, jitter, spread of the samples, nods at A's
  speech onsets (alignment of peaks; the onset-locked response to A's
  speech and its gain over the onsets of another pair's speech, `chance`)."""
  by_id = reference.labels
  style_label = by_id[pair.style_id]
  content_label = by_id[pair.content_id]
  row = {}
  for suffix, ref in (("", reference.raw), ("_smooth", reference.smooth)):
    to_style = [ref.distance(s, style_label) for s in samples]
    to_content = [ref.distance(s, content_label) for s in samples]
    row[f"pose/dist_style{suffix}"] = float(np.mean(to_style))
    row[f"pose/dist_content{suffix}"] = float(np.mean(to_content))
    row[f"pose/style_closer{suffix}"] = float(
      np.mean(np.less(to_style, to_content))
      if style_label != content_label
      else np.nan
    )
  # Where A's own recorded motion sits from its style: the floor.
  row["pose/real_dist_smooth"] = reference.smooth.distance(
    pair.content_pose, content_label
  )
  onsets = pose.energy_onsets(pair.energy)
  nods = [pose.nod_alignment(onsets, pose.nods(s)) for s in samples]
  nods = [n for n in nods if n is not None]
  template, other = reference.template, pose.energy_onsets(chance.energy)
  response = [template.response(s, onsets) for s in samples]
  gain = [pose.nod_gain(template, s, onsets, other) for s in samples]
  real_gain = pose.nod_gain(template, pair.content_pose, onsets, other)

  def mean(xs):
    xs = [x for x in xs if x is not None]
    return float(np.mean(xs)) if xs else float("nan")

  return {
    **row,
    "pose/jitter": float(np.mean([pose.jitter(s) for s in samples])),
    "pose/diversity": pose.diversity(samples),
    "pose/nod_align": mean(nods),
    "pose/nod_response": mean(response),
    "pose/nod_gain": mean(gain),
    "pose/real_nod_gain": mean([real_gain]),
    "pose/real_jitter": pose.jitter(pair.content_pose),
  }


@dataclasses.dataclass
class PoseReference:
  """What sampled head motion is measured against: each style's motion
  statistics (raw, and smoothed as the pose sampler smooths), clip id ->
  style, and the real clips' onset-locked nod."""

  raw: pose.StyleReference
  smooth: pose.StyleReference
  labels: dict
  template: pose.NodTemplate

  @classmethod
  def of(cls, tables, heard) -> "PoseReference":
    """tables: the clips of every style; heard: a table with audio (the
    training split) for the nod template."""
    smooth = pose_inference.SAVGOL_WINDOW  # as PoseSampler smooths
    poses, labels, by_id = [], [], {}
    for t in tables:
      for c, cid in enumerate(t.clip_ids):
        poses.append(t.pose[t.start[c] : t.start[c] + t.length[c]])
        labels.append(int(t.label[c]))
        by_id[str(cid)] = int(t.label[c])
    return cls(
      pose.StyleReference.from_clips(poses, labels),
      pose.StyleReference.from_clips(poses, labels, smooth=smooth),
      by_id,
      pose.table_template(heard),
    )


# ----------------------------------------------------------------- clips ---


def clip_row(models: Models, exp, pose_seq, label: int, judge=None) -> dict:
  """One clip of the split, stage by stage. Style codes of its two halves
  and its codebook tokens ride along (keys starting "_") for `finish`.
  With a style judge, its verdict on the real clip ("judge/accuracy": how
  far its verdicts on generated clips can be trusted)."""
  row = {}
  if judge is not None:
    row["judge/accuracy"] = judge.hit(exp, label)
  if models.space is not None:
    halves = style.halves([exp])
    row["_codes"] = [models.space.code(h).tolist() for h in halves]
    row["_tokens"] = models.space.tokens(exp).ravel().tolist()
  if models.classify is not None:
    hit = style.accuracy(models.classify(exp)[None], [label])[0]
    row["classifier/accuracy"] = float(hit)
  if models.pose_recon is not None:
    recon, windows = models.pose_recon(pose_seq)
    row["pose_codebook/recon_l1"] = float(np.abs(recon - windows).mean())
  return row


def finish(rows: list[dict], num_codes: int | None) -> dict:
  """Set-level metrics from every clip row: each clip's retrieval hit (its
  first half's code finds its second half among all clips) is written back
  into its row; codebook use is returned."""
  have = [r for r in rows if "_codes" in r]
  out = {}
  if have:
    codes = np.array([r["_codes"] for r in have])  # [N, 2, S]
    hits = style.retrieval(codes[:, 0], codes[:, 1])
    for r, h in zip(have, hits, strict=True):
      r["style/retrieval"] = float(h)
    tokens = np.concatenate([r["_tokens"] for r in have])
    health = codebook.health(tokens, num_codes)
    out = {f"style/{k}": v for k, v in health.items()}
  for r in rows:
    for k in CARRIED:
      r.pop(k, None)
  return out


CARRIED = ("_codes", "_tokens")  # clip_row -> finish only
