"""PIRender's FaceGenerator weights (PyTorch) -> saas_jax.render.pirender.

Reads PIRender's own checkpoint (`net_G_ema`, the EMA generator every
official loader uses), StyleTalk's `renderer_checkpoint.pt` (the same key),
or a bare state dict (.pt or .safetensors). All 304 tensors are accounted
for: 256 are converted; the 48 of the six residual blocks' conv1/norm1 are
dead in PIRender's forward pass (see render.pirender.EditingNet) and are
checked for shape and then dropped.
"""

from saas_jax.convert import tensors as tensors_lib
from saas_jax.render import pirender

_WARP = "warpping_net."  # sic, PIRender's spelling
_HOURGLASS = _WARP + "hourglass."
_EDIT = "editing_net."


def _conv(f, path, key):
  f.conv(f"{path}/kernel", f"{key}.weight")
  f.same(f"{path}/bias", f"{key}.bias")


def _conv_t(f, path, key):
  f.conv_transpose(f"{path}/kernel", f"{key}.weight")
  f.same(f"{path}/bias", f"{key}.bias")


def _layer_norm(f, path, key):  # LayerNorm2d: [C, 1, 1] each
  f.vector(f"{path}/scale", f"{key}.weight")
  f.vector(f"{path}/bias", f"{key}.bias")


def _adain(f, path, key):
  f.linear(f"{path}/shared", f"{key}.mlp_shared.0")
  f.linear(f"{path}/gamma", f"{key}.mlp_gamma")
  f.linear(f"{path}/beta", f"{key}.mlp_beta")


def _mapping(f, m):
  _conv(f, "mapping/first", "mapping_net.first.0")
  for i in range(m.mapping_layers):
    _conv(f, f"mapping/encoder{i}", f"mapping_net.encoder{i}.1")


def _warping(f, m):
  enc, dec = _HOURGLASS + "encoder.", _HOURGLASS + "decoder."
  _conv(f, "warping/input_layer", enc + "input_layer")
  for i in range(m.warp_encoder_layers):
    p, k = f"warping/encoder{i}", f"{enc}encoder{i}"
    for n in ("0", "1"):
      _conv(f, f"{p}/conv_{n}", f"{k}.conv_{n}")
      _adain(f, f"{p}/norm_{n}", f"{k}.norm_{n}")
  first = m.warp_encoder_layers - m.warp_decoder_layers
  for i in range(first, m.warp_encoder_layers):
    p, k = f"warping/decoder{i}", f"{dec}decoder{i}"
    _conv(f, f"{p}/conv_0", f"{k}.conv_0")
    _conv_t(f, f"{p}/conv_1", f"{k}.conv_1")
    _conv_t(f, f"{p}/conv_s", f"{k}.conv_s")
    for n in ("0", "1", "s"):
      _adain(f, f"{p}/norm_{n}", f"{k}.norm_{n}")
  _layer_norm(f, "warping/flow_norm", _WARP + "flow_out.0")
  _conv(f, "warping/flow_conv", _WARP + "flow_out.2")


def _editing(f, m):
  enc, dec = _EDIT + "encoder.", _EDIT + "decoder."

  def block(name, key):  # Conv2d + LayerNorm2d as "model.0", "model.1"
    _conv(f, f"editing/{name}", f"{key}.model.0")
    _layer_norm(f, f"editing/{name}_norm", f"{key}.model.1")

  block("first", enc + "first")
  for i in range(m.edit_layers):
    block(f"down{i}", f"{enc}down{i}")
    block(f"up{i}", f"{dec}up{i}")
    block(f"jump{i}", f"{dec}jump{i}")
    for r in range(m.res_blocks):
      p, k = f"editing/res{i}_{r}", f"{dec}res{i}.res{r}"
      _conv(f, f"{p}_conv", f"{k}.conv2")
      _adain(f, f"{p}_norm", f"{k}.norm2")
      # Dead in the forward pass (overwritten before use): read, so that
      # their presence and shapes are checked, and not kept.
      c = f.shape(f"{p}_conv/bias")[0]
      f.ignore(f"{k}.conv1.weight", (c, c, 3, 3))
      f.ignore(f"{k}.conv1.bias", (c,))
      for part, shape in (
        ("mlp_shared.0", (128, m.descriptor)),
        ("mlp_gamma", (c, 128)),
        ("mlp_beta", (c, 128)),
      ):
        f.ignore(f"{k}.norm1.{part}.weight", shape)
        f.ignore(f"{k}.norm1.{part}.bias", shape[:1])
  _conv(f, "editing/final", dec + "final.model.0")


def convert_state_dict(sd: dict, path: str, model=None) -> tuple[dict, int]:
  """PyTorch FaceGenerator state dict -> (Flax params, values read)."""
  model = model or pirender.FaceGenerator()
  src = tensors_lib.TensorSource(sd, path)
  f = tensors_lib.Filler(src, pirender.abstract_params(model))
  _mapping(f, model)
  _warping(f, model)
  _editing(f, model)
  n = src.finish()
  return f.tree(path), n


def convert(checkpoint: str, out: str, log=print) -> dict:
  """A PIRender / StyleTalk checkpoint or state dict -> a folder that
  `Renderer.load` reads (an existing non-empty `out` is refused)."""
  with tensors_lib.staged_output(out) as tmp:
    obj = tensors_lib.read_checkpoint(checkpoint)
    sd = tensors_lib.state_dict(obj, checkpoint, keys=("net_G_ema",))
    params, n = convert_state_dict(sd, checkpoint)
    kept = pirender.count(params)
    model = pirender.FaceGenerator()
    spec = pirender.Spec(
      model=pirender.hyperparameters(model),
      source={
        "converter": "pirender",
        "checkpoint": tensors_lib.describe_file(checkpoint),
        "tensors": len(sd),
        "values_read": n,
      },
      parameters=kept,
    )
    pirender.Renderer(params, model, spec=spec).save(tmp)
  log(
    f"pirender: {len(sd)} tensors, {n:,} values read, {kept:,} parameters "
    f"kept (the rest are PIRender's dead residual-block branches) -> {out}"
  )
  return {"out": out, "tensors": len(sd), "values": n, "parameters": kept}
