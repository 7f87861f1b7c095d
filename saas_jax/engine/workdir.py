"""What a run folder holds, and reading it back.

  <workdir>/config.json      the full config of the run
  <workdir>/spec.json        what a loader needs to rebuild the networks
                             (sizes, class count, the frozen networks'
                             settings and fingerprints); written by the
                             engine when training starts or resumes
  <workdir>/checkpoints/<step>/{state,config}   orbax

Later stages (config.frozen) and inference (saas_jax.inference) read runs
through these functions, which name the run, what is missing and the
command that makes it. No TensorFlow, no trainer is imported here.
"""

import json
import os

import ml_collections

from input_pipeline.io import atomic_write_bytes

SPEC_FORMAT = 1

# The config file that trains each kind of run (for error messages).
CONFIG_OF = {
  "style_vqvae": "configs/style_vqvae.py",
  "style_classifier": "configs/style_classifier.py",
  "motion": "configs/audio_driven.py",
  "audio_driven": "configs/audio_driven.py",
  "video_driven": "configs/video_driven.py",
  "pose_vqvae": "configs/pose_vqvae.py",
  "pose_generator": "configs/pose_generator.py",
}


class RunError(FileNotFoundError, ValueError):
  """A run folder that is missing, unfinished or of the wrong kind (or runs
  that do not fit together): an OSError and a ValueError both."""


def train_command(kind: str, workdir: str | None = None) -> str:
  cmd = f"python -m saas_jax.main --config {CONFIG_OF[kind]}:cpu"
  if workdir:
    cmd += f" --workdir {workdir}"
  return cmd


def checkpoint_steps(workdir: str) -> list[int]:
  directory = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(directory):
    return []
  return sorted(int(n) for n in os.listdir(directory) if n.isdigit())


def read_json(path: str) -> dict:
  with open(path) as f:
    return json.load(f)


def write_json(path: str, obj) -> None:
  """Atomically (a reader never sees half a file)."""
  text = json.dumps(obj, indent=1, sort_keys=True) + "\n"
  atomic_write_bytes(path, text.encode())


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The run's saved config, with the settings added since it was made
  (ADDED_SETTINGS) at the values it ran with, so that code reading
  today's keys reads an older run too. The keys name no stage: a section
  gains every added key of its name (a loss section, pose's w_residual)."""
  saved = read_json(os.path.join(workdir, "config.json"))
  config = ml_collections.ConfigDict(saved)
  for key, value in ADDED_SETTINGS.items():
    section, name = key.split(".")
    if section in saved and name not in saved[section]:
      config[section][name] = value
  return config


def require_run(
  workdir: str, kind: str, setting: str, hint: str | None = None
) -> dict:
  """The config.json (as a dict) of a run of `kind` (a trainer name) that
  has at least one checkpoint; otherwise an error naming `setting` (e.g.
  "config.frozen.style") and the command that makes the run."""
  hint = hint or f"train it first: {train_command(kind, workdir or None)}"
  if not workdir:
    raise RunError(f"{setting} is empty: set it to a {kind} run ({hint})")
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path) or not checkpoint_steps(workdir):
    raise RunError(
      f"{setting} = {workdir}: no finished {kind} run there (needs "
      f"config.json and checkpoints/<step>); {hint}"
    )
  run = read_json(path)
  if run.get("trainer") != kind:
    raise RunError(
      f"{setting} = {workdir} is a '{run.get('trainer')}' run, not {kind}"
    )
  return run


def read_spec(workdir: str) -> dict:
  path = os.path.join(workdir, "spec.json")
  if not os.path.isfile(path):
    raise RunError(
      f"{workdir}: no spec.json (the run was trained before runs saved "
      "one); run its training command once more: a finished run only "
      "writes spec.json and stops"
    )
  spec = read_json(path)
  if spec.get("format") != SPEC_FORMAT:
    raise RunError(
      f"{path}: spec format {spec.get('format')}, this version reads "
      f"{SPEC_FORMAT}"
    )
  return spec


def _flatten(tree, prefix=""):
  out = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      out.update(_flatten(value, name + "."))
    else:
      out[name] = value
  return out


# Settings added after runs were made with the behaviour they name: a saved
# config without the key ran with this value, so it still matches it.
ADDED_SETTINGS = {
  "data.speech": "source_filter",  # every stage
  "loss.reconstruct": "all",  # style_vqvae
  "loss.w_rest": 0.0,  # audio_driven, video_driven
  "loss.w_stats": 0.0,  # audio_driven, video_driven
  "loss.stats_scale": "batch",  # audio_driven, video_driven
  "loss.w_keep": 0.0,  # audio_driven, video_driven
  "loss.stats_mouth": False,  # audio_driven, video_driven
  "model.decoder_style": True,  # audio_driven, video_driven
  "model.hyper_norm": "batch",  # audio_driven, video_driven
  "model.hyper_gate": False,  # audio_driven, video_driven
  "model.content_skip": False,  # audio_driven, video_driven
  "model.mel_norm": "none",  # audio_driven
  "model.codebook": True,  # style_vqvae
  # audio_driven, video_driven: no speech augmentation
  "augment.gain_db": 0.0,
  "augment.tilt_db": 0.0,
  "augment.warp": 0.0,
  "augment.noise": False,
  "augment.noise_db_min": -95.0,
  "augment.noise_db_max": -70.0,
  "model.relative": False,  # pose_vqvae (runs before it were absolute)
  "loss.w_velocity": 0.0,  # pose_vqvae
  "model.velocity_scale": 0.0,  # pose_vqvae
  "model.factor": 3,  # pose_vqvae
  "model.audio_values": False,  # pose_generator
  "model.motion_dim": 0,  # pose_generator
  "model.residual_width": 0,  # pose_generator
  "loss.w_residual": 1.0,  # pose_generator (used with a residual only)
  "loss.style_from": "clip",  # pose_generator
  "eval.calibrate_spectrum": False,  # pose_generator
  "eval.calibration_clips": 96,  # pose_generator
}


def config_diff(saved: dict, new: dict) -> list[str]:
  """'key: saved X, now Y' for every setting that differs (JSON values)."""
  a = _flatten(json.loads(json.dumps(saved)))
  b = _flatten(json.loads(json.dumps(new)))
  for key, value in ADDED_SETTINGS.items():
    if key in b and key not in a:
      a[key] = value
  return [
    f"{k}: saved {a.get(k, '(none)')!r}, now {b.get(k, '(none)')!r}"
    for k in sorted(set(a) | set(b))
    if a.get(k) != b.get(k)
  ]


def check_same_config(workdir: str, config: dict) -> None:
  """Refuses, before anything is written, to continue a run with other
  settings: its checkpoints belong to the saved config."""
  path = os.path.join(workdir, "config.json")
  if not (os.path.isfile(path) and checkpoint_steps(workdir)):
    return
  saved = read_json(path)
  if saved.get("trainer") != config.get("trainer"):
    raise RunError(
      f"{workdir} holds a run of another stage (trainer: saved "
      f"{saved.get('trainer')!r}, now {config.get('trainer')!r}); use "
      "another workdir"
    )
  diff = config_diff(saved, config)
  if diff:
    raise RunError(
      f"{workdir} holds a run of another config ({len(diff)} settings "
      f"differ: {'; '.join(diff[:4])}"
      f"{'; ...' if len(diff) > 4 else ''}); re-run with the same "
      "settings to resume it, or use another workdir"
    )
