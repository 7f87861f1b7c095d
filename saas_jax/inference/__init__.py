"""Inference from finished runs: no trainer, no TensorFlow, no corpus code.

Stylizer      expression (audio- or video-driven) in a target style
PoseSampler   head pose: sampled tokens -> decoded, smoothed pose
Pipeline      both, plus features and assembly into coefficients
StyleSpace    a style run's codes, codebook tokens and their use
load_run      a run folder's spec, config and latest checkpoint
loop_to       a track extended back and forth to a length (style clips)
"""

from saas_jax.inference.expression import Stylizer
from saas_jax.inference.pipeline import Pipeline, Request, Result, loop_to
from saas_jax.inference.pose import PoseSampler
from saas_jax.inference.runs import Run, RunError, load_run
from saas_jax.inference.style_space import StyleSpace

__all__ = [
  "Pipeline",
  "PoseSampler",
  "Request",
  "Result",
  "Run",
  "RunError",
  "StyleSpace",
  "Stylizer",
  "load_run",
  "loop_to",
]
