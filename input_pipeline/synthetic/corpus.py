"""Presets, clip lists, splits, rendering and writing of the synthetic corpus.

Layout under out_dir (paths in the manifest are relative to it):
  corpus_info.json                      preset, seed, counts, persons, ...
  manifest.jsonl                        one clip per line, sorted by id
  <person>/<emotion>/level_<l>/<id>.wav  16 kHz PCM16 mono
  <person>/<emotion>/level_<l>/<id>.mat  PIRender layout at 25 fps
  style_transfer/pairs.jsonl            content_id, style_id, target_path,
                                        num_frames
  style_transfer/<content>__<style>.npy float32 [T, 64] ground truth

Every clip is a pure function of (seed, clip id): its length, sentence,
audio, expression and pose come from generators seeded by the seed and the
id, so shards can be rendered in any order, by any number of processes, and
re-running skips clips whose files exist (each file is written under a
temporary name and renamed, so an interrupted run never leaves a complete-
looking half file). corpus_info.json is written first (complete=false) and
again at the end; the manifest is written last.
"""

import dataclasses
import io as pyio
import json
import multiprocessing
import os
import signal
import sys

import numpy as np
import soundfile

from input_pipeline import io as io_lib
from input_pipeline.synthetic import espeak, motion, speech, styles
from input_pipeline.synthetic.version import (
  DEFAULT_SPEECH,
  GENERATOR_VERSION,
  SPEECH_ENGINES,
)
from saas_jax.errors import DataError

# The coefficient layout written: "real" (Deep3DFaceRecon's Basel space,
# calibrated on real clips: real_space.py) or "semantic" (the generator's
# own layout, version 1's corpus: motion.py).
SPACES = ("real", "semantic")
DEFAULT_SPACE = "real"
SPLITS = ("train", "val", "test", "test_person")
_INFO = "corpus_info.json"
_MANIFEST = "manifest.jsonl"
_PAIRS_DIR = "style_transfer"


@dataclasses.dataclass(frozen=True)
class Preset:
  name: str
  num_persons: int
  emotions: tuple[str, ...]
  levels: tuple[int, ...]
  clips_per_style: int
  num_test_persons: int
  pairs_per_content: int = 1


PRESETS = {
  # 72 clips, 5.2 minutes of speech (seed 0): unit tests.
  "tiny": Preset("tiny", 3, styles.EMOTIONS, (2,), 3, 1),
  # 512 clips, 37 minutes: the embedded default.
  "small": Preset("small", 8, styles.EMOTIONS, (1, 3), 4, 1),
  # 1536 clips, 112 minutes: small with three times the persons, three of
  # them held out (how the style stages scale with the people trained on).
  "medium": Preset("medium", 24, styles.EMOTIONS, (1, 3), 4, 3),
  # 18432 clips, 22.4 hours.
  "full": Preset("full", 48, styles.EMOTIONS, (1, 2, 3), 16, 4),
}


@dataclasses.dataclass(frozen=True)
class ClipSpec:
  id: str
  person: str
  emotion: str
  level: int
  index: int  # 1-based, the nnn of the id
  split: str

  @property
  def style_dir(self) -> str:
    return f"{self.person}/{self.emotion}/level_{self.level}"

  @property
  def audio_path(self) -> str:
    return f"{self.style_dir}/{self.id}.wav"

  @property
  def coeff_path(self) -> str:
    return f"{self.style_dir}/{self.id}.mat"


def clip_id(person: str, emotion: str, level: int, index: int) -> str:
  return f"{person}#{emotion}#level_{level}#{index:03d}"


def parse_clip_id(cid: str) -> tuple[str, str, int, int]:
  """'P007#angry#level_2#003' -> ('P007', 'angry', 2, 3)."""
  person, emotion, level, index = cid.split("#")
  return person, emotion, int(level.removeprefix("level_")), int(index)


def get_preset(preset: "str | Preset") -> Preset:
  if isinstance(preset, Preset):
    return preset
  if preset not in PRESETS:
    raise ValueError(f"unknown preset '{preset}' (known: {', '.join(PRESETS)})")
  return PRESETS[preset]


def persons(preset: "str | Preset") -> list[str]:
  return [f"P{i:03d}" for i in range(get_preset(preset).num_persons)]


