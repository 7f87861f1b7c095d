"""Video-driven style editing: E_v + residual adapter + HyperStyle, with the
cycle loss (re-encode the result, transfer it back, compare with the source).

  python -m saas_jax.main --config configs/video_driven.py        # paper size
  python -m saas_jax.main --config configs/video_driven.py:cpu    # 2 cores
  python -m saas_jax.main --config configs/video_driven.py:smoke  # tests

Same needs, ablations, weights and departures from the official model as
configs/audio_driven.py (unstyled decoder, style_stats, cosine lr), except
the reconstruction term (mesh MSE + coefficient MSE instead of soft-DTW),
the cycle term x1000 and one more departure since 2026-12-07, mouth_keep
(loss.w_keep = 500: 1 - the cosine of the stylized clip's mouth trajectory
with the source's; without it the mouth barely moves, mouth_corr 0.01
against 0.63 for the content clip's own expression). The official model:
,styled_decoder,no_stats,lr_constant,no_keep; the defaults of 2026-12-05:
,no_keep. Measured (cpu, 3 seeds, 120 held-out pairs; README "Stylized
expression"; benchmarks/results/video_mouth_keep): mouth_corr 0.67, judge
accuracy 0.41 [0.35, 0.48] against 0.01 for the canonical branch alone,
style-code distance 24 [20, 29] against 477, exp_rest 0.061 [0.059, 0.063]
against 0.124, mouth_lmk 0.0181 [0.0173, 0.0190] against 0.0286 (without
mouth_keep, benchmarks/results/video_driven: judge 0.22, style-code
distance 53, exp_rest 0.058, mouth_lmk 0.0176). Against its ablations
(benchmarks/ablations.py --driver video; README for the figures): it wins
on every style and error figure over no style branch, on all but judge
accuracy over no HyperStyle (six seeds), on style-code distance only over
continuous codes.
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
