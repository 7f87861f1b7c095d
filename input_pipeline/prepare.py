"""Builds TFRecord shards of a corpus with the `talking_face` TFDS builder.

  python -m input_pipeline.prepare --layout manifest \
      --manual_dir data/synthetic_small --data_dir data/tfds
  python -m input_pipeline.prepare --layout styletalk \
      --manual_dir ../shared/data/styletalk --data_dir data/tfds

Then `tfds.load("talking_face/<layout>", data_dir=...)` after
`import input_pipeline.talking_face`. Re-running after an interruption reuses
every clip already processed (see the builder's docstring) and never shows a
half-written shard; re-running after success only prints the summary.
Skipped clips and why are in skipped.json beside the shards, and printed.
With --beam the clips are processed by Apache Beam (DirectRunner by default;
pass --beam_options for other runners, e.g. "--runner=DataflowRunner ...").
"""

import argparse
import json
import logging
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # no Keras: 4-5 s faster

import tensorflow_datasets as tfds

from input_pipeline import features, layouts
from input_pipeline.talking_face import (
  Builder,
  TalkingFaceConfig,
  skipped_clips,
)
from input_pipeline.talking_face.talking_face_dataset_builder import clips_key
from saas_jax.errors import DataError, exit_interrupted

# TFDS's error when a split has no example.
EMPTY_SPLIT = "The total number of generated examples is 0"


def config_for(
  layout: str, fps: float = features.MODEL_FPS, source_fps: float | None = None
) -> TalkingFaceConfig | str:
  """The registered config for default rates, else a named custom one."""
  if layout not in layouts.LAYOUTS:
    raise ValueError(f"unknown layout '{layout}' (one of {layouts.LAYOUTS})")
  if fps == features.MODEL_FPS and source_fps is None:
    return layout
  name = f"{layout}_fps{fps:g}"
  if source_fps is not None:
    name += f"_src{source_fps:g}"
  return TalkingFaceConfig(
    name=name.replace(".", "p"),
    layout=layout,
    fps=fps,
    source_fps=source_fps,
    description=f"{layout} at {fps:g} fps",
  )


def config_name(
  layout: str, fps: float = features.MODEL_FPS, source_fps: float | None = None
) -> str:
  """The dataset config `prepare` makes for these rates: what training's
  data.config (train_pipeline's --data_config) must name."""
  config = config_for(layout, fps, source_fps)
  return config if isinstance(config, str) else config.name


def prepare(
  layout: str,
  manual_dir: str,
  data_dir: str,
  *,
  fps: float = features.MODEL_FPS,
  source_fps: float | None = None,
  beam: bool = False,
  beam_options: str | None = None,
  _again: bool = False,
) -> Builder:
  """Builds (or finds) the dataset and returns its builder.

  Run one `prepare` per dataset config at a time: it clears what a killed
  earlier run left (TFDS's temporary shard folder, cache temp files).
  """
  builder = Builder(
    config=config_for(layout, fps, source_fps),
    data_dir=data_dir,
    use_beam=beam,
  )
  made_from = builder.info.metadata.get("manual_dir")
  if made_from and made_from != os.path.realpath(manual_dir):
    raise DataError(
      os.fspath(builder.data_dir),
      f"already holds the dataset prepared from {made_from}, not "
      f"{manual_dir}; give another --data_dir (or delete this folder to "
      "rebuild it)",
    )
  _check_same_clips(builder, manual_dir)
  _clear_leftovers(builder)
  if beam:
    beam_lib = tfds.core.lazy_imports.apache_beam
    options = beam_lib.options.pipeline_options.PipelineOptions(
      (beam_options or "--runner=DirectRunner").split()
    )
    download_config = tfds.download.DownloadConfig(
      manual_dir=manual_dir,
      beam_options=options,
      compute_stats=tfds.download.ComputeStatsMode.SKIP,
    )
  else:
    download_config = tfds.download.DownloadConfig(
      manual_dir=manual_dir,
      compute_stats=tfds.download.ComputeStatsMode.SKIP,
    )
  try:
    builder.download_and_prepare(download_config=download_config)
  except ValueError as e:
    # Beam learns that skipped clips emptied a split only when TFDS checks
    # the written split. The skips are cached now, so the same build again
    # leaves that split out (and reads every processed clip back).
    if not (beam and EMPTY_SPLIT in str(e)) or _again:
      raise
    print(
      "a split's clips were all skipped; building again without it",
      file=sys.stderr,
    )
    return prepare(
      layout,
      manual_dir,
      data_dir,
      fps=fps,
      source_fps=source_fps,
      beam=beam,
      beam_options=beam_options,
      _again=True,
    )
  return builder


