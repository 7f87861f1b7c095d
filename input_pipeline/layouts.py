"""Corpus layouts: find the clips of a corpus on disk and what each one is.

Each layout turns a directory (TFDS's manual_dir) into a list of ClipSpec:
where a clip's coefficients and audio are, and its person, emotion, level and
style class. Reading and featurising the clips is `process_clip`'s job.

  manifest   manifest.jsonl (or .csv) listing id, coeff_path, audio_path,
             person, emotion, level and optionally split and fps. The
             synthetic corpus writes one; it is also the way in for any custom
             corpus. Paths are relative to the manifest. Style class =
             person#emotion#level.
  mead       files named like MEAD (`M003#angry#level_3#001`) or DreamTalk
             (`M030_front_angry_level3_001`), or laid out as
             <person>/<emotion>/level_<k>/<nnn>.<ext>; audio beside the
             coefficients with the same stem. Style class = person#emotion#level.
  hdtf       one long recording per id (<id>.mat|.npy + <id>.wav); cut into
             5 s segments as the official code does, dropping segments under
             3 s. Style class = the recording id.
  styletalk  the StyleTalk repository's samples/ folder: source_video/3DMM/*.mat
             with source_video/wav/*.wav (30 fps), and style_clips/3DMM/*.mat
             without audio, kept as expression-only clips. Style class = the
             clip name without its `_clip...` suffix.
"""

import csv
import dataclasses
import functools
import hashlib
import json
import math
import os
import re
from collections import defaultdict

from saas_jax.errors import DataError

LAYOUTS = ("manifest", "mead", "hdtf", "styletalk")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".m4a", ".mp3", ".mp4")
COEFF_EXTENSIONS = (".mat", ".npy", ".npz")
SPLITS = ("train", "val", "test", "test_person")

HDTF_SEGMENT_S = 5.0
HDTF_MIN_SEGMENT_S = 3.0


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  """A clip to read: where it is and what it is."""

  clip_id: str
  coeff_path: str
  audio_path: str | None  # None: expression-only clip
  person: str
  emotion: str
  level: int
  style_class: str
  source_fps: float | None = None  # None: the file's, else the layout default
  split: str | None = None  # given by the corpus, else assigned
  segment: tuple[int, int] | None = None  # [start, stop) frames at source fps


def _stable_hash(text: str) -> int:
  return int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "big")


# ---------------------------------------------------------------- manifest --


def _read_manifest(root: str) -> tuple[str, list]:
  for name in ("manifest.jsonl", "manifest.csv"):
    path = os.path.join(root, name)
    if os.path.isfile(path):
      break
  else:
    raise DataError(root, "no manifest.jsonl or manifest.csv in this folder")
  rows = []
  try:
    with open(path, newline="", encoding="utf-8-sig") as f:  # BOM or not
      if name.endswith(".jsonl"):
        for n, line in enumerate(f, 1):
          if not line.strip():
            continue
          try:
            rows.append((n, json.loads(line)))
          except json.JSONDecodeError as e:
            raise DataError(path, f"line {n} is not JSON ({e})") from None
      else:
        rows = [(n, row) for n, row in enumerate(csv.DictReader(f), 2)]
  except UnicodeDecodeError as e:
    raise DataError(path, f"not UTF-8 text ({e})") from None
  return path, rows


def _label(path, where, row, key) -> str:
  value = row[key]
  if not isinstance(value, (str, int)) or isinstance(value, bool):
    raise DataError(path, f"{where}: '{key}' must be text, got {value!r}")
  value = str(value)
  if "#" in value:
    # The style class is person#emotion#level: a '#' inside a label would
    # let two different styles share one class.
    raise DataError(path, f"{where}: '{key}' {value!r} contains '#'")
  return value


