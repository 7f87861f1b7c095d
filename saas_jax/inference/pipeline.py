"""Say anything with any style: speech (or a video's expression) + a style
clip + a source -> expression, head pose and the assembled coefficients.

  pipe = Pipeline.load("runs")                       # audio-driven + pose
  result = pipe(Request(wav=wav, style=style_clip, source=source_clip,
                        num_samples=3, seed=0))
  result.driving(k)        # [T, 73] exp, angles, trans, crop of sample k
  result.coefficients(k)   # io.Coefficients (identity etc. from the source)
  for chunk in pipe.stream(request): ...             # as frames are ready

Everything runs at the model frame rate (25 fps); clips at other rates are
resampled on the way in (features.resample_coefficients) and results on the
way out (Result.at_fps). Expression and pose of one request share the style
code: the style clip's (or a mix of two clips', `style2` / `mix`), moved
from the source's own style (`style_strength` 0) to the target's (1) and
beyond (up to 1.5); a pose run with a motion code reads the same clips'
head motion, blended alike. Expression is computed once; the N samples differ in
head pose only (`pose="generate"`), each from its own key (sample i draws
from fold_in(key(seed), i), so sample i is the same whatever N is).
"""

import dataclasses
import os
from collections.abc import Iterator

import numpy as np

from input_pipeline import features
from input_pipeline import io as io_lib
from saas_jax.errors import DataError, check_frames
from saas_jax.inference import runs
from saas_jax.inference.expression import Stylizer
from saas_jax.inference.pose import PoseSampler

FPS = features.MODEL_FPS
POSE_MODES = ("generate", "style", "source", "still")
MAX_STRENGTH = 1.5


@dataclasses.dataclass
class Request:
  """One generation. Clips are io.Coefficients at any fps."""

  style: io_lib.Coefficients  # whose speaking style to use
  source: io_lib.Coefficients  # reference expression, identity, crop...
  wav: np.ndarray | None = None  # 16 kHz mono speech (audio-driven)
  source_video: io_lib.Coefficients | None = None  # video-driven content
  style2: io_lib.Coefficients | None = None  # a second style to blend in
  mix: float = 0.5  # weight of style2
  style_strength: float = 1.0  # 0: the source's style, 1: the target's
  pose: str = "generate"
  num_samples: int = 1
  seed: int = 0
  temperature: float = 0.7
  top_p: float = 0.9

  def validate(self, driver: str) -> None:
    check_options(
      self.pose,
      self.style_strength,
      self.mix,
      self.num_samples,
      self.temperature,
      self.top_p,
    )
    if driver == "audio" and self.wav is None:
      raise DataError("audio", "an audio-driven run needs speech")
    if driver == "video" and self.source_video is None:
      raise DataError(
        "source_video", "a video-driven run needs the clip to re-style"
      )
    if self.pose == "generate" and self.wav is None:
      raise DataError(
        "pose",
        "pose 'generate' follows the speech: give audio, or choose pose "
        "'source', 'style' or 'still'",
      )


def check_options(
  pose: str, style_strength, mix, num_samples, temperature=0.7, top_p=0.9
) -> None:
  """The generation options' ranges, each error naming its option."""
  if not 0.0 < temperature < float("inf"):
    raise DataError("temperature", f"must be > 0, got {temperature}")
  if not 0.0 <= top_p <= 1.0:
    raise DataError("top_p", f"must be within [0, 1], got {top_p}")
  if pose not in POSE_MODES:
    raise DataError("pose", f"'{pose}' is not one of {POSE_MODES}")
  if not 0.0 <= style_strength <= MAX_STRENGTH:
    raise DataError(
      "style_strength", f"{style_strength} is outside [0, {MAX_STRENGTH}]"
    )
  if not 0.0 <= mix <= 1.0:
    raise DataError("mix", f"{mix} is outside [0, 1]")
  if num_samples < 1:
    raise DataError("num_samples", f"must be >= 1, got {num_samples}")
  if pose != "generate" and num_samples > 1:
    raise DataError(
      "num_samples",
      f"{num_samples} samples need pose 'generate' (pose '{pose}' is the "
      "same in every sample)",
    )


@dataclasses.dataclass
class Chunk:
  start: int  # first frame
  exp: np.ndarray  # [c, 64]
  pose: np.ndarray  # [N, c, 6]


