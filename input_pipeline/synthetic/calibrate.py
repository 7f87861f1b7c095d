"""Fits the synthetic corpus's map into the real (Deep3DFaceRecon / Basel)
expression space, on the real StyleTalk sample clips.

  python -m input_pipeline.synthetic.calibrate --data ../shared/data/styletalk \\
      [--out input_pipeline/synthetic/calibration.npz]

What it fits (all in the 64-d space every real file uses):
  mouth      a linear map from the generator's six coarticulated
             articulators (jaw, lip close, round, spread, tuck, narrow),
             rendered from each source clip's own phone labels (one per 30
             fps frame), to the clip's real expression, with the best
             time lag; judged clip by clip, each left out of its own fit,
             by the correlation of the predicted and real inner-lip gap
             through the shipped 468-landmark basis;
  eyes       per eye, the direction that closes the lids (lid gap to 0 from
             the mean face) with the smallest Mahalanobis norm under the
             real frames' covariance: the most typical way real faces
             close that eye;
  brows      likewise, raising both brows by 2 standard deviations of the
             real brow height;
  lips       the inner lip gap's gradient and its value at the mean face,
             and the direction that opens the lips (for the contact of
             bilabials);
  statistics the real clips' mean expression; the covariance of per-clip
             means (person and session offsets); the within-clip residual
             after the mouth (principal directions, their standard
             deviations and lag-1 correlations) and the frame-to-frame
             tracking noise; head-pose means, spreads, velocities; the
             generator's own means and spreads (semantic_*), which the
             real-space layout centres and rescales;
  fast band  the recolouring [64, 64] that gives the fast band of synthetic
             clips (rendered with all the tables above, from seed 1) the
             real clips' covariance of it.

Writes an .npz of float64 tables and a .json beside it with provenance (the
files and their sha256, the StyleTalk samples' MIT licence) and the figures
of the fit.
"""

import argparse
import dataclasses
import glob
import hashlib
import json
import os

import numpy as np

from input_pipeline.synthetic import motion, realism

VERSION = 2
LAGS = range(-10, 4)  # frames of exp delay tried for the mouth map
RIDGE = 1.0
# MediaPipe FaceMesh points (the shipped basis): upper and lower lid, brow.
LIDS = {"left": (386, 374), "right": (159, 145)}
BROWS = {"left": (334, 386), "right": (105, 159)}  # brow middle, upper lid
DEFAULT_OUT = os.path.join(os.path.dirname(__file__), "calibration.npz")


@dataclasses.dataclass(frozen=True)
class _NeutralStyle:
  coartic: float = 1.0


def phone_intervals(seq: list[int], names: dict, fps: float = 30.0):
  """Per-frame phone indices -> [(label, start s, end s)] runs; NSN (noise)
  counts as silence."""
  inv = {i: n for n, i in names.items()}
  out = []
  start = 0
  for i in range(1, len(seq) + 1):
    if i == len(seq) or seq[i] != seq[start]:
      label = inv[int(seq[start])]
      label = "SIL" if label == "NSN" else label
      out.append((label, start / fps, i / fps))
      start = i
  return out


def _sha256(path):
  h = hashlib.sha256()
  with open(path, "rb") as f:
    h.update(f.read())
  return h.hexdigest()


def source_clips(styletalk_dir: str):
  """[(name, exp [T, 64] at 25 fps, articulators [T, 6])] of the source
  clips that carry phone labels."""
  from input_pipeline import features
  from input_pipeline import io as io_lib

  with open(os.path.join(styletalk_dir, "phindex.json")) as f:
    names = json.load(f)
  out = []
  for mat in sorted(glob.glob(f"{styletalk_dir}/source_video/3DMM/*.mat")):
    name = os.path.splitext(os.path.basename(mat))[0]
    seq_path = f"{styletalk_dir}/source_video/phoneme/{name}_seq.json"
    if not os.path.isfile(seq_path):
      continue
    with open(seq_path) as f:
      seq = json.load(f)
    clip = io_lib.load_coefficients(mat, fps=30.0)
    exp = features.resample_coefficients(clip, realism.FPS).exp
    exp = np.asarray(exp, np.float64)
    phones = phone_intervals(seq, names)
    art = motion.articulators(phones, _NeutralStyle(), len(exp))
    out.append((name, exp, art, [mat, seq_path]))
  return out


