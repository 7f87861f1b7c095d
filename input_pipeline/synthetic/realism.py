"""How far the synthetic corpus is from real clips: a two-sample test.

A classifier learns to tell 32-frame windows of real clips from windows of
synthetic ones, on per-window statistics of expression and pose (means,
standard deviations, velocity statistics, low-frequency spectra), with
whole clips held out (grouped k-fold), so that it cannot recognise a clip
it has seen. Balanced accuracy 0.5: indistinguishable; 1.0: always told
apart. Beside it, the synthetic/real ratio of standard deviations along the
top principal components of the real expression (1 = the same spread).

  real = realism.real_clips("../shared/data/styletalk")
  synth = realism.synthetic_clips("small", num_frames=...)
  report = realism.two_sample(real, synth)

Real clips come at their own frame rate (StyleTalk's: 30 fps) and are
resampled to the corpus's 25 fps first.
"""

import dataclasses
import glob
import os

import numpy as np
import scipy.optimize

FPS = 25.0
WINDOW = 32
STRIDE = 16
SPECTRUM_BINS = 4  # rfft bins 1..4 of a 32-frame window: 0.8-3.1 Hz


@dataclasses.dataclass(frozen=True)
class Clip:
  name: str
  exp: np.ndarray  # [T, 64] at 25 fps
  pose: np.ndarray  # [T, 6] angles (rad) + translation


def real_clips(styletalk_dir: str, fps: float = 30.0) -> list[Clip]:
  """Every StyleTalk sample clip (source and style) with >= 32 frames."""
  from input_pipeline import features
  from input_pipeline import io as io_lib

  paths = sorted(glob.glob(os.path.join(styletalk_dir, "*", "3DMM", "*.mat")))
  clips = []
  for path in paths:
    c = features.resample_coefficients(
      io_lib.load_coefficients(path, fps=fps), FPS
    )
    exp = np.asarray(c.exp, np.float64)
    pose = np.concatenate([c.angles, c.trans], 1).astype(np.float64)
    if len(exp) >= WINDOW:
      name = os.path.splitext(os.path.basename(path))[0]
      clips.append(Clip(name, exp, pose))
  return clips


def synthetic_clips(
  preset: str = "small",
  seed: int = 0,
  num_frames: int | None = None,
  space: str = "semantic",
  speech_engine: str = "source_filter",
) -> list[Clip]:
  """Clips of a synthetic preset, rendered in memory (no audio) as the
  corpus renders them, in `space` (motion.render_expression), with the
  phone timing of `speech_engine`'s voices, spread over its persons and
  emotions, until `num_frames` frames (all when None)."""
  from input_pipeline.synthetic import corpus, motion, styles

  specs = corpus.plan_corpus(preset)
  order = np.random.default_rng(seed).permutation(len(specs))
  clips, total = [], 0
  for i in order:
    spec = specs[i]
    style = corpus.clip_style(seed, spec)
    utt = corpus.clip_utterance(seed, spec, speech_engine)
    phones, t = utt.phones(), utt.num_frames

    def rng(part, spec=spec):
      return styles.rng_for(seed, "clip", spec.id, part)

    exp = motion.render_expression(
      phones, style, t, rng=rng("expression"), space=space
    )
    pose = motion.render_pose(phones, style, t, rng=rng("pose"), space=space)
    clips.append(Clip(spec.id, exp, pose))
    total += t
    if num_frames is not None and total >= num_frames:
      break
  return clips


BILABIALS = ("M", "B", "P")
OPEN_VOWELS = ("AA", "AE", "AO", "AW", "AY")


def lip_gaps_by_phone(clips) -> tuple[np.ndarray, np.ndarray]:
  """Inner-lip gaps through the shipped real-data landmark basis, of the
  frames that show a bilabial and of those that show an open vowel.

  clips: (exp [T, 64] in the real space, phones [(label, start, end)]).
  The phone shown at frame t is the one heard at t + the calibrated lead
  (real mouths move before the sound)."""
  from input_pipeline import synthetic as syn
  from input_pipeline.synthetic import real_space
  from saas_jax import face_model as face_lib

  face = face_lib.load("mediapipe")
  lead = -int(real_space.tables()["mouth_lag"])
  closed, opened = [], []
  for exp, phones in clips:
    labels = [syn.base_phone(x) for x in syn.frame_labels(phones, len(exp))]
    inner = np.asarray(face.lip_distances(np.asarray(exp, np.float32)))[:, 1]
    for t in range(len(inner) - lead):
      if labels[t + lead] in BILABIALS:
        closed.append(inner[t])
      elif labels[t + lead] in OPEN_VOWELS:
        opened.append(inner[t])
  return np.array(closed), np.array(opened)