@dataclasses.dataclass
class Result:
  """Generated motion at `fps`, plus what the source lends the output."""

  exp: np.ndarray  # [T, 64]
  pose: np.ndarray  # [N, T, 6] angles (rad) + translation
  crop: np.ndarray  # [T, 3] (s, tx, ty)
  source: io_lib.Coefficients
  fps: float = FPS
  wav: np.ndarray | None = None  # the 16 kHz speech these frames cover

  @property
  def num_frames(self) -> int:
    return len(self.exp)

  @property
  def num_samples(self) -> int:
    return len(self.pose)

  def coefficients(self, k: int = 0) -> io_lib.Coefficients:
    return dataclasses.replace(
      self.source,
      exp=self.exp,
      angles=self.pose[k, :, :3],
      trans=self.pose[k, :, 3:],
      crop=self.crop,
      fps=self.fps,
      path=None,
    )

  def driving(self, k: int = 0) -> np.ndarray:
    """[T, 73] exp 64 + angles 3 + trans 3 + crop 3 (StyleTalk/SAAS)."""
    return self.coefficients(k).driving()

  def at_fps(self, fps: float, num_frames: int | None = None) -> "Result":
    """Resampled (expression and translation linearly, rotation by slerp)
    to `fps`, to num_frames frames if given (e.g. to match the audio)."""
    if abs(fps - self.fps) < 1e-9 and num_frames in (None, self.num_frames):
      return self
    parts = [
      features.resample_coefficients(self.coefficients(k), fps, num_frames)
      for k in range(self.num_samples)
    ]
    return dataclasses.replace(
      self,
      exp=parts[0].exp,
      pose=np.stack([p.pose for p in parts]),
      crop=parts[0].crop,
      fps=float(fps),
    )


def _at_model_fps(clip: io_lib.Coefficients | None):
  return None if clip is None else features.resample_coefficients(clip, FPS)


def loop_to(x: np.ndarray, length: int) -> np.ndarray:
  """[T0, C] -> [length, C], ping-pong (as StyleTalk extends pose)."""
  idx = features.ping_pong_index(np.array(len(x)), np.arange(length))
  return x[idx]


def crop_track(pose: str, source: io_lib.Coefficients, t: int) -> np.ndarray:
  """[T, 3]: the source's crop track with its pose, else its first crop."""
  if pose == "source":
    return loop_to(source.crop, t)
  return np.repeat(source.crop[:1], t, 0)