def plan_corpus(preset: "str | Preset") -> list[ClipSpec]:
  """Every clip of a preset with its split, sorted by id.

  The last `num_test_persons` persons are held out entirely (test_person).
  For the others, the last quarter (at least one) of each style's clips is
  held out, alternating between val and test across persons, emotions and
  levels, so both splits hold clips of every emotion.
  """
  p = get_preset(preset)
  names = persons(p)
  held_persons = set(names[len(names) - p.num_test_persons :])
  n = p.clips_per_style
  held = max(1, round(0.25 * n))
  specs = []
  for pi, person in enumerate(names):
    for ei, emotion in enumerate(p.emotions):
      for li, level in enumerate(p.levels):
        for k in range(n):
          if person in held_persons:
            split = "test_person"
          elif k < n - held:
            split = "train"
          else:
            j = k - (n - held)
            split = ("val", "test")[(pi + ei + li + j) % 2]
          cid = clip_id(person, emotion, level, k + 1)
          specs.append(ClipSpec(cid, person, emotion, level, k + 1, split))
  return sorted(specs, key=lambda s: s.id)


def clip_style(seed: int, spec: ClipSpec) -> styles.Style:
  return styles.style_for(seed, spec.person, spec.emotion, spec.level)


def clip_utterance(
  seed: int, spec: ClipSpec, speech_engine: str = DEFAULT_SPEECH
) -> speech.Utterance:
  """The clip's sentence and phone timing (cheap: no audio, except that
  eSpeak's timing is known only once it has spoken, a few ms)."""
  return _speak(seed, spec, speech_engine, audio=False)[0]


def _speak(seed: int, spec: ClipSpec, speech_engine: str, audio: bool):
  """(Utterance, [num_samples] float32 wav or None)."""
  style = clip_style(seed, spec)
  length = styles.rng_for(seed, "clip", spec.id, "length")
  target = 3.0 + 5.0 * length.beta(1.2, 4.0)
  rng = styles.rng_for(seed, "clip", spec.id, "plan")
  plan = speech.plan_utterance(rng, style.rate, target)
  rng = styles.rng_for(seed, "clip", spec.id, "audio")
  if speech_engine == "espeak":
    utt, wav = espeak.synthesize(plan, style, rng)
    return utt, wav if audio else None
  if speech_engine != "source_filter":
    raise ValueError(
      f"speech_engine must be one of {SPEECH_ENGINES}, not {speech_engine!r}"
    )
  return plan, speech.synthesize(plan, style, rng) if audio else None


@dataclasses.dataclass(frozen=True)
class Clip:
  spec: ClipSpec
  utterance: speech.Utterance
  exp: np.ndarray  # [T, 64]
  pose: np.ndarray  # [T, 6]
  coeff: np.ndarray  # [T, 257]
  transform_params: np.ndarray  # [T, 5]
  wav: np.ndarray | None  # [T * 640] float32, None when audio=False

  @property
  def num_frames(self) -> int:
    return self.exp.shape[0]


def render_clip(
  seed: int,
  spec: ClipSpec,
  *,
  audio: bool = True,
  space: str = DEFAULT_SPACE,
  speech_engine: str = DEFAULT_SPEECH,
) -> Clip:
  """Renders one clip in memory (audio=False: no wav in the Clip)."""
  style = clip_style(seed, spec)
  utt, wav = _speak(seed, spec, speech_engine, audio)
  phones = utt.phones()
  num_frames = utt.num_frames
  exp = motion.render_expression(
    phones,
    style,
    num_frames,
    rng=styles.rng_for(seed, "clip", spec.id, "expression"),
    space=space,
  )
  pose = motion.render_pose(
    phones,
    style,
    num_frames,
    rng=styles.rng_for(seed, "clip", spec.id, "pose"),
    space=space,
  )
  coeff = np.zeros((num_frames, 257), np.float32)
  coeff[:, io_lib.ID] = style.identity
  coeff[:, io_lib.EXP] = exp
  coeff[:, io_lib.TEX] = style.texture
  coeff[:, io_lib.ANGLES] = pose[:, :3]
  coeff[:, io_lib.GAMMA] = style.gamma
  coeff[:, io_lib.TRANS] = pose[:, 3:]
  # The crop follows the head a little, as a face tracker's crop does.
  s, tx, ty = style.crop
  moved = pose[:, 3:5] - style.pose_offset[3:5]
  params = np.empty((num_frames, 5), np.float32)
  params[:, 0:2] = 256.0
  params[:, 2] = s
  params[:, 3] = tx + 20.0 * moved[:, 0]
  params[:, 4] = ty - 20.0 * moved[:, 1]
  return Clip(spec, utt, exp, pose, coeff, params, wav)


