"""The data every stage loads: its training shards and its evaluation clips."""

import dataclasses

from input_pipeline import batches as batches_lib
from input_pipeline import default_data


@dataclasses.dataclass
class StageInputs:
  train: batches_lib.StageData  # this process's shards + partner index
  eval_table: batches_lib.ClipTable  # every clip of the eval split
  num_classes: int  # style classes (labels of train and eval)


def resolve(config) -> tuple[str, str]:
  """(data_dir, builder config); the embedded default data when unset."""
  if config.data.data_dir:
    return config.data.data_dir, config.data.config
  return default_data.ensure(speech=config.data.speech)


def load(config, *, with_audio: bool) -> StageInputs:
  data_dir, data_config = resolve(config)
  train = batches_lib.load_stage_data(
    data_dir,
    data_config,
    config.data.train_split,
    num_shards=config.data.num_shards or None,
    with_audio=with_audio,
  )
  eval_table = batches_lib.load_table(
    data_dir, data_config, config.data.eval_split, with_audio=with_audio
  )
  labels = max(train.partners.table.label.max(), eval_table.label.max())
  return StageInputs(train, eval_table, int(labels) + 1)


def batch_iterator(builder, config, inputs: StageInputs):
  """(start_step, num_steps) -> host batches of `builder` (an
  input_pipeline.batches fn); the dataset ends where training does, so no
  batch is made for nothing."""

  def batches(start_step, num_steps):
    return builder(
      inputs.train,
      batch_size=config.data.batch_size,
      seed=config.seed,
      start_step=start_step,
      num_steps=num_steps,
    ).as_numpy_iterator()

  return batches
