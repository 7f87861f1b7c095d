"""Compiled steps kept whole on disk, beside JAX's compilation cache.

JAX's persistent compilation cache saves XLA's work, but a cache hit still
traces the Python function and lowers it to compute the cache key: for the
expression stage at cpu size 11 s of a 21 s start (train step 7.4 s,
initialisation 3.9 s, partly at once). Here an executable is stored with
what JAX needs to call it, under a key made of what decides the program,
known without tracing: the code (every file of the saas_jax and
input_pipeline packages), the package versions, the run's config and the
files it names, the arguments' shapes, dtypes, shardings and tree (with
the state's static fields: networks, optimizer, settings), the devices,
XLA's flags and JAX's options. Code patched into a running process is not
in the key. Inference's functions go through `Jit`, keyed on the run they
were loaded from (a second `generate` loads them too).

An entry is made by a run that compiled: an executable that JAX loaded
from its own cache cannot be serialised again (below). Entries live in
`saas_jax_executables/` under JAX's cache folder, so `--nocompilation_cache`
turns both off. They are native code, trusted as the compilation cache is;
their Python part is read by an unpickler that knows only JAX's, jaxlib's
and NumPy's classes.

Every code change makes new keys, so the folder is held to a size
($SAAS_JAX_EXECUTABLE_CACHE_MB, default 2048; 0: no limit): after a store,
the least recently used entries (a load counts as a use) go first.
"""

import functools
import hashlib
import importlib.metadata
import io
import json
import logging
import os
import pickle
import re
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.experimental import serialize_executable

FORMAT = 2  # 2: the header names the executable's devices
FOLDER = "saas_jax_executables"
MAX_MB_VARIABLE = "SAAS_JAX_EXECUTABLE_CACHE_MB"
DEFAULT_MAX_MB = 2048
_STALE_TMP_S = 3600  # a half-written entry this old lost its writer
_PACKAGES = (
  "jax",
  "jaxlib",
  "flax",
  "optax",
  "chex",
  "numpy",
  "ml-collections",
)
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
# JAX options that decide no program (logging, caches, dumps, tracebacks):
# left out of the key, so that turning on jax_log_compiles still loads.
_NOT_PROGRAM = re.compile(
  r"log|cache|explain|traceback|pprint|dump|debug_info|captured_constants"
)


def folder() -> str | None:
  """Where entries go: beside JAX's compilation cache. None when that is
  off, and in multi-process runs (not tested there: they compile)."""
  base = jax.config.jax_compilation_cache_dir
  if not base or jax.process_count() > 1:
    return None
  return os.path.join(base, FOLDER)


def load_or_compile(name: str, jitted, args: tuple, config, like=()):
  """(jitted.lower(*args).compile(), False), or (that executable loaded
  from disk, True).

  `config`: the run's (its values and the files it names are in the key),
  or a digest of whatever besides the arguments decides the program.
  `like`: pytrees whose structure the outputs may repeat (the state);
  outputs are otherwise built-in containers (a dict of metrics).
  """
  where = folder()
  if where is None:
    return jitted.lower(*args).compile(), False
  digest = config if isinstance(config, str) else _config_digest(config)
  key = _key(name, args, like, digest)
  path = os.path.join(where, f"{name}-{key}.bin")
  compiled = _load(path, args, like)
  if compiled is not None:
    return compiled, True
  hits = _cache_hits()
  compiled = jitted.lower(*args).compile()
  if _cache_hits() > hits:
    # Re-serialising an executable that JAX loaded from its own cache
    # gives one whose kernels are missing (jax 0.12, XLA:CPU: "Function
    # ... not found" when it runs): store only what was compiled here.
    return compiled, False
  try:
    _store(path, compiled, args, like)
    _evict(where, keep=path)
  except Exception as e:  # a step that cannot be stored still runs
    logging.warning(
      "%s: executable not stored (%s: %s)", name, type(e).__name__, e
    )
  return compiled, False


