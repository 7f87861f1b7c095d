"""Reading PyTorch / safetensors checkpoints, never executing a pickle, and
accounting for every tensor a converter reads.

  sd = state_dict(read_checkpoint(path), path, keys=("net_G_ema",))
  src = TensorSource(sd, path)
  f = Filler(src, abstract_params)       # the model's variable shapes
  f.conv("params/first/kernel", "first.0.weight")   # torch -> Flax layout
  ...
  src.finish()                           # fails naming what was not used
  params = f.tree(path)                  # and what the model still lacks

`.pt`/`.pth`/`.tar` files go through `torch.load(weights_only=True)` (torch
is the `[torch]` extra, needed only here); `.safetensors` files through the
`safetensors` package's NumPy reader, so they need no torch at all.
"""

import contextlib
import os
import shutil
import tempfile

import numpy as np

from saas_jax.errors import DataError


class ConvertError(DataError):
  """A checkpoint that does not fit the model it is converted to."""


def read_checkpoint(path: str):
  """The file's object tree with every tensor as a float32/int NumPy array."""
  path = os.fspath(path)
  if os.path.isdir(path):
    raise ConvertError(path, "is a folder; --checkpoint takes the file")
  if not os.path.isfile(path):
    raise ConvertError(path, "no such file")
  if path.endswith(".safetensors"):
    try:
      from safetensors.numpy import load_file
    except ImportError:
      raise ConvertError(
        path, "reading .safetensors needs: pip install safetensors"
      ) from None
    try:
      return load_file(path)
    except Exception as e:
      raise ConvertError(path, f"not a readable safetensors file ({e})") from e
  try:
    import torch
  except ImportError:
    raise ConvertError(
      path,
      "reading PyTorch checkpoints needs torch: pip install 'saas_jax[torch]' "
      "(or save the state dict as .safetensors)",
    ) from None
  try:
    # weights_only: tensors and plain containers only, no code from the file.
    obj = torch.load(path, map_location="cpu", weights_only=True)
  except Exception as e:
    # PyTorch's own message suggests weights_only=False, which would run
    # code from the file: say what it refused, not that.
    advice = ("weights_only", "Weights only", "WeightsUnpickler", "Check the")
    lines = [x.strip() for x in str(e).splitlines() if x.strip()]
    why = [x for x in lines if not any(a in x for a in advice)]
    why = (why or [type(e).__name__])[0]
    raise ConvertError(
      path,
      f"not a PyTorch checkpoint that loads safely ({why[:200]}); only "
      "tensors and plain containers are read, never code from the file",
    ) from e
  return _to_numpy(obj, torch)