def _shift(art, exp, lag):
  """Pairs art(t) with exp(t + lag)."""
  if lag >= 0:
    return art[: len(art) - lag], exp[lag:]
  return art[-lag:], exp[: len(exp) + lag]


def fit_mouth(clips, lag: int, ridge: float = RIDGE):
  """Ridge map [6, 64] from centred articulators to centred expression."""
  xs, ys = [], []
  for _, exp, art, _ in clips:
    a, e = _shift(art, exp, lag)
    xs.append(a - a.mean(0))
    ys.append(e - e.mean(0))
  x, y = np.concatenate(xs), np.concatenate(ys)
  return np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ y)


def _inner_gap(face, exp):
  return np.asarray(face.lip_distances(exp.astype(np.float32)))[:, 1]


def held_out_mouth(clips, lag: int, face, spread: bool = False) -> dict:
  """Each clip predicted by the map fitted on the others: the correlation
  of predicted and real inner-lip gaps (spread: the ratio of their standard
  deviations, real / predicted, instead)."""
  out = {}
  for i, (name, exp, art, _) in enumerate(clips):
    m = fit_mouth(clips[:i] + clips[i + 1 :], lag)
    a, e = _shift(art, exp, lag)
    pred = _inner_gap(face, e.mean(0) + (a - a.mean(0)) @ m)
    real = _inner_gap(face, e)
    if spread:
      out[name] = float(real.std() / pred.std())
    else:
      out[name] = float(np.corrcoef(pred, real)[0, 1])
  return out


def _gradient(face, points: tuple[int, int]):
  """a, g0: the vertical distance between two points is a . (e - exp_mean)
  + g0 (the basis is linear)."""
  upper, lower = points
  basis = face.exp_basis[:, :, 1]  # [64, N] (y up)
  a = basis[:, upper] - basis[:, lower]
  g0 = face.mean_shape[upper, 1] - face.mean_shape[lower, 1]
  return a.astype(np.float64), float(g0)


def _lip_gradient(face):
  """a with inner lip gap = a . (e - exp_mean) + constant."""
  upper, lower = face.landmark_sets["lips4"][2:]
  basis = face.exp_basis[:, :, 1]
  return (basis[:, upper] - basis[:, lower]).astype(np.float64)


def min_norm_direction(a, change, cov):
  """The d with a . d = change and the smallest d^T cov^-1 d."""
  ca = cov @ a
  return change * ca / (a @ ca)


def _window_std(poses, velocity: bool = False) -> np.ndarray:
  """[6] median standard deviation (of the values, or of their frame-to-
  frame velocity) within 32-frame windows (stride 16)."""
  w = realism.WINDOW
  return np.median(
    [
      (np.diff(p[s : s + w], axis=0) if velocity else p[s : s + w]).std(0)
      for p in poses
      for s in range(0, len(p) - w + 1, realism.STRIDE)
    ],
    0,
  )


def semantic_statistics(preset: str = "small", seed: int = 0, clips: int = 96):
  """The generator's own statistics, which the real-space map rescales and
  centres: the spread of the static offsets (one number); the corpus means
  of the articulators, blinks, brow bumps and static offsets (so that the
  synthetic mean expression is the real one); per pose axis the mean and
  spread of per-clip mean poses, and the mean, within-window spread and
  velocity of the motion around them (semantic layout)."""
  from input_pipeline.synthetic import corpus, styles

  specs = corpus.plan_corpus(preset)
  offsets = np.stack(
    [corpus.clip_style(seed, s).exp_offset[motion._STATIC] for s in specs]
  )
  session = np.mean(
    [corpus.clip_style(seed, s).session_std ** 2 for s in specs]
  )
  picks = np.random.default_rng(seed).permutation(len(specs))[:clips]
  poses, pose_offsets, parts = [], [], []
  for i in picks:
    spec = specs[i]
    style = corpus.clip_style(seed, spec)
    utt = corpus.clip_utterance(seed, spec)
    phones, n = utt.phones(), utt.num_frames
    rng = styles.rng_for(seed, "clip", spec.id, "pose")
    poses.append(motion.render_pose(phones, style, n, rng=rng))
    pose_offsets.append(style.pose_offset)
    rng = styles.rng_for(seed, "clip", spec.id, "expression")
    parts.append(motion.expression_parts(phones, style, n, rng))

  def frame_mean(key):
    return np.concatenate(
      [p[key].reshape(len(p["art"]), -1) for p in parts]
    ).mean(0)

  motion_mean = np.concatenate(
    [p - o for p, o in zip(poses, pose_offsets, strict=True)]
  ).mean(0)
  return {
    "semantic_offset_std": np.float64(np.sqrt(offsets.var(0).mean() + session)),
    "semantic_offset_mean": offsets.mean(0),  # [static]
    "semantic_art_mean": frame_mean("art"),  # [6]
    "semantic_blink_mean": frame_mean("blinks"),  # [2]
    "semantic_brow_mean": frame_mean("brow"),  # [1]
    "semantic_pose_offset_mean": np.mean(pose_offsets, 0),
    "semantic_pose_offset_std": np.std(pose_offsets, 0),
    "semantic_pose_motion_mean": motion_mean,
    "semantic_pose_std": np.median([p.std(0) for p in poses], 0),
    "semantic_pose_window_std": _window_std(poses),
    "semantic_pose_window_velocity_std": _window_std(poses, velocity=True),
    "semantic_pose_velocity_std": np.median(
      [np.diff(p, axis=0).std(0) for p in poses], 0
    ),
  }


