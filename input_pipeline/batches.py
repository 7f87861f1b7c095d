"""Per-stage batches from prepared `talking_face` shards.

Every training batch is a pure function of (seed, process index, step): a
resumed run that restarts at step k sees exactly the batches an uninterrupted
run would have seen, and no iterator state needs checkpointing. Batches come
out of tf.data (`.map` over step numbers, parallel and prefetched) as
host-local NumPy dicts; the trainer turns them into global arrays.

Sharding across hosts: the split is cut into data shards (even sub-splits:
disjoint, their union is the split; one per process by default). Process p
loads only its shards and draws anchor clips from them (see StageData).
Partners that need expression alone (triplet positives and negatives,
the style clip B of audio-driven pairs) are drawn from a global expression
index of the whole split that every host holds: [sum T, 64] floats, small.

Builders and what one batch holds (B = batch size):

  style_windows       exp [B,32,64], label [B], person [B]; pos_exp, neg_exp,
                      other_exp [B,32,64] with pos_label, neg_label, other_label.
                      positive: same style class (another clip when the class
                      has one); negative: same person, another emotion at that
                      emotion's highest level (corpora with levels), else
                      another person; other: another person.
  audio_pairs         A (content, with audio): exp [B,32,64], mel [B,32,80,16],
                      mel_mean [B,80] (features.clip_mel_mean of all of A),
                      ref_exp [B,64] (one random frame of A), label [B],
                      blink [B,32] (features.blink_ratio);
                      B (style, another person): style_exp [B,32,64],
                      style_label [B]; B's pos_exp/neg_exp [B,32,64].
  video_pairs         the same without mel.
  pose_windows        pose [B,64,6] (angles, trans), pose_offset [B,6] (the
                      clip's mean pose), mfcc [B,64,28,12], style_exp
                      [B,32,64] (a window of the same clip), label;
                      style_pos_exp [B,32,64]: a window of another clip of
                      the same style class (the clip itself if alone);
                      style_pose, style_pos_pose [B,96,6]: head pose of
                      the same two clips (96 frames, ping-ponged).

Evaluation reads whole clips from `load_table` (saas_jax.evaluators).

Clips shorter than a window are extended by ping-pong (forward, backward,
forward...), as the reference does, for expression and pose windows; clips
used for audio windows must be long enough (others are not drawn).
"""

import dataclasses
import functools
import glob
import logging
import os

import numpy as np

from input_pipeline import features
from saas_jax.errors import DataError

STYLE_WINDOW = 32
POSE_WINDOW = 64
MOTION_WINDOW = 96  # frames of a style clip's head pose (5 windows of 32)


class _TfdsDtypeNotice(logging.Filter):
  """Drops TFDS's `FeatureConnector.dtype` deprecation notice: its own
  partial decoding reads that field and logged it ten times at every start
  (nothing here reads it)."""

  def filter(self, record):
    return "FeatureConnector.dtype` is deprecated" not in record.getMessage()


_TFDS_NOTICE = _TfdsDtypeNotice()


def _tensorflow():
  """(tf, tfds), imported on first use: the stages' train steps import this
  module's types and samplers, and run (benchmarks on a machine with jax
  alone) without TensorFlow."""
  import tensorflow as tf
  import tensorflow_datasets as tfds

  import input_pipeline.talking_face  # noqa: F401  (registers the builder)

  logging.getLogger("absl").addFilter(_TFDS_NOTICE)  # again: no change
  return tf, tfds


