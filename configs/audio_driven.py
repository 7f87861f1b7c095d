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
  before the quantizer; with config.frozen.style a style stage trained
  without a codebook, style_vqvae.py:cpu,no_codebook, the paper's
  ablation as trained: the sweep's variant no_codebook). All 3 seeds of
  each:
  python benchmarks/ablations.py --base runs --out runs_ablation

Paper size and weights follow the official code: batch 128, Adam 2e-4 for
the generator and for the critics; loss 1000 recon (mesh + soft-DTW on the
mouth), 20 lip gaps, 1 temporal GAN, 50 conditional style GAN, 50 frozen
classifier, 10 style-code triplet; R1 10 on the style critic.

Four departures from it (README "Stylized expression" has the
measurements):
  rest term         audio only (the video loss has a coefficient MSE
                    already): loss.w_rest = 1000, MSE of coefficients 18-63
                    of the reconstruction against the content clip's (0: the
                    official loss, which reaches them through the mesh
                    term alone, ~1e-4 of the soft-DTW term, so they drift
                    wherever the style terms push them; cpu, one run:
                    mouth_lmk 0.079 -> 0.025, exp_rest 0.478 -> 0.106)
  unstyled decoder  D sees y alone, not [y, s_t], so that style reaches the
                    output through the style branch only (official:
                    ,styled_decoder; with it the canonical branch alone is
                    styled through D and the branch adds nothing)
  style_stats       loss.w_stats = 50: res's mean coefficients 18-63
                    against the style clips' means, standardised per
                    coefficient (without it the generated clips miss the
                    low-variance coefficients 43-63 that a judge sees;
                    official: ,no_stats)
  cosine lr         generator and critics decay to 1 % of the peak (at a
                    constant lr the critics' R1 spikes move the output
                    late in training, so a run's end depends on where
                    its last step falls; official: ,lr_constant)
