"""Figures of merit for head-pose sequences (no model, NumPy only).

motion_stats      per-clip statistics of the head angles: amplitude (log
                  std), velocity (log std of the first difference) and
                  tempo (autocorrelation at a 0.2 s lag: slow motion stays
                  correlated), 9 numbers. The synthetic corpus draws head
                  motion from exactly these style parameters (amplitude,
                  corner frequency), so they are what a style changes.
StyleReference    the statistics of real clips per style; distance of a
                  clip's statistics to a style's mean, per feature in units
                  of the pooled within-style std (RMS over the features).
                  smooth=13: every pose (reference clips and the measured
                  one) is first smoothed as the pose sampler smooths its
                  output (Savitzky-Golay, 13 frames, order 2), so that the
                  statistics compare head motion and not frame-to-frame
                  tremor: the unsmoothed velocity feature puts real clips,
                  smoothed so, 4.1 from their style (1.3 unsmoothed) on
                  the default data, whatever the motion.
nod_alignment     how well head nods line up with audio energy onsets:
                  mean over onsets of exp(-d^2 / 2 sigma^2), d = frames to
                  the nearest nod (1: every onset has a nod on it). Weak:
                  it counts peaks, and real poses score 0.494 with their
                  own audio against 0.468 with another clip's.
NodTemplate       the onset-locked response: the high-passed pitch around
                  each audio onset (+-12 frames), averaged over the real
                  training clips' onsets, is the template; a clip's
                  response is its onset-locked pitch projected on it (1:
                  the real clips' average nod, 0: none locked to the
                  audio). Real held-out poses: 1.06 with their own audio,
                  -0.34 with another clip's (default data).
                  nod_gain: a pose's response to its own audio's onsets
                  minus that to another clip's onsets (chance: they fall
                  where speech starts and stops as often, so motion tied
                  to the clip's start cancels, which onsets moved along
                  the clip would not do).
jitter            mean |second difference| of the angles (rad / frame^2).
spectral_gain     sqrt of the power of real poses over that of sampled ones
                  per frequency bin of 64-frame windows: what reshapes a
                  sampler's output to real motion (sampling.equalize).
diversity         mean pairwise RMS difference of the angles of samples.
"""

import dataclasses

import numpy as np
import scipy.signal

from input_pipeline import features

TEMPO_LAG = 5  # frames (0.2 s at 25 fps)
SPECTRUM_FRAMES = 64  # window of the periodograms: 33 bins of 0.39 Hz
GAIN_RANGE = (0.25, 4.0)  # what spectral_gain may do to a bin's amplitude


def motion_stats(pose: np.ndarray) -> np.ndarray:
  """[T, 6] pose -> [9] (log amplitude, log velocity, tempo) per angle."""
  a = np.asarray(pose, np.float64)[:, :3]
  c = a - a.mean(0)
  lag = (c[TEMPO_LAG:] * c[:-TEMPO_LAG]).mean(0) / (c.var(0) + 1e-12)
  return np.concatenate(
    [np.log(a.std(0) + 1e-9), np.log(np.diff(a, axis=0).std(0) + 1e-9), lag]
  )


def smoothed(pose: np.ndarray, window: int, order: int = 2) -> np.ndarray:
  """Savitzky-Golay along time (window 0 or a clip shorter than it: as is)."""
  pose = np.asarray(pose, np.float64)
  if not window or len(pose) < window:
    return pose
  return scipy.signal.savgol_filter(pose, window, order, axis=0)


@dataclasses.dataclass
class StyleReference:
  centroids: dict  # label -> [9]
  scale: np.ndarray  # [9] pooled within-style std
  smooth: int = 0  # Savitzky-Golay window applied before the statistics

  def stats(self, pose) -> np.ndarray:
    return motion_stats(smoothed(pose, self.smooth))

  @classmethod
  def from_clips(cls, poses, labels, smooth: int = 0) -> "StyleReference":
    stats = np.stack([motion_stats(smoothed(p, smooth)) for p in poses])
    labels = np.asarray(labels)
    classes = sorted(set(labels.tolist()))
    cent = {c: stats[labels == c].mean(0) for c in classes}
    var = np.mean(
      [stats[labels == c].var(0) for c in classes if (labels == c).sum() > 1],
      axis=0,
    )
    return cls(cent, np.sqrt(var) + 1e-9, smooth)

  def distance(self, pose, label) -> float:
    d = (self.stats(pose) - self.centroids[label]) / self.scale
    return float(np.sqrt(np.mean(d**2)))


def frame_energy(mel: np.ndarray, num_frames: int, fps: float) -> np.ndarray:
  """[F, 80] log-mel (80 fps) -> [T] mean log-mel energy per video frame."""
  per = features.MEL_FPS / fps
  idx = np.arange(num_frames)[:, None] * per + np.arange(int(np.ceil(per)))
  idx = np.clip(idx.astype(np.int64), 0, len(mel) - 1)
  return np.asarray(mel)[idx].mean(axis=(1, 2))


