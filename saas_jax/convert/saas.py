"""The official SAAS video-driven checkpoint, and SadTalker's Audio2Exp on top
of a converted video-driven run -> run folders `inference.Stylizer.load`
and `inference.Pipeline` read like trained ones.

  convert_saas_video_driven("video_driven.pth", "runs/official_video")
  convert_sadtalker_audio2exp(
    "auido2exp_00300-model.pth", "runs/official_video", "runs/official_audio")

The video-driven file (tanshuai0219/SAAS, video_driven/) is a dict of four
state dicts, `encoder` (E_v), `style_encoder` (E_s, quantizer, pooling),
`ra` (residual adapter + HyperStyle) and `decoder`, with or without DDP's
"module." prefixes. Our modules run it with the official-layout options:
channel-major quantizer grouping, attention scale 1/sqrt(hidden), no
velocity channels, hidden 64, decoder 480-720-1080.

SadTalker's audio2exp (`auido2exp_00300-model.pth`, key "model", or the
"audio2exp." tensors of a SadTalker_V0.0.2_*.safetensors bundle) is the
Wav2Lip audio CNN + Linear(512 + 64 + 1 -> 64). As the SAAS README
assembles its audio encoder ("SadTalker's audio encoder + our video
encoder"), E_a = that network followed by the video run's E_v MLP; adapter,
decoder and style encoder are the video run's.

Every tensor is accounted for. Read but not used, each for a stated reason:
BatchNorm `num_batches_tracked` (a training counter), and in `ra` the six
LSTM layers the official forward never reads (see _style_lstm).
"""

import dataclasses
import functools
import json
import os

import flax.traverse_util
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from saas_jax.convert import tensors as tensors_lib
from saas_jax.convert.tensors import ConvertError, Filler, TensorSource
from saas_jax.engine import checkpoint as checkpoint_lib
from saas_jax.engine import config_lib
from saas_jax.engine import workdir as workdir_lib
from saas_jax.inference import runs
from saas_jax.models import audio_encoder, builders

VIDEO_SECTIONS = ("encoder", "style_encoder", "ra", "decoder")
# ResidualAdapter's defaults, the official sizes.
CANONICAL_LAYERS, STYLE_LAYERS, MODULATED = 4, 6, (1, 2, 3, 4)
STYLE_CLASSES = 1323  # the official style classifier's (spec.num_classes)
# Real 3DMM (Deep3DFaceRecon) expressions: the shipped landmark basis draws
# them; "synthetic" would not.
FACE_MODEL = "mediapipe"

# Official-layout settings (reference §2.2-2.4; configs/style_vqvae.py).
OFFICIAL_STYLE = dict(
  hidden=256,
  layers=12,
  heads=8,
  mlp_dim=384,
  num_codes=500,
  ema=False,
  restart_dead=False,
  grouping="channel_major",
  attn_scale="hidden",
  dropout=0.0,
  velocity_scale=0.0,
  official_numerics=True,  # tanh GELU, LayerNorm eps 1e-5
  factorized_classifier=False,
)
OFFICIAL_MOTION = dict(
  hidden=64,
  hyperstyle=True,
  style_branch=True,
  quantized_style=True,
  mel_width=1.0,
  mel_residual=True,
  hyper_width=1.0,
  decoder_dims=(480, 720, 1080),
  decoder_style=True,  # D([y, s_t]), whatever a config's default
  hyper_norm="batch",
)

_CONFIGS = os.path.join(
  os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
  "configs",
)


# ---------------------------------------------------------------- models ---


def _configs(stage: str) -> ml_collections.ConfigDict:
  path = os.path.join(_CONFIGS, f"{stage}.py")
  if not os.path.isfile(path):
    raise ConvertError(
      path,
      "the stage config a converted run records is not here (the "
      "configs/ folder of the repository)",
    )
  return config_lib.load(path)


def official_style_config() -> dict:
  """The style model block (spec.style_model) of the official E_s."""
  c = _configs("style_vqvae").model
  c.update(OFFICIAL_STYLE)
  return c.to_dict()


def _key(cfg) -> str:
  cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
  return json.dumps(cfg, sort_keys=True)


