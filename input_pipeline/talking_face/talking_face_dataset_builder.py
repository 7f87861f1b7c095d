"""TFDS builder `talking_face`: any supported corpus -> TFRecord shards.

  import input_pipeline.talking_face  # registers the builder
  ds = tfds.load("talking_face/manifest", data_dir=T, split="train")

One builder config per corpus layout (input_pipeline.layouts). Each example is
one clip at the model frame rate:

  clip_id, person, emotion, style_class  text
  level, style_label, num_frames          int32
  fps                                     float32
  exp [T,64] angles [T,3] trans [T,3] crop [T,3]   float32
  identity [80] (zeros when has_identity is False)
  mel [F,80] (80 Hz), mfcc [M,12] (100 Hz)          empty when has_audio is False

Splits: train, val, test (held-out clips of seen styles), test_person
(held-out persons); empty splits (also those whose clips were all skipped)
are left out. The style-class vocabulary
(style_label indexes it), persons, emotions and clip counts are saved in the
dataset's metadata.json; skipped clips and why in skipped.json, both beside
the shards.

Preparation is resumable: each clip's processed arrays are cached under
<data_dir>/talking_face_cache/<config>/ (written atomically, keyed by the
clip's spec and the bytes of its files), so a re-run after an interruption
reads finished clips back instead of recomputing them, and an edited file is
processed again;
TFDS itself writes shards into a temporary folder that is renamed only when
complete, so no half-written shard is ever visible. With use_beam=True the
same clips are processed by an Apache Beam pipeline.
"""

import dataclasses
import hashlib
import io as pyio
import json
import os
from typing import ClassVar

import numpy as np
import tensorflow_datasets as tfds

from input_pipeline import features, io, layouts
from saas_jax.errors import DataError

# Clips shorter than this (at the model frame rate) are skipped.
MIN_FRAMES = 16
_CACHE_VERSION = "2"  # 2: keys cover the files' content


@dataclasses.dataclass(kw_only=True)
class TalkingFaceConfig(tfds.core.BuilderConfig):
  layout: str = "manifest"
  fps: float = features.MODEL_FPS
  source_fps: float | None = None  # None: the layout's default


def file_digest(path: str | None) -> str:
  """blake2b of a file's bytes ('' for none, 'missing' when absent)."""
  if path is None:
    return ""
  try:
    with open(path, "rb") as f:
      return hashlib.file_digest(f, "blake2b").hexdigest()
  except OSError:
    return "missing"


def cache_key(spec: layouts.ClipSpec, fps: float, digests: dict) -> str:
  """Names a clip's cached outcome: its spec, the frame rate and the bytes
  of its files (an edited or fixed file gets a new key; size and mtime
  would not survive copies). digests: {path: file_digest(path)}."""
  text = json.dumps(
    [
      _CACHE_VERSION,
      dataclasses.asdict(spec),
      fps,
      digests[spec.coeff_path],
      digests[spec.audio_path] if spec.audio_path else "",
    ],
    sort_keys=True,
  )
  return hashlib.sha1(text.encode()).hexdigest()


def clips_key(specs) -> str:
  """Names the clip list a corpus gives (ids, files, labels, splits, rates):
  a dataset remembers it, so that a re-run after the list changed (a fixed
  manifest line, clips added) is not taken for the same dataset. File
  contents are not hashed here (each clip's cache key covers them)."""
  rows = sorted(
    json.dumps(dataclasses.asdict(s), sort_keys=True) for s in specs
  )
  return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def process_clip(spec: layouts.ClipSpec, fps: float) -> dict[str, np.ndarray]:
  """Reads one clip and returns its arrays at `fps` (raises DataError)."""
  coeffs = io.load_coefficients(spec.coeff_path, fps=spec.source_fps)
  if spec.segment is not None:
    start, stop = spec.segment
    coeffs = coeffs.slice(start, stop)
  coeffs = features.resample_coefficients(coeffs, fps)
  if spec.audio_path is not None:
    wav = io.load_audio(spec.audio_path)
    if spec.segment is not None:
      src_fps = spec.source_fps or coeffs.fps
      a = round(spec.segment[0] * features.SAMPLE_RATE / src_fps)
      b = round(spec.segment[1] * features.SAMPLE_RATE / src_fps)
      wav = wav[a:b]
    try:
      coeffs, wav = features.align_lengths(coeffs, wav, name=spec.clip_id)
    except DataError as e:
      read_at = f"{spec.source_fps:g} fps" if spec.source_fps else "its rate"
      raise DataError(
        spec.clip_id,
        f"{e.problem}; if the coefficient file is not at {read_at}, "
        "prepare's --source_fps gives its rate",
      ) from None
    mel, mfcc = features.compute_features(wav)
  else:
    mel = np.zeros((0, features.NUM_MELS), np.float32)
    mfcc = np.zeros((0, features.NUM_MFCC), np.float32)
  if coeffs.num_frames < MIN_FRAMES:
    raise DataError(
      spec.clip_id,
      f"clip too short: {coeffs.num_frames} frames at {fps:g} fps "
      f"(need {MIN_FRAMES})",
    )
  identity = coeffs.identity
  return {
    "exp": coeffs.exp,
    "angles": coeffs.angles,
    "trans": coeffs.trans,
    "crop": coeffs.crop,
    "identity": np.zeros(80, np.float32) if identity is None else identity,
    "has_identity": np.bool_(identity is not None),
    "mel": mel,
    "mfcc": mfcc,
    "has_audio": np.bool_(spec.audio_path is not None),
  }


