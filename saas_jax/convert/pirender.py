"""PIRender's FaceGenerator weights (PyTorch) -> saas_jax.render.pirender.

Reads PIRender's own checkpoint (`net_G_ema`, the EMA generator every
official loader uses), StyleTalk's `renderer_checkpoint.pt` (the same key),
or a bare state dict (.pt or .safetensors). All 304 tensors are accounted
for: 296 are converted; the 8 pairs conv1/norm1 of the residual blocks are
dead in PIRender's forward pass (see render.pirender.EditingNet) and are
checked for shape and then dropped.
"""

from saas_jax.convert import tensors as tensors_lib
from saas_jax.render import pirender

_WARP = "warpping_net."  # sic, PIRender's spelling
_HOURGLASS = _WARP + "hourglass."
_EDIT = "editing_net."


def _conv(src, key):
  return {"kernel": src.conv(key + ".weight"), "bias": src.take(key + ".bias")}


def _conv_t(src, key):
  return {
    "kernel": src.conv_transpose(key + ".weight"),
    "bias": src.take(key + ".bias"),
  }


def _dense(src, key):
  return {"kernel": src.dense(key + ".weight"), "bias": src.take(key + ".bias")}


def _layer_norm(src, key):  # LayerNorm2d: [C, 1, 1] each
  return {
    "scale": src.vector(key + ".weight"),
    "bias": src.vector(key + ".bias"),
  }


def _adain(src, key):
  return {
    "shared": _dense(src, key + ".mlp_shared.0"),
    "gamma": _dense(src, key + ".mlp_gamma"),
    "beta": _dense(src, key + ".mlp_beta"),
  }


def _mapping(src, m):
  out = {"first": _conv(src, "mapping_net.first.0")}
  for i in range(m.mapping_layers):
    out[f"encoder{i}"] = _conv(src, f"mapping_net.encoder{i}.1")
  return out


def _warping(src, m):
  enc, dec = _HOURGLASS + "encoder.", _HOURGLASS + "decoder."
  out = {"input_layer": _conv(src, enc + "input_layer")}
  for i in range(m.warp_encoder_layers):
    k = f"{enc}encoder{i}."
    out[f"encoder{i}"] = {
      "conv_0": _conv(src, k + "conv_0"),
      "conv_1": _conv(src, k + "conv_1"),
      "norm_0": _adain(src, k + "norm_0"),
      "norm_1": _adain(src, k + "norm_1"),
    }
  first = m.warp_encoder_layers - m.warp_decoder_layers
  for i in range(first, m.warp_encoder_layers):
    k = f"{dec}decoder{i}."
    out[f"decoder{i}"] = {
      "conv_0": _conv(src, k + "conv_0"),
      "conv_1": _conv_t(src, k + "conv_1"),
      "conv_s": _conv_t(src, k + "conv_s"),
      "norm_0": _adain(src, k + "norm_0"),
      "norm_1": _adain(src, k + "norm_1"),
      "norm_s": _adain(src, k + "norm_s"),
    }
  out["flow_norm"] = _layer_norm(src, _WARP + "flow_out.0")
  out["flow_conv"] = _conv(src, _WARP + "flow_out.2")
  return out


def _editing(src, m):
  enc, dec = _EDIT + "encoder.", _EDIT + "decoder."

  def block(name, key):  # Conv2d + LayerNorm2d as "model.0", "model.1"
    return {
      name: _conv(src, key + ".model.0"),
      f"{name}_norm": _layer_norm(src, key + ".model.1"),
    }

  out = block("first", enc + "first")
  for i in range(m.edit_layers):
    out |= block(f"down{i}", f"{enc}down{i}")
    out |= block(f"up{i}", f"{dec}up{i}")
    out |= block(f"jump{i}", f"{dec}jump{i}")
    for r in range(m.res_blocks):
      k = f"{dec}res{i}.res{r}."
      out[f"res{i}_{r}_conv"] = _conv(src, k + "conv2")
      out[f"res{i}_{r}_norm"] = _adain(src, k + "norm2")
      # Dead in the forward pass (overwritten before use): read, so their
      # presence and shapes are checked, and not kept.
      c = src.tensors[k + "conv2.weight"].shape[0]
      src.take(k + "conv1.weight", (c, c, 3, 3))
      src.take(k + "conv1.bias", (c,))
      _adain(src, k + "norm1")
  out["final"] = _conv(src, dec + "final.model.0")
  return out


def convert_state_dict(sd: dict, path: str, model=None) -> tuple[dict, int]:
  """PyTorch FaceGenerator state dict -> (Flax params, values read)."""
  model = model or pirender.FaceGenerator()
  src = tensors_lib.TensorSource(sd, path)
  params = {
    "mapping": _mapping(src, model),
    "warping": _warping(src, model),
    "editing": _editing(src, model),
  }
  n = src.finish()
  tensors_lib.check_tree(params, pirender.abstract_params(model), path, src)
  return params, n


def convert(checkpoint: str, out: str, log=print) -> dict:
  """A PIRender / StyleTalk checkpoint or state dict -> a folder that
  `Renderer.load` reads."""
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
  with tensors_lib.staged_output(out) as tmp:
    pirender.Renderer(params, model, spec=spec).save(tmp)
  log(
    f"pirender: {len(sd)} tensors, {n:,} values read, {kept:,} parameters "
    f"kept (the rest are PIRender's dead residual-block branches) -> {out}"
  )
  return {"out": out, "tensors": len(sd), "values": n, "parameters": kept}