def _abstract_style(style_cfg) -> dict:
  return _abstract("style", _key(style_cfg), 0)


def _abstract_generator(model_cfg, driver: str, style_dim: int) -> dict:
  return _abstract(driver, _key(model_cfg), style_dim)


@functools.lru_cache(maxsize=8)
def _abstract(kind: str, cfg_json: str, style_dim: int) -> dict:
  """The variables' shapes of a model (tracing the official sizes takes
  seconds; shapes are immutable, so one trace serves every conversion)."""
  cfg = json.loads(cfg_json)
  if kind == "style":
    model = builders.style_encoder(cfg)
    x = jnp.zeros((1, builders.WINDOW, builders.EXP_DIM))
    return jax.eval_shape(
      lambda: model.init(jax.random.key(0), x, method=model.style_code)
    )
  gen = builders.motion_generator_model(cfg, kind)
  t = 4
  if kind == "video":
    source = {"exp": jnp.zeros((1, t, builders.EXP_DIM))}
  else:
    source = {
      "mel": jnp.zeros((1, t, 80, 16)),
      "ref_exp": jnp.zeros((1, builders.EXP_DIM)),
      "blink": jnp.zeros((1, t)),
    }
  s = jnp.zeros((1, style_dim))
  return jax.eval_shape(lambda: gen.init(jax.random.key(0), source, s, s))


# ------------------------------------------------- video-driven sections ---


def _style_encoder(f: Filler, num_layers: int) -> None:
  """style_encoder = VQModelTransformer_encoder: squasher, linear embedding,
  positions, pre-LN transformer, codebook, attention pooling."""
  enc = "encoder."
  for i in range(3):  # Conv1d(k5, replicate) -> LeakyReLU -> BN [-> pool]
    f.conv(
      f"params/vq/squasher/down{i}/Conv_0/kernel", f"{enc}squasher.{i}.0.weight"
    )
    f.same(
      f"params/vq/squasher/down{i}/Conv_0/bias", f"{enc}squasher.{i}.0.bias"
    )
    f.batch_norm(f"vq/squasher/down{i}/BatchNorm_0", f"{enc}squasher.{i}.2")
  f.linear("params/vq/enc_proj", f"{enc}encoder_linear_embedding.net")
  f.same(
    "params/vq/encoder/pos_embedding",
    f"{enc}encoder_pos_embedding.pos_embedding",
  )
  for j in range(num_layers):
    _transformer_block(f, f"params/vq/encoder/block{j}", j)
  f.same("params/vq/quantizer/codebook", "quantize.embedding.weight")
  ws = f.take("self_attention.Ws", (1, f.shape("params/pool/w")[0]))
  f.put("params/pool/w", ws[0])  # [1, D] -> [D]


def _transformer_block(f: Filler, path: str, j: int) -> None:
  """Blocks are pairs in encoder_transformer.net: 2j = Residual(Norm(
  Attention)), 2j + 1 = Residual(Norm(MLP))."""
  attn = f"encoder.encoder_transformer.net.{2 * j}.fn."
  mlp = f"encoder.encoder_transformer.net.{2 * j + 1}.fn."
  f.same(f"{path}/ln_attn/scale", attn + "norm.weight")
  f.same(f"{path}/ln_attn/bias", attn + "norm.bias")
  d_in, heads, head_dim = f.shape(f"{path}/attn/query/kernel")
  dim = heads * head_dim
  # to_qkv (no bias) rows are ordered (q|k|v, head, head_dim).
  qkv = f.take(attn + "fn.to_qkv.weight", (3 * dim, d_in))
  for n, name in enumerate(("query", "key", "value")):
    w = qkv[n * dim : (n + 1) * dim]  # [H * d, in]
    f.put(f"{path}/attn/{name}/kernel", w.T.reshape(d_in, heads, head_dim))
  # Ours has query and value biases (the official has none): zero.
  for name in ("query", "value"):
    f.put(f"{path}/attn/{name}/bias", np.zeros((heads, head_dim)))
  out = f.take(attn + "fn.to_out.weight", (dim, dim))  # [D, H * d]
  f.put(f"{path}/attn/out/kernel", out.T.reshape(heads, head_dim, dim))
  f.same(f"{path}/attn/out/bias", attn + "fn.to_out.bias")
  f.same(f"{path}/ln_mlp/scale", mlp + "norm.weight")
  f.same(f"{path}/ln_mlp/bias", mlp + "norm.bias")
  f.linear(f"{path}/mlp_in", mlp + "fn.l1")
  f.linear(f"{path}/mlp_out", mlp + "fn.l2")


