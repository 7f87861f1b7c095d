"""Device mesh and shardings (Auto axes; jax.jit with shardings, no pjit).

The mesh has a "data" axis (the batch is split over it) and a "model" axis
(large weight matrices are split over their last dimension). Devices are
laid out in process order, so process p's devices hold block p of the batch,
which is how `to_global` assembles host-local batches.
"""

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

# Weights smaller than this stay replicated even on a model axis.
MIN_SHARDED_SIZE = 2**16


def make_mesh(shape=(-1, 1), axes=("data", "model")) -> Mesh:
  devices = np.array(jax.devices())
  shape = list(shape)
  if shape.count(-1) > 1:
    raise ValueError(f"at most one -1 in mesh shape {shape}")
  known = int(np.prod([s for s in shape if s != -1]))
  if -1 in shape:
    shape[shape.index(-1)] = devices.size // known
  size = int(np.prod(shape))
  if size < devices.size and jax.process_count() == 1:
    devices = devices[:size]  # an explicit smaller mesh (tests, debugging)
  if size != devices.size:
    raise ValueError(f"mesh {shape} does not fit {devices.size} devices")
  return Mesh(
    devices.reshape(shape), tuple(axes), axis_types=(AxisType.Auto,) * len(axes)
  )


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P("data"))


def param_sharding(
  mesh: Mesh, shape, min_size: int = MIN_SHARDED_SIZE
) -> NamedSharding:
  """Last dimension over "model" for large enough, divisible weights."""
  model = mesh.shape.get("model", 1)
  if (
    model > 1
    and len(shape) >= 2
    and shape[-1] % model == 0
    and int(np.prod(shape)) >= min_size
  ):
    return NamedSharding(mesh, P(*([None] * (len(shape) - 1)), "model"))
  return replicated(mesh)


def tree_shardings(mesh: Mesh, abstract_tree, min_size=MIN_SHARDED_SIZE):
  """Shardings for a pytree of arrays (params, optimizer state, ...)."""
  return jax.tree.map(
    lambda x: param_sharding(mesh, getattr(x, "shape", ()), min_size),
    abstract_tree,
  )


def to_global(mesh: Mesh, batch: dict) -> dict:
  """Host-local NumPy batch -> global arrays split over the data axis."""
  sharding = batch_sharding(mesh)
  return {
    k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
    for k, v in batch.items()
  }
