"""Audio-driven stylized expression: E_a + residual adapter + HyperStyle.

  python -m saas_jax.main --config configs/audio_driven.py        # paper size
  python -m saas_jax.main --config configs/audio_driven.py:cpu    # 2 cores
  python -m saas_jax.main --config configs/audio_driven.py:smoke  # tests

Needs the style stage and the style classifier first (config.frozen):
  python -m saas_jax.main --config configs/style_vqvae.py:cpu
  python -m saas_jax.main --config configs/style_classifier.py:cpu

Ablations (the paper's claims), same budget, e.g.:
  ... --config configs/audio_driven.py:cpu,no_hyperstyle
  variants: no_hyperstyle (style branch weights shared by all styles),
  no_style_branch (canonical branch alone), continuous (style codes pooled
  before the quantizer); and unstyled_decoder (not the paper's: the
  decoder D sees y alone, not [y, s_t], so that style reaches the output
  only through the style branch). Measured (cpu, seed 0, test pairs,
  judge v2; benchmarks/results/decoder_style): with the official decoder
  the canonical branch alone is already styled through D (judge accuracy
  0.21 against 0.18 for the full model, exp_rest 0.106 both); unstyled,
  the style branch does carry style (0.087 against 0.011 for the canonical
  branch) but less than D did, and exp_rest is 0.186 (content copy
  0.169): the default stays the official decoder. style_stats (not the
  paper's): loss.w_stats = 50, res's mean coefficients 18-63 against the
  style clips' means, standardised per coefficient (generated clips missed
  the low-variance coefficients 43-63 that the judge sees). Seed 0,
  benchmarks/results/style_stats; model (canonical branch alone):
    official D + style_stats: judge 0.30 (0.29), exp_rest 0.076 (0.076),
      mouth_lmk 0.0210 (0.0211); without style_stats 0.18 (0.21),
      0.106 (0.106), 0.0251 (0.0252)
    unstyled_decoder + style_stats: judge 0.25 [0.16, 0.35] (0 [0, 0]),
      exp_rest 0.076 (0.125), mouth_lmk 0.0196 (0.0263), style-code
      distance 70 (524): the style branch carries the style; seed 1
      repeats it (0.18 vs 0, exp_rest 0.107 vs 0.127)
  Three seeds of the paper's ablations with both (README, "Stylized
  expression"): full beats its canonical branch, no style branch and no
  HyperStyle on style and mouth, but not no HyperStyle on exp_rest (0.096
  vs 0.116, intervals overlap) nor continuous codes on anything; not yet
  the default. Seed spread (README): late critic oscillation at the
  constant lr, not HyperStyle's BatchNorm (,hyper_layernorm: per-sample).
  With lr_cosine as well (3 seeds, benchmarks/results/ablations_cosine):
  runs settle, full exp_rest 0.087 [0.080, 0.095], and full beats no
  HyperStyle on everything (exp_rest 0.118 [0.114, 0.122]) and continuous
  codes on style-code distance only (65 vs 93).

Paper size and weights follow the official code: batch 128, Adam 2e-4 for
the generator and for the critics; loss 1000 recon (mesh + soft-DTW on the
mouth), 20 lip gaps, 1 temporal GAN, 50 conditional style GAN, 50 frozen
classifier, 10 style-code triplet; R1 10 on the style critic.

One departure, audio-driven only: 1000 x MSE of coefficients 18-63 of the
reconstruction against the content clip's (loss.w_rest; 0 gives the
official loss, the video-driven loss has a coefficient MSE already). The
official loss reaches those coefficients through the mesh term alone,
which through the 468-landmark basis is about 1e-4 of the soft-DTW term, so
they drift wherever the style terms push them. cpu config, default data
(version 2), one run each, 120 held-out pairs; without -> with: mouth_lmk
0.079 -> 0.025 (the content clip's own expression: 0.035), face_lmk 0.066
-> 0.020 (0.032), exp_rest 0.478 -> 0.106 (0.169), style accuracy 0.39 ->
0.52, sync_corr 0.35 -> 0.41 (ground truth 0.39).
"""

import ml_collections

from saas_jax.engine import config_lib


