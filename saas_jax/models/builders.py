"""Model builders: a run's saved settings -> its Linen modules.

Training (saas_jax.trainers) and inference (saas_jax.inference) build every
network through these functions, from the same values: a trainer passes its
config blocks and writes them to the run's spec.json (engine.loop); a loader
reads spec.json back and calls the same builder. So what was trained is what
runs, and nothing is read off weight shapes.
"""

import dataclasses
import hashlib

import flax.traverse_util
import jax
import jax.numpy as jnp
import numpy as np

from saas_jax.models import (
  critics,
  motion_generator,
  pose_codebook,
  pose_generator,
  style_codebook,
  vqvae,
)

WINDOW = 32  # frames per style / pose window (both codebooks' seq_len)
EXP_DIM = 64  # 3DMM expression coefficients
POSE_DIM = pose_codebook.POSE_DIM  # 3 angles + 3 translations


# ------------------------------------------------------------ codebooks ---


def style_codebook_model(
  model_cfg, num_classes: int, class_factors=()
) -> style_codebook.StyleCodebook:
  """The style stage's multi-task VQ-VAE (E_s, C_s, f_s, f_c, D_s)."""
  return style_codebook.StyleCodebook(
    num_classes=num_classes,
    vq=vqvae.SequenceVQVAE.from_config(
      model_cfg, in_dim=EXP_DIM, seq_len=WINDOW
    ),
    class_factors=tuple(tuple(int(v) for v in f) for f in class_factors),
  )


def style_encoder(model_cfg) -> style_codebook.StyleCodebook:
  """The same module for `style_code` alone (E_s + quantizer + pooling), as
  later stages use it frozen: the classifier is never touched."""
  return style_codebook_model(model_cfg, num_classes=1)


def style_encoder_variables(model_cfg, variables: dict) -> dict:
  """The sub-tree of a style model's variables that `style_code` reads."""
  model = style_encoder(model_cfg)
  shapes = jax.eval_shape(
    lambda: model.init(
      jax.random.key(0),
      jnp.zeros((1, WINDOW, EXP_DIM)),
      method=model.style_code,
    )
  )
  wanted = flax.traverse_util.flatten_dict(shapes, sep="/")
  have = flax.traverse_util.flatten_dict(variables, sep="/")
  missing = sorted(set(wanted) - set(have))
  if missing:
    raise ValueError(
      f"style encoder variables lack {len(missing)} arrays, e.g. {missing[0]}"
    )
  return flax.traverse_util.unflatten_dict(
    {k: have[k] for k in wanted}, sep="/"
  )


def pose_codebook_model(
  model_cfg, mean=None, std=None
) -> pose_codebook.PoseCodebook:
  """The pose stage's VQ-VAE; mean/std only seed the pose_norm collection
  (the checkpoint holds the trained values)."""
  kw = {}
  if mean is not None:
    kw = dict(mean=tuple(map(float, mean)), std=tuple(map(float, std)))
  return pose_codebook.PoseCodebook(
    vq=vqvae.SequenceVQVAE.from_config(
      model_cfg, in_dim=POSE_DIM, seq_len=WINDOW
    ),
    relative=bool(model_cfg.get("relative", False)),
    **kw,
  )


# ------------------------------------------------------------ generators ---


def pose_generator_model(
  model_cfg, codebook_cfg
) -> pose_generator.PoseGenerator:
  """G_p over the tokens of a pose codebook (its `model` config): its code
  count and tokens per 32-frame window."""
  m = model_cfg
  return pose_generator.PoseGenerator(
    num_codes=int(codebook_cfg["num_codes"]),
    factor=int(codebook_cfg.get("factor", 3)),
    conv_channels=tuple(m["conv_channels"]),
    fc_hidden=m["fc_hidden"],
    audio_dim=m["audio_dim"],
    speaker_dim=m["speaker_dim"],
    speaker_layers=m["speaker_layers"],
    speaker_heads=m["speaker_heads"],
    speaker_mlp=m["speaker_mlp"],
    dim=m["dim"],
    layers=m["layers"],
    heads=m["heads"],
    mlp_dim=m["mlp_dim"],
    past_layers=m["past_layers"],
    attn_scale=m["attn_scale"],
    audio_values=bool(m.get("audio_values", False)),  # older runs: False
    motion_dim=int(m.get("motion_dim", 0)),  # older runs: none
    residual_width=int(m.get("residual_width", 0)),  # older runs: none
  )


def motion_generator_model(
  model_cfg, driver: str
) -> motion_generator.MotionGenerator:
  m = model_cfg
  return motion_generator.MotionGenerator(
    driver=driver,
    hidden=m["hidden"],
    hyperstyle=m["hyperstyle"],
    style_branch=m["style_branch"],
    mel_width=m["mel_width"],
    mel_residual=m["mel_residual"],
    hyper_width=m["hyper_width"],
    hyper_norm=m.get("hyper_norm", "batch"),  # runs from before it
    hyper_gate=m.get("hyper_gate", False),  # runs from before it
    content_skip=m.get("content_skip", False),
    decoder_dims=tuple(m["decoder_dims"]),
    decoder_style=m.get("decoder_style", True),  # runs from before it
    mel_norm=m.get("mel_norm", "none"),  # runs from before it
  )


@dataclasses.dataclass(frozen=True)
class MotionNets:
  """Every network of the expression stage (hashable: it is the training
  state's apply_fn)."""

  generator: motion_generator.MotionGenerator
  style: style_codebook.StyleCodebook  # frozen
  classifier: critics.StyleClassifier  # frozen
  temporal: critics.PatchCritic
  style_critic: critics.ConditionalStyleCritic


def motion_nets(
  model_cfg, driver: str, num_classes: int, style_model_cfg
) -> MotionNets:
  return MotionNets(
    generator=motion_generator_model(model_cfg, driver),
    style=style_codebook_model(style_model_cfg, num_classes),
    classifier=critics.StyleClassifier(num_classes),
    temporal=critics.PatchCritic(1),
    style_critic=critics.ConditionalStyleCritic(num_classes, WINDOW),
  )


# ---------------------------------------------------------- fingerprints ---


def fingerprint(tree) -> str:
  """sha256 of a variables tree (paths, dtypes, shapes and bytes): two runs
  that froze the same network carry the same fingerprint."""
  h = hashlib.sha256()
  flat = flax.traverse_util.flatten_dict(tree, sep="/")
  for key in sorted(flat):
    value = np.ascontiguousarray(np.asarray(flat[key]))
    h.update(f"{key}|{value.dtype.str}|{value.shape}|".encode())
    h.update(value.tobytes())
  return h.hexdigest()


def style_encoder_fingerprint(model_cfg, variables: dict) -> str:
  return fingerprint(style_encoder_variables(model_cfg, variables))