def scan_manifest(root: str, source_fps: float | None = None) -> list[ClipSpec]:
  """Every value is checked; an error names the manifest and the line."""
  path, rows = _read_manifest(root)
  required = ("id", "coeff_path", "audio_path", "person", "emotion", "level")
  specs, seen = [], set()
  for n, row in rows:
    where = f"line {n}"
    if not isinstance(row, dict):
      raise DataError(path, f"{where}: expected an object, got {row!r}")
    missing = [k for k in required if k not in row]
    if missing:
      raise DataError(path, f"{where} lacks {', '.join(missing)}")
    clip_id = row["id"]
    if not isinstance(clip_id, (str, int)) or not str(clip_id).strip():
      raise DataError(path, f"{where}: 'id' must be non-empty text")
    clip_id = str(clip_id)
    if clip_id in seen:
      raise DataError(path, f"{where}: duplicate clip id '{clip_id}'")
    seen.add(clip_id)
    split = row.get("split") or None
    if split is not None and split not in SPLITS:
      raise DataError(path, f"{where}: unknown split '{split}'")
    level = row["level"]
    try:
      if isinstance(level, (bool, float)) or level is None:
        raise ValueError
      level = int(level)
    except (TypeError, ValueError):
      raise DataError(
        path, f"{where}: 'level' must be an integer, got {row['level']!r}"
      ) from None
    fps = row.get("fps")
    if fps in (None, ""):
      fps = source_fps
    else:
      try:
        fps = float(fps)
      except (TypeError, ValueError):
        fps = -1.0
      if not (fps > 0 and math.isfinite(fps)):
        raise DataError(
          path, f"{where}: 'fps' must be a positive number, got {row['fps']!r}"
        )
    person = _label(path, where, row, "person")
    emotion = _label(path, where, row, "emotion")
    coeff, audio = row["coeff_path"], row["audio_path"]
    for key, value in (("coeff_path", coeff), ("audio_path", audio)):
      if value is not None and not isinstance(value, str):
        raise DataError(path, f"{where}: '{key}' must be a path")
    if not coeff:
      raise DataError(path, f"{where}: 'coeff_path' is empty")
    specs.append(
      ClipSpec(
        clip_id=clip_id,
        coeff_path=os.path.join(root, coeff),
        audio_path=os.path.join(root, audio) if audio else None,
        person=person,
        emotion=emotion,
        level=level,
        style_class=f"{person}#{emotion}#{level}",
        source_fps=fps,
        split=split,
      )
    )
  return specs


# -------------------------------------------------------------------- mead --

_MEAD_HASH = re.compile(
  r"^(?P<p>[^#]+)#(?P<e>[a-z]+)#level_?(?P<l>\d)#(?P<n>\w+)"
)
_MEAD_DREAMTALK = re.compile(
  r"^(?P<p>[MW]\d{3})_(?:front_)?(?P<e>[a-z]+)_level_?(?P<l>\d)_(?P<n>\w+)"
)
_MEAD_TREE = re.compile(
  r"(?:^|/)(?P<p>[MW]\d{3})/(?:.*/)?(?P<e>[a-z]+)/level_?(?P<l>\d)/(?P<n>\w+)$"
)


def _find_audio(coeff_path: str) -> str | None:
  stem = os.path.splitext(coeff_path)[0]
  for ext in AUDIO_EXTENSIONS:
    if os.path.isfile(stem + ext):
      return stem + ext
  return None


def _walk(root: str, extensions) -> list[str]:
  found = []
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames.sort()
    for name in sorted(filenames):
      if name.lower().endswith(extensions):
        found.append(os.path.join(dirpath, name))
  return found


def scan_mead(root: str, source_fps: float | None = 25.0) -> list[ClipSpec]:
  specs = []
  for path in _walk(root, COEFF_EXTENSIONS):
    rel = os.path.splitext(os.path.relpath(path, root))[0]
    stem = os.path.basename(rel)
    match = (
      _MEAD_HASH.match(stem)
      or _MEAD_DREAMTALK.match(stem)
      or _MEAD_TREE.search(rel.replace(os.sep, "/"))
    )
    if not match:
      continue
    person, emotion, level = match["p"], match["e"], int(match["l"])
    clip_id = f"{person}#{emotion}#level_{level}#{match['n']}"
    specs.append(
      ClipSpec(
        clip_id=clip_id,
        coeff_path=path,
        audio_path=_find_audio(path),
        person=person,
        emotion=emotion,
        level=level,
        style_class=f"{person}#{emotion}#{level}",
        source_fps=source_fps,
      )
    )
  return specs


# -------------------------------------------------------------------- hdtf --


def scan_hdtf(
  root: str, source_fps: float | None = 25.0, num_frames_fn=None
) -> list[ClipSpec]:
  """Cuts each recording into 5 s segments; needs each recording's length.

  `num_frames_fn(coeff_path) -> int` reads it (the builder passes a reader);
  segments under 3 s are dropped, as the official preprocessing does.
  """
  fps = source_fps or 25.0
  seg, min_seg = (
    round(HDTF_SEGMENT_S * fps),
    round(HDTF_MIN_SEGMENT_S * fps),
  )
  specs = []
  for path in _walk(root, COEFF_EXTENSIONS):
    video_id = os.path.splitext(os.path.basename(path))[0]
    clip = functools.partial(
      ClipSpec,
      coeff_path=path,
      audio_path=_find_audio(path),
      person=video_id,
      emotion="",
      level=0,
      style_class=video_id,
      source_fps=fps,
    )
    try:
      total = num_frames_fn(path)
    except DataError:
      # An unreadable recording: one clip that fails the same way when
      # processed, so it is skipped with its reason and the rest goes on.
      specs.append(clip(clip_id=f"{video_id}#unreadable"))
      continue
    for k, start in enumerate(range(0, total, seg)):
      stop = min(start + seg, total)
      if stop - start >= min_seg:
        specs.append(clip(clip_id=f"{video_id}#{k:03d}", segment=(start, stop)))
  return specs