def manifest_record(spec: ClipSpec, utt: speech.Utterance) -> dict:
  return {
    "audio_path": spec.audio_path,
    "coeff_path": spec.coeff_path,
    "emotion": spec.emotion,
    "fps": speech.FPS,
    "id": spec.id,
    "level": spec.level,
    "num_frames": utt.num_frames,
    "person": spec.person,
    "phones": utt.phones(),
    "split": spec.split,
  }


def wav_bytes(wav: np.ndarray) -> bytes:
  pcm = np.round(np.clip(wav, -1.0, 1.0) * 32767.0).astype(np.int16)
  buf = pyio.BytesIO()
  soundfile.write(buf, pcm, speech.SAMPLE_RATE, format="WAV", subtype="PCM_16")
  return buf.getvalue()


def _wav_complete(path: str, num_samples: int) -> bool:
  try:
    return soundfile.info(path).frames == num_samples
  except Exception:  # unreadable: regenerate
    return False


# ----------------------------------------------------------------------------
# Style-transfer ground truth.
# ----------------------------------------------------------------------------


def pair_file(content_id: str, style_id: str) -> str:
  return f"{_PAIRS_DIR}/{content_id}__{style_id}.npy"


def style_transfer_pairs(
  specs: list[ClipSpec], seed: int, per_content: int = 1
) -> list[tuple[ClipSpec, ClipSpec]]:
  """(content A, style B) for every test / test_person clip A, with B a
  test / test_person clip of another person, drawn from the seed."""
  pool = [s for s in specs if s.split in ("test", "test_person")]
  pairs = []
  for a in pool:
    others = [b for b in pool if b.person != a.person]
    if not others:
      continue
    rng = styles.rng_for(seed, "pair", a.id)
    k = min(per_content, len(others))
    for i in sorted(rng.choice(len(others), size=k, replace=False)):
      pairs.append((a, others[i]))
  return pairs


def transfer_target(
  seed: int,
  content: ClipSpec,
  style_clip: ClipSpec,
  space: str = DEFAULT_SPACE,
  speech_engine: str = DEFAULT_SPEECH,
) -> np.ndarray:
  """[T, 64] what content's phone timing looks like in style_clip's style,
  stochastic parts off (exactly render_expression(..., rng=None))."""
  utt = clip_utterance(seed, content, speech_engine)
  style = clip_style(seed, style_clip)
  return motion.render_expression(
    utt.phones(), style, utt.num_frames, space=space
  )


def noise_free_expressions(out_dir: str, clip_ids) -> list[np.ndarray]:
  """[T, 64] each listed clip of the corpus at out_dir rendered with its
  stochastic parts off (no blinks, session offset, drift, tracking noise or
  jitter; transfer_target of the clip with itself); None for a directory
  that holds no synthetic corpus of this generator version."""
  info = _read_info(out_dir)
  if (
    info is None
    or info.get("generator") != "input_pipeline.synthetic"
    or info.get("generator_version") != GENERATOR_VERSION
  ):
    return None
  specs = {s.id: s for s in plan_corpus(info["preset"])}
  missing = [c for c in clip_ids if c not in specs]
  if missing:
    raise DataError(out_dir, f"lists no clip {missing[0]!r}")
  seed, space = info["seed"], info.get("space", "semantic")
  engine = info.get("speech", DEFAULT_SPEECH)
  return [
    transfer_target(seed, specs[c], specs[c], space, engine) for c in clip_ids
  ]


def npy_bytes(arr: np.ndarray) -> bytes:
  buf = pyio.BytesIO()
  np.save(buf, np.ascontiguousarray(arr, np.float32), allow_pickle=False)
  return buf.getvalue()


# ----------------------------------------------------------------------------
# Workers.
# ----------------------------------------------------------------------------