def _sqrtm(cov, power=0.5):
  w, v = np.linalg.eigh(cov)
  return (v * np.clip(w, 1e-12, None) ** power) @ v.T


def fit_recolour(tables: dict, real, seed: int = 1, frames: int = 30000):
  """[64, 64] M with cov(fast @ M) = the real clips' covariance of the fast
  band (real_space.fast_band), for the fast band of synthetic clips
  rendered with `tables` (an identity recolouring) from a seed the corpus
  and the realism benchmark do not use."""
  from input_pipeline.synthetic import corpus, real_space, styles

  t = real_space.prepare({**tables, "fast_recolour": np.eye(64)})
  specs = corpus.plan_corpus("small")
  fast, total = [], 0
  for i in np.random.default_rng(seed).permutation(len(specs)):
    spec = specs[i]
    style = corpus.clip_style(seed, spec)
    utt = corpus.clip_utterance(seed, spec)
    rng = styles.rng_for(seed, "clip", spec.id, "expression")
    parts = motion.expression_parts(utt.phones(), style, utt.num_frames, rng)
    fast.append(
      real_space.fast_band(real_space.expression(parts, style, rng, t))
    )
    total += utt.num_frames
    if total >= frames:
      break
  synth = np.cov(np.concatenate(fast).T)
  target = np.cov(np.concatenate([real_space.fast_band(c.exp) for c in real]).T)
  return _sqrtm(synth, -0.5) @ _sqrtm(target)