def window_features(clip: Clip) -> np.ndarray:
  """[W, F] statistics of each 32-frame window (stride 16)."""
  x = np.concatenate([clip.exp, clip.pose], 1)  # [T, 70]
  starts = range(0, len(x) - WINDOW + 1, STRIDE)
  w = np.stack([x[s : s + WINDOW] for s in starts])  # [W, 32, 70]
  vel = np.diff(w, axis=1)
  centred = w - w.mean(1, keepdims=True)
  spec = np.abs(np.fft.rfft(centred, axis=1))[:, 1 : 1 + SPECTRUM_BINS]
  feats = [
    w.mean(1),
    w.std(1),
    vel.std(1),
    np.abs(vel).mean(1),
    *(spec[:, k] / WINDOW for k in range(SPECTRUM_BINS)),
  ]
  return np.concatenate(feats, 1)


def _fit_logistic(x, y, weight, l2):
  """L2-regularised logistic regression (weights per sample)."""
  d = x.shape[1]

  def loss(theta):
    w, b = theta[:d], theta[d]
    z = x @ w + b
    # log(1 + exp(-s z)) with s = 2y - 1, stably.
    s = 2 * y - 1
    ll = np.logaddexp(0, -s * z)
    p = 1 / (1 + np.exp(-z))
    g = (p - y) * weight
    value = np.sum(weight * ll) + 0.5 * l2 * w @ w
    grad = np.r_[x.T @ g + l2 * w, g.sum()]
    return value, grad

  res = scipy.optimize.minimize(
    loss, np.zeros(d + 1), jac=True, method="L-BFGS-B"
  )
  return res.x[:d], res.x[d]


def classify_cv(
  real: list[Clip], synth: list[Clip], folds: int = 5, l2: float = 1.0
) -> float:
  """Balanced accuracy of telling real from synthetic windows, each clip's
  windows all in one fold (grouped k-fold, folds balanced per class)."""
  feats, labels, groups = [], [], []
  rng = np.random.default_rng(0)
  for label, clips in ((1, real), (0, synth)):
    fold_of = rng.permutation(len(clips)) % folds
    for clip, fold in zip(clips, fold_of, strict=True):
      f = window_features(clip)
      feats.append(f)
      labels.append(np.full(len(f), label))
      groups.append(np.full(len(f), fold))
  x, y, g = (
    np.concatenate(feats),
    np.concatenate(labels),
    np.concatenate(groups),
  )
  correct = np.zeros(2)
  count = np.zeros(2)
  for k in range(folds):
    tr, te = g != k, g == k
    mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-8
    xtr, xte = (x[tr] - mu) / sd, (x[te] - mu) / sd
    # Each class weighs the same in the fit, whatever its window count.
    n1 = y[tr].sum()
    weight = np.where(y[tr] == 1, 0.5 / n1, 0.5 / (len(xtr) - n1))
    w, b = _fit_logistic(xtr, y[tr], weight * len(xtr), l2)
    pred = (xte @ w + b) > 0
    for c in (0, 1):
      sel = y[te] == c
      correct[c] += np.sum(pred[sel] == c)
      count[c] += sel.sum()
  return float(np.mean(correct / count))


def pca_std_ratio(real: list[Clip], synth: list[Clip], k: int = 10):
  """[k] synthetic / real standard deviation along the real expression's
  top-k principal components (frames pooled)."""
  r = np.concatenate([c.exp for c in real])
  s = np.concatenate([c.exp for c in synth])
  mean = r.mean(0)
  _, _, vt = np.linalg.svd(r - mean, full_matrices=False)
  pcs = vt[:k]  # [k, 64]
  return ((s - s.mean(0)) @ pcs.T).std(0) / ((r - mean) @ pcs.T).std(0)


def two_sample(real: list[Clip], synth: list[Clip]) -> dict:
  return {
    "real_clips": len(real),
    "synthetic_clips": len(synth),
    "real_windows": sum(len(window_features(c)) for c in real),
    "synthetic_windows": sum(len(window_features(c)) for c in synth),
    "balanced_accuracy": classify_cv(real, synth),
    "pca_std_ratio": [round(float(v), 3) for v in pca_std_ratio(real, synth)],
  }
