"""The held-out style-transfer pairs: content clip A said in the style of
clip B, with the ground truth when the corpus has one (the synthetic
corpus's style_transfer/pairs.jsonl), and their per-pair scores.

Reads prepared clip tables (input_pipeline), so it is the one evaluator
module that needs TensorFlow's data stack loaded by the caller.
"""

import dataclasses
import functools
import json
import os

import numpy as np

from input_pipeline import features
from saas_jax.evaluators import expression, lip_sync, pose, style

PAIRS_FILE = os.path.join("style_transfer", "pairs.jsonl")


@dataclasses.dataclass
class Pair:
  content_id: str
  style_id: str
  content: np.ndarray  # [T, 64] content clip's expression
  style: np.ndarray  # [T', 64] the style clip's expression
  style_label: int  # -1 when the style is not one the classifier knows
  target: np.ndarray | None  # [T, 64] ground truth, when the corpus has it
  content_pose: np.ndarray  # [T, 6]
  style_pose: np.ndarray  # [T', 6]
  speech_mel: np.ndarray | None = None  # [F, 80] A's log-mel (80 fps)
  speech_mfcc: np.ndarray | None = None  # [M, 12] A's MFCC (100 fps)
  fps: float = features.MODEL_FPS

  # Per-frame features, made when first asked for (a process of a sharded
  # evaluation makes them only for its own pairs).
  @functools.cached_property
  def mel(self) -> np.ndarray | None:  # [T, 80, 16]
    if self.speech_mel is None:
      return None
    return features.mel_windows(self.speech_mel, len(self.content), self.fps)

  @functools.cached_property
  def energy(self) -> np.ndarray | None:  # [T]
    if self.speech_mel is None:
      return None
    return pose.frame_energy(self.speech_mel, len(self.content), self.fps)

  @functools.cached_property
  def mfcc(self) -> np.ndarray | None:  # [T, 28, 12]
    if self.speech_mfcc is None:
      return None
    return features.mfcc_windows(self.speech_mfcc, len(self.content), self.fps)


def _clip(table, data, c):
  return data[table.start[c] : table.start[c] + table.length[c]]


def load_pairs(
  tables,
  *,
  seen: set,
  pairs_dir: str | None,
  with_audio: bool,
  seed: int = 0,
  num_pairs: int = 0,
) -> list[Pair]:
  """Pairs among the clips of `tables` (ClipTables): the corpus's listed
  pairs with their targets when `pairs_dir` is given and lists pairs of
  these clips, else one random cross-person style clip for every clip of
  tables[0] (with_audio: of every clip that has speech, whose speech drives
  the pair). `seen`: clip ids whose style label the classifier knows.
  num_pairs 0: all."""
  rows = {}
  for t_i, table in enumerate(tables):
    for c, cid in enumerate(table.clip_ids):
      rows[str(cid)] = (t_i, c)

  def make(content_id, style_id, target):
    table, c = tables[rows[content_id][0]], rows[content_id][1]
    st, s = tables[rows[style_id][0]], rows[style_id][1]
    speech = {}
    if with_audio and table.has_audio[c]:
      m, f = table.mel_start[c], table.mfcc_start[c]
      speech = dict(
        speech_mel=table.mel[m : m + table.mel_len[c]],
        speech_mfcc=table.mfcc[f : f + table.mfcc_len[c]],
      )
    return Pair(
      content_id,
      style_id,
      _clip(table, table.exp, c),
      _clip(st, st.exp, s),
      int(st.label[s]) if style_id in seen else -1,
      target,
      _clip(table, table.pose, c),
      _clip(st, st.pose, s),
      fps=table.fps,
      **speech,
    )

  out = []
  if pairs_dir:
    with open(os.path.join(pairs_dir, PAIRS_FILE)) as f:
      records = [json.loads(line) for line in f]
    for r in records:
      if r["content_id"] in rows and r["style_id"] in rows:
        target = np.load(os.path.join(pairs_dir, r["target_path"]))
        out.append(make(r["content_id"], r["style_id"], target))
  if not out:  # no listed pair among these clips (or no list): draw pairs
    table = tables[0]
    rng = np.random.default_rng(seed)
    for c in range(table.num_clips):
      if with_audio and not table.has_audio[c]:
        continue  # a clip without speech (a style clip) says nothing here
      others = np.flatnonzero(table.person != table.person[c])
      if len(others):
        s = int(rng.choice(others))
        out.append(make(str(table.clip_ids[c]), str(table.clip_ids[s]), None))
  return out[:num_pairs] if num_pairs else out


def score(
  pair: Pair,
  exp: np.ndarray,
  code: np.ndarray,
  style_code: np.ndarray,
  logits: np.ndarray | None,
  face_model,
) -> dict:
  """One system's [T, 64] output for a pair -> its metrics: style-code
  distance to the style clip's code, classifier hit (NaN when the style is
  unknown), errors against the ground truth, lip sync with the speech."""
  row = {"style_code_dist": float(style.code_distance(code, style_code))}
  if logits is not None:
    hit = float(style.accuracy(logits[None], [pair.style_label])[0])
    row["style_accuracy"] = hit if pair.style_label >= 0 else float("nan")
  if pair.target is not None:
    row.update(expression.errors(face_model, exp, pair.target))
  if pair.energy is not None:
    row.update(lip_sync.sync(face_model, exp, pair.energy))
  return row


def summarize(rows: list[dict]) -> dict:
  """Mean of every metric over the rows that have it (NaN: not counted)."""
  keys = sorted({k for r in rows for k in r})
  out = {}
  for k in keys:
    v = np.array([r.get(k, np.nan) for r in rows], np.float64)
    if np.isfinite(v).any():
      out[k] = float(np.nanmean(v))
  return out
