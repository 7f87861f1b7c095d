"""Say anything with any style: speech + a style clip + a source -> 3DMM
coefficient files and a video (a preview, or photoreal with PIRender).

  python -m saas_jax.generate --audio speech.wav --style style_clip.mat \\
      --source source.mat --out out/ [--num_samples 3]

Inputs: --audio in any format the readers take (wav/flac/ogg at any rate and
channel count; m4a/mp3/mp4 through the bundled ffmpeg); --style, --source
(and --style2, --source_video) in any coefficient format the readers take
(PIRender/StyleTalk .mat, Deep3DFaceRecon/SAAS .npy dicts, [T,257] / [T,73]
/ [T,70] arrays), at their own frame rate (--style_fps, --source_fps; 25 by
default, StyleTalk's samples are 30). The source gives the reference
expression (its first frame), identity, texture, lighting and crop.

Video-driven style editing: --source_video clip.mat (with a video-driven run,
--driver video or auto) re-speaks that clip's expression in the style
clip's style; --audio is then optional (its speech is muxed in and drives
generated pose).

Outputs in --out, for each sample k (N = --num_samples, poses differ):
  <name>_<k>.mat   coeff [T,257] (the source's identity, texture, lighting;
                   the generated expression and pose) + transform_params
                   [T,5], the PIRender/StyleTalk layout
  <name>_<k>.npy   [T,73] exp 64 + angles 3 + trans 3 + crop 3 (what the
                   StyleTalk and SAAS renderers read)
  <name>_<k>.mp4   a preview (style clip | generated | source) with the
                   speech, unless --no_video; with --renderer pirender:DIR
                   and --image portrait.png, the portrait animated by
                   PIRender (weights from `python -m saas_jax.convert
                   pirender`), and the preview as <name>_<k>_preview.mp4
                   only with --with_preview
  <name>.json      provenance: runs and steps, seeds, options, each input's
                   path and sha256, timings, package versions
Every file is written under a temporary name and renamed when complete.

Many jobs in one process (compiled functions reused): --jobs jobs.jsonl, one
JSON object per line with any of audio, style, source, source_video, style2,
image, out, name and the per-job options (style_fps, source_fps, style2_fps, seed,
num_samples, pose, style_strength, mix, temperature, top_p, fps); the
command line gives the defaults. A line's relative paths are relative to
the jobs file's folder, so that a folder of inputs and its jobs file run
from anywhere.
"""

import argparse
import hashlib
import json
import os
import sys
import time
import warnings

import numpy as np

from input_pipeline import features
from input_pipeline import io as io_lib
from saas_jax.errors import DataError, check_writable_folder
from saas_jax.inference import expression, runs
from saas_jax.inference import pipeline as pipeline_lib