def _to_numpy(obj, torch):
  if isinstance(obj, torch.Tensor):
    t = obj.detach().cpu()
    if t.is_floating_point():
      t = t.float()
    return t.numpy()
  if isinstance(obj, dict):
    return {k: _to_numpy(v, torch) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return type(obj)(_to_numpy(v, torch) for v in obj)
  return obj


def _is_state_dict(obj) -> bool:
  return (
    isinstance(obj, dict)
    and bool(obj)
    and all(isinstance(v, np.ndarray) for v in obj.values())
  )


def state_dict(
  obj, path: str, keys: tuple[str, ...] = (), prefix: str = ""
) -> dict[str, np.ndarray]:
  """The tensors of a checkpoint: under the first of `keys` present (e.g.
  "net_G_ema"), or the file itself when it is a bare state dict; only those
  starting with `prefix` (removed), and without DDP's "module." prefixes."""
  found = obj
  for key in keys:
    if isinstance(obj, dict) and key in obj:
      found = obj[key]
      break
  else:
    if not _is_state_dict(obj) and isinstance(obj, dict):
      # A bundle with one entry that is a state dict.
      dicts = [k for k, v in obj.items() if _is_state_dict(v)]
      if keys or len(dicts) != 1:
        have = ", ".join(map(str, list(obj)[:8]))
        want = " or ".join(repr(k) for k in keys) or "a state dict"
        raise ConvertError(path, f"expected {want}; the file holds: {have}")
      found = obj[dicts[0]]
  if not _is_state_dict(found):
    raise ConvertError(path, "no tensors found (not a state dict)")
  out = {}
  for k, v in found.items():
    if not k.startswith(prefix):
      continue
    k = k[len(prefix) :]
    while k.startswith("module."):
      k = k[len("module.") :]
    out[k] = v
  if not out:
    raise ConvertError(path, f"no tensor names start with {prefix!r}")
  return out


class TensorSource:
  """A state dict that remembers what was taken from it.

  Layout helpers turn PyTorch layouts into Flax ones; every read checks the
  shape when one is given, and `finish` fails naming the tensors no one
  read, so a converter cannot silently drop weights (PyTorch's
  load_state_dict(strict=False), which the official loaders use, would).
  """

  def __init__(self, tensors: dict[str, np.ndarray], path: str):
    self.tensors = tensors
    self.path = path
    self.used: set[str] = set()
    self.count = 0

  def take(self, key: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    if key not in self.tensors:
      near = [k for k in self.tensors if k.split(".")[0] == key.split(".")[0]]
      hint = f" (e.g. {', '.join(sorted(near)[:3])})" if near else ""
      raise ConvertError(self.path, f"missing tensor {key!r}{hint}")
    value = self.tensors[key]
    if shape is not None and tuple(value.shape) != tuple(shape):
      raise ConvertError(
        self.path,
        f"tensor {key!r} has shape {list(value.shape)}, the model needs "
        f"{list(shape)}",
      )
    if key not in self.used:
      self.used.add(key)
      self.count += int(value.size)
    return np.asarray(value, np.float32)

  def finish(self) -> int:
    """The number of values read; fails naming every tensor not used."""
    unused = sorted(set(self.tensors) - self.used)
    if unused:
      shown = ", ".join(unused[:6]) + (" ..." if len(unused) > 6 else "")
      raise ConvertError(
        self.path,
        f"{len(unused)} tensors fit nowhere in the model: {shown}",
      )
    return self.count


class Filler:
  """Converted arrays written into a Flax variables tree of known shapes.

  Each method reads a tensor at the PyTorch shape the target leaf implies,
  so a misfit names the file's tensor and both shapes before anything is
  transposed; `tree` then checks that every leaf was filled.
  """

  def __init__(self, src: TensorSource, abstract: dict, prefix: str = ""):
    import flax.traverse_util

    self.src = src
    self.abstract = abstract
    self.want = {
      k: tuple(v.shape)
      for k, v in flax.traverse_util.flatten_dict(abstract, sep="/").items()
    }
    self.prefix = prefix  # prepended to every tensor name
    self.out: dict[str, np.ndarray] = {}
    self.ignored: list[str] = []

  def shape(self, path):
    if path not in self.want:  # a mapping bug, not a checkpoint problem
      raise KeyError(f"the model has no variable {path}")
    return self.want[path]

  def take(self, key, shape):
    return self.src.take(self.prefix + key, shape)

  def put(self, path, value):
    self.shape(path)
    self.out[path] = np.asarray(value, np.float32)

  def same(self, path, key):  # same layout in both
    self.put(path, self.take(key, self.shape(path)))

  def vector(self, path, key):  # e.g. LayerNorm2d's [C, 1, 1] -> [C]
    (c,) = self.shape(path)
    self.put(path, self.take(key, (c, 1, 1)).reshape(c))

  def dense(self, path, key):  # Linear [O, I] -> [I, O]
    i, o = self.shape(path)
    self.put(path, self.take(key, (o, i)).T)

  def conv(self, path, key):  # [O, I, *k] -> [*k, I, O]
    *k, i, o = self.shape(path)
    w = self.take(key, (o, i, *k))
    self.put(path, np.transpose(w, (*range(2, w.ndim), 1, 0)))

  def conv_transpose(self, path, key):
    """ConvTranspose [I, O, *k] -> flax ConvTranspose(transpose_kernel=True)
    [*k, O, I]."""
    *k, o, i = self.shape(path)
    w = self.take(key, (i, o, *k))
    self.put(path, np.transpose(w, (*range(2, w.ndim), 1, 0)))

  def linear(self, path, key):
    self.dense(f"{path}/kernel", f"{key}.weight")
    self.same(f"{path}/bias", f"{key}.bias")

  def batch_norm(self, path, key):
    """Affine params under params/path, running statistics under
    batch_stats/path (eval mode reads those, as torch's eval does)."""
    self.same(f"params/{path}/scale", f"{key}.weight")
    self.same(f"params/{path}/bias", f"{key}.bias")
    self.same(f"batch_stats/{path}/mean", f"{key}.running_mean")
    self.same(f"batch_stats/{path}/var", f"{key}.running_var")
    # A training counter eval-mode BatchNorm never reads (files saved by
    # torch < 0.4.1 lack it).
    if self.prefix + key + ".num_batches_tracked" in self.src.tensors:
      self.ignore(f"{key}.num_batches_tracked", ())

  def lstm(self, path, key, layer):
    """One layer of a torch nn.LSTM (gates i, f, g, o: ours too)."""
    self.dense(f"{path}/w_ih", f"{key}.weight_ih_l{layer}")
    self.dense(f"{path}/w_hh", f"{key}.weight_hh_l{layer}")
    self.same(f"{path}/b_ih", f"{key}.bias_ih_l{layer}")
    self.same(f"{path}/b_hh", f"{key}.bias_hh_l{layer}")

  def ignore(self, key, shape):
    """Accounted for (name and shape checked), deliberately not kept."""
    self.take(key, shape)
    self.ignored.append(self.prefix + key)

  def tree(self, what: str) -> dict:
    import flax.traverse_util

    tree = flax.traverse_util.unflatten_dict(self.out, sep="/")
    check_tree(tree, self.abstract, what)
    return tree


def check_tree(params: dict, expected: dict, what: str) -> None:
  """`params` has exactly the paths and shapes of `expected` (a Flax tree
  of arrays or ShapeDtypeStructs), or a ConvertError naming the first
  difference."""
  import flax.traverse_util

  got = flax.traverse_util.flatten_dict(params, sep="/")
  want = flax.traverse_util.flatten_dict(expected, sep="/")
  for k in sorted(set(want) | set(got)):
    if k not in got:
      raise ConvertError(what, f"converted weights lack {k}")
    if k not in want:
      raise ConvertError(what, f"converted weights have an extra {k}")
    if tuple(got[k].shape) != tuple(want[k].shape):
      raise ConvertError(
        what,
        f"{k}: converted shape {list(got[k].shape)}, the model needs "
        f"{list(want[k].shape)}",
      )


def describe_file(path: str) -> dict:
  """Provenance of a converted file: its name, size and sha256."""
  import hashlib

  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return {
    "file": os.path.basename(path),
    "bytes": os.path.getsize(path),
    "sha256": h.hexdigest(),
  }


@contextlib.contextmanager
def staged_output(out: str):
  """A fresh folder to write into, renamed to `out` only when the block
  finishes: an error leaves nothing behind, and an existing non-empty `out`
  is refused (a re-run never overwrites a finished conversion)."""
  out = os.path.abspath(os.fspath(out))
  if os.path.exists(out) and not os.path.isdir(out):
    raise ConvertError(out, "is a file; --out names a new folder")
  if os.path.isdir(out) and os.listdir(out):
    raise ConvertError(
      out, "already exists and is not empty; choose another --out or remove it"
    )
  parent = os.path.dirname(out)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.tmp-", dir=parent)
  umask = os.umask(0)
  os.umask(umask)
  os.chmod(tmp, 0o777 & ~umask)  # as a folder made by os.makedirs
  try:
    yield tmp
    if os.path.isdir(out):
      os.rmdir(out)  # empty, checked above
    os.replace(tmp, out)
  finally:
    if os.path.isdir(tmp):
      shutil.rmtree(tmp)
