"""Fitting loaded weights into a model: what is taken, adapted, left at init.

`initialise(model, rng, clip_shape, loaded)` gives a model the checkpoint's
variables and initialises only the rest; `merge_variables(init, loaded)`
is its merge, which reports every tensor it could not take as is;
`partial_load_problems` says which of those leave the model wrong;
`merge_report_lines` prints the report (convert, `train
--config.init_from`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from mstsm_jax.models.mstsm import param_role, variable_shapes


def nonfinite(tensors) -> str:
  """'' when every value of the tensors (a pytree, or a flat dict of
  arrays) is finite; else what is not: 'params/fc/kernel holds 3 NaN or
  inf of 2048 values' (and how many other tensors do), for the one line
  that refuses weights a diverged run saved."""
  flat = tensors if all(isinstance(v, np.ndarray) for v in tensors.values()
                        ) else traverse_util.flatten_dict(tensors, sep='/')
  bad = {k: int(np.size(v) - np.isfinite(v).sum()) for k, v in flat.items()
         if not np.isfinite(v).all()}
  if not bad:
    return ''
  k = next(iter(bad))
  return (f'{k} holds {bad[k]} NaN or inf of {np.size(flat[k])} values'
          + (f' (and {len(bad) - 1} more tensors do)' if len(bad) > 1
             else ''))


def adapt(role: str, src, shape):
  """A checkpoint kernel adapted to the model's `shape`, or None.

  - shifted_conv: the channels MSTSM concatenates to a block's first conv
    get zero weights, so a TSM checkpoint computes the same as `mstsm`.
  - stem_conv with another input count (RGB -> 10 flow channels): the RGB
    kernel averaged over its inputs and replicated (TSN's cross-modality
    initialisation).
  """
  src = np.asarray(src)
  if src.ndim != 4 or src.shape[:2] != tuple(shape[:2]) or (
      src.shape[3] != shape[3]):
    return None
  if role == 'shifted_conv' and shape[2] > src.shape[2]:
    pad = np.zeros((*src.shape[:2], shape[2] - src.shape[2], shape[3]),
                   src.dtype)
    return np.concatenate([src, pad], axis=2)
  if role == 'stem_conv' and src.shape[2] == 3:  # RGB -> flow, not back
    return np.repeat(src.mean(axis=2, keepdims=True), shape[2], axis=2)
  return None


def initialise(model, rng, clip_shape, loaded,
               backbone: str = 'resnet50'):
  """(variables, report): `model.init(rng, zeros(clip_shape))`'s variables
  with every tensor of `loaded` that fits (see `merge_variables`).

  Only the tensors left at init are initialised: `model.init` is jitted
  for them alone and XLA drops every other initialiser, with the values the
  whole init gives them. A ResNet-50 checkpoint into MSTSM-TFDEM compiles
  the 16 new tensors' initialisers, not all 281 (2.4 against 17 s on a
  2-core CPU; EfficientNet-B0 2.7 against 31 s), and a checkpoint that
  fills the model compiles nothing.
  """
  clip = jnp.zeros(clip_shape, jnp.float32)
  abstract = variable_shapes(model, tuple(clip_shape))
  merged, report = merge_variables(abstract, loaded, backbone)
  flat = traverse_util.flatten_dict(merged, sep='/')
  todo = [k for k, v in flat.items() if isinstance(v, jax.ShapeDtypeStruct)]
  if todo:
    def init_todo(rng, clip):
      fresh = traverse_util.flatten_dict(model.init(rng, clip), sep='/')
      return {k: fresh[k] for k in todo}
    flat.update(jax.jit(init_todo)(rng, clip))
  return traverse_util.unflatten_dict(flat, sep='/'), report


def merge_variables(init, loaded, backbone: str = 'resnet50'):
  """Fills the model's initialised variables from `loaded`: `init` holds
  arrays, or shapes (`jax.eval_shape`) that stay where nothing is taken.

  Returns (merged, report). Leaves present in both with equal shapes are
  taken (or adapted, see `adapt`); leaves missing from `loaded` keep their
  init ('missing'); leaves of `loaded` the model lacks are 'unused'. A
  classifier head (`param_role` 'classifier') whose class count differs is
  re-initialised ('reinitialised'); one whose input width differs is not a
  class-count change and is reported under 'mismatched' with every other
  shape that does not fit.
  """
  flat_init = traverse_util.flatten_dict(init, sep='/')
  flat_loaded = traverse_util.flatten_dict(loaded, sep='/')
  merged, report = {}, {'missing': [], 'unused': [], 'reinitialised': [],
                        'adapted': [], 'mismatched': []}
  for key, value in flat_init.items():
    if key not in flat_loaded:
      merged[key] = value
      report['missing'].append(key)
      continue
    src = flat_loaded[key]
    if tuple(src.shape) == tuple(value.shape):
      merged[key] = jnp.asarray(src, value.dtype)
      continue
    merged[key] = value
    change = f'{key}: {tuple(src.shape)} -> {tuple(value.shape)}'
    role = param_role(key, backbone)
    adapted = adapt(role, src, value.shape)
    if adapted is not None:
      merged[key] = jnp.asarray(adapted, value.dtype)
      report['adapted'].append(change)
    elif role == 'classifier' and (
        src.ndim == 1 or tuple(src.shape[:-1]) == tuple(value.shape[:-1])):
      report['reinitialised'].append(change)
    else:
      report['mismatched'].append(change)
  # A head whose kernel fits but whose bias does not (or the reverse) is
  # not another class count: its tensors disagree with each other.
  taken = {k for k in flat_init if k in flat_loaded and
           tuple(flat_loaded[k].shape) == tuple(flat_init[k].shape)}
  for change in list(report['reinitialised']):
    key = change.split(':')[0]
    head = key.rsplit('/', 1)[0]
    if any(k.rsplit('/', 1)[0] == head for k in taken):
      report['reinitialised'].remove(change)
      report['mismatched'].append(f'{change} (the rest of {head} fits)')
  report['unused'] = sorted(set(flat_loaded) - set(flat_init))
  return traverse_util.unflatten_dict(merged, sep='/'), report


def partial_load_problems(report: dict, backbone: str = 'resnet50'
                          ) -> list[str]:
  """What a merge leaves wrong: backbone tensors at their init, unused
  checkpoint tensors, shapes that do not fit (the expected exceptions, a
  new TFDEM branch, a missing classifier and a classifier re-initialised
  for another class count, are not problems)."""
  out = []
  at_init = [k for k in report['missing']
             if param_role(k, backbone) not in ('classifier', 'tfdem')]
  if at_init:
    out.append(f'{len(at_init)} backbone tensors would keep their random '
               f'init (e.g. {", ".join(at_init[:3])})')
  if report['mismatched']:
    out.append(f'{len(report["mismatched"])} shapes do not fit (e.g. '
               f'{"; ".join(report["mismatched"][:2])})')
  if report['unused']:
    out.append(f'{len(report["unused"])} checkpoint tensors would go unused '
               f'(e.g. {", ".join(report["unused"][:3])})')
  return out


def merge_report_lines(report: dict) -> list[str]:
  """A merge report (see `merge_variables`, `models.pytorch.convert`) as
  the lines `convert` and `train --config.init_from` print."""
  rows = [f're-initialised (class count differs) {r}'
          for r in report['reinitialised']]
  rows += [f'shape does not fit, kept its init: {r}'
           for r in report['mismatched']]
  rows += [f'adapted {r}' for r in report['adapted']]
  if report.get('new_branch'):
    rows.append(f'TFDEM freshly initialised ({len(report["new_branch"])} '
                'tensors)')
  rows += [f'the file has {n}' for n in report.get('looks_like', [])]
  rows += [f'missing, kept its init: {k}' for k in report['missing']]
  rows += [f'unused: {k}' for k in report['unused']]
  return rows