MIX_DEFAULT = 0.5
# Per-job options (a jobs.jsonl line may set them) and their types.
JOB_KEYS = {
  "audio": str,
  "style": str,
  "source": str,
  "source_video": str,
  "style2": str,
  "image": str,
  "out": str,
  "name": str,
  "style_fps": float,
  "source_fps": float,
  "style2_fps": float,
  "seed": int,
  "num_samples": int,
  "pose": str,
  "style_strength": float,
  "mix": float,
  "temperature": float,
  "top_p": float,
  "fps": float,
}
# The keys that name files or folders.
PATH_KEYS = (
  "audio",
  "style",
  "source",
  "source_video",
  "style2",
  "image",
  "out",
)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
  """The docstring as written, and each option's default where its help
  does not say it (flags and options without one apart)."""

  def _get_help_string(self, action):
    text = action.help or ""
    if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
      return text
    return f"{text} (default: %(default)s)".strip()


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(
    prog="python -m saas_jax.generate",
    description=__doc__.split("\n\n")[0],
    formatter_class=HelpFormatter,
    epilog="See the module docstring (README, 'Generate') for the outputs.",
  )
  io_ = p.add_argument_group("inputs and outputs")
  io_.add_argument("--audio", help="speech: wav/flac/ogg/m4a/mp3/mp4")
  io_.add_argument("--style", help="style clip (coefficient file)")
  io_.add_argument(
    "--source",
    help="source clip: reference expression, identity, texture, lighting, crop",
  )
  io_.add_argument("--source_video", help="video-driven: the clip to re-style")
  io_.add_argument("--style2", help="a second style clip to blend in (--mix)")
  io_.add_argument(
    "--style_fps",
    type=float,
    default=25.0,
    help="frame rate of --style (StyleTalk's .mat samples: 30)",
  )
  io_.add_argument(
    "--source_fps",
    type=float,
    default=25.0,
    help="frame rate of --source and --source_video",
  )
  io_.add_argument(
    "--style2_fps", type=float, default=None, help="default: --style_fps"
  )
  io_.add_argument("--out", default="out", help="output folder")
  io_.add_argument("--name", help="output name (default: the audio's stem)")
  io_.add_argument("--jobs", help="jobs.jsonl: many jobs in one process")
  io_.add_argument(
    "--fps",
    type=float,
    default=25.0,
    help="output frame rate (30 for StyleTalk pipelines)",
  )
  io_.add_argument("--no_video", action="store_true", help="no mp4 video")
  io_.add_argument(
    "--renderer",
    default="preview",
    help="preview (a shaded mesh, no weights) or pirender:DIR (photoreal, "
    "a folder from `python -m saas_jax.convert pirender`; needs --image)",
  )
  io_.add_argument(
    "--image",
    help="pirender: the portrait to animate, a 256x256 face crop (png/jpg)",
  )
  io_.add_argument(
    "--with_preview",
    action="store_true",
    help="pirender: also write the preview as <name>_<k>_preview.mp4",
  )
  io_.add_argument(
    "--no_mat",
    action="store_true",
    help="no .mat (needed when the source has no identity)",
  )
  io_.add_argument(
    "--preview",
    choices=("side_by_side", "single"),
    default="side_by_side",
    help="the video: style clip | generated | source, or generated alone",
  )
  io_.add_argument(
    "--preview_face",
    default="auto",
    help="face model of the preview: auto (the expression "
    "run's), synthetic, mediapipe (Deep3DFaceRecon "
    "expressions), a BFM_model_front.mat or a basis .npz",
  )
  model = p.add_argument_group("runs")
  model.add_argument(
    "--runs", default="runs", help="folder of train_pipeline's runs"
  )
  model.add_argument(
    "--driver",
    choices=("auto", "audio", "video"),
    default="auto",
    help="auto: video if --source_video is given",
  )
  model.add_argument("--expression_run", help="default: RUNS/<driver>_driven")
  model.add_argument("--pose_run", help="default: RUNS/pose_generator")
  gen = p.add_argument_group("generation")
  gen.add_argument(
    "--pose",
    choices=pipeline_lib.POSE_MODES,
    default=None,
    help="generate (default with audio), style (the style "
    "clip's, looped), source (default without audio), still",
  )
  gen.add_argument(
    "--num_samples", type=int, default=1, help="pose samples (files _0.._N-1)"
  )
  gen.add_argument(
    "--seed", type=int, default=0, help="seed of the pose samples and blinks"
  )
  gen.add_argument(
    "--temperature", type=float, default=0.7, help="pose sampling temperature"
  )
  gen.add_argument(
    "--top_p", type=float, default=0.9, help="pose sampling nucleus mass"
  )
  gen.add_argument(
    "--style_strength",
    type=float,
    default=1.0,
    help="0: the source's style, 1: the style clip's, <= 1.5",
  )
  gen.add_argument(
    "--mix", type=float, default=MIX_DEFAULT, help="weight of --style2"
  )
  args = p.parse_args(argv)
  if not args.jobs and not args.style:
    p.error("--style is required (or --jobs)")
  kind, _, directory = args.renderer.partition(":")
  if args.renderer != "preview" and (kind != "pirender" or not directory):
    p.error(
      f"--renderer: expected preview or pirender:DIR, got {args.renderer!r}"
    )
  return args


# ------------------------------------------------------------------ jobs ---