@dataclasses.dataclass(frozen=True)
class ClipTable:
  """Clips of one (sub-)split, concatenated along time."""

  clip_ids: np.ndarray  # [N] str
  label: np.ndarray  # [N] style_label
  person: np.ndarray  # [N] person index (global over the split)
  emotion: np.ndarray  # [N] emotion index
  level: np.ndarray  # [N]
  has_audio: np.ndarray  # [N] bool
  start: np.ndarray  # [N] first frame in exp/pose
  length: np.ndarray  # [N] frames
  exp: np.ndarray  # [sum T, 64]
  pose: np.ndarray  # [sum T, 6]
  mel_start: np.ndarray | None = None  # [N]
  mel_len: np.ndarray | None = None
  mel: np.ndarray | None = None  # [sum F, 80]
  mfcc_start: np.ndarray | None = None
  mfcc_len: np.ndarray | None = None
  mfcc: np.ndarray | None = None  # [sum M, 12]
  fps: float = features.MODEL_FPS

  @functools.cached_property
  def mel_mean(self) -> np.ndarray:
    """[N, 80] each clip's features.clip_mel_mean (zeros without audio)."""
    out = np.zeros((self.num_clips, features.NUM_MELS), np.float32)
    for c in np.flatnonzero((self.mel_len > 0) & (self.length > 0)):
      mel = self.mel[self.mel_start[c] : self.mel_start[c] + self.mel_len[c]]
      out[c] = features.clip_mel_mean(
        features.mel_windows(mel, self.length[c], self.fps)
      )
    return out

  @property
  def num_clips(self) -> int:
    return len(self.clip_ids)


def _concat(chunks, width):
  lengths = np.array([len(c) for c in chunks], np.int64)
  starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
  data = (
    np.concatenate(chunks).astype(np.float32)
    if chunks
    else np.zeros((0, width), np.float32)
  )
  return starts, lengths, data


def prepared_builder(data_dir: str, config: str):
  """The talking_face builder of a prepared dataset, or a DataError that
  says there is none and how to make one."""
  hint = (
    f"make it with: python -m input_pipeline.prepare --layout {config} "
    f"--manual_dir CORPUS --data_dir {data_dir}"
  )
  _, tfds = _tensorflow()
  try:
    builder = tfds.builder(f"talking_face/{config}", data_dir=data_dir)
  except (ValueError, KeyError) as e:  # an unknown builder config
    raise DataError(
      data_dir, f"no talking_face dataset config '{config}' ({e}); {hint}"
    ) from None
  if not os.path.isfile(os.path.join(builder.data_dir, "dataset_info.json")):
    found = prepared_configs(data_dir)
    raise DataError(
      data_dir,
      f"no prepared talking_face/{config} dataset here (looked in "
      f"{builder.data_dir}); "
      + (
        f"prepared here: {', '.join(found)} (the data config to give: a "
        "rate other than the layout's makes a config of its own)"
        if found
        else hint
      ),
    )
  return builder


def prepared_configs(data_dir: str) -> list[str]:
  """The talking_face dataset configs prepared under data_dir."""
  pattern = os.path.join(
    data_dir, "talking_face", "*", "*", "dataset_info.json"
  )
  return sorted({p.split(os.sep)[-3] for p in glob.glob(pattern)})


def has_split(data_dir: str, config: str, split: str) -> bool:
  """Whether a prepared dataset has `split` (a corpus with fewer than five
  persons has no test_person split, for instance)."""
  return split in prepared_builder(data_dir, config).info.splits