def _video_encoder(f: Filler) -> None:
  """E_v: Sequential(Linear, ReLU, Linear, ReLU, Linear) at 0, 2, 4."""
  for i in range(3):
    f.linear(f"params/encoder/mlp/Dense_{i}", f"layers.{2 * i}")


def _adapter(f: Filler, hidden: int) -> None:
  """ra = ResidualAdapter: canonical LSTM, style LSTM, HyperStyle nets,
  initial states."""
  p = "params/adapter"
  modulated = MODULATED
  for i in range(CANONICAL_LAYERS):
    f.lstm(f"{p}/canonical/layer{i}", "neutral_branch", i)
  f.same(f"{p}/canonical_h0", "neutral_init_hidden_state")
  f.same(f"{p}/canonical_c0", "neutral_init_cell_state")
  f.linear(f"{p}/style_h0", "ra_init_hidden_state")
  f.linear(f"{p}/style_c0", "ra_init_cell_state")
  _style_lstm(f, f"{p}/style", hidden, modulated)
  for k, layer in enumerate(modulated):
    h = f"adapter/hyperstyle{layer}"
    for g in ("ih", "hh"):  # input and recurrent weights: one H each
      _kernel_net(f, f"{h}/kernel_{g}", f"linear_layers_{g}.{k}")
      f.linear(f"params/{h}/bias_{g}", f"linear_layers_bias_{g}.{k}")


def _style_lstm(f: Filler, path: str, hidden: int, modulated) -> None:
  """The style branch phi_s, as the official forward runs it.

  Per sample, the official forward copies `ra_style`'s layers 1-4, times
  (1 + H(s)), into `ra_style_tmp` (a `.data` write) and then runs
  `ra_style_tmp`. So layers 1-4 are `ra_style`'s (our HyperStyle applies
  the same product), while layers 0 and 5 are `ra_style_tmp`'s own, the
  only ones of it that are read. `ra_style` layers 0 and 5 are never read,
  and `ra_style_tmp` layers 1-4 are overwritten before every use (they hold
  whatever the last training sample left there).
  """
  for i in range(STYLE_LAYERS):
    source = "ra_style" if i in modulated else "ra_style_tmp"
    f.lstm(f"{path}/layer{i}", source, i)
    unused = "ra_style_tmp" if i in modulated else "ra_style"
    d_in = f.shape(f"{path}/layer{i}/w_ih")[0]
    f.ignore(f"{unused}.weight_ih_l{i}", (4 * hidden, d_in))
    f.ignore(f"{unused}.weight_hh_l{i}", (4 * hidden, hidden))
    f.ignore(f"{unused}.bias_ih_l{i}", (4 * hidden,))
    f.ignore(f"{unused}.bias_hh_l{i}", (4 * hidden,))


def _kernel_net(f: Filler, path: str, key: str) -> None:
  """HyperNetwork: inc, down1, down2 = DoubleConv_0..2; each DoubleConv's
  Sequential holds conv (no bias) at 0 and 3, BatchNorm at 1 and 4."""
  parts = ("inc", "down1.maxpool_conv.1", "down2.maxpool_conv.1")
  for n, part in enumerate(parts):
    k = f"{key}.{part}.double_conv"
    for m, (conv, bn) in enumerate(((0, 1), (3, 4))):
      d = f"{path}/DoubleConv_{n}"
      f.conv(f"params/{d}/Conv_{m}/kernel", f"{k}.{conv}.weight")
      f.batch_norm(f"{d}/BatchNorm_{m}", f"{k}.{bn}")