def read_jobs(path: str, defaults: dict) -> list[dict]:
  """One job per line, over the command line's defaults; a line's relative
  paths are taken from the jobs file's folder (the defaults' from the
  current one)."""
  if not os.path.isfile(path):
    raise DataError(path, "no such file")
  folder = os.path.dirname(os.path.abspath(path))
  jobs = []
  with open(path, encoding="utf-8-sig") as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        job = json.loads(line)
      except json.JSONDecodeError as e:
        raise DataError(path, f"line {number}: not JSON ({e})") from None
      if not isinstance(job, dict):
        raise DataError(path, f"line {number}: expected a JSON object")
      unknown = sorted(set(job) - set(JOB_KEYS))
      if unknown:
        raise DataError(
          path,
          f"line {number}: unknown keys {unknown} (known: "
          f"{', '.join(sorted(JOB_KEYS))})",
        )
      merged = {**defaults, "where": f"{path} line {number}"}
      for key, value in job.items():
        try:
          merged[key] = JOB_KEYS[key](value)
        except (TypeError, ValueError):
          raise DataError(
            path, f"line {number}: '{key}' must be {JOB_KEYS[key].__name__}"
          ) from None
        if key in PATH_KEYS and merged[key]:
          merged[key] = os.path.join(folder, os.path.expanduser(merged[key]))
      jobs.append(merged)
  if not jobs:
    raise DataError(path, "no jobs")
  return jobs


def job_from_args(args) -> dict:
  return {k: getattr(args, k) for k in JOB_KEYS}


def check_job(job: dict, driver: str, photoreal: bool = False) -> dict:
  """Fills defaults and checks numbers; names the option at fault.
  photoreal: the video is rendered by PIRender, which needs a portrait."""
  job = dict(job)
  if photoreal and not job["image"]:
    raise DataError(
      "--image", "--renderer pirender needs the portrait to animate"
    )
  if job["image"] and not photoreal:
    raise DataError(
      "--image",
      "only --renderer pirender:DIR animates a portrait (the preview draws "
      "the face model; --no_video writes no video)",
    )
  if job["style2"] is None and job["mix"] != MIX_DEFAULT:
    raise DataError("--mix", "blends in --style2, which is not given")
  for key in ("style_fps", "source_fps", "fps"):
    if not (job[key] > 0 and np.isfinite(job[key])):
      raise DataError(f"--{key}", f"must be a positive number, got {job[key]}")
  if job["style2_fps"] is None:
    job["style2_fps"] = job["style_fps"]
  if not job["style"]:
    raise DataError("--style", "a style clip is required")
  if driver == "audio":
    if not job["audio"]:
      raise DataError("--audio", "the audio-driven run needs speech")
    if not job["source"]:
      raise DataError("--source", "the audio-driven run needs a source clip")
  if job["pose"] is None:
    job["pose"] = "generate" if job["audio"] else "source"
  pipeline_lib.check_options(
    job["pose"],
    job["style_strength"],
    job["mix"],
    job["num_samples"],
    job["temperature"],
    job["top_p"],
  )
  if not job["name"]:
    stem_of = job["audio"] or job["source_video"] or job["source"]
    job["name"] = os.path.splitext(os.path.basename(stem_of))[0]
  if os.path.basename(job["name"]) != job["name"] or job["name"] in (".", ".."):
    raise DataError(
      "--name", f"must be a file name, not a path (got {job['name']!r})"
    )
  return job


def said_of(job: dict, e: DataError) -> DataError:
  """e, said of the job's line in the jobs file (a lone job: as it is)."""
  return DataError(job["where"], str(e)) if job["where"] else e


def check_distinct(jobs: list[dict]) -> None:
  """Two jobs writing the same files would leave only the later one's."""
  seen = {}
  for job in jobs:
    stem = os.path.join(os.path.abspath(job["out"]), job["name"])
    if stem in seen:
      raise DataError(
        job["where"],
        f"writes {stem}_* as {seen[stem]} does: give one of them another "
        "'name' or 'out'",
      )
    seen[stem] = job["where"]


def sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


def make_folder(out: str) -> None:
  try:
    os.makedirs(out, exist_ok=True)
  except OSError as e:
    raise DataError(
      out, f"cannot write the output folder ({e.strerror})"
    ) from None


def earlier_outputs(out: str, name: str) -> set[str]:
  """The files an earlier generation under `name` wrote in `out`, as its
  <name>.json lists them (none when it is missing or unreadable)."""
  try:
    with open(os.path.join(out, f"{name}.json"), encoding="utf-8") as f:
      listed = json.load(f).get("outputs", [])
  except (OSError, ValueError, AttributeError):
    return set()
  return {
    p
    for p in listed
    if isinstance(p, str) and os.path.basename(p) == p and p.startswith(name)
  }


