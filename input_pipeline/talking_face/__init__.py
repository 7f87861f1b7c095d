"""The `talking_face` TFDS dataset; importing this registers it with tfds."""

from input_pipeline.talking_face.talking_face_dataset_builder import (
  Builder,
  TalkingFaceConfig,
  process_clip,
  skipped_clips,
)

__all__ = ["Builder", "TalkingFaceConfig", "process_clip", "skipped_clips"]
