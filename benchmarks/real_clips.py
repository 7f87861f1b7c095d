"""Runs trained on the default data, judged on real clips (the StyleTalk
samples, which no stage has seen).

  python benchmarks/real_clips.py [--runs runs]
      [--data ../shared/data/styletalk] [--out real_clips.json]

speech  the audio-driven run (RUNS/audio_driven) on each source clip's real
        speech, with the clip's first frame as the source and the clip
        itself as the style: per clip, the correlation between the generated
        and the real inner-lip gap (through the shipped 468-landmark basis),
        beside the audio-envelope baseline (the real gap's correlation with
        the speech's RMS envelope, one value per frame) and a phone oracle
        (what the words alone say about the gap: a ridge regression from the
        clip's true phone labels, one-hot over a 7-frame context, to the gap,
        fitted on the other clips; a reference for how much of these
        reconstructions' lip gap any speech-driven model can explain).
        Two readouts from the speech itself say whether the default
        corpus's synthetic speech transfers: a ridge regression from each
        frame's log-mel window to the gap fitted on the default corpus
        (the `small` preset's first SYNTHETIC_CLIPS training clips, speech
        and lip gap rendered in memory) against the same regression
        fitted on the other real clips. Each figure is also given at the
        clip's best lag within +-6 frames (the clips' audio-video offsets
        differ), and the medians over clips at each lag say when the
        generated mouth moves against the real one and against the speech
        envelope (median_model_by_lag, median_model_envelope_by_lag).
style   the style run (RUNS/style_vqvae) on every real clip long enough for
        two 32-frame halves: how often a clip's first half retrieves its
        second half among all second halves, with style codes (the mean
        code of each half's windows; quantized, as the later stages use
        them, and continuous: the encoder's tokens pooled before the
        quantizer) and with the half's mean expression;
        and whether the furious_talk2_clip* family (one speaker) lies closer
        to itself than to the other clips (mean distance ratio, < 1: closer).
        speaker_retrieval: the nearest second half is of the clip's speaker
        (its own or another clip of the same person, by file name), where
        the half retrieval counts another clip of the same person a miss.
        short_clip_retrieval: how often SHORT_DRAWS random stretches of n
        frames of a clip find its whole clip's (quantized) code nearest
        among all whole clips, by n (how short a style clip may be:
        inference.expression.MIN_STYLE_FRAMES).
window  (only with --only window) where the audio CNN's mel window should
        sit: the synthetic readout above, refitted with each frame's window
        moved k frames later (k in WINDOW_SHIFTS; features[t] = window of
        t + k), scored on held-out synthetic clips and on the real clips,
        beside the real readout (leave one clip out) at the same k. The
        default corpus's mouth leads its speech by the calibrated lag
        (input_pipeline/synthetic/calibration.json, mouth_lag_frames);
        the window of frame t spans t - 2 .. t + 3 (Wav2Lip's). Also the
        mean level of each block of 10 mel bands (dB) and the tilt (highest
        block minus the second lowest), synthetic training clips and real.
"""

import argparse
import glob
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from input_pipeline import features  # noqa: E402
from input_pipeline import io as io_lib  # noqa: E402
from input_pipeline.synthetic.realism import BILABIALS, OPEN_VOWELS  # noqa: E402
from saas_jax.evaluators import lip_sync  # noqa: E402
from saas_jax.evaluators import style as style_lib  # noqa: E402

STYLETALK_FPS = 30.0
WINDOW = 32
LAGS = list(range(-lip_sync.MAX_LAG, lip_sync.MAX_LAG + 1))  # envelope lags
ORACLE_CONTEXT = 3  # phone-oracle frames either side
ORACLE_RIDGE = 1.0
READOUT_RIDGE = 10.0  # per 1000 frames, on standardised mel features
SYNTHETIC_CLIPS = 160
HELD_OUT_CLIPS = 40  # synthetic clips (val and test splits) for `window`
WINDOW_SHIFTS = list(range(-2, 7))
FAMILY = "furious_talk2_clip"
SHORT_LENGTHS = (1, 2, 4, 8, 16, 32)  # frames, for short_clip_retrieval
SHORT_DRAWS = 8  # random stretches per clip and length