def _write_shard(task) -> tuple[list[dict], int]:
  """Renders the clips of one shard (one style) that are missing; returns
  the shard's manifest records and its clip count."""
  out_dir, seed, space, engine, shard = task
  records = []
  for spec in shard:
    wav_path = os.path.join(out_dir, spec.audio_path)
    mat_path = os.path.join(out_dir, spec.coeff_path)
    if os.path.isfile(mat_path):  # written before: complete?
      utt = clip_utterance(seed, spec, engine)
      if _wav_complete(wav_path, utt.num_samples):
        records.append(manifest_record(spec, utt))
        continue
    clip = render_clip(seed, spec, space=space, speech_engine=engine)
    records.append(manifest_record(spec, clip.utterance))
    os.makedirs(os.path.dirname(wav_path), exist_ok=True)
    io_lib.save_coefficients_mat(
      mat_path, clip.coeff, clip.transform_params, fps=speech.FPS
    )
    io_lib.atomic_write_bytes(wav_path, wav_bytes(clip.wav))
  return records, len(shard)


def _write_pairs(task) -> tuple[list[dict], int]:
  out_dir, seed, space, engine, pairs = task
  records = []
  for a, b in pairs:
    rel = pair_file(a.id, b.id)
    path = os.path.join(out_dir, rel)
    utt = clip_utterance(seed, a, engine)
    records.append(
      {
        "content_id": a.id,
        "num_frames": utt.num_frames,
        "style_id": b.id,
        "target_path": rel,
      }
    )
    if not os.path.isfile(path):
      io_lib.atomic_write_bytes(
        path, npy_bytes(transfer_target(seed, a, b, space, engine))
      )
  return records, 0


def _ignore_sigint() -> None:
  """Workers leave Ctrl-C to the parent, which stops the pool cleanly."""
  signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_task(task):
  kind, payload = task
  return kind, (_write_shard if kind == "clips" else _write_pairs)(payload)


# ----------------------------------------------------------------------------
# The corpus.
# ----------------------------------------------------------------------------


def _read_info(out_dir: str) -> dict | None:
  path = os.path.join(out_dir, _INFO)
  if not os.path.isfile(path):
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise DataError(path, f"unreadable corpus info ({e})") from None


def check_out_dir(
  out_dir: str,
  preset: str,
  seed: int,
  space: str = DEFAULT_SPACE,
  speech_engine: str = DEFAULT_SPEECH,
) -> None:
  """Refuses a directory that holds something other than this corpus."""
  if not os.path.exists(out_dir):
    return
  if not os.path.isdir(out_dir):
    raise DataError(out_dir, "exists and is not a directory")
  info = _read_info(out_dir)
  if info is None:
    if os.listdir(out_dir):
      raise DataError(
        out_dir,
        "is not empty and holds no synthetic corpus (no corpus_info.json); "
        "refusing to write into it",
      )
    return
  theirs = (
    info.get("preset"),
    info.get("seed"),
    info.get("generator_version"),
    info.get("space", "semantic"),  # version 1 wrote no space
    info.get("speech", DEFAULT_SPEECH),  # written since the espeak option
  )
  ours = (preset, seed, GENERATOR_VERSION, space, speech_engine)
  if theirs != ours:
    raise DataError(
      out_dir,
      f"holds a synthetic corpus with preset={theirs[0]!r}, seed={theirs[1]}, "
      f"generator_version={theirs[2]!r}, space={theirs[3]!r}, speech="
      f"{theirs[4]!r}; refusing to mix it with preset={preset!r}, seed={seed}, "
      f"generator_version={GENERATOR_VERSION!r}, space={space!r}, speech="
      f"{speech_engine!r} (choose another --out_dir or delete it)",
    )


def _remove_stale_temporaries(out_dir: str) -> None:
  """Deletes half-written files (`<name>.tmp-<pid>`) of writers that died."""
  for root, _, files in os.walk(out_dir):
    for name in files:
      if ".tmp-" not in name:
        continue
      try:
        os.kill(int(name.rsplit(".tmp-", 1)[1]), 0)  # only asks: alive?
        continue  # a live process is still writing it
      except (ValueError, ProcessLookupError):
        pass
      except PermissionError:
        continue
      os.remove(os.path.join(root, name))


def _json_bytes(obj, **kwargs) -> bytes:
  return (json.dumps(obj, sort_keys=True, **kwargs) + "\n").encode()


def _progress(total: int, enabled: bool):
  if not enabled:
    return None
  from tqdm import tqdm

  return tqdm(
    total=total, unit="clip", file=sys.stderr, desc="synthetic corpus"
  )