def load_request(
  job: dict, need_identity: bool
) -> tuple[pipeline_lib.Request, dict, np.ndarray | None]:
  """Reads the job's files -> (Request, {role: {path, sha256}}, the
  portrait as uint8 [256, 256, 3] or None).
  need_identity: the .mat output needs the source's identity."""
  inputs = {}

  def clip(role, fps):
    path = job[role]
    if not path:
      return None
    coeffs = io_lib.load_coefficients(path, fps=fps)
    if role in ("style", "style2"):  # counted at the model's frame rate
      at_model_fps = len(coeffs.exp) * features.MODEL_FPS / coeffs.fps
      expression.check_style_length(path, max(1, round(at_model_fps)))
    inputs[role] = {"path": os.path.abspath(path), "sha256": sha256(path)}
    return coeffs

  wav = None
  if job["audio"]:
    wav = io_lib.load_audio(job["audio"])
    inputs["audio"] = {
      "path": os.path.abspath(job["audio"]),
      "sha256": sha256(job["audio"]),
    }
  style = clip("style", job["style_fps"])
  source_video = clip("source_video", job["source_fps"])
  source = clip("source", job["source_fps"]) or source_video
  if source is None:
    raise DataError("--source", "give a source clip (or --source_video)")
  request = pipeline_lib.Request(
    style=style,
    source=source,
    wav=wav,
    source_video=source_video,
    style2=clip("style2", job["style2_fps"]),
    mix=job["mix"],
    style_strength=job["style_strength"],
    pose=job["pose"],
    num_samples=job["num_samples"],
    seed=job["seed"],
    temperature=job["temperature"],
    top_p=job["top_p"],
  )
  portrait = None
  if job["image"]:
    from saas_jax.render import pirender

    inputs["image"] = {
      "path": os.path.abspath(job["image"]),
      "sha256": sha256(job["image"]),
    }
    portrait = pirender.read_portrait(job["image"])
  if need_identity and source.identity is None:
    raise DataError(
      source.path,
      "has no identity, texture or lighting (a [T,73] or [T,70] array); "
      "the .mat output needs them: give a source with coeff [T,257] or "
      "pass --no_mat",
    )
  return request, inputs, portrait


# --------------------------------------------------------------- outputs ---


def preview_face_spec(spec: str, run_spec: dict) -> str:
  if spec != "auto":
    return spec
  face = run_spec.get("face_model", "mediapipe")
  if face in ("synthetic", "mediapipe") or os.path.isfile(face):
    return face
  warnings.warn(
    f"the expression run's face model {face} is not here; the preview uses "
    "the MediaPipe basis",
    stacklevel=2,
  )
  return "mediapipe"


class Renderers:
  """The video renderers of a process, each built once: previews by face
  model, and PIRender when --renderer pirender:DIR asks for it."""

  def __init__(self, spec: str = "preview"):
    self._previews = {}
    self.photoreal = None
    self.photoreal_dir = None
    if spec != "preview":
      kind, _, directory = spec.partition(":")
      if kind != "pirender" or not directory:
        raise DataError(
          "--renderer", f"expected preview or pirender:DIR, got {spec!r}"
        )
      from saas_jax.render import pirender

      self.photoreal = pirender.Renderer.load(directory)
      self.photoreal_dir = os.path.abspath(directory)

  def preview(self, spec: str):
    if spec not in self._previews:
      from saas_jax import face_model
      from saas_jax.render import preview

      self._previews[spec] = preview.PreviewRenderer(face_model.load(spec))
    return self._previews[spec]


def write_photoreal(path, result, k, renderer, portrait, log) -> None:
  """PIRender's frames of sample k, with the speech, and progress (CPU
  rendering takes about a second per frame)."""
  from tqdm import tqdm

  from saas_jax.render import pirender, video

  size = (pirender.SIZE, pirender.SIZE)
  bar = tqdm(
    total=result.num_frames,
    desc=f"rendering {os.path.basename(path)}",
    unit="frame",
    file=sys.stderr,
    disable=None,  # no bar when stderr is not a terminal
  )
  with bar, video.Mp4Writer(path, result.fps, size, audio=result.wav) as w:
    for frames in renderer.frames(portrait, result.driving(k)):
      w.write(frames)
      bar.update(len(frames))