def _cached_process(spec, key, fps, cache_dir) -> dict | str:
  """Processed arrays (from the cache when present), or the skip reason."""
  done = os.path.join(cache_dir, key + ".npz")
  skipped = os.path.join(cache_dir, key + ".skip.json")
  if os.path.isfile(done):
    with np.load(done, allow_pickle=False) as z:
      return {k: z[k] for k in z.files}
  if os.path.isfile(skipped):
    with open(skipped) as f:
      return json.load(f)["reason"]
  try:
    arrays = process_clip(spec, fps)
  except DataError as e:
    reason = str(e)
    record = {
      "id": spec.clip_id,
      "coeff_path": spec.coeff_path,
      "audio_path": spec.audio_path,
      "reason": reason,
    }
    io.atomic_write_bytes(skipped, json.dumps(record).encode())
    return reason
  buf = pyio.BytesIO()
  np.savez(buf, **arrays)
  io.atomic_write_bytes(done, buf.getvalue())
  return arrays


def _example(spec, arrays, fps, vocab) -> dict:
  return {
    "clip_id": spec.clip_id,
    "person": spec.person,
    "emotion": spec.emotion,
    "level": spec.level,
    "style_class": spec.style_class,
    "style_label": vocab[spec.style_class],
    "fps": fps,
    "num_frames": arrays["exp"].shape[0],
    **arrays,
  }


def _beam_process(spec_key, fps, cache_dir, vocab):
  spec, key = spec_key
  result = _cached_process(spec, key, fps, cache_dir)
  if isinstance(result, dict):
    yield spec.clip_id, _example(spec, result, fps, vocab)