def fit(styletalk_dir: str) -> tuple[dict, dict]:
  from saas_jax import face_model as face_lib

  face = face_lib.load("mediapipe")
  src = source_clips(styletalk_dir)
  real = realism.real_clips(styletalk_dir)
  mean = np.mean(np.concatenate([c.exp for c in real]), 0)

  scores = {lag: held_out_mouth(src, lag, face) for lag in LAGS}
  lag = max(LAGS, key=lambda k: np.median(list(scores[k].values())))
  mouth = fit_mouth(src, lag)
  # Regression from imperfect labels shrinks the mouth's excursions: the
  # gain that gives held-out predictions the real spread of lip gaps.
  # Only the lip gap is de-attenuated: along the direction that opens the
  # lips with the smallest Mahalanobis norm (the other directions keep
  # their fitted size).
  spreads = held_out_mouth(src, lag, face, spread=True)
  mouth_gain = float(np.median(list(spreads.values())))

  # Within-clip residual after the mouth (source clips), and all clips'
  # within-clip covariance for the eye and brow directions.
  resid = []
  for _, exp, art, _ in src:
    a, e = _shift(art, exp, lag)
    resid.append((e - e.mean(0)) - (a - a.mean(0)) @ mouth)
  within = np.concatenate([c.exp - c.exp.mean(0) for c in real])
  cov = np.cov(within.T)
  gap_a = _lip_gradient(face)
  opening = min_norm_direction(gap_a, 1.0, cov)  # [64], +1 lip gap
  mouth = mouth + (mouth_gain - 1) * np.outer(mouth @ gap_a, opening)
  lips = {
    "lip_gap_grad": gap_a,  # [64]: inner lip gap = grad . (e - mean) + ...
    "lip_gap_at_mean": np.float64(_inner_gap(face, mean[None])[0]),
    "lip_opening": opening,  # [64]: opens the inner lips by 1
  }
  r = np.concatenate(resid)
  _, sv, vt = np.linalg.svd(r - r.mean(0), full_matrices=False)
  resid_std = sv / np.sqrt(len(r))
  # Per direction, the lag-1 correlation of the residual (pooled over
  # clips): fast directions (the mouth's misfit) and slow ones (drift)
  # differ by an order of magnitude in time constant.
  proj = [(x - x.mean(0)) @ vt.T for x in resid]
  lag1 = sum((p[:-1] * p[1:]).sum(0) for p in proj) / sum(
    (p[:-1] ** 2).sum(0) for p in proj
  )
  noise = np.concatenate(
    [np.diff(c.exp, 2, axis=0) / np.sqrt(6) for c in real]
  ).std(0)

  clip_means = np.stack([c.exp.mean(0) for c in real])
  offsets_cov = np.cov((clip_means - clip_means.mean(0)).T)

  directions = {}
  for side, pts in LIDS.items():
    a, g0 = _gradient(face, pts)
    gap = g0 + a @ (mean - face.exp_mean)
    directions[f"blink_{side}"] = min_norm_direction(a, -gap, cov)
  brow_a = sum(_gradient(face, pts)[0] for pts in BROWS.values()) / 2
  brow_std = float(np.sqrt(brow_a @ cov @ brow_a))
  directions["brow_raise"] = min_norm_direction(brow_a, 2 * brow_std, cov)

  poses = [c.pose for c in real]
  tables = {
    "version": np.int64(VERSION),
    "exp_mean": mean,
    "mouth_map": mouth,  # [6, 64]: centred articulators -> expression
    "mouth_lag": np.int64(lag),
    "mouth_gain": np.float64(mouth_gain),
    "offset_cov": offsets_cov,  # [64, 64] of per-clip mean expressions
    "residual_pcs": vt,  # [64, 64] within-clip residual directions
    "residual_std": resid_std,  # [64]
    "residual_lag1": np.clip(lag1, 0.0, 0.995),  # [64]
    "noise_std": noise,  # [64] frame-to-frame tracking noise
    **directions,  # [64] each
    **lips,
    "pose_mean": np.mean([p.mean(0) for p in poses], 0),
    "pose_offset_std": np.std([p.mean(0) for p in poses], 0),
    "pose_std": np.median([p.std(0) for p in poses], 0),
    "pose_window_std": _window_std(poses),
    "pose_window_velocity_std": _window_std(poses, velocity=True),
    "pose_velocity_std": np.median(
      [np.diff(p, axis=0).std(0) for p in poses], 0
    ),
    **semantic_statistics(),
  }
  tables["fast_recolour"] = fit_recolour(tables, real)  # [64, 64]
  files = sorted({f for c in src for f in c[3]})
  files += sorted(
    glob.glob(os.path.join(styletalk_dir, "style_clips", "3DMM", "*.mat"))
  )
  report = {
    "version": VERSION,
    "mouth_lag_frames": lag,
    "mouth_held_out_corr": {str(k): v for k, v in scores[lag].items()},
    "mouth_held_out_corr_median": float(np.median(list(scores[lag].values()))),
    "mouth_gain": mouth_gain,
    "median_by_lag": {
      str(k): float(np.median(list(v.values()))) for k, v in scores.items()
    },
    "residual_lag1_first10": [round(float(v), 3) for v in lag1[:10]],
    "real_clips": len(real),
    "source": {
      "data": "StyleTalk repository samples (FuxiVirtualHuman/styletalk), "
      "MIT licence; Deep3DFaceRecon coefficients at 30 fps with one phone "
      "label per frame",
      "files": {os.path.relpath(f, styletalk_dir): _sha256(f) for f in files},
      "landmark_basis": "saas_jax/assets/mediapipe468_basis.npz",
    },
  }
  return tables, report


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--data", required=True, help="the StyleTalk samples folder")
  p.add_argument("--out", default=DEFAULT_OUT)
  args = p.parse_args(argv)
  tables, report = fit(args.data)
  np.savez(args.out, **tables)
  with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
    json.dump(report, f, indent=1)
  print(
    json.dumps({k: v for k, v in report.items() if k != "source"}, indent=1)
  )
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