def write_video(path, result, k, request, job, renderer, layout, identity):
  from input_pipeline import features
  from saas_jax.render import preview

  t, fps = result.num_frames, result.fps
  drivings, captions = [result.driving(k)], None
  if layout == "side_by_side":

    def looped(clip):
      clip = features.resample_coefficients(clip, fps)
      return pipeline_lib.loop_to(clip.driving(), t)

    content = request.source_video or request.source
    role = "source_video" if request.source_video else "source"
    name = lambda key: os.path.basename(job[key] or "")  # noqa: E731
    drivings = [looped(request.style), drivings[0], looped(content)]
    captions = [
      f"style: {name('style')}",
      f"generated #{k}",
      f"source: {name(role)}",
    ]
  preview.write_panels(
    path, renderer, drivings, captions, fps, result.wav, identity
  )


def run_job(pipe, job, args, renderers, log=print, bar=None) -> dict:
  """One job: inputs -> generation -> files. bar(done, total): progress."""
  timings = {}
  t0 = time.perf_counter()
  request, inputs, portrait = load_request(job, not args.no_mat)
  timings["read_inputs_s"] = time.perf_counter() - t0

  t0 = time.perf_counter()
  result = pipe(request, progress=bar)
  timings["generate_s"] = time.perf_counter() - t0
  num_frames = None  # with speech: as many frames as it lasts
  if result.wav is not None:
    num_frames = round(len(result.wav) * job["fps"] / io_lib.AUDIO_SAMPLE_RATE)
  result = result.at_fps(job["fps"], num_frames)

  t0 = time.perf_counter()
  out, name = job["out"], job["name"]
  make_folder(out)
  earlier = earlier_outputs(out, name)
  written = []
  face = None
  photoreal = None if args.no_video else renderers.photoreal
  if not args.no_video and (photoreal is None or args.with_preview):
    face = preview_face_spec(args.preview_face, pipe.stylizer.run.spec)
    renderer = renderers.preview(face)
    identity = request.source.identity if face.endswith(".mat") else None
  for k in range(result.num_samples):
    coeffs = result.coefficients(k)
    stem = os.path.join(out, f"{name}_{k}")
    if not args.no_mat:
      io_lib.save_coefficients_mat(
        stem + ".mat", coeffs.coeff(), coeffs.transform_params()
      )
      written.append(stem + ".mat")
    io_lib.save_array_npy(stem + ".npy", coeffs.driving())
    written.append(stem + ".npy")
    if photoreal is not None:
      write_photoreal(stem + ".mp4", result, k, photoreal, portrait, log)
      written.append(stem + ".mp4")
    if face is not None:
      path = stem + ("_preview.mp4" if photoreal is not None else ".mp4")
      write_video(
        path, result, k, request, job, renderer, args.preview, identity
      )
      written.append(path)
  timings["write_s"] = time.perf_counter() - t0

  provenance = {
    "saas_jax": _version(),
    "command": sys.argv,
    "runs": {
      "expression": _run_info(pipe.stylizer.run),
      **(
        {"pose": _run_info(pipe.pose_sampler.run)}
        if pipe.pose_sampler is not None
        else {}
      ),
    },
    "inputs": inputs,
    "options": {k: v for k, v in job.items() if k in JOB_KEYS},
    "seeds": {
      "seed": request.seed,
      "pose_samples": "sample k draws from fold_in(key(seed), k)",
      "blinks": "numpy default_rng(seed)",
    },
    "frames": result.num_frames,
    "fps": result.fps,
    "preview_face": face,
    "renderer": (
      {"pirender": renderers.photoreal_dir, **renderers.photoreal.spec.source}
      if photoreal is not None
      else "preview"
    ),
    "outputs": [os.path.basename(p) for p in written],
    "timings": {k: round(v, 3) for k, v in timings.items()},
    "packages": _packages(),
  }
  json_path = os.path.join(out, f"{name}.json")
  io_lib.atomic_write_bytes(
    json_path, (json.dumps(provenance, indent=1) + "\n").encode()
  )
  written.append(json_path)
  # A re-run under the same name replaces the earlier generation's files,
  # also those it does not write again (more samples, a video): otherwise
  # the folder would mix two generations that <name>.json cannot tell apart.
  stale = sorted(earlier - {os.path.basename(p) for p in written})
  for old in stale:
    try:
      os.remove(os.path.join(out, old))
    except FileNotFoundError:
      pass
  log(
    f"{name}: {result.num_frames} frames at {result.fps:g} fps, "
    f"{result.num_samples} sample(s) in {timings['generate_s']:.1f} s; "
    f"wrote {len(written)} files to {out}"
    + (
      f" (removed the earlier generation's {', '.join(stale)})" if stale else ""
    )
  )
  return provenance