class Builder(tfds.core.GeneratorBasedBuilder):
  """Talking-face clips (3DMM coefficients + speech features) for SAAS."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES: ClassVar[dict] = {"1.0.0": "First release."}
  BUILDER_CONFIGS: ClassVar[list] = [
    TalkingFaceConfig(name=layout, layout=layout, description=layout)
    for layout in layouts.LAYOUTS
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Point manual_dir at the corpus folder: the synthetic corpus (or any folder
  with a manifest.jsonl), MEAD or HDTF after 3DMM extraction with
  Deep3DFaceRecon, or the StyleTalk repository's samples/ folder. See
  input_pipeline/layouts.py for the layouts. Use
  `python -m input_pipeline.prepare --layout L --manual_dir D --data_dir T`.
  """

  def __init__(self, *, use_beam: bool = False, **kwargs):
    self._use_beam = use_beam
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    f32 = np.float32
    tensor = tfds.features.Tensor
    return tfds.core.DatasetInfo(
      builder=self,
      description=__doc__,
      features=tfds.features.FeaturesDict(
        {
          "clip_id": tfds.features.Text(),
          "person": tfds.features.Text(),
          "emotion": tfds.features.Text(),
          "level": tfds.features.Scalar(np.int32),
          "style_class": tfds.features.Text(),
          "style_label": tfds.features.Scalar(np.int32),
          "fps": tfds.features.Scalar(f32),
          "num_frames": tfds.features.Scalar(np.int32),
          "exp": tensor(shape=(None, 64), dtype=f32),
          "angles": tensor(shape=(None, 3), dtype=f32),
          "trans": tensor(shape=(None, 3), dtype=f32),
          "crop": tensor(shape=(None, 3), dtype=f32),
          "identity": tensor(shape=(80,), dtype=f32),
          "has_identity": tfds.features.Scalar(np.bool_),
          "mel": tensor(shape=(None, features.NUM_MELS), dtype=f32),
          "mfcc": tensor(shape=(None, features.NUM_MFCC), dtype=f32),
          "has_audio": tfds.features.Scalar(np.bool_),
        }
      ),
      metadata=tfds.core.MetadataDict(),
    )

  @property
  def cache_dir(self) -> str:
    return os.path.join(
      os.fspath(self.data_dir_root),
      "talking_face_cache",
      self.builder_config.name,
    )

  def clip_specs(self, manual_dir) -> list[layouts.ClipSpec]:
    """The corpus's clips as this config's layout and rates find them."""
    config = self.builder_config
    kwargs = {}
    if config.layout == "hdtf":
      kwargs["num_frames_fn"] = lambda p: io.load_coefficients(p).num_frames
    return layouts.scan(
      config.layout, os.fspath(manual_dir), config.source_fps, **kwargs
    )

  def _split_generators(self, dl_manager):
    specs = self.clip_specs(dl_manager.manual_dir)
    fps = self.builder_config.fps
    digests = {}
    for spec in specs:  # each file once, however many clips cut from it
      for path in (spec.coeff_path, spec.audio_path):
        if path and path not in digests:
          digests[path] = file_digest(path)
    self._keys = {s.clip_id: cache_key(s, fps, digests) for s in specs}
    classes = sorted({s.style_class for s in specs})
    vocab = {c: i for i, c in enumerate(classes)}
    by_split = {split: [] for split in layouts.SPLITS}
    for s in specs:
      by_split[s.split].append(s)
    self.info.metadata.update(
      {
        "layout": self.builder_config.layout,
        "fps": fps,
        "style_classes": classes,
        "train_style_classes": sorted(
          {s.style_class for s in by_split["train"]}
        ),
        "persons": sorted({s.person for s in specs}),
        "emotions": sorted({s.emotion for s in specs}),
        "clips_found": {k: len(v) for k, v in by_split.items()},
        "clips_key": clips_key(specs),
      }
    )
    os.makedirs(self.cache_dir, exist_ok=True)
    self._specs = specs
    for split, members in by_split.items():
      if self._use_beam:
        # Beam processes the clips after the splits are fixed: leave out
        # those an earlier run found unusable, so that a re-run (prepare
        # makes one) drops a split they emptied.
        usable = [s for s in members if not os.path.isfile(self._skip_path(s))]
      else:
        # Process (or read back) every clip now, so that a split whose
        # clips were all skipped is left out instead of failing TFDS's write.
        usable = [s for s in members if isinstance(self._outcome(s), dict)]
      by_split[split] = usable
    if not any(by_split.values()):
      raise DataError(
        os.fspath(dl_manager.manual_dir),
        f"no usable clip: all {len(specs)} were skipped, e.g. "
        + "; ".join(r["reason"] for r in self._skipped()[:3])
        + f" (every reason: {self.cache_dir}/*.skip.json)",
      )
    return {
      split: self._generate_examples(members, vocab)
      for split, members in by_split.items()
      if members
    }

  def _skip_path(self, spec) -> str:
    return os.path.join(self.cache_dir, self._keys[spec.clip_id] + ".skip.json")

  def _outcome(self, spec) -> dict | str:
    return _cached_process(
      spec, self._keys[spec.clip_id], self.builder_config.fps, self.cache_dir
    )

  def _generate_examples(self, specs, vocab):
    fps = self.builder_config.fps
    if self._use_beam:
      beam = tfds.core.lazy_imports.apache_beam
      pairs = [(s, self._keys[s.clip_id]) for s in specs]
      return beam.Create(pairs) | beam.FlatMap(
        _beam_process, fps=fps, cache_dir=self.cache_dir, vocab=vocab
      )
    return self._generate_locally(specs, vocab, fps)

  def _generate_locally(self, specs, vocab, fps):
    for spec in specs:
      result = self._outcome(spec)
      if isinstance(result, dict):
        yield spec.clip_id, _example(spec, result, fps, vocab)

  def _skipped(self) -> list[dict]:
    """The skip records of this run's clips (every clip has left an
    outcome in the cache once processed, in either mode)."""
    skipped = []
    for spec in self._specs:
      path = self._skip_path(spec)
      if os.path.isfile(path):
        with open(path) as f:
          skipped.append(json.load(f))
    return skipped

  def _download_and_prepare(self, dl_manager, download_config):
    super()._download_and_prepare(dl_manager, download_config)
    skipped = self._skipped()
    self.info.metadata["num_skipped"] = len(skipped)
    # What prepare checks before it reuses the folder for a corpus.
    self.info.metadata["manual_dir"] = os.path.realpath(dl_manager.manual_dir)
    out = os.path.join(os.fspath(self.data_dir), "skipped.json")
    with open(out, "w") as f:
      json.dump({"skipped": skipped}, f, indent=1, sort_keys=True)


def skipped_clips(data_dir: str) -> list[dict]:
  """The skipped-clips summary of a prepared dataset folder."""
  with open(os.path.join(data_dir, "skipped.json")) as f:
    return json.load(f)["skipped"]
