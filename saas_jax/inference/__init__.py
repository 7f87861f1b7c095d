"""Inference from finished runs: no trainer, no TensorFlow, no corpus code.

Stylizer      expression (audio- or video-driven) in a target style
PoseSampler   head pose: sampled tokens -> decoded, smoothed pose
Pipeline      both, plus features and assembly into coefficients
load_run      a run folder's spec, config and latest checkpoint
"""

from saas_jax.inference.expression import Stylizer
from saas_jax.inference.pipeline import Pipeline, Request, Result
from saas_jax.inference.pose import PoseSampler
from saas_jax.inference.runs import Run, RunError, load_run

__all__ = [
  "Pipeline",
  "PoseSampler",
  "Request",
  "Result",
  "Run",
  "RunError",
  "Stylizer",
  "load_run",
]