def _check_same_clips(builder: Builder, manual_dir: str) -> None:
  """A finished dataset is only reused for the clip list it was made
  from: TFDS would otherwise report the old shards as prepared."""
  made_for = builder.info.metadata.get("clips_key")
  if not made_for or not os.path.isfile(
    os.path.join(os.fspath(builder.data_dir), "dataset_info.json")
  ):
    return  # nothing finished here, or made before the key was recorded
  specs = builder.clip_specs(manual_dir)
  if clips_key(specs) != made_for:
    was = sum(builder.info.metadata.get("clips_found", {}).values())
    raise DataError(
      os.fspath(builder.data_dir),
      f"was prepared from another clip list of {manual_dir} ({was} clips "
      f"then, {len(specs)} now, or other files, labels or splits); give "
      "another --data_dir, or delete this folder to rebuild it",
    )


def _clear_leftovers(builder: Builder) -> None:
  config_dir = os.path.dirname(os.fspath(builder.data_dir))
  if os.path.isdir(config_dir):
    for name in os.listdir(config_dir):
      if name.startswith("incomplete."):
        shutil.rmtree(os.path.join(config_dir, name), ignore_errors=True)
  if os.path.isdir(builder.cache_dir):
    for name in os.listdir(builder.cache_dir):
      if ".tmp-" in name:
        os.remove(os.path.join(builder.cache_dir, name))


def summary(builder: Builder) -> dict:
  splits = {
    name: info.num_examples for name, info in builder.info.splits.items()
  }
  return {
    "data_dir": os.fspath(builder.data_dir),
    "config": builder.builder_config.name,
    "splits": splits,
    "style_classes": len(builder.info.metadata.get("style_classes", [])),
    "skipped": skipped_clips(os.fspath(builder.data_dir)),
  }


def main(argv=None):
  parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--layout", required=True, choices=layouts.LAYOUTS)
  parser.add_argument("--manual_dir", required=True, help="corpus folder")
  parser.add_argument("--data_dir", required=True, help="TFDS data folder")
  parser.add_argument(
    "--fps",
    type=float,
    default=features.MODEL_FPS,
    help="the rate clips are resampled to (the models': 25; another makes "
    "a dataset config of its own)",
  )
  parser.add_argument(
    "--source_fps",
    type=float,
    default=None,
    help="frame rate of the coefficient files, if not the "
    "layout's default (manifest: per clip or 25; mead and "
    "hdtf: 25; styletalk: 30)",
  )
  parser.add_argument(
    "--beam", action="store_true", help="process clips with Apache Beam"
  )
  parser.add_argument("--beam_options", default=None)
  args = parser.parse_args(argv)
  logging.getLogger("absl").setLevel(logging.WARNING)

  for key in ("fps", "source_fps"):
    value = getattr(args, key)
    if value is not None and not (value > 0 and value < float("inf")):
      parser.error(f"--{key} must be a positive frame rate, got {value}")
  try:
    builder = prepare(
      args.layout,
      args.manual_dir,
      args.data_dir,
      fps=args.fps,
      source_fps=args.source_fps,
      beam=args.beam,
      beam_options=args.beam_options,
    )
  except DataError as e:  # bad input: its message, not a traceback
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  info = summary(builder)
  print(json.dumps({k: v for k, v in info.items() if k != "skipped"}, indent=1))
  if info["skipped"]:
    print(
      f"{len(info['skipped'])} clip(s) skipped "
      f"(see {info['data_dir']}/skipped.json):",
      file=sys.stderr,
    )
    for rec in info["skipped"]:
      print(f"  {rec['id']}: {rec['reason']}", file=sys.stderr)
  else:
    print("no clips skipped")
  if "test" not in info["splits"]:
    print(
      "note: no clip went to the 'test' split, on which the stages evaluate: "
      "give some clips split 'test' (a manifest), or name another split with "
      "--config.data.eval_split (train_pipeline: --eval_split)",
      file=sys.stderr,
    )
  name = info["config"]
  print(
    f"train on it with --config.data.data_dir={args.data_dir} "
    f"--config.data.config={name} (train_pipeline: --data_dir "
    f"{args.data_dir} --data_config {name})"
  )


if __name__ == "__main__":
  try:
    main()
  except KeyboardInterrupt:
    exit_interrupted(
      "no shard is half-written and processed clips are cached; the same "
      "command goes on from there"
    )
