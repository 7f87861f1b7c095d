"""Style codebook: the multi-task style VQ-VAE (SAAS stage 1).

  python -m saas_jax.main --config configs/style_vqvae.py        # paper size
  python -m saas_jax.main --config configs/style_vqvae.py:cpu    # ~10 min, 2 cores
  python -m saas_jax.main --config configs/style_vqvae.py:smoke  # seconds (tests)
  # option no_codebook (any size): the tokens pass on continuous, the
  # paper's "without codebook" ablation as trained (benchmarks/ablations.py;
  # cpu, test split: 0.554 / 0.964, recon L1 0.071, against 0.518 / 0.875,
  # 0.125 with the codebook; README "The paper's ablation as trained")
  python -m saas_jax.main --config configs/style_vqvae.py:cpu,no_codebook
  # option channel_major: the official quantizer's grouping, one code per
  # channel group (a product code); the video model on it is level with
  # the default's (README "A product code")

Paper size follows the official code: hidden 256, 12 layers, 8 heads, MLP
384, 500 codes, batch 256, AdamW (0.9, 0.98, 1e-9) under the Noam schedule
(factor 2, warmup 100k); loss 10 * (L1 + VQ) + 0.01 * CE + 0.01 * triplet.

Four departures, measured on the small synthetic corpus (cpu size, official
loss weights unless said; held-out clip accuracy / half-clip retrieval):
  * The codebook is an EMA codebook with dead-code restarts, initialised
    from the first batch. The official gradient-trained codebook (init
    U(-1/K, 1/K); model.ema=False) collapsed: 93 % of codes unused,
    0.125 / 0.66, against 0.41 / 0.80 (400 steps).
  * Tokens are quantized one by one (grouping="token"); the official
    channel-major grouping gave 0.41 / 0.71, reconstruction L1 0.153 vs
    0.157 (400 steps).
  * E_s reads the frame-to-frame velocity as 64 more input channels, scaled
    by 4 (velocities are ~7x smaller than the coefficients, so the first
    conv barely used them): cpu config, 1250 steps, val split 0.59 against
    0.43; scale 8: 0.62. Styles that share their static offset differ only
    in dynamics, and those were the model's errors.
  * f_c is factorized (model.factorized_classifier): class k's weight
    vector is its own plus one per factor value of k (person, emotion,
    level, from the clip tables), still one linear layer, so all classes of
    an emotion share a direction learnt from all of their clips. Without
    velocities, 2500 steps: val 0.55 against 0.45.
The reconstruction loss covers the anchor window only, as in the official
step (loss.reconstruct="anchor"); "all" decodes the positive, negative and
other windows too, 4x the decoder's work (paper size, batch 32: 3.31 s
against 1.41 s a step). cpu config, 2500 steps, test split, one run each:
"anchor" 0.571 / 0.857, recon L1 0.126 (12 min with the data cached);
"all" 0.554 / 0.804, recon L1 0.126 (version 2 data; 56 clips make +-0.06
noise), so "anchor" is the default.
For official weights: velocity_scale=0, factorized_classifier=False,
grouping="channel_major", attn_scale="hidden", ema=False, official_numerics=True
(tanh GELU, LayerNorm eps 1e-5); python -m saas_jax.convert sets them.

The cpu variant also weighs the style tasks up (CE 1, triplet 0.1, recon
1): with a few thousand steps instead of the paper's hundred thousands,
0.01 leaves them barely trained (400 steps: 0.48 / 0.875 against 0.41 /
0.80), and recon 1 instead of 10 gives the same reconstruction L1 (0.148)
and better classification (with velocities, 1250 steps: 0.71 against 0.59;
with the factorized f_c as well: 0.78). With 3 training clips per style it
memorises each clip's offset, so it jitters each window by a random
constant offset of 0.5 x the coefficient std (1250 steps: 0.518 / 0.839
against 0.446 / 0.875 without; 1.0 x gave 0.393 / 0.839).
This cpu config, 2500 steps, test split: 0.571 / 0.857 on version 2 of the
default data (real space); 0.893 / 0.964 on version 1 (README: baselines).
Tried on the val split without velocities and not adopted (1250 steps,
clip accuracy; that config 0.43, and 56 clips make +-0.06 noise):
transformer dropout 0.1 / 0.2 (model.dropout) 0.48 / 0.41; triplet weight
1: 0.46; CE weight 10: 0.45; weight decay 0.1: 0.43; hidden 64: 0.41, and
0.43 after 5000 steps; 1024 codes 0.43; random time reversal 0.41; centring
half the windows on their mean 0.43; jitter scaled to the within-style
spread of clip means 0.38; swapping the tails of anchor and positive
windows 0.43; variance-preserving mixing of anchor and positive 0.43;
pooling the style code from the continuous tokens 0.45 (quantization is
not the bottleneck); a corpus whose persons say the same sentences in
every style 0.45 (content memorisation is not either).
"""

import ml_collections

from saas_jax.engine import config_lib


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = config_lib.base("style_vqvae")
  c.model = ml_collections.ConfigDict(
    dict(
      hidden=256,
      layers=12,
      heads=8,
      mlp_dim=384,
      num_codes=500,
      beta=0.25,
      ema=True,  # False: the official gradient-trained codebook
      restart_dead=True,
      grouping="token",  # "channel_major": the official layout (weights)
      attn_scale="head",  # "hidden": the official 1/sqrt(256)
      dropout=0.0,  # transformer dropout (the official model has none)
      velocity_scale=4.0,  # E_s also reads 4 x frame velocities; official 0
      factorized_classifier=True,  # f_c shared per factor; official False
      codebook=True,  # False: continuous tokens (option no_codebook)
    )
  )
  c.loss = ml_collections.ConfigDict(
    dict(
      w_recon=10.0,
      w_ce=0.01,
      w_triplet=0.01,
      triplet_margin=5.0,
      recon_splits=(50, 53),  # the official three L1 groups; () for one
      offset_jitter=0.0,  # per-window offset augmentation (x coefficient std)
      # Windows the decoder reconstructs: "anchor" (official) or "all" four.
      reconstruct="anchor",
    )
  )
  variant, *options = (arg or "").split(",")
  if variant == "cpu":
    c.model.update(hidden=128, layers=2, heads=4, mlp_dim=256, num_codes=256)
    c.loss.update(w_recon=1.0, w_ce=1.0, w_triplet=0.1, offset_jitter=0.5)
    c.data.batch_size = 32
    c.num_train_steps = 2500
    c.eval_every = 1250
    c.optim.update(schedule="cosine", lr=1e-3, warmup_steps=200)
    c.ckpt.every = 500
    c.log.every = 100
  elif variant == "smoke":
    c.model.update(hidden=32, layers=1, heads=2, mlp_dim=64, num_codes=16)
    c.optim.update(schedule="constant", lr=1e-3)
    config_lib.smoke(c)
  elif variant:
    raise ValueError(f"unknown variant '{variant}' (cpu, smoke, or none)")
  for option in options:
    if option == "no_codebook":
      c.model.codebook = False
    elif option == "channel_major":
      c.model.grouping = "channel_major"
    else:
      raise ValueError(
        f"unknown option '{option}' (no_codebook, channel_major)"
      )
  return c