def _decoder(f: Filler) -> None:
  """D: features = Sequential(Linear, ReLU) x 3 at 0, 2, 4; the mouth head
  (18) comes first in the output, then `last_layer_expression` (46)."""
  for i in range(3):
    f.linear(f"params/decoder/Dense_{i}", f"features.{2 * i}")
  f.linear("params/decoder/mouth", "last_layer_mouth")
  f.linear("params/decoder/rest", "last_layer_expression")


def _video_tensors(obj, path: str) -> dict[str, np.ndarray]:
  """{"<section>.<name>": tensor}: from the official dict of four state
  dicts, or from a flat state dict with those prefixes (a .safetensors)."""
  if not isinstance(obj, dict) or not obj:
    raise ConvertError(path, "not a dict of state dicts")
  nested = any(isinstance(v, dict) for v in obj.values())
  if nested:
    sections = {k: v for k, v in obj.items() if isinstance(v, dict)}
  else:  # flat: "ra.neutral_branch...", maybe "ra.module.neutral_branch..."
    sections = {}
    for k, v in obj.items():
      section, _, rest = k.partition(".")
      sections.setdefault(section, {})[rest] = v
  missing = [s for s in VIDEO_SECTIONS if s not in sections]
  if missing:
    have = ", ".join(map(str, list(sections)[:8])) or "no state dicts"
    raise ConvertError(
      path,
      f"not a SAAS video-driven checkpoint: it lacks {', '.join(missing)} "
      f"(it needs {', '.join(VIDEO_SECTIONS)}; it holds {have})",
    )
  if not nested and len(sections) > len(VIDEO_SECTIONS):
    extra = sorted(set(sections) - set(VIDEO_SECTIONS))
    raise ConvertError(path, f"tensors of no section: {', '.join(extra)}")
  out = {}
  for s in VIDEO_SECTIONS:
    for k, v in tensors_lib.state_dict(sections[s], path).items():
      out[f"{s}.{k}"] = v
  return out


@dataclasses.dataclass
class Converted:
  """A checkpoint's variables, laid out for our modules."""

  generator: dict  # {"params", "batch_stats"} of the MotionGenerator
  style: dict  # {"params", "batch_stats"} of the style encoder
  model: dict  # the generator's config block (spec.model)
  style_model: dict  # the style encoder's (spec.style_model)
  tensors: int  # tensors read from the file
  values: int  # numbers read from the file
  ignored: list[str]  # tensors checked and not kept (see the docstring)
  not_converted: list[str]  # top-level entries beside the model (video)


def read_saas_video_driven(checkpoint: str) -> Converted:
  """The official video-driven checkpoint's variables (nothing written)."""
  checkpoint = os.fspath(checkpoint)
  obj = tensors_lib.read_checkpoint(checkpoint)
  tensors = _video_tensors(obj, checkpoint)
  style_cfg = official_style_config()
  model = {**_configs("video_driven").model.to_dict(), **OFFICIAL_MOTION}
  src = TensorSource(tensors, checkpoint)

  style = Filler(src, _abstract_style(style_cfg), "style_encoder.")
  _style_encoder(style, style_cfg["layers"])
  gen = Filler(src, _abstract_generator(model, "video", style_cfg["hidden"]))
  gen.prefix = "encoder."
  _video_encoder(gen)
  gen.prefix = "ra."
  _adapter(gen, model["hidden"])
  gen.prefix = "decoder."
  _decoder(gen)
  src.finish()

  return Converted(
    generator=gen.tree(checkpoint),
    style=style.tree(checkpoint),
    model=model,
    style_model=style_cfg,
    tensors=len(tensors),
    values=src.count,
    ignored=style.ignored + gen.ignored,
    # Training-only entries beside the four sections (optimizer states,
    # critics, the epoch) are no part of the model.
    not_converted=sorted(
      str(k)
      for k, v in obj.items()
      if k not in VIDEO_SECTIONS and not isinstance(v, np.ndarray)
    ),
  )


# ------------------------------------------------------ SadTalker audio ---