class Jit:
  """jax.jit whose executables, one per argument signature, go through this
  cache once `context` is set: a digest of everything besides the
  arguments that decides the program (for inference, the run it was
  loaded from: its spec and weights, which also cover constants taken
  from them), or a function that gives it when first needed (a digest of
  a run's weights is not worth taking with the cache off). Without a
  context (models built in memory) it is jax.jit. Dynamic arguments are
  positional; static ones are keyed by their repr."""

  def __init__(self, fn, name: str, static_argnums=(), static_argnames=()):
    self.name = name
    self.context: str | Callable[[], str] | None = None
    self._fn = fn
    self._static_argnums = tuple(static_argnums)
    self._static_argnames = tuple(static_argnames)
    self._jit = jax.jit(
      fn, static_argnums=static_argnums, static_argnames=static_argnames
    )
    self._compiled = {}  # signature -> Compiled

  def __call__(self, *args, **kwargs):
    if self.context is None or folder() is None:
      return self._jit(*args, **kwargs)
    static = {i: args[i] for i in self._static_argnums}
    static_kw = {k: kwargs.pop(k) for k in self._static_argnames if k in kwargs}
    if kwargs:
      raise TypeError(f"{self.name}: dynamic keyword arguments {list(kwargs)}")
    dynamic = tuple(a for i, a in enumerate(args) if i not in static)
    leaves, tree = jax.tree.flatten(dynamic)
    statics = repr((sorted(static.items()), sorted(static_kw.items())))
    signature = (statics, tree, *map(_signature, leaves))
    compiled = self._compiled.get(signature)
    if compiled is None:
      n = len(args)

      def bound(*dyn):
        rest = iter(dyn)
        full = [static[i] if i in static else next(rest) for i in range(n)]
        return self._fn(*full, **static_kw)

      if callable(self.context):
        self.context = self.context()
      digest = hashlib.sha256(f"{self.context}{statics}".encode()).hexdigest()
      compiled, _ = load_or_compile(self.name, jax.jit(bound), dynamic, digest)
      self._compiled[signature] = compiled
    return compiled(*dynamic)


def tree_digest(*trees) -> str:
  """A digest of JSON-able values and arrays (a run's spec and weights):
  what a Jit's context is made of."""
  h = hashlib.sha256()
  for tree in trees:
    leaves, treedef = jax.tree.flatten(tree)
    h.update(_ADDRESS.sub("", str(treedef)).encode())
    for x in leaves:
      if isinstance(x, (np.ndarray, jax.Array, np.generic)):
        a = np.asarray(x)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
      else:
        h.update(json.dumps(x, sort_keys=True, default=repr).encode())
  return h.hexdigest()


def _config_digest(config) -> str:
  """The part of the key a run's config gives: its values, and the content
  of every file it names (a face model's basis is baked into the step)."""
  h = hashlib.sha256(config.to_json(sort_keys=True).encode())
  for value in _strings(config.to_dict()):
    if os.path.isfile(value):
      h.update(value.encode())
      h.update(_file_digest(value, os.path.getmtime(value)).encode())
  return h.hexdigest()


# ----------------------------------------------------------------- keys --


def _key(name, args, like, config_digest) -> str:
  leaves, tree = jax.tree.flatten((args, like))
  parts = {
    "format": FORMAT,
    "name": name,
    "versions": _versions(),
    "sources": _sources(),
    "config": config_digest,
    "tree": _ADDRESS.sub("", str(tree)),
    "leaves": [_aval(x) for x in leaves],
    "devices": [
      (d.platform, d.device_kind, d.id, d.process_index) for d in jax.devices()
    ],
    "process": (jax.process_index(), jax.process_count()),
    "xla_flags": os.environ.get("XLA_FLAGS", ""),
    "jax_config": {
      k: repr(v)
      for k, v in sorted(jax.config.values.items())
      if not _NOT_PROGRAM.search(k)
    },
  }
  text = _ADDRESS.sub("", json.dumps(parts, sort_keys=True, default=repr))
  return hashlib.sha256(text.encode()).hexdigest()[:32]