def _peaks(x: np.ndarray, z: float) -> np.ndarray:
  """Indices of local maxima of x above mean + z std."""
  mid = x[1:-1]
  ok = (mid > x[:-2]) & (mid >= x[2:]) & (mid > x.mean() + z * x.std())
  return np.flatnonzero(ok) + 1


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
  k = np.ones(width) / width
  return np.convolve(np.pad(x, width // 2, mode="edge"), k, mode="valid")


def energy_onsets(energy: np.ndarray) -> np.ndarray:
  """Frames where the (smoothed) energy rises fastest."""
  rise = np.diff(_smooth(energy, 3), prepend=energy[0])
  return _peaks(rise, 1.0)


def nods(pose: np.ndarray) -> np.ndarray:
  """Frames of nod peaks: local maxima of |pitch - its 0.5 s average|."""
  pitch = np.asarray(pose, np.float64)[:, 0]
  return _peaks(np.abs(pitch - _smooth(pitch, 13)), 1.0)


NOD_LAGS = np.arange(-12, 13)  # frames around an onset


def highpassed_pitch(pose: np.ndarray) -> np.ndarray:
  """[T, 6] -> [T] pitch minus its 0.5 s average (what a nod moves)."""
  pitch = np.asarray(pose, np.float64)[:, 0]
  return pitch - _smooth(pitch, 13)


def onset_locked(pose: np.ndarray, onsets) -> np.ndarray:
  """[n, 25]: the high-passed pitch around each onset that has all lags."""
  h = highpassed_pitch(pose)
  rows = [
    h[o + NOD_LAGS]
    for o in np.asarray(onsets, np.int64)
    if o + NOD_LAGS[0] >= 0 and o + NOD_LAGS[-1] < len(h)
  ]
  return np.reshape(rows, (len(rows), len(NOD_LAGS)))


@dataclasses.dataclass
class NodTemplate:
  kernel: np.ndarray  # [25] mean onset-locked high-passed pitch (rad)

  @classmethod
  def from_clips(cls, poses, onsets) -> "NodTemplate":
    rows = np.concatenate(
      [onset_locked(p, o) for p, o in zip(poses, onsets, strict=True)]
    )
    # No onsets at all (a tiny corpus): an empty template, no responses.
    return cls(rows.mean(0) if len(rows) else np.zeros(len(NOD_LAGS)))

  def response(self, pose, onsets) -> float | None:
    """Mean projection of the clip's onset-locked pitch on the template
    (None: no onset with all lags inside the clip, or an empty template)."""
    rows = onset_locked(pose, onsets)
    if not len(rows) or not np.any(self.kernel):
      return None
    k = self.kernel
    return float((rows @ k).mean() / (k @ k + 1e-12))


def table_onsets(table, c) -> np.ndarray:
  """Audio energy onsets (frames) of clip c of a batches table with audio."""
  mel = table.mel[table.mel_start[c] : table.mel_start[c] + table.mel_len[c]]
  return energy_onsets(frame_energy(mel, int(table.length[c]), table.fps))


def table_template(table) -> NodTemplate:
  """The nod template of a table's clips that have audio."""
  heard = [c for c in range(table.num_clips) if table.has_audio[c]]
  poses = [
    table.pose[table.start[c] : table.start[c] + table.length[c]] for c in heard
  ]
  return NodTemplate.from_clips(poses, [table_onsets(table, c) for c in heard])


def nod_gain(template: NodTemplate, pose, onsets, chance) -> float | None:
  """Response to the clip's own onsets minus to another clip's (`chance`,
  those inside this clip)."""
  chance = np.asarray(chance, np.int64)
  own = template.response(pose, onsets)
  other = template.response(pose, chance[chance < len(pose)])
  return None if own is None or other is None else own - other


def nod_alignment(onsets, nod_frames, sigma: float = 3.0) -> float | None:
  if len(onsets) == 0:
    return None
  if len(nod_frames) == 0:
    return 0.0
  d = np.abs(np.asarray(onsets)[:, None] - np.asarray(nod_frames)[None])
  return float(np.mean(np.exp(-(d.min(1) ** 2) / (2 * sigma**2))))


def jitter(pose: np.ndarray) -> float:
  return float(np.abs(np.diff(np.asarray(pose)[:, :3], 2, axis=0)).mean())


def diversity(samples: np.ndarray) -> float:
  """[N, T, 6] samples of one clip -> mean pairwise RMS of the angles."""
  a = np.asarray(samples, np.float64)[..., :3]
  n = len(a)
  pairs = [
    np.sqrt(np.mean((a[i] - a[j]) ** 2))
    for i in range(n)
    for j in range(i + 1, n)
  ]
  return float(np.mean(pairs)) if pairs else 0.0


def mean_periodogram(poses) -> np.ndarray:
  """[T, 6] poses -> [33, 6]: mean power per frequency bin over their
  64-frame windows (each pose about its own mean: bin 0 is how a window
  sits off the clip's average, the slow wander). Shorter poses count
  nothing."""
  n = SPECTRUM_FRAMES
  rows = []
  for p in poses:
    p = np.asarray(p, np.float64)
    w = (p - p.mean(0))[: len(p) // n * n].reshape(-1, n, p.shape[-1])
    rows.append(np.abs(np.fft.rfft(w, axis=1)) ** 2 / n)
  rows = [r for r in rows if len(r)]
  if not rows:
    raise ValueError(f"no pose of at least {n} frames")
  return np.concatenate(rows).mean(0)


def spectral_gain(real, sampled) -> np.ndarray:
  """[33, 6] amplitude gain per bin that gives sampled poses the mean
  spectrum of real ones (lists of [T, 6]), within GAIN_RANGE."""
  ratio = mean_periodogram(real) / (mean_periodogram(sampled) + 1e-20)
  return np.clip(np.sqrt(ratio), *GAIN_RANGE)