def _sadtalker_tensors(path: str) -> dict[str, np.ndarray]:
  """SimpleWrapperV2's state dict: the .pth's "model" (or a bare state
  dict), or the "audio2exp." tensors of a SadTalker safetensors bundle."""
  obj = tensors_lib.read_checkpoint(path)
  if path.endswith(".safetensors"):
    sd = tensors_lib.state_dict(obj, path, prefix="audio2exp.")
  else:
    sd = tensors_lib.state_dict(obj, path, keys=("model",))
  # Saved from the Audio2Exp wrapper rather than its netG: same tensors.
  if all(k.startswith("netG.") for k in sd):
    sd = {k[len("netG.") :]: v for k, v in sd.items()}
  return sd


def _audio2exp(f: Filler) -> None:
  """netG = SimpleWrapperV2: audio_encoder (13 x Conv2d + BatchNorm2d, as
  conv_block.0 / conv_block.1) and mapping1 (577 -> 64)."""
  for i in range(len(audio_encoder.MEL_CNN) + 1):  # + the final 1 x 1 conv
    p = f"encoder/mel/ConvBNReLU_{i}"
    k = f"audio_encoder.{i}.conv_block"
    f.conv(f"params/{p}/Conv_0/kernel", f"{k}.0.weight")
    f.same(f"params/{p}/Conv_0/bias", f"{k}.0.bias")
    f.batch_norm(f"{p}/BatchNorm_0", f"{k}.1")
  f.linear("params/encoder/audio_exp", "mapping1")


def read_sadtalker_audio2exp(checkpoint: str, video: runs.Run) -> Converted:
  """SadTalker's audio2exp + a loaded video-driven run -> the variables of
  an audio-driven run (nothing written)."""
  checkpoint = os.fspath(checkpoint)
  sd = _sadtalker_tensors(checkpoint)
  src = TensorSource(sd, checkpoint)
  style_cfg = video.spec["style_model"]
  # SadTalker's CNN is the full Wav2Lip one, whatever the video run's size.
  model = {**video.spec["model"], "mel_width": 1.0, "mel_residual": True}
  f = Filler(src, _abstract_generator(model, "audio", style_cfg["hidden"]))
  _audio2exp(f)
  src.finish()

  # Everything else (E_v's MLP, adapter, decoder) is the video run's.
  have = flax.traverse_util.flatten_dict(
    {
      "params": video.params["generator"],
      "batch_stats": video.extra.get("batch_stats", {}),
    },
    sep="/",
  )
  for path, shape in f.want.items():
    if path in f.out:
      continue
    if path not in have or tuple(have[path].shape) != shape:
      found = list(have[path].shape) if path in have else "nothing"
      raise ConvertError(
        video.workdir,
        f"the video run's {path} is {found}, the audio-driven model needs "
        f"{list(shape)}",
      )
    f.put(path, have[path])
  return Converted(
    generator=f.tree(f"{checkpoint} + {video.workdir}"),
    style=jax.tree.map(np.asarray, video.extra["frozen"]["style"]),
    model=model,
    style_model=style_cfg,
    tensors=len(sd),
    values=src.count,
    ignored=f.ignored,
    not_converted=[],
  )


# ------------------------------------------------------------ run folders ---


def _count(tree) -> int:
  return sum(int(np.size(x)) for x in jax.tree.leaves(tree))


def _write_run(tmp: str, config: dict, spec: dict, c: Converted) -> None:
  """config.json, spec.json and one orbax checkpoint (step 0), laid out as
  the engine writes a trained run's state (no optimizer state or critics: a
  converted run is for inference, not for resuming training)."""
  extra = {"frozen": {"style": c.style}}
  if c.generator.get("batch_stats"):
    extra["batch_stats"] = c.generator["batch_stats"]
  state = {
    "step": np.int32(0),
    "params": {"generator": c.generator["params"]},
    "extra": extra,
  }
  ckpt = checkpoint_lib.Checkpointer(tmp, every=1, keep=1, async_save=False)
  try:
    ckpt.save(0, jax.tree.map(jnp.asarray, state), config, force=True)
  finally:
    ckpt.close()
  workdir_lib.write_json(os.path.join(tmp, "config.json"), config)
  workdir_lib.write_json(os.path.join(tmp, "spec.json"), spec)