def _clip(path):
  clip = io_lib.load_coefficients(path, fps=STYLETALK_FPS)
  return features.resample_coefficients(clip, features.MODEL_FPS)


def _phones(data: str, name: str, num_frames: int) -> np.ndarray:
  """[T] phone index per 25 fps frame from the clip's 30 fps labels."""
  with open(f"{data}/source_video/phoneme/{name}_seq.json") as f:
    labels = np.asarray(json.load(f))
  at = np.floor(np.arange(num_frames) * STYLETALK_FPS / features.MODEL_FPS)
  return labels[np.minimum(at.astype(int), len(labels) - 1)]


def _ridge(a: np.ndarray, b: np.ndarray, lam: float) -> np.ndarray:
  return np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ b)


def _zscore(x: np.ndarray) -> np.ndarray:
  return (x - x.mean()) / (x.std() + 1e-8)


def _mel_features(wav: np.ndarray, num_frames: int) -> np.ndarray:
  """[T, 160]: each frame's log-mel window (the audio encoder's input),
  pooled so that a linear readout stays small: 8 blocks of 10 bands x 5
  band pairs (b, b + 5) within a block x 4 groups of 4 steps."""
  m = features.mel_windows(features.log_mel(wav), num_frames)  # [T, 80, 16]
  return m.reshape(num_frames, 8, 2, 20, 4).mean((2, 4)).reshape(num_frames, -1)


class _Readout:
  """Ridge from standardised mel features to per-clip z-scored lip gaps."""

  def __init__(self, feats: list, gaps: list):
    x = np.concatenate(feats)
    self.mu, self.sd = x.mean(0), x.std(0) + 1e-6
    lam = READOUT_RIDGE * len(x) / 1000
    y = np.concatenate([_zscore(g) for g in gaps])
    self.w = _ridge((x - self.mu) / self.sd, y, lam)

  def __call__(self, feats: np.ndarray) -> np.ndarray:
    return ((feats - self.mu) / self.sd) @ self.w


def _synthetic_clips(face, train: bool, num: int) -> tuple[list, list]:
  """Mel features and lip gaps of the default corpus's first `num` clips of
  its training split (or of the others), rendered in memory."""
  from input_pipeline.synthetic import corpus

  specs = [
    s for s in corpus.plan_corpus("small") if (s.split == "train") == train
  ]
  feats, gaps = [], []
  for spec in specs[:num]:
    clip = corpus.render_clip(0, spec)
    feats.append(_mel_features(clip.wav, clip.num_frames))
    gaps.append(lip_sync.mouth_opening(face, clip.exp))
  return feats, gaps


def _synthetic_readout(face) -> _Readout:
  """The readout fitted on the default corpus's own speech and lips."""
  return _Readout(*_synthetic_clips(face, True, SYNTHETIC_CLIPS))


def _best_lag(a, b) -> float:
  return max(lip_sync.correlation(a, b, k) for k in LAGS)


def phone_oracle(phones: dict, gaps: dict) -> dict:
  """Per clip: correlation of the gap with a ridge fit from phones in
  context, fitted on every other clip (leave one clip out)."""
  size = 1 + max(int(p.max()) for p in phones.values())

  def design(p):
    onehot = np.eye(size)[p]
    shifted = [
      np.roll(onehot, k, 0) for k in range(-ORACLE_CONTEXT, ORACLE_CONTEXT + 1)
    ]
    return np.concatenate([*shifted, np.ones((len(p), 1))], 1)

  out = {}
  for name in phones:
    rest = [n for n in phones if n != name]
    a = np.concatenate([design(phones[n]) for n in rest])
    b = np.concatenate([gaps[n] for n in rest])
    w = _ridge(a, b, ORACLE_RIDGE)
    out[name] = lip_sync.correlation(design(phones[name]) @ w, gaps[name])
  return out


