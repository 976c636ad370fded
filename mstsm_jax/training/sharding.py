"""Data parallelism as jit over a Mesh (the pmap replacement).

`pmap(step, axis_name='data')` + `pmean(grads)` becomes: one `data` mesh
axis over every device of every host, the batch sharded `P('data')`, the
state replicated `P()`, and `jax.jit`; XLA inserts the gradient all-reduce
and BN statistics are those of the global batch (sync-BN). Axes are
`AxisType.Auto`: explicit axes reject the model's `[N*T] <-> [N, T]` reshape
of a batch-sharded array.
"""
from __future__ import annotations

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from mstsm_jax.errors import UsageError


def make_mesh(devices=None) -> Mesh:
  devices = devices or jax.devices()
  return jax.make_mesh((len(devices),), ('data',),
                       axis_types=(AxisType.Auto,), devices=devices)


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def data_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P('data'))


def put_batch(batch: dict, mesh: Mesh) -> dict:
  """This host's numpy batch -> global arrays sharded over `data`. One
  process puts the whole tree in one call (a call per leaf cost 2.6 ms,
  1 s per 100 steps of the ablation's small model)."""
  s = data_sharded(mesh)
  if jax.process_count() == 1:
    return jax.device_put(jax.tree.map(np.asarray, batch), s)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(s, np.asarray(x)),
      batch)


def check_batch(global_batch: int, mesh: Mesh) -> int:
  """The per-process batch; the global batch must split over devices."""
  n = mesh.devices.size
  if global_batch % n:
    raise UsageError(f'train.batch_size={global_batch} is not divisible by '
                     f'the {n} devices', f'use a multiple of {n}')
  return global_batch // jax.process_count()