The defaults before 2026-12-05: ,styled_decoder,no_stats,lr_constant
(for video with ,no_keep; configs/video_driven.py has its measurements).
Measured (cpu, 3 seeds each, 120 held-out pairs, 95 % intervals;
benchmarks/results/ablations): full exp_rest 0.087 [0.080, 0.095], judge
accuracy 0.21 [0.15, 0.27], style-code distance 65 [56, 74]; it beats its
canonical branch, no HyperStyle and no style branch on style, exp_rest and
mouth error with intervals apart, continuous codes on style-code distance
only (89 [77, 102]; no codebook 122 [103, 141], and lip sync 0.23 [0.13,
0.30] against 0.34 [0.31, 0.36]). With the defaults before, no ablation
separated.
Other options: hyper_layernorm (HyperStyle's convolutions normalised per
sample, not over the batch), hyper_gate (HyperStyle's offsets times a
learnt gate that starts at 0; video, 3 seeds: the same model as without
it, judge 0.21 against 0.22, exp_rest 0.058 against 0.058), content_skip
(y also gets a linear map of the content z, past the LSTM stacks; video,
seed 0: with the reconstruction term alone the model then copies the
source's mouth, mouth_corr 0.65 against 0.02 without, but under the whole
loss 0.06 against 0.01: not a default; README "Does the generated mouth
follow its source?"),
style_stats_raw (the stats term in coefficient units, weight 1000),
stats_mouth (the stats term over coefficients 0-63, the mouth's mean
too; video, seed 0: mouth_lmk 0.0174 against 0.0175, continuous codes
0.0165 against 0.0171: not a default; README "Why the continuous codes
draw the mouth nearer"),
mouth_keep (loss.w_keep = 500: 1 - the cosine of the stylized clip's mouth
trajectory with the source's; the video default since 2026-12-07, undone
by no_keep; audio, seed 0: mouth_corr 0.11 and sync_corr 0.18 against
0.32: not an audio default; README "Does the generated mouth follow its
source?"), augment (speech augmentation: per clip a random level,
spectral tilt and vocal-tract warp of the audio CNN's input; 3 seeds: real
speech 0.25, 0.12, 0.09 against 0.09, 0.11, 0.06 without, synthetic
sync_corr 0.19 [0.13, 0.24] against 0.34 [0.31, 0.36]: not a default;
README "Trained on it, judged on real clips"), mel_mean (model.mel_norm =
"clip_mean": each band's mean over the clip subtracted from the audio CNN's
input, in training and at inference, so a fixed channel cancels; 3 seeds:
real speech 0.21, 0.14, 0.15, synthetic sync_corr 0.28 [0.27, 0.30]: not
a default either; same README section), espeak (data.speech = "espeak":
the default data spoken by eSpeak NG, `pip install espeakng-loader`; 3
seeds: real speech 0.14, 0.20, 0.12, but over the 21 clip x seed figures
no better, mean 0.126 against 0.134; same README section).
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
      hyper_gate=False,  # HyperStyle's offsets start at 0 (option ,hyper_gate)
      content_skip=False,  # y += W z past the LSTMs (option ,content_skip)
      decoder_dims=(480, 720, 1080),
      # D sees s_t (official), or only phi_s does (the default, below)
      decoder_style=False,
      # the audio CNN's input: "clip_mean" subtracts each band's mean over
      # the clip (option ,mel_mean); "none" (official)
      mel_norm="none",
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
      w_stats=50.0,
      stats_scale="batch",  # per-coefficient standardised; "raw"
      stats_mouth=False,  # the term over coefficients 0-63 (,stats_mouth)
      w_mouth=20.0,
      # 1 - cosine of res's mouth trajectory with A's (trainers/motion.py
      # mouth_keep), video only; 0: the official loss (option ,no_keep)
      w_keep=500.0 if driver == "video" else 0.0,
      w_temporal=1.0,
      w_style_adv=50.0,
      w_class=50.0,
      w_triplet=10.0,
      w_cycle=1000.0 if driver == "video" else 0.0,
      triplet_margin=5.0,
      r1=10.0,
    )
  )
  # Speech augmentation of the audio CNN's input (saas_jax/speech_augment.py;
  # option ,augment): one random channel per training clip.
  c.augment = ml_collections.ConfigDict(
    dict(
      gain_db=0.0,
      tilt_db=0.0,
      warp=0.0,
      noise=False,
      noise_db_min=-95.0,
      noise_db_max=-70.0,
    )
  )
  c.optim.update(name="adam", lr=2e-4, b1=0.9, b2=0.999, eps=1e-8)
  # official; warmup_steps unused, kept as runs before the cosine saved it
  constant = dict(schedule="constant", warmup_steps=c.optim.warmup_steps)
  cosine = dict(schedule="cosine", warmup_steps=1)  # decays to 1 % of peak
  c.optim.update(**cosine)
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
    elif ablation == "unstyled_decoder":  # the default
      c.model.decoder_style = False
    elif ablation == "styled_decoder":  # official
      c.model.decoder_style = True
    elif ablation == "hyper_layernorm":
      c.model.hyper_norm = "layer"
    elif ablation == "hyper_gate":
      c.model.hyper_gate = True
    elif ablation == "content_skip":
      c.model.content_skip = True
    elif ablation == "style_stats":  # the default
      c.loss.w_stats = 50.0
    elif ablation == "no_stats":  # official
      c.loss.w_stats = 0.0
    elif ablation == "mouth_keep":  # the video default
      c.loss.w_keep = 500.0
    elif ablation == "no_keep":  # official
      c.loss.w_keep = 0.0
    elif ablation == "stats_mouth":
      c.loss.stats_mouth = True
    elif ablation == "style_stats_raw":
      c.loss.update(w_stats=1000.0, stats_scale="raw")
    elif ablation == "lr_cosine":  # the default
      c.optim.update(**cosine)
    elif ablation == "lr_constant":  # official
      c.optim.update(**constant)
    elif ablation == "augment":
      c.augment.update(gain_db=6.0, tilt_db=15.0, warp=0.1)
    elif ablation == "mel_mean":
      c.model.mel_norm = "clip_mean"
    elif ablation == "espeak":  # the default data spoken by eSpeak NG
      c.data.speech = "espeak"
    else:
      raise ValueError(
        f"unknown ablation '{ablation}' (no_hyperstyle, no_style_branch, "
        "continuous, unstyled_decoder, styled_decoder, hyper_layernorm, "
        "hyper_gate, content_skip, style_stats, no_stats, style_stats_raw, "
        "stats_mouth, mouth_keep, no_keep, lr_cosine, lr_constant, augment, "
        "mel_mean, espeak)"
      )
  return c
