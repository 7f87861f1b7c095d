"""Writing mp4 (H.264, yuv420p) with the speech muxed in, atomically.

Frames stream into the bundled ffmpeg (imageio-ffmpeg) through a pipe, so a
video of any length takes bounded memory; the file appears under its name
only when complete (written as <name>.tmp-<pid>.mp4, then renamed), and an
error or interruption removes the partial file.

  with Mp4Writer("out.mp4", fps=25, size=(256, 768), audio=wav16k) as w:
    for frames in batches:      # uint8 [B, H, W, 3]
      w.write(frames)

"""

import os
import subprocess
import tempfile

import numpy as np
import soundfile

from saas_jax.errors import DataError

AUDIO_RATE = 16000
# AAC codes 1024-sample frames: a decoded stream ends up to one frame late.
AAC_FRAME_S = 1024 / AUDIO_RATE


def _ffmpeg() -> str:
  import imageio_ffmpeg

  return imageio_ffmpeg.get_ffmpeg_exe()


class Mp4Writer:
  def __init__(
    self,
    path: str,
    fps: float,
    size: tuple[int, int],
    audio: np.ndarray | None = None,
    crf: int = 20,
  ):
    """size: (height, width), both even; audio: 16 kHz mono float32."""
    self.path = os.fspath(path)
    height, width = size
    if height % 2 or width % 2:
      raise ValueError(f"H.264 needs even sizes, got {size}")
    directory = os.path.dirname(os.path.abspath(self.path))
    stem = os.path.splitext(os.path.basename(self.path))[0]
    self._tmp = os.path.join(directory, f".{stem}.tmp-{os.getpid()}.mp4")
    self._wav = None
    cmd = [_ffmpeg(), "-nostdin", "-y", "-v", "error"]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}"]
    cmd += ["-r", f"{fps}", "-i", "pipe:0"]
    if audio is not None:
      fd, self._wav = tempfile.mkstemp(suffix=".wav", dir=directory)
      os.close(fd)
      soundfile.write(self._wav, np.asarray(audio, np.float32), AUDIO_RATE)
      cmd += ["-i", f"file:{self._wav}", "-map", "0:v", "-map", "1:a"]
      cmd += ["-c:a", "aac", "-b:a", "128k"]
    cmd += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(crf)]
    cmd += ["-preset", "veryfast", "-movflags", "+faststart"]
    cmd += ["-f", "mp4", f"file:{self._tmp}"]
    self._shape = (height, width, 3)
    self._proc = subprocess.Popen(
      cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE
    )
    self.frames = 0

  def write(self, frames: np.ndarray) -> None:
    frames = np.ascontiguousarray(frames, np.uint8)
    if frames.shape[1:] != self._shape:
      raise ValueError(f"frames must be [B, {self._shape}], got {frames.shape}")
    try:
      self._proc.stdin.write(frames.tobytes())
    except BrokenPipeError:
      self._fail()
    self.frames += len(frames)

  def close(self) -> None:
    self._proc.stdin.close()
    if self._proc.wait() != 0:
      self._fail()
    self._cleanup_wav()
    os.replace(self._tmp, self.path)

  def abort(self) -> None:
    self._proc.kill()
    self._proc.wait()
    self._cleanup_wav()
    if os.path.exists(self._tmp):
      os.remove(self._tmp)

  def _fail(self):
    err = self._proc.stderr.read().decode(errors="replace").strip()
    self.abort()
    raise DataError(self.path, f"ffmpeg could not write the video: {err}")

  def _cleanup_wav(self):
    if self._wav and os.path.exists(self._wav):
      os.remove(self._wav)

  def __enter__(self):
    return self

  def __exit__(self, exc_type, *_):
    if exc_type is None:
      self.close()
    else:
      self.abort()


def probe(path: str) -> dict:
  """{"frames", "fps", "duration" (video, s), "audio_duration" (decoded
  length in s, None without audio: up to AAC_FRAME_S longer than the audio
  that was written)} of a video file, decoded with the bundled ffmpeg."""
  import re

  from input_pipeline import io as io_lib

  proc = subprocess.run(
    [
      _ffmpeg(),
      "-nostdin",
      "-i",
      f"file:{path}",
      "-map",
      "0:v:0",
      "-f",
      "null",
      "-",
    ],
    capture_output=True,
    text=True,
    check=False,
  )
  if proc.returncode != 0:
    raise DataError(path, f"not a readable video: {proc.stderr.strip()[-200:]}")
  fps = float(re.search(r"Video:.*?([\d.]+) fps", proc.stderr).group(1))
  frames = int(re.findall(r"frame=\s*(\d+)", proc.stderr)[-1])
  audio = None
  if re.search(r"Stream #\S+: Audio:", proc.stderr):
    audio = len(io_lib.load_audio(path)) / io_lib.AUDIO_SAMPLE_RATE
  return {
    "frames": frames,
    "fps": fps,
    "duration": frames / fps,
    "audio_duration": audio,
  }


def use_bundled_ffmpeg() -> None:
  """Points mediapy (show_video, read_video) at the bundled ffmpeg."""
  import mediapy

  mediapy.set_ffmpeg(_ffmpeg())