def load_table(
  data_dir: str,
  config: str,
  split: str,
  *,
  shard: int = 0,
  num_shards: int = 1,
  with_audio: bool = True,
) -> ClipTable:
  """Reads shard `shard` of `num_shards` even sub-splits into host memory."""
  builder = prepared_builder(data_dir, config)
  if split not in builder.info.splits:
    raise DataError(
      os.fspath(builder.data_dir),
      f"no split '{split}' (has: {', '.join(builder.info.splits)})",
    )
  meta = builder.info.metadata
  persons = {p: i for i, p in enumerate(meta["persons"])}
  emotions = {e: i for i, e in enumerate(meta["emotions"])}
  _, tfds = _tensorflow()
  sub = tfds.even_splits(split, n=num_shards)[shard]
  keys = [
    "clip_id",
    "person",
    "emotion",
    "level",
    "style_label",
    "has_audio",
    "exp",
    "angles",
    "trans",
  ]
  if with_audio:
    keys += ["mel", "mfcc"]
  decoders = tfds.decode.PartialDecoding({k: True for k in keys})
  ds = builder.as_dataset(split=sub, shuffle_files=False, decoders=decoders)
  rows = list(ds.as_numpy_iterator())
  exp = [r["exp"] for r in rows]
  pose = [np.concatenate([r["angles"], r["trans"]], 1) for r in rows]
  start, length, exp_all = _concat(exp, 64)
  _, _, pose_all = _concat(pose, 6)
  table = dict(
    clip_ids=np.array([r["clip_id"].decode() for r in rows]),
    label=np.array([r["style_label"] for r in rows], np.int64),
    person=np.array([persons[r["person"].decode()] for r in rows], np.int64),
    emotion=np.array([emotions[r["emotion"].decode()] for r in rows], np.int64),
    level=np.array([r["level"] for r in rows], np.int64),
    has_audio=np.array([bool(r["has_audio"]) for r in rows], bool),
    start=start,
    length=length,
    exp=exp_all,
    pose=pose_all,
    fps=float(meta.get("fps", features.MODEL_FPS)),
  )
  if with_audio:
    table["mel_start"], table["mel_len"], table["mel"] = _concat(
      [r["mel"] for r in rows], features.NUM_MELS
    )
    table["mfcc_start"], table["mfcc_len"], table["mfcc"] = _concat(
      [r["mfcc"] for r in rows], features.NUM_MFCC
    )
  return ClipTable(**table)


# ------------------------------------------------------------- sampling ---


def _windows(table, data, clips, starts, size):
  """[B] clips, [B] window starts -> [B, size, C] frames, ping-ponged."""
  t = starts[:, None] + np.arange(size)[None, :]
  idx = features.ping_pong_index(table.length[clips][:, None], t)
  return data[table.start[clips][:, None] + idx]


def _random_starts(rng, table, clips, size):
  span = np.maximum(table.length[clips] - size + 1, 1)
  return (rng.random(len(clips)) * span).astype(np.int64)


class _Groups:
  """Rows grouped by an integer key, for vectorised draws within a group."""

  def __init__(self, keys: np.ndarray, num_rows: int):
    self.order = np.argsort(keys, kind="stable")
    uniq, self.start, self.count = np.unique(
      keys[self.order], return_index=True, return_counts=True
    )
    self.slot = np.zeros(num_rows, np.int64)  # row -> its group's position
    self.slot[self.order] = np.repeat(np.arange(len(uniq)), self.count)

  def draw(self, rng, group: np.ndarray, exclude=None) -> np.ndarray:
    """One row of each given group, avoiding `exclude` when it can."""
    start, count = self.start[group], self.count[group]
    if exclude is None:
      return self.order[start + (rng.random(len(group)) * count).astype(int)]
    span = np.maximum(count - 1, 1)
    pick = self.order[start + (rng.random(len(group)) * span).astype(int)]
    last = self.order[start + count - 1]
    pick = np.where(pick == exclude, last, pick)
    return np.where(count == 1, exclude, pick)


