"""Video-driven style editing: E_v + residual adapter + HyperStyle, with the
cycle loss (re-encode the result, transfer it back, compare with the source).

  python -m saas_jax.main --config configs/video_driven.py        # paper size
  python -m saas_jax.main --config configs/video_driven.py:cpu    # 2 cores
  python -m saas_jax.main --config configs/video_driven.py:smoke  # tests

Same needs, ablations, weights and departures from the official model as
configs/audio_driven.py (unstyled decoder, style_stats, cosine lr; the
official model: ,styled_decoder,no_stats,lr_constant), except the
reconstruction term (mesh MSE + coefficient MSE instead of soft-DTW) and
the cycle term x1000. Measured (cpu, 3 seeds, 120 held-out pairs;
README "Stylized expression"; benchmarks/results/video_driven): judge
accuracy 0.22 [0.16, 0.29] against 0 for the canonical branch alone,
style-code distance 53 [47, 60] against 524, exp_rest 0.058 [0.054, 0.063]
against 0.125, mouth_lmk 0.0176 [0.0167, 0.0184] against 0.0263 (the
official model's run, 2026-12-03: exp_rest 0.073, mouth_lmk 0.0187, its
canonical branch as good as the full model). Its ablations, 3 seeds
(benchmarks/ablations.py --driver video): no style branch loses on every
figure, no HyperStyle on style-code distance and mouth error only,
continuous codes on style-code distance only. Its mouth does not follow
the source's (mouth_corr 0.01 against 0.63 for the content clip's own
expression); with the option ,mouth_keep it does (seed 0: mouth_corr 0.67,
judge 0.38, style-code distance 28, exp_rest 0.061; README "Does the
generated mouth follow its source?").
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