def get_config(arg: str | None = None, driver: str = "audio"):
  c = config_lib.base("motion")
  c.driver = driver
  c.face_model = (
    "mediapipe"  # the shipped 468-landmark basis; or a BFM .mat / landmark .npz
  )
  c.frozen.style = "runs/style_vqvae"
  c.frozen.classifier = "runs/style_classifier"
  c.model = ml_collections.ConfigDict(
    dict(
      hidden=64,
      hyperstyle=True,
      style_branch=True,
      quantized_style=True,
      mel_width=1.0,  # channel scale of E_a's audio CNN
      mel_residual=True,  # its 7 residual blocks
      hyper_width=1.0,  # of HyperStyle's inner convolutions
      hyper_norm="batch",  # of HyperStyle's convolutions (official); "layer"
      decoder_dims=(480, 720, 1080),
      decoder_style=True,  # D sees s_t (official); False: only phi_s does
    )
  )
  c.loss = ml_collections.ConfigDict(
    dict(
      recon="mesh_dtw" if driver == "audio" else "mesh_mse",
      gamma=1e-3,  # soft-DTW
      w_recon=1000.0,
      # MSE of coefficients 18-63 of rec against A's; 0: the official loss
      w_rest=1000.0 if driver == "audio" else 0.0,
      # MSE of res's mean coefficients 18-63 against style B's; 0: official
      w_stats=0.0,
      stats_scale="batch",  # per-coefficient standardised; "raw"
      w_mouth=20.0,
      w_temporal=1.0,
      w_style_adv=50.0,
      w_class=50.0,
      w_triplet=10.0,
      w_cycle=1000.0 if driver == "video" else 0.0,
      triplet_margin=5.0,
      r1=10.0,
    )
  )
  c.optim.update(
    name="adam", schedule="constant", lr=2e-4, b1=0.9, b2=0.999, eps=1e-8
  )
  c.data.batch_size = 128
  c.num_train_steps = 200_000
  c.eval_every = 10_000
  c.eval = ml_collections.ConfigDict(
    dict(
      # A corpus dir with style_transfer/pairs.jsonl (ground truth); empty:
      # the default corpus's when training on the default data.
      pairs_dir="",
      unseen_split="test_person",  # pairs may also use this split's clips
      num_pairs=0,  # 0: all
    )
  )
  variant, *ablations = (arg or "").split(",")
  if variant == "cpu":
    # E_a's audio CNN at paper size costs 0.19 GFLOP per frame, the
    # decoder 2.5 MFLOP: here the CNN is an eighth as wide without its
    # residual blocks, the decoder a third as wide; narrower HyperStyle
    # convolutions, LSTMs of 32 (the cpu style codes are 128-d).
    c.model.update(
      hidden=32,
      mel_width=0.125,
      mel_residual=False,
      hyper_width=0.25,
      decoder_dims=(160, 240, 360),
    )
    c.data.batch_size = 32
    c.num_train_steps = 1000
    c.eval_every = 1000
    c.optim.lr = 1e-3
    c.ckpt.every = 250
    c.log.every = 50
  elif variant == "smoke":
    c.model.hidden = 16  # smoke style codes are 32-d
    c.eval.num_pairs = 4
    config_lib.smoke(c, steps=2, every=1)
  elif variant:
    raise ValueError(f"unknown variant '{variant}' (cpu, smoke, or none)")
  for ablation in ablations:
    if ablation == "no_hyperstyle":
      c.model.hyperstyle = False
    elif ablation == "no_style_branch":
      c.model.style_branch = False
    elif ablation == "continuous":
      c.model.quantized_style = False
    elif ablation == "unstyled_decoder":
      c.model.decoder_style = False
    elif ablation == "hyper_layernorm":
      c.model.hyper_norm = "layer"
    elif ablation == "style_stats":
      c.loss.w_stats = 50.0
    elif ablation == "style_stats_raw":
      c.loss.update(w_stats=1000.0, stats_scale="raw")
    elif ablation == "lr_cosine":  # generator and critics decay to 1 %
      c.optim.update(schedule="cosine", warmup_steps=1)
    else:
      raise ValueError(
        f"unknown ablation '{ablation}' (no_hyperstyle, no_style_branch, "
        "continuous, unstyled_decoder, hyper_layernorm, style_stats, "
        "style_stats_raw, lr_cosine)"
      )
  return c