class PartnerIndex:
  """Triplet partner candidates over a (global) table."""

  def __init__(self, table: ClipTable):
    self.table = table
    n = table.num_clips
    self.by_label = _Groups(table.label, n)
    # Negatives of a clip: same person, another emotion, at that emotion's
    # highest level. Rows are duplicated into one group per (person, emotion)
    # of the anchor they can serve.
    top = {}
    for i in range(n):
      key = (table.person[i], table.emotion[i])
      top[key] = max(top.get(key, -1), table.level[i])
    pairs = sorted(
      {
        (int(p), int(e))
        for p, e in zip(table.person, table.emotion, strict=True)
      }
    )
    rows, keys = [], []
    for g, (p, e) in enumerate(pairs):
      for i in np.flatnonzero(table.person == p):
        if (
          table.emotion[i] != e and table.level[i] == top[(p, table.emotion[i])]
        ):
          rows.append(i)
          keys.append(g)
    self._neg_rows = np.array(rows, np.int64)
    self._neg = _Groups(np.array(keys, np.int64), len(rows))
    group_of = {pair: g for g, pair in enumerate(pairs)}
    anchor_group = np.array(
      [
        group_of[(int(p), int(e))]
        for p, e in zip(table.person, table.emotion, strict=True)
      ],
      np.int64,
    )
    # Each anchor's position among the negative groups (-1: none).
    present = {int(k): j for j, k in enumerate(np.unique(keys))} if keys else {}
    self._anchor_neg = np.array(
      [present.get(int(g), -1) for g in anchor_group], np.int64
    )
    self.row_of = {cid: i for i, cid in enumerate(table.clip_ids)}

  def positive(self, rng, anchors):
    """Another clip of the anchor's style class (itself if it is alone)."""
    return self.by_label.draw(rng, self.by_label.slot[anchors], anchors)

  def other_person(self, rng, anchors, tries=32):
    """A clip of another person (by rejection; any clip if there is none)."""
    cand = rng.integers(self.table.num_clips, size=(len(anchors), tries))
    ok = self.table.person[cand] != self.table.person[anchors][:, None]
    first = np.argmax(ok, axis=1)  # 0 when no candidate is valid
    return cand[np.arange(len(anchors)), first]

  def negative(self, rng, anchors):
    out = self.other_person(rng, anchors)
    group = self._anchor_neg[anchors]
    has = group >= 0
    if has.any():
      picks = self._neg.draw(rng, group[has])
      out[has] = self._neg_rows[picks]
    return out


def _rng(seed: int, shard: int, step, salt: int):
  return np.random.default_rng([seed, shard, int(step), salt])