def _run_info(run: runs.Run) -> dict:
  return {
    "workdir": os.path.abspath(run.workdir),
    "step": run.step,
    "trainer": run.kind,
  }


def _version() -> str:
  from importlib import metadata

  try:
    return metadata.version("saas_jax")
  except metadata.PackageNotFoundError:
    return "unknown"


def _packages() -> dict:
  import flax
  import jax

  return {
    "python": sys.version.split()[0],
    "jax": jax.__version__,
    "flax": flax.__version__,
    "numpy": np.__version__,
  }


# ------------------------------------------------------------------ main ---


def main(argv=None) -> int:
  args = parse_args(argv)
  from saas_jax.engine import runtime

  runtime.compilation_cache()
  try:
    defaults = {**job_from_args(args), "where": None}  # None: no jobs file
    jobs = read_jobs(args.jobs, defaults) if args.jobs else [defaults]
    driver = args.driver
    if driver == "auto":
      driver = "video" if any(j["source_video"] for j in jobs) else "audio"
    photoreal = not args.no_video and args.renderer != "preview"
    checked = []
    for job in jobs:  # fail before any work
      try:
        job = check_job(job, driver, photoreal)
        # Every job's inputs are read (and dropped) before the runs load,
        # so that a bad file fails in seconds, not halfway through a batch.
        load_request(job, not args.no_mat)
        check_writable_folder(job["out"])
      except DataError as e:
        raise said_of(job, e) from None
      checked.append(job)
    jobs = checked
    check_distinct(jobs)
    renderers = Renderers("preview" if args.no_video else args.renderer)
    if not args.no_video and args.preview_face != "auto":
      renderers.preview(args.preview_face)  # a bad face model: now
    t0 = time.perf_counter()
    need_pose = any(j["pose"] == "generate" for j in jobs)
    pipe = pipeline_lib.Pipeline.load(
      args.runs,
      driver,
      expression_run=args.expression_run,
      pose_run=args.pose_run,
      with_pose=need_pose,
    )
    print(
      f"loaded the {driver}-driven run"
      + (" and the pose run" if need_pose else "")
      + f" in {time.perf_counter() - t0:.1f} s",
      file=sys.stderr,
    )
    if len(jobs) == 1:
      run_job(pipe, jobs[0], args, renderers, _stderr, FrameBar())
    else:
      from tqdm import tqdm

      bar = tqdm(jobs, desc="jobs", unit="job", file=sys.stderr)
      failed = []
      for job in bar:  # one job's bad input does not stop the others
        try:
          run_job(pipe, job, args, renderers, log=bar.write)
        except DataError as e:
          failed.append(job["where"])
          bar.write(f"error: {said_of(job, e)}", file=sys.stderr)
      if failed:
        raise DataError(
          args.jobs, f"{len(failed)} of {len(jobs)} jobs failed (above)"
        )
  except (DataError, runs.RunError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


class FrameBar:
  """A progress bar over the frames of one long job (silent for short ones:
  a bar that fills in one step tells nothing)."""

  def __init__(self, min_frames: int = 1500):
    self.min_frames, self.bar = min_frames, None

  def __call__(self, done: int, total: int) -> None:
    if total < self.min_frames:
      return
    if self.bar is None:
      from tqdm import tqdm

      self.bar = tqdm(total=total, desc="frames", unit="frame", file=sys.stderr)
    self.bar.update(done - self.bar.n)
    if done >= total:
      self.bar.close()


def _stderr(message: str) -> None:
  print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
  sys.exit(main())