def speech(runs: str, data: str) -> dict:
  from saas_jax import face_model as face_lib
  from saas_jax.inference import Stylizer

  face = face_lib.load("mediapipe")
  stylizer = Stylizer.load(os.path.join(runs, "audio_driven"), "audio")
  rng = np.random.default_rng(0)
  synthetic = _synthetic_readout(face)
  per_clip, phones, gaps, mels = {}, {}, {}, {}
  with open(f"{data}/phindex.json") as f:
    index = json.load(f)
  for mat in sorted(glob.glob(f"{data}/source_video/3DMM/*.mat")):
    name = os.path.splitext(os.path.basename(mat))[0]
    wav_path = f"{data}/source_video/wav/{name}.wav"
    if not os.path.isfile(wav_path):
      continue
    real = _clip(mat)
    wav = io_lib.load_audio(wav_path)
    t = features.num_frames_for_audio(len(wav))
    gen = stylizer(
      source_exp=real.exp[:1],
      mel=features.mel_windows(features.log_mel(wav), t),
      blink=features.blink_ratio(rng, t),
      style_exp=real.exp,
    )
    real_gap = lip_sync.mouth_opening(face, real.exp)
    env = lip_sync.rms_envelope(wav, t)
    n = int(min(t, len(real_gap)))
    gen_gap = lip_sync.mouth_opening(face, gen)
    mels[name] = _mel_features(wav, n)
    readout = synthetic(mels[name])
    per_clip[name] = {
      "model": lip_sync.correlation(gen_gap, real_gap),
      "model_best_lag": _best_lag(gen_gap, real_gap),
      "model_by_lag": [
        lip_sync.correlation(gen_gap, real_gap, k) for k in LAGS
      ],
      "model_envelope_by_lag": [
        lip_sync.correlation(env, gen_gap, k) for k in LAGS
      ],
      "mel_readout_synthetic": lip_sync.correlation(readout, real_gap),
      "mel_readout_synthetic_best_lag": _best_lag(readout, real_gap),
      "rms_envelope_by_lag": [
        lip_sync.correlation(env, real_gap, k) for k in LAGS
      ],
      "frames": n,
    }
    phones[name], gaps[name] = _phones(data, name, n), real_gap[:n]
    for kind, group in (("bilabial", BILABIALS), ("open_vowel", OPEN_VOWELS)):
      inside = np.isin(phones[name], [index[p] for p in group])
      per_clip[name][f"median_gap_{kind}"] = float(
        np.median(gaps[name][inside])
      )
  for name, r in phone_oracle(phones, gaps).items():
    per_clip[name]["phone_oracle"] = r
  for name in per_clip:  # the readout fitted on the other real clips
    rest = [m for m in per_clip if m != name]
    real = _Readout([mels[m] for m in rest], [gaps[m] for m in rest])
    per_clip[name]["mel_readout_real"] = lip_sync.correlation(
      real(mels[name]), gaps[name]
    )
  # The baseline at its best lag over all clips (the mouth moves before
  # the sound it makes): a stronger baseline than at lag 0.
  by_lag = np.median([c["rms_envelope_by_lag"] for c in per_clip.values()], 0)
  best = int(np.argmax(by_lag))
  # When the generated mouth moves: model_by_lag[k] is the generated gap k
  # frames later against the real gap (a peak at k > 0: it moves late);
  # model_envelope_by_lag[k] the envelope k frames later against the
  # generated gap, as rms_envelope_by_lag for the real one (k > 0: the
  # mouth moves before the sound).
  timing = {
    f"median_{key}": np.median([c.pop(key) for c in per_clip.values()], 0)
    .round(4)
    .tolist()
    for key in ("model_by_lag", "model_envelope_by_lag")
  }
  for c in per_clip.values():
    c["rms_envelope_best_lag"] = max(c["rms_envelope_by_lag"])
    c["rms_envelope"] = c.pop("rms_envelope_by_lag")[best]
  medians = {
    f"median_{key}": float(np.median([c[key] for c in per_clip.values()]))
    for key in (
      "model",
      "model_best_lag",
      "mel_readout_synthetic",
      "mel_readout_synthetic_best_lag",
      "mel_readout_real",
      "phone_oracle",
      "rms_envelope_best_lag",
    )
  }
  return {
    **medians,
    "median_rms_envelope": float(by_lag[best]),
    "rms_envelope_lag_frames": LAGS[best],
    "lags": LAGS,
    **timing,
    "clips": per_clip,
  }


