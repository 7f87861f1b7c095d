"""Video-driven style editing: E_v + residual adapter + HyperStyle, with the
cycle loss (re-encode the result, transfer it back, compare with the source).

  python -m saas_jax.main --config configs/video_driven.py        # paper size
  python -m saas_jax.main --config configs/video_driven.py:cpu    # 2 cores
  python -m saas_jax.main --config configs/video_driven.py:smoke  # tests

Same needs, ablations and weights as configs/audio_driven.py, except the
reconstruction term (mesh MSE + coefficient MSE instead of soft-DTW) and the
cycle term x1000.
"""

import importlib.util
import os

_spec = importlib.util.spec_from_file_location(
  "_audio_driven", os.path.join(os.path.dirname(__file__), "audio_driven.py")
)
_audio_driven = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_audio_driven)


def get_config(arg: str | None = None):
  return _audio_driven.get_config(arg, driver="video")