def _signature(x):
  """What of an argument the compiled program fixes (hashable, cheap)."""
  return jax.typeof(x), getattr(x, "sharding", None)


def _aval(x) -> str:
  sharding = getattr(x, "sharding", None)
  return repr((jax.typeof(x), sharding))


@functools.cache
def _versions() -> dict:
  return {p: importlib.metadata.version(p) for p in _PACKAGES}


@functools.cache
def _sources() -> str:
  """Digest of every file of the two packages (code and shipped data)."""
  h = hashlib.sha256()
  for package in ("saas_jax", "input_pipeline"):
    top = os.path.join(_ROOT, package)
    for dirpath, dirnames, filenames in os.walk(top):
      dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
      for f in sorted(filenames):
        if f.endswith((".pyc", ".pyo")):
          continue
        path = os.path.join(dirpath, f)
        h.update(os.path.relpath(path, _ROOT).encode())
        with open(path, "rb") as fh:
          h.update(hashlib.sha256(fh.read()).digest())
  return h.hexdigest()


@functools.cache
def _file_digest(path: str, mtime: float) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


def _strings(tree):
  if isinstance(tree, dict):
    for v in tree.values():
      yield from _strings(v)
  elif isinstance(tree, (list, tuple)):
    for v in tree:
      yield from _strings(v)
  elif isinstance(tree, str):
    yield tree


# ------------------------------------------------- JAX's own cache hits --

_hits = threading.local()


def _listen(event: str, **kwargs) -> None:
  if event == "/jax/compilation_cache/cache_hits":
    _hits.count = _cache_hits() + 1


jax.monitoring.register_event_listener(_listen)


def _cache_hits() -> int:
  """JAX compilation-cache hits in this thread so far."""
  return getattr(_hits, "count", 0)


# --------------------------------------------------------- out trees --


def _encode_tree(tree, like_trees) -> Any:
  """An output treedef as JSON: built-in containers, leaves, and references
  to the `like` trees; None where it has anything else."""
  if tree.num_nodes == 1 and tree.num_leaves == 1:
    return "*"
  for i, t in enumerate(like_trees):
    if tree == t:
      return {"like": i}
  node_type, aux = tree.node_data()
  children = [_encode_tree(c, like_trees) for c in tree.children()]
  if any(c is None for c in children):
    return None
  if node_type is type(None):
    return {"none": True}
  if node_type in (tuple, list):
    return {node_type.__name__: children}
  if node_type is dict and all(isinstance(k, str) for k in aux):
    return {"dict": dict(zip(aux, children, strict=True))}
  return None


def _decode_tree(code, like_trees):
  """The inverse of _encode_tree, as a pytree of zeros."""
  if code == "*":
    return 0
  if "like" in code:
    t = like_trees[code["like"]]
    return t.unflatten([0] * t.num_leaves)
  if "none" in code:
    return None
  if "tuple" in code:
    return tuple(_decode_tree(c, like_trees) for c in code["tuple"])
  if "list" in code:
    return [_decode_tree(c, like_trees) for c in code["list"]]
  return {k: _decode_tree(c, like_trees) for k, c in code["dict"].items()}


def _like_trees(like) -> list:
  return [jax.tree.structure(t) for t in like]


# ------------------------------------------------------ store and load --


