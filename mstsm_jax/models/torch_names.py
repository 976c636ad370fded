"""PyTorch tensors under Flax names: the layouts every converter name map
(`Backbone.converter.to_flax`) shares.

Each helper takes a Flax module path ('backbone/layer1_0/conv1'), a torch
leaf name ('weight', 'bias', 'running_mean', ...) and the tensor, and
returns {flat Flax key: array}: conv weights OIHW -> HWIO kernels, Linear
weights transposed, BN weight/bias -> scale/bias and running statistics ->
batch_stats mean/var. A leaf a helper does not know is kept under
'unknown/', so the conversion reports it unused instead of dropping it.
"""
from __future__ import annotations

import numpy as np

BN_LEAVES = {'weight': ('params', 'scale'), 'bias': ('params', 'bias'),
             'running_mean': ('batch_stats', 'mean'),
             'running_var': ('batch_stats', 'var')}


def conv(path: str, leaf: str, v) -> dict:
  if leaf == 'weight':  # OIHW -> HWIO; another rank: as is, a misfit
    v = np.asarray(v)   # the report names with both shapes
    return {f'params/{path}/kernel': v.transpose(2, 3, 1, 0)
            if v.ndim == 4 else v}
  if leaf == 'bias':
    return {f'params/{path}/bias': v}
  return {f'unknown/{path}.{leaf}': v}


def dense(path: str, leaf: str, v) -> dict:
  if leaf == 'weight':
    return {f'params/{path}/kernel': np.asarray(v).T}
  if leaf == 'bias':
    return {f'params/{path}/bias': v}
  return {f'unknown/{path}.{leaf}': v}


def norm(path: str, leaf: str, v) -> dict:
  if leaf not in BN_LEAVES:
    return {f'unknown/{path}.{leaf}': v}
  coll, name = BN_LEAVES[leaf]
  return {f'{coll}/{path}/{name}': v}