def _run_files(
  driver: str,
  c: Converted,
  source: dict,
  frozen: dict,
  face_model: str,
  num_classes: int,
) -> tuple[dict, dict]:
  """config.json: the stage config of a trained run of this kind with the
  converted model, no training steps and where it came from; spec.json as
  trainers.motion.describe writes it."""
  cfg = _configs(f"{driver}_driven")
  cfg.model.update(c.model)
  cfg.frozen = ml_collections.ConfigDict(frozen)
  cfg.face_model = face_model
  cfg.num_train_steps = 0  # nothing trained here: load_run sees it finished
  cfg.converted_from = source
  config = json.loads(cfg.to_json())
  spec = {
    "format": workdir_lib.SPEC_FORMAT,
    "trainer": config["trainer"],
    "driver": driver,
    "model": config["model"],
    "num_classes": num_classes,
    "style_model": dict(c.style_model),
    "quantized_style": config["model"]["quantized_style"],
    "face_model": face_model,
    "frozen": config["frozen"],
    "style_encoder": builders.style_encoder_fingerprint(c.style_model, c.style),
    "converted_from": source,
  }
  return config, spec


def _summary(kind: str, out: str, c: Converted, log) -> dict:
  # The style encoder's own parameters (a trained run's frozen style model
  # also holds its decoder and classifier).
  wanted = flax.traverse_util.flatten_dict(_abstract_style(c.style_model))
  have = flax.traverse_util.flatten_dict(c.style)
  style = sum(int(np.size(have[k])) for k in wanted if k[0] == "params")
  params = _count(c.generator["params"]) + style
  other = c.not_converted
  log(
    f"{kind}: {c.tensors} tensors ({c.values:,} values) read, "
    f"{len(c.ignored)} of them unused by the official forward; {params:,} "
    f"parameters -> {out}"
    + (f"; entries not converted: {', '.join(other)}" if other else "")
  )
  return {
    "out": out,
    "parameters": params,
    "tensors": c.tensors,
    "values": c.values,
    "ignored": list(c.ignored),
    "not_converted": list(c.not_converted),
  }


def convert_saas_video_driven(checkpoint: str, out: str, log=print) -> dict:
  """The official video-driven checkpoint -> a video-driven run at `out`
  (an existing non-empty `out` is refused before anything is read)."""
  with tensors_lib.staged_output(out) as tmp:
    c = read_saas_video_driven(checkpoint)
    source = {
      "converter": "saas_video_driven",
      "checkpoint": tensors_lib.describe_file(checkpoint),
      "tensors": c.tensors,
      "unused_tensors": len(c.ignored),
      "entries_not_converted": c.not_converted,
    }
    # No frozen workdirs: the style encoder came with the checkpoint.
    config, spec = _run_files("video", c, source, {}, FACE_MODEL, STYLE_CLASSES)
    _write_run(tmp, config, spec, c)
  return _summary("saas_video_driven", out, c, log)


def convert_sadtalker_audio2exp(
  checkpoint: str, video_run: str, out: str, log=print
) -> dict:
  """SadTalker's audio2exp + a video-driven run (e.g. a converted official
  one) -> an audio-driven run at `out`."""
  with tensors_lib.staged_output(out) as tmp:
    if not os.path.isdir(video_run):
      raise tensors_lib.ConvertError(
        video_run,
        "no such folder; --video_run is a video-driven run, e.g. one made by "
        "python -m saas_jax.convert saas_video_driven",
      )
    try:
      video = runs.load_run(video_run, "video_driven", role="video run")
    except runs.RunError as e:
      raise tensors_lib.ConvertError(video_run, str(e)) from None
    c = read_sadtalker_audio2exp(checkpoint, video)
    source = {
      "converter": "sadtalker_audio2exp",
      "checkpoint": tensors_lib.describe_file(checkpoint),
      "tensors": c.tensors,
      "video_run": {
        "workdir": os.path.abspath(video.workdir),
        "step": video.step,
        "converted_from": video.spec.get("converted_from"),
      },
    }
    # The style encoder (and so its frozen sources) is the video run's.
    config, spec = _run_files(
      "audio",
      c,
      source,
      video.spec.get("frozen", {}),
      video.spec["face_model"],
      video.spec["num_classes"],
    )
    _write_run(tmp, config, spec, c)
  return _summary("sadtalker_audio2exp", out, c, log)
