"""Similar-kernel pruning on parameter pytrees (paper §3.5, Figures 7-8).

Targets the layers that see shifted features: conv1 of every bottleneck.
- K_GM (eq. 5-6): the kernel with the smallest summed L2 distance to all
  other kernels of a layer; kernels are ranked by their distance to it
  (eq. 7), ties by index.
- Output pruning (R_out): the C_out / R_out conv1 kernels nearest K_GM are
  dropped with their BN entries and conv2's matching input channels.
- Input averaging (R_in): in the layer feeding conv1 (the previous block's
  conv3, or the stem conv for layer1_0), the C / R_in kernels nearest its
  K_GM are found; before conv1 those input channels are averaged into one
  and conv1's weights for them are summed onto it. Only channels the
  temporal module leaves in place ([2*fold, C)) are candidates, so a merge
  never mixes frames; the identity path keeps every channel.
The result is a smaller dense pytree plus the `ChannelSpec` it needs, saved
as channel_spec.json beside the checkpoint so it loads without the original.
With R_out = 8 on ResNet-50 MSTSM-TFDEM (101 classes): 24,450,186 ->
22,425,754 parameters (the paper's 22.4M).
"""
from __future__ import annotations

import numpy as np

from mstsm_jax.errors import UsageError
from mstsm_jax.models.resnet import BlockSpec, ChannelSpec
from mstsm_jax.ops.shift import ShiftSpec


def kernel_rows(kernel) -> np.ndarray:
  """HWIO kernel -> `[C_out, H*W*C_in]`, one row per output kernel."""
  k = np.asarray(kernel, np.float64)
  return np.moveaxis(k, -1, 0).reshape(k.shape[-1], -1)


def pairwise_distances(rows: np.ndarray) -> np.ndarray:
  sq = (rows ** 2).sum(1)
  d2 = sq[:, None] + sq[None, :] - 2 * rows @ rows.T
  return np.sqrt(np.maximum(d2, 0.0))


def geometric_median(rows: np.ndarray) -> int:
  """eq. 5-6: argmin_i sum_j ||K_i - K_j||_2 (first index on ties)."""
  return int(np.argmin(pairwise_distances(rows).sum(1)))


def rank_by_similarity(rows: np.ndarray, candidates=None) -> np.ndarray:
  """eq. 7: kernel indices sorted by distance to K_GM, nearest first.

  K_GM is taken over all kernels; `candidates` restricts what is ranked.
  """
  gm = rows[geometric_median(rows)]
  idx = np.arange(len(rows)) if candidates is None else np.asarray(
      candidates)
  d = np.sqrt(((rows[idx] - gm) ** 2).sum(1))
  return idx[np.argsort(d, kind='stable')]


def _get(tree, path):
  for k in path:
    tree = tree[k]
  return tree


def _set(tree, path, value):
  for k in path[:-1]:
    tree = tree[k]
  tree[path[-1]] = value


def copy_tree(tree):
  return {k: copy_tree(v) if isinstance(v, dict) else np.asarray(v)
          for k, v in tree.items()}


def feeding_kernel(params, channels: ChannelSpec, name: str):
  """The kernel whose outputs are block `name`'s input channels."""
  names = channels.block_names()
  i = names.index(name)
  if i == 0:
    return params['backbone']['conv1']['kernel']
  return params['backbone'][names[i - 1]]['conv3']['kernel']


def check_ratios(r_out: int, r_in: int) -> None:
  """Ratios are divisors >= 2 (8 drops 1/8 of the kernels) or 0 (skip)."""
  for flag, r in (('r_out', r_out), ('r_in', r_in)):
    if r < 0 or r == 1:
      raise UsageError(f'--{flag}={r}: a pruning ratio is a divisor >= 2 (8 '
                       'drops 1/8 of the kernels) or 0 to skip',
                       'pass e.g. --r_out=8 (the default) or --r_in=4')
  if not r_out and not r_in:
    raise UsageError('--r_out=0 --r_in=0 prunes nothing',
                     'fix --r_out or --r_in: e.g. --r_out=8 (the default) '
                     'or --r_in=4')


def prune(variables: dict, channels: ChannelSpec, shift: ShiftSpec,
          r_out: int = 8, r_in: int = 0, shift_every: int = 1):
  """Returns (pruned variables, new ChannelSpec, per-block report).

  `shift_every`: blocks with an index that is not a multiple carry no
  shift (ResNet-101's official placement), so all their inputs may merge.

  Pure: `variables` ({'params', 'batch_stats'}) is not modified.
  """
  check_ratios(r_out, r_in)
  params = copy_tree(variables['params'])
  stats = copy_tree(variables['batch_stats'])
  original = variables['params']
  report = []
  for name in channels.block_names():
    spec = channels.block(name)
    if spec.merge:
      raise ValueError(f'{name} already has merged inputs: prune the '
                       'unpruned checkpoint instead')
    p, s = params['backbone'][name], stats['backbone'][name]
    row = {'block': name}
    # Input averaging: a group of conv1 input channels -> one.
    merge = ()
    if r_in:
      feed = kernel_rows(feeding_kernel(original, channels, name))
      c = feed.shape[0]
      n = c // r_in
      shifted = int(name.split('_')[1]) % shift_every == 0
      start = 2 * shift.fold(c) if shifted else 0  # inputs left in place
      if n >= 2:
        merge = tuple(sorted(int(i) for i in rank_by_similarity(
            feed, np.arange(start, c))[:n]))
        k = p['conv1']['kernel']
        keep = [i for i in range(k.shape[2]) if i not in set(merge)]
        merged = k[:, :, list(merge)].sum(axis=2, keepdims=True)
        p['conv1']['kernel'] = np.concatenate([k[:, :, keep], merged],
                                              axis=2)
        row['merged_inputs'] = len(merge)
    # Output pruning of conv1 (+ bn1, conv2's inputs).
    width1 = spec.width1
    if r_out:
      k1 = original['backbone'][name]['conv1']['kernel']
      n = k1.shape[-1] // r_out
      drop = set(int(i) for i in rank_by_similarity(kernel_rows(k1))[:n])
      keep = [i for i in range(k1.shape[-1]) if i not in drop]
      p['conv1']['kernel'] = p['conv1']['kernel'][..., keep]
      for coll, leaves in ((p['bn1'], ('scale', 'bias')),
                           (s['bn1'], ('mean', 'var'))):
        for leaf in leaves:
          coll[leaf] = coll[leaf][keep]
      p['conv2']['kernel'] = p['conv2']['kernel'][:, :, keep]
      width1 = len(keep)
      row['dropped_kernels'] = n
    channels = channels.replace_block(name, BlockSpec(width1, spec.width2,
                                                      merge))
    report.append(row)
  return {'params': params, 'batch_stats': stats}, channels, report