class Pipeline:
  def __init__(self, stylizer: Stylizer, pose: PoseSampler | None = None):
    self.stylizer = stylizer
    self.pose_sampler = pose

  @property
  def driver(self) -> str:
    return self.stylizer.driver

  @classmethod
  def load(
    cls,
    runs_dir: str = "runs",
    driver: str = "audio",
    *,
    expression_run: str | None = None,
    pose_run: str | None = None,
    with_pose: bool = True,
  ) -> "Pipeline":
    """The runs train_pipeline writes under runs_dir (audio_driven or
    video_driven, pose_generator), or explicit run folders. The expression
    and pose runs must share their frozen style encoder (same fingerprint)."""
    if os.path.isfile(os.path.join(runs_dir, "config.json")):
      raise runs.RunError(
        f"{runs_dir} is one stage's run; the runs folder holds the stages "
        f"(here {os.path.dirname(os.path.abspath(runs_dir))}), or name the "
        "run itself (generate: --expression_run, --pose_run)"
      )
    expression_run = expression_run or f"{runs_dir}/{driver}_driven"
    stylizer = Stylizer.from_run(
      runs.load_run(expression_run, f"{driver}_driven", f"{driver} run")
    )
    sampler = None
    if with_pose:
      pose_run = pose_run or f"{runs_dir}/pose_generator"
      sampler = PoseSampler.from_run(
        runs.load_run(pose_run, "pose_generator", "pose run")
      )
      a, b = stylizer.run.spec, sampler.run.spec
      if a["style_encoder"] != b["style_encoder"]:
        raise runs.RunError(
          f"the expression run {expression_run} and the pose run {pose_run} "
          "use different style encoders (fingerprints "
          f"{a['style_encoder'][:12]} and {b['style_encoder'][:12]}): train "
          "both from the same style run (config.frozen.style; now "
          f"{a['frozen'].get('style')} and {b['frozen'].get('style')})"
        )
    return cls(stylizer, sampler)

  # ------------------------------------------------------------ pieces ---

  def _styles(self, req, content):
    """(expression code, pose code, motion code or None): each the style
    clip's (mixed with style2's), moved from the source's (`content`) by
    style_strength."""

    def blend(of):  # of(clip, what, warn) -> code
      target = of(req.style, "style clip", True)
      if req.style2 is not None:
        other = of(req.style2, "second style clip", True)
        target = (1.0 - req.mix) * target + req.mix * other
      if req.style_strength == 1.0:
        return target
      own = of(content, "source", False)
      return own + req.style_strength * (target - own)

    def code(encoder):
      return blend(lambda c, what, warn: encoder.style_code(c.exp, what, warn))

    pose_code = motion_code = None
    if req.pose == "generate":
      sampler = self.pose_sampler
      pose_code = code(sampler)
      if sampler.motion_dim:
        motion_code = blend(
          lambda c, what, _: sampler.motion_code(c.pose, f"{what}'s pose")
        )
    return code(self.stylizer), pose_code, motion_code

  def _prepare(self, req: Request) -> dict:
    req.validate(self.driver)
    if req.pose == "generate" and self.pose_sampler is None:
      raise DataError("pose", "this pipeline was loaded without a pose run")
    req = dataclasses.replace(
      req,
      wav=None
      if req.wav is None
      else check_frames("audio", req.wav, (), unit="sample"),
      style=_at_model_fps(req.style),
      style2=_at_model_fps(req.style2),
      source=_at_model_fps(req.source),
      source_video=_at_model_fps(req.source_video),
    )
    wav = req.wav
    if self.driver == "video":
      content = req.source_video
      if wav is not None:
        content, wav = features.align_lengths(
          content, wav, name=f"{content.path or 'source_video'} and the audio"
        )
      num_frames = content.num_frames
    else:
      num_frames = features.num_frames_for_audio(len(wav))
      if num_frames == 0:
        raise DataError(
          "audio", f"{len(wav)} samples: shorter than one frame at {FPS:g} fps"
        )
      content = req.source
    out = {
      "req": req,
      "num_frames": num_frames,
      "content_exp": content.exp,
      "wav": wav,
    }
    if wav is not None:
      mel = features.log_mel(wav)
      out["mel"] = features.mel_windows(mel, num_frames)
      if req.pose == "generate":
        out["mfcc"] = features.mfcc_windows(features.mfcc(wav), num_frames)
    out["exp_code"], out["pose_code"], out["motion_code"] = self._styles(
      req, content
    )
    return out

  def _expression(self, p) -> Iterator[np.ndarray]:
    req = p["req"]
    if self.driver == "video":
      return self.stylizer.stream(
        source_exp=p["content_exp"], style_code=p["exp_code"]
      )
    blink = features.blink_ratio(
      np.random.default_rng(req.seed), p["num_frames"]
    )
    return self.stylizer.stream(
      source_exp=p["content_exp"],
      mel=p["mel"],
      blink=blink,
      style_code=p["exp_code"],
    )

  def _poses(self, p) -> Iterator[np.ndarray]:
    """Yields [N, c, 6] pieces of the pose."""
    req, t = p["req"], p["num_frames"]
    if req.pose == "generate":
      yield from self.pose_sampler.stream(
        p["mfcc"],
        style_code=p["pose_code"],
        motion_code=p["motion_code"],
        num_samples=req.num_samples,
        seed=req.seed,
        temperature=req.temperature,
        top_p=req.top_p,
        offset=req.source.pose.mean(0),  # the source's head position
      )
      return
    clip = req.style if req.pose == "style" else req.source
    if req.pose == "still":
      pose = np.repeat(req.source.pose[:1], t, 0)
    else:
      pose = loop_to(clip.pose, t)
    yield pose[None]

  # --------------------------------------------------------------- API ---

  def stream(self, req: Request) -> Iterator[Chunk]:
    """Yields Chunks of expression and pose as both become ready."""
    return self._stream(self._prepare(req))

  def _stream(self, p) -> Iterator[Chunk]:
    exp_parts, pose_parts = self._expression(p), self._poses(p)
    exp_buf, pose_buf = [], []
    exp_n = pose_n = start = 0
    exp_done = pose_done = False
    while start < p["num_frames"]:
      if not exp_done and (exp_n <= pose_n or pose_done):
        part = next(exp_parts, None)
        exp_done = part is None
        if part is not None:
          exp_buf.append(part)
          exp_n += len(part)
      elif not pose_done:
        part = next(pose_parts, None)
        pose_done = part is None
        if part is not None:
          pose_buf.append(part)
          pose_n += part.shape[1]
      else:
        raise RuntimeError(
          f"streams ended at {exp_n} / {pose_n} of {p['num_frames']} frames"
        )
      ready = min(exp_n, pose_n)
      if ready > start:
        exp = np.concatenate(exp_buf)
        pose = np.concatenate(pose_buf, 1)
        n = ready - start
        yield Chunk(start, exp[:n], pose[:, :n])
        exp_buf, pose_buf = [exp[n:]], [pose[:, n:]]
        start = ready

  def __call__(self, req: Request, progress=None) -> Result:
    """The whole result; progress(frames done, frames in all) is called as
    chunks are ready."""
    p = self._prepare(req)
    chunks = []
    for chunk in self._stream(p):
      chunks.append(chunk)
      if progress is not None:
        progress(chunk.start + len(chunk.exp), p["num_frames"])
    exp = np.concatenate([c.exp for c in chunks])
    source = p["req"].source
    return Result(
      exp=exp,
      pose=np.concatenate([c.pose for c in chunks], 1),
      crop=crop_track(req.pose, source, len(exp)),
      source=source,
      wav=p["wav"],
    )