def _store(path, compiled, args, like) -> None:
  payload, in_tree, out_tree = serialize_executable.serialize(compiled)
  out = _encode_tree(out_tree, _like_trees(like))
  if out is None:
    raise ValueError(f"outputs not describable: {out_tree}")
  if in_tree != jax.tree.structure((args, {})):
    raise ValueError("inputs are not the arguments' tree")
  # Loaded onto the same devices (by default JAX's loader takes them all:
  # a one-device program among eight visible would not run).
  devices = [d.id for d in compiled._executable.xla_executable.local_devices()]
  header = {"format": FORMAT, "out_tree": out, "devices": devices}
  header = json.dumps(header).encode()
  blob = len(header).to_bytes(8, "little") + header + zlib.compress(payload, 1)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f"{path}.tmp{os.getpid()}.{threading.get_ident()}"
  with open(tmp, "wb") as f:
    f.write(blob)
  os.replace(tmp, path)  # readers see the whole entry or none


def _load(path, args, like):
  try:
    with open(path, "rb") as f:
      blob = f.read()
  except FileNotFoundError:
    return None
  try:
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    out_tree = jax.tree.structure(
      _decode_tree(header["out_tree"], _like_trees(like))
    )
    payload = zlib.decompress(blob[8 + n :])
    backend = jax.devices()[0].client
    by_id = {d.id: d for d in backend.devices()}
    devices = [by_id[i] for i in header["devices"]]
    unloaded, args_info_flat, no_kwargs = _Unpickler(
      io.BytesIO(payload), backend, devices
    ).load()
    in_tree = jax.tree.structure((args, {}))
    compiled = jax.stages.Compiled(
      unloaded.load(),
      [],
      in_tree.unflatten(args_info_flat),
      out_tree,
      no_kwargs=no_kwargs,
    )
  except Exception as e:  # a damaged or foreign entry: compile instead
    logging.warning(
      "%s: not loaded (%s: %s); compiling", path, type(e).__name__, e
    )
    return None
  _touch(path)
  return compiled


def _touch(path) -> None:
  """Marks an entry used (its mtime: atime is often not kept)."""
  try:
    os.utime(path)
  except OSError:  # a read-only cache still loads
    pass


def _max_bytes() -> float:
  value = os.environ.get(MAX_MB_VARIABLE, str(DEFAULT_MAX_MB))
  try:
    mb = float(value)
  except ValueError:
    raise ValueError(f"${MAX_MB_VARIABLE}={value!r} is not a number") from None
  return mb * 2**20 if mb > 0 else float("inf")


def _evict(where, keep) -> None:
  """Removes the least recently used entries until the folder is within
  its size (never `keep`, the entry just stored), and stale temporary
  files. Entries another process removes meanwhile are skipped."""
  cap = _max_bytes()
  now = time.time()
  entries = []
  for f in os.scandir(where):
    try:
      st = f.stat()
    except FileNotFoundError:
      continue
    if f.name.endswith(".bin"):
      entries.append((st.st_mtime, st.st_size, f.path))
    elif ".tmp" in f.name and now - st.st_mtime > _STALE_TMP_S:
      _remove(f.path)
  total = sum(size for _, size, _ in entries)
  for _, size, path in sorted(entries):
    if total <= cap:
      break
    if path != keep:
      _remove(path)
      total -= size


def _remove(path) -> None:
  try:
    os.remove(path)
  except FileNotFoundError:
    pass


class _Unpickler(serialize_executable._JaxPjrtUnpickler):
  """JAX's executable unpickler, held to JAX's, jaxlib's and NumPy's
  classes, JAX's functions that rebuild shardings and its PRNG
  implementations (a key's type names them), and NumPy's array rebuilder."""

  def find_class(self, module, name):
    obj = super().find_class(module, name)
    top = module.split(".")[0]
    if top in ("jax", "jaxlib") and isinstance(obj, type):
      return obj
    if module.startswith("jax._src.") and (
      name.startswith("_unpickle_") or module.startswith("jax._src.random.")
    ):
      return obj
    if top == "numpy" and (
      obj in (np.ndarray, np.dtype) or name == "_reconstruct"
    ):
      return obj
    raise pickle.UnpicklingError(f"{module}.{name} is not allowed here")