def _real_speech(data: str, face) -> dict:
  """{name: (mel features [T, 160], real inner-lip gap [T])}."""
  out = {}
  for mat in sorted(glob.glob(f"{data}/source_video/3DMM/*.mat")):
    name = os.path.splitext(os.path.basename(mat))[0]
    wav_path = f"{data}/source_video/wav/{name}.wav"
    if os.path.isfile(wav_path):
      wav = io_lib.load_audio(wav_path)
      gap = lip_sync.mouth_opening(face, _clip(mat).exp)
      n = int(min(features.num_frames_for_audio(len(wav)), len(gap)))
      out[name] = (_mel_features(wav, n), gap[:n])
  return out


def window(data: str) -> dict:
  """Readout correlations by window shift (module docstring, `window`)."""
  from saas_jax import face_model as face_lib

  def shift(f, k):  # features[t] = window of t + k, ends held
    return f[np.clip(np.arange(len(f)) + k, 0, len(f) - 1)]

  face = face_lib.load("mediapipe")
  train = _synthetic_clips(face, True, SYNTHETIC_CLIPS)
  held = _synthetic_clips(face, False, HELD_OUT_CLIPS)
  real = _real_speech(data, face)
  by_shift = {}
  for k in WINDOW_SHIFTS:
    fit = _Readout([shift(f, k) for f in train[0]], train[1])
    row = {
      "synthetic_held_out": [
        lip_sync.correlation(fit(shift(f, k)), g)
        for f, g in zip(*held, strict=True)
      ],
      "synthetic_fit_on_real": {
        n: lip_sync.correlation(fit(shift(f, k)), g)
        for n, (f, g) in real.items()
      },
      "real_fit_on_other_real": {},
    }
    for name, (f, g) in real.items():
      rest = [v for n, v in real.items() if n != name]
      own = _Readout([shift(a, k) for a, _ in rest], [b for _, b in rest])
      row["real_fit_on_other_real"][name] = lip_sync.correlation(
        own(shift(f, k)), g
      )
    by_shift[str(k)] = {
      "median_synthetic_held_out": float(
        np.median(row.pop("synthetic_held_out"))
      ),
      **{
        f"median_{key}": float(np.median(list(v.values())))
        for key, v in row.items()
      },
      **row,
    }

  def band_db(feats):  # mean level of the 8 blocks of 10 bands, dB
    x = np.concatenate(feats).reshape(-1, 8, 20).mean((0, 2))
    return features.norm_to_db(x)

  spectrum = {
    "synthetic": band_db(train[0]),
    "real": band_db([f for f, _ in real.values()]),
  }
  return {
    "shifts": by_shift,
    # from the second block up: the lowest (55-410 Hz) holds f0 and rumble
    "tilt_db": {k: float(v[-1] - v[1]) for k, v in spectrum.items()},
    "band_db": {k: v.round(2).tolist() for k, v in spectrum.items()},
  }