def generate_corpus(
  out_dir: str | os.PathLike,
  preset: str = "small",
  seed: int = 0,
  *,
  workers: int | None = None,
  progress: bool = True,
  space: str = DEFAULT_SPACE,
  speech_engine: str = DEFAULT_SPEECH,
) -> dict:
  """Writes (or completes) a corpus; returns its corpus_info dict.

  With workers > 1 the clips are rendered in spawned processes (safe next to
  JAX or TensorFlow threads); a script that calls this must then guard its
  entry point with `if __name__ == "__main__":`, as multiprocessing requires.
  Raises DataError when out_dir holds something else (see check_out_dir).
  """
  out_dir = os.fspath(out_dir)
  p = get_preset(preset)
  seed = int(seed)
  if space not in SPACES:
    raise ValueError(f"space must be one of {SPACES}, not {space!r}")
  if speech_engine not in SPEECH_ENGINES:
    raise ValueError(
      f"speech_engine must be one of {SPEECH_ENGINES}, not {speech_engine!r}"
    )
  if speech_engine == "espeak":
    espeak.require()
  check_out_dir(out_dir, p.name, seed, space, speech_engine)
  os.makedirs(os.path.join(out_dir, _PAIRS_DIR), exist_ok=True)
  base_info = {
    "generator": "input_pipeline.synthetic",
    "generator_version": GENERATOR_VERSION,
    "preset": p.name,
    "seed": seed,
    "space": space,
    "speech": speech_engine,
  }
  io_lib.atomic_write_bytes(
    os.path.join(out_dir, _INFO),
    _json_bytes({**base_info, "complete": False}, indent=2),
  )
  _remove_stale_temporaries(out_dir)

  specs = plan_corpus(p)
  shards: dict[str, list[ClipSpec]] = {}
  for spec in specs:
    shards.setdefault(spec.style_dir, []).append(spec)
  pairs = style_transfer_pairs(specs, seed, p.pairs_per_content)
  tasks = [
    ("clips", (out_dir, seed, space, speech_engine, shard))
    for shard in shards.values()
  ]
  tasks += [
    ("pairs", (out_dir, seed, space, speech_engine, pairs[i : i + 64]))
    for i in range(0, len(pairs), 64)
  ]

  workers = max(1, int(workers or os.cpu_count() or 1))
  bar = _progress(len(specs), progress)
  clip_records, pair_records = [], []

  def collect(results):
    for kind, (records, count) in results:
      (clip_records if kind == "clips" else pair_records).extend(records)
      if bar is not None and count:
        bar.update(count)

  try:
    if workers == 1:
      collect(map(_run_task, tasks))
    else:
      # spawn, not fork: safe when the caller has started threads (JAX, TF).
      ctx = multiprocessing.get_context("spawn")
      with ctx.Pool(workers, initializer=_ignore_sigint) as pool:
        collect(pool.imap_unordered(_run_task, tasks))
  finally:
    if bar is not None:
      bar.close()

  clip_records.sort(key=lambda r: r["id"])
  pair_records.sort(key=lambda r: (r["content_id"], r["style_id"]))
  counts = {s: 0 for s in SPLITS}
  seconds = {s: 0.0 for s in SPLITS}
  for r in clip_records:
    counts[r["split"]] += 1
    seconds[r["split"]] += r["num_frames"] / speech.FPS
  names = persons(p)
  info = {
    **base_info,
    "complete": True,
    "counts": counts,
    "emotions": list(p.emotions),
    "fps": speech.FPS,
    "levels": list(p.levels),
    "num_clips": len(clip_records),
    "num_style_transfer_pairs": len(pair_records),
    "persons": names,
    "sample_rate": speech.SAMPLE_RATE,
    "seconds": {k: round(v, 2) for k, v in seconds.items()},
    "test_persons": names[len(names) - p.num_test_persons :],
    "total_seconds": round(sum(seconds.values()), 2),
  }
  io_lib.atomic_write_bytes(
    os.path.join(out_dir, _PAIRS_DIR, "pairs.jsonl"),
    b"".join(_json_bytes(r) for r in pair_records),
  )
  io_lib.atomic_write_bytes(
    os.path.join(out_dir, _INFO), _json_bytes(info, indent=2)
  )
  io_lib.atomic_write_bytes(
    os.path.join(out_dir, _MANIFEST),
    b"".join(_json_bytes(r) for r in clip_records),
  )
  return info


def load_manifest(out_dir: str | os.PathLike) -> list[dict]:
  path = os.path.join(os.fspath(out_dir), _MANIFEST)
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]