def _as_dataset(sample_fn, example, start_step, num_steps):
  """tf.data over step numbers; sample_fn(step) -> dict of numpy arrays."""
  tf, _ = _tensorflow()
  keys = sorted(example)
  dtypes = [tf.as_dtype(example[k].dtype) for k in keys]

  def np_fn(step):
    batch = sample_fn(int(step))
    return [batch[k] for k in keys]

  def tf_fn(step):
    values = tf.numpy_function(np_fn, [step], dtypes, stateful=False)
    return {
      k: tf.ensure_shape(v, example[k].shape)
      for k, v in zip(keys, values, strict=True)
    }

  stop = start_step + num_steps if num_steps else np.iinfo(np.int64).max
  ds = tf.data.Dataset.range(start_step, stop)
  # No autotuning: a deleted iterator waits for its tuning thread to wake up
  # from a sleep that grows with the run (a finished run's process stayed
  # up to 20 s more). The map then runs one call per core.
  options = tf.data.Options()
  options.autotune.enabled = False
  ds = ds.with_options(options)
  ds = ds.map(tf_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return ds.prefetch(2)


def _global_rows(local: ClipTable, partners: PartnerIndex, clips):
  return np.array([partners.row_of[c] for c in local.clip_ids[clips]], np.int64)


# -------------------------------------------------------------- builders ---


@dataclasses.dataclass
class StageData:
  """This process's data shards of a split, and the global expression index.

  The split is cut into `num_shards` even sub-splits; slice s of every global
  batch is drawn from shard s with a generator seeded by (seed, s, step).
  Process p of n owns shards [p*k, (p+1)*k), k = num_shards / n, so its
  host-local batch is the p-th block of the global batch, and a run's data do
  not depend on how many processes read it.
  """

  shards: list[tuple[int, ClipTable]]  # (shard index, table), this process
  partners: PartnerIndex
  num_shards: int = 1

  @property
  def local(self) -> ClipTable:
    """The single shard of a one-shard run (convenience for notebooks)."""
    if len(self.shards) != 1:
      raise ValueError(f"{len(self.shards)} shards here; use .shards")
    return self.shards[0][1]

  @classmethod
  def single(cls, table: ClipTable) -> "StageData":
    return cls([(0, table)], PartnerIndex(table), 1)


def load_stage_data(
  data_dir,
  config,
  split,
  *,
  num_shards: int | None = None,
  process_index: int | None = None,
  process_count: int | None = None,
  with_audio: bool = True,
) -> StageData:
  """Loads this process's shards (default: one per process) and partners."""
  if process_index is None:
    import jax  # only here: the input pipeline does not need jax otherwise

    process_index, process_count = jax.process_index(), jax.process_count()
  num_shards = num_shards or process_count
  if num_shards % process_count:
    raise ValueError(
      f"data.num_shards={num_shards} is not a multiple of the "
      f"{process_count} processes"
    )
  per = num_shards // process_count
  owned = range(process_index * per, (process_index + 1) * per)
  shards = [
    (
      s,
      load_table(
        data_dir,
        config,
        split,
        shard=s,
        num_shards=num_shards,
        with_audio=with_audio,
      ),
    )
    for s in owned
  ]
  if num_shards == 1:
    global_table = shards[0][1]
  else:
    global_table = load_table(data_dir, config, split, with_audio=False)
  return StageData(shards, PartnerIndex(global_table), num_shards)


def _sharded(sample_one, data: StageData, batch_size, seed, step, salt, **kw):
  """Concatenates per-shard samples into this host's part of the batch."""
  if batch_size % data.num_shards:
    raise ValueError(
      f"global batch {batch_size} is not divisible by {data.num_shards} "
      "data shards"
    )
  per = batch_size // data.num_shards
  parts = [
    sample_one(table, data.partners, per, _rng(seed, s, step, salt), **kw)
    for s, table in data.shards
  ]
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _style_windows(local, partners, n, rng, window=STYLE_WINDOW):
  g = partners.table
  clips = rng.integers(local.num_clips, size=n)
  anchors = _global_rows(local, partners, clips)
  pos = partners.positive(rng, anchors)
  neg = partners.negative(rng, anchors)
  other = partners.other_person(rng, anchors)

  def win(table, rows):
    return _windows(
      table, table.exp, rows, _random_starts(rng, table, rows, window), window
    )

  return {
    "exp": win(local, clips),
    "label": local.label[clips],
    "person": local.person[clips],
    "pos_exp": win(g, pos),
    "pos_label": g.label[pos],
    "neg_exp": win(g, neg),
    "neg_label": g.label[neg],
    "other_exp": win(g, other),
    "other_label": g.label[other],
  }


def _audio_clips(local: ClipTable, window: int) -> np.ndarray:
  ok = np.flatnonzero(local.has_audio & (local.length >= window))
  if not len(ok):
    raise ValueError(f"no clip with audio and at least {window} frames")
  return ok


def _pairs(local, partners, n, rng, with_audio=True, window=STYLE_WINDOW):
  g = partners.table
  eligible = (
    _audio_clips(local, window)
    if with_audio
    else np.flatnonzero(local.length > 0)
  )
  clips = eligible[rng.integers(len(eligible), size=n)]
  starts = _random_starts(rng, local, clips, window)
  ref_frame = (rng.random(n) * local.length[clips]).astype(np.int64)
  batch = {
    "exp": _windows(local, local.exp, clips, starts, window),
    "label": local.label[clips],
    "ref_exp": local.exp[local.start[clips] + ref_frame],
  }
  if with_audio:
    frames = starts[:, None] + np.arange(window)[None, :]  # [n, W]
    mel_start = features.mel_window_starts(int(frames.max()) + 1, local.fps)
    idx = mel_start[frames][..., None] + np.arange(features.MEL_WINDOW)
    idx = np.clip(idx, 0, local.mel_len[clips][:, None, None] - 1)
    mel = local.mel[local.mel_start[clips][:, None, None] + idx]  # [n,W,16,80]
    batch["mel"] = np.swapaxes(mel, 2, 3)
    batch["mel_mean"] = local.mel_mean[clips]  # [n, 80] of the whole clip
    batch["blink"] = np.stack(
      [features.blink_ratio(rng, window) for _ in clips]
    )
  anchors = _global_rows(local, partners, clips)
  style = partners.other_person(rng, anchors)
  pos = partners.positive(rng, style)
  neg = partners.negative(rng, style)
  for name, rows in (("style", style), ("pos", pos), ("neg", neg)):
    batch[f"{name}_exp"] = _windows(
      g, g.exp, rows, _random_starts(rng, g, rows, window), window
    )
  batch["style_label"] = g.label[style]
  return batch


def _pose_windows(
  local, partners, n, rng, window=POSE_WINDOW, style_window=STYLE_WINDOW
):
  eligible = _audio_clips(local, style_window)
  clips = eligible[rng.integers(len(eligible), size=n)]
  starts = _random_starts(rng, local, clips, window)
  t = starts[:, None] + np.arange(window)[None, :]
  frame = features.ping_pong_index(local.length[clips][:, None], t)  # [n, W]
  mfcc_start = np.round(features.MFCC_FPS * frame / local.fps).astype(np.int64)
  idx = mfcc_start[..., None] + np.arange(features.MFCC_WINDOW)
  idx = np.clip(idx, 0, local.mfcc_len[clips][:, None, None] - 1)
  style_starts = _random_starts(rng, local, clips, style_window)
  offset = [
    local.pose[local.start[c] : local.start[c] + local.length[c]].mean(0)
    for c in clips
  ]
  g = partners.table
  pos = partners.positive(rng, _global_rows(local, partners, clips))
  pos_starts = _random_starts(rng, g, pos, style_window)
  own_motion = _random_starts(rng, local, clips, MOTION_WINDOW)
  pos_motion = _random_starts(rng, g, pos, MOTION_WINDOW)
  return {
    "pose": local.pose[local.start[clips][:, None] + frame],
    "pose_offset": np.stack(offset).astype(local.pose.dtype),
    "mfcc": local.mfcc[local.mfcc_start[clips][:, None, None] + idx],
    "style_exp": _windows(local, local.exp, clips, style_starts, style_window),
    "style_pose": _windows(local, local.pose, clips, own_motion, MOTION_WINDOW),
    "style_pos_exp": _windows(g, g.exp, pos, pos_starts, style_window),
    "style_pos_pose": _windows(g, g.pose, pos, pos_motion, MOTION_WINDOW),
    "label": local.label[clips],
  }


def sample_style_windows(data: StageData, batch_size, seed, step):
  """This host's part of global batch `step` of style triplet windows."""
  return _sharded(_style_windows, data, batch_size, seed, step, 1)


def sample_pairs(data: StageData, batch_size, seed, step, with_audio=True):
  """Audio-driven (with_audio) or video-driven pairs; see module docstring."""
  salt = 2 if with_audio else 3
  return _sharded(
    _pairs, data, batch_size, seed, step, salt, with_audio=with_audio
  )


def sample_pose_windows(data: StageData, batch_size, seed, step):
  return _sharded(_pose_windows, data, batch_size, seed, step, 4)


def _dataset(sample, data, batch_size, seed, start_step, num_steps, **kw):
  def fn(step):
    return sample(data, batch_size, seed, step, **kw)

  return _as_dataset(fn, fn(start_step), start_step, num_steps)


def style_windows(data, *, batch_size, seed, start_step=0, num_steps=None):
  """batch_size is global; each process gets its share of every batch."""
  return _dataset(
    sample_style_windows, data, batch_size, seed, start_step, num_steps
  )


def audio_pairs(data, *, batch_size, seed, start_step=0, num_steps=None):
  return _dataset(
    sample_pairs, data, batch_size, seed, start_step, num_steps, with_audio=True
  )


def video_pairs(data, *, batch_size, seed, start_step=0, num_steps=None):
  return _dataset(
    sample_pairs,
    data,
    batch_size,
    seed,
    start_step,
    num_steps,
    with_audio=False,
  )


def pose_windows(data, *, batch_size, seed, start_step=0, num_steps=None):
  return _dataset(
    sample_pose_windows, data, batch_size, seed, start_step, num_steps
  )