def _family_ratio(names, codes) -> float:
  """Mean distance within the family / mean distance family -> others."""
  fam = np.array([n.startswith(FAMILY) for n in names])
  dist = np.sqrt(((codes[:, None] - codes[None]) ** 2).sum(-1))
  within = dist[np.ix_(fam, fam)][~np.eye(fam.sum(), dtype=bool)]
  return float(within.mean() / dist[np.ix_(fam, ~fam)].mean())


def _speaker(name: str) -> str:
  """The speaker of a StyleTalk sample clip: its name before "_clip"."""
  return name.split("_clip")[0]


def _speaker_retrieval(names, first, second) -> float:
  """How often a clip's first half is nearest to a second half of the same
  speaker (its own or another clip of that speaker)."""
  d = ((first[:, None] - second[None]) ** 2).sum(-1)
  same = [
    _speaker(names[j]) == _speaker(n)
    for n, j in zip(names, d.argmin(1), strict=True)
  ]
  return float(np.mean(same))


def style(runs: str, data: str) -> dict:
  from saas_jax.inference import StyleSpace

  space = StyleSpace.load(os.path.join(runs, "style_vqvae"))

  def codes(segments, quantize=True):  # [[T, 64]] -> [N, S]: mean codes
    return np.stack([space.code(e, quantize) for e in segments])

  names, halves, whole = [], [], []
  for mat in sorted(glob.glob(f"{data}/*/3DMM/*.mat")):
    exp = _clip(mat).exp
    mid = len(exp) // 2
    if mid < WINDOW:
      continue
    names.append(os.path.splitext(os.path.basename(mat))[0])
    halves += [exp[:mid], exp[mid:]]
    whole.append(exp)
  out = {"clips": names}
  for key, half, per_clip in (
    ("style_code", codes(halves), codes(whole)),
    ("style_code_continuous", codes(halves, False), codes(whole, False)),
    (
      "mean_expression",
      np.stack([h.mean(0) for h in halves]),
      np.stack([e.mean(0) for e in whole]),
    ),
  ):
    first, second = half[0::2], half[1::2]
    out[key] = {
      "half_retrieval": float(style_lib.retrieval(first, second).mean()),
      "speaker_retrieval": _speaker_retrieval(names, first, second),
      "family_distance_ratio": _family_ratio(names, per_clip),
    }
  out["short_clip_retrieval"] = _short_clips(space, whole, codes(whole))
  return out


def _short_clips(space, clips, codes) -> dict:
  """{n: share of n-frame stretches whose code is nearest their clip's}."""
  rng = np.random.default_rng(0)
  out = {}
  for n in SHORT_LENGTHS:
    hits = []
    for i, exp in enumerate(clips):
      for start in rng.integers(0, len(exp) - n + 1, SHORT_DRAWS):
        part = exp[start : start + n]
        if n < WINDOW:  # mirrored to a window, as a style clip would be
          (part,) = features.clip_windows(part, WINDOW, WINDOW // 2)
        code = space.code(part)
        hits.append(((codes - code) ** 2).sum(-1).argmin() == i)
    out[str(n)] = float(np.mean(hits))
  return out


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--runs", default="runs")
  ap.add_argument(
    "--data", default=os.path.join(ROOT, "..", "shared", "data", "styletalk")
  )
  ap.add_argument("--out", default="", help="also write the report here")
  ap.add_argument(
    "--only",
    choices=("speech", "style", "window"),
    help="one part (window: only when asked)",
  )
  args = ap.parse_args()
  t0 = time.perf_counter()
  report = {}
  if args.only in (None, "speech"):
    report["speech"] = speech(args.runs, args.data)
  if args.only in (None, "style"):
    report["style"] = style(args.runs, args.data)
  if args.only == "window":
    report["window"] = window(args.data)
  report["seconds"] = round(time.perf_counter() - t0, 1)
  text = json.dumps(report, indent=1)
  print(text)
  if args.out:
    io_lib.atomic_write_bytes(args.out, (text + "\n").encode())


if __name__ == "__main__":
  main()