# --------------------------------------------------------------- styletalk --


def _styletalk_person(stem: str) -> str:
  return re.sub(r"_clip_?\d+(_short)?$", "", stem)


def scan_styletalk(
  root: str, source_fps: float | None = 30.0
) -> list[ClipSpec]:
  specs = []
  sources = sorted(_walk(os.path.join(root, "source_video", "3DMM"), (".mat",)))
  for path in sources:
    stem = os.path.splitext(os.path.basename(path))[0]
    wav = os.path.join(root, "source_video", "wav", stem + ".wav")
    person = _styletalk_person(stem)
    specs.append(
      ClipSpec(
        stem,
        path,
        wav if os.path.isfile(wav) else None,
        person,
        "",
        0,
        person,
        source_fps,
      )
    )
  styles = sorted(_walk(os.path.join(root, "style_clips", "3DMM"), (".mat",)))
  for path in styles:
    stem = os.path.splitext(os.path.basename(path))[0]
    person = _styletalk_person(stem)
    specs.append(
      ClipSpec(f"style/{stem}", path, None, person, "", 0, person, source_fps)
    )
  if not specs:
    raise DataError(root, "no source_video/3DMM or style_clips/3DMM .mat files")
  return specs


# ------------------------------------------------------------------ splits --


def assign_splits(
  specs: list[ClipSpec],
  heldout_person_fraction: float = 0.1,
  holdout_fraction: float = 0.05,
) -> list[ClipSpec]:
  """Deterministic splits for corpora that do not give one.

  Held-out persons (test_person): the persons with the smallest hashes, a
  tenth of them, when there are at least 5. Held-out clips of seen styles:
  within each style class, clips in hash order go to test, then val, about 5 %
  each, once a class has at least 3 (test) or 4 (val) clips. Corpora that give
  splits (a manifest with a split column) keep them.
  """
  if all(s.split for s in specs):
    return specs
  persons = sorted({s.person for s in specs}, key=_stable_hash)
  num_heldout = (
    max(1, int(len(persons) * heldout_person_fraction))
    if len(persons) >= 5
    else 0
  )
  heldout = set(persons[:num_heldout])
  by_class = defaultdict(list)
  for s in specs:
    if not s.split and s.person not in heldout:
      by_class[s.style_class].append(s)
  split_of = {}
  for members in by_class.values():
    members.sort(key=lambda s: _stable_hash(s.clip_id))
    n = len(members)
    k = max(1, round(n * holdout_fraction))
    n_test = k if n >= 3 else 0
    n_val = k if n >= 4 else 0
    for i, s in enumerate(members):
      split_of[s.clip_id] = (
        "test" if i < n_test else "val" if i < n_test + n_val else "train"
      )
  out = []
  for s in specs:
    split = s.split or (
      "test_person" if s.person in heldout else split_of[s.clip_id]
    )
    out.append(dataclasses.replace(s, split=split))
  return out


def scan(layout: str, root: str, source_fps: float | None = None, **kwargs):
  """ClipSpecs of a corpus, with splits assigned."""
  if not os.path.isdir(root):
    raise DataError(root, "corpus folder does not exist")
  if layout == "manifest":
    specs = scan_manifest(root, source_fps)
  elif layout == "mead":
    specs = scan_mead(root, source_fps or 25.0)
  elif layout == "hdtf":
    specs = scan_hdtf(root, source_fps or 25.0, **kwargs)
  elif layout == "styletalk":
    specs = scan_styletalk(root, source_fps or 30.0)
  else:
    raise ValueError(f"unknown layout '{layout}' (one of {', '.join(LAYOUTS)})")
  if not specs:
    raise DataError(
      root, f"no clips found for the '{layout}' layout ({EXPECTED[layout]})"
    )
  return assign_splits(specs)


# What each layout looks for: the hint when it finds nothing.
EXPECTED = {
  "manifest": "a manifest.jsonl or manifest.csv listing the clips",
  "mead": "coefficient files named PERSON#emotion#level_N#NAME, "
  "M003_emotion_level_1_NAME, or in folders M003/.../emotion/level_1/NAME, "
  "persons as M### or W### (other names: use a manifest)",
  "hdtf": "one coefficient file per recording, the audio beside it",
  "styletalk": "source_video/3DMM/*.mat with source_video/wav/*.wav, and "
  "style_clips/3DMM/*.mat",
}
