"""Model directories: config + channel spec + orbax checkpoints.

One layout for everything that holds a model (a training workdir, a
converted or a pruned checkpoint), so `evaluate`, `inference.load`,
`prune` and `train --config.init_from=` read any of them:

  DIR/config.json        the run's config (restored by readers)
  DIR/channel_spec.json  only for pruned models: the widths to rebuild
  DIR/best.json          {'step', 'top1'} of the best evaluated checkpoint
  DIR/checkpoints/<step>/state      {'params', 'batch_stats', 'step',
                                      ['opt_state', 'rng']}
  DIR/checkpoints/<step>/data_iter  grain iterator state (training only)
"""
from __future__ import annotations

import json
import pathlib

import grain
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

from mstsm_jax.errors import UsageError
from mstsm_jax.models.resnet import ChannelSpec
from mstsm_jax.training.workdir import check_writable, write_json


def manager(workdir, keep: int = 2):
  """CheckpointManager keeping the latest `keep` plus the best by top-1."""
  policy = pp.AnyPreservationPolicy([
      pp.LatestN(n=keep),
      pp.BestN(get_metric_fn=lambda m: m['top1'], n=1,
               keep_checkpoints_without_metrics=False)])
  options = ocp.CheckpointManagerOptions(
      preservation_policy=policy, create=True)
  return ocp.CheckpointManager(pathlib.Path(workdir).absolute() /
                               'checkpoints', options=options)


def save(mngr, step: int, state, data_iter=None, metrics=None):
  """Asynchronous save of a state pytree (and the grain iterator)."""
  args = {'state': ocp.args.StandardSave(state)}
  if data_iter is not None:
    args['data_iter'] = grain.checkpoint.CheckpointSave(data_iter)
  mngr.save(step, args=ocp.args.Composite(**args), metrics=metrics,
            force=True)


def restore(mngr, step: int, abstract_state, data_iter=None):
  args = {'state': ocp.args.StandardRestore(abstract_state)}
  if data_iter is not None:
    args['data_iter'] = grain.checkpoint.CheckpointRestore(data_iter)
  return mngr.restore(step, args=ocp.args.Composite(**args))


def write_config(workdir, config, channels: ChannelSpec | None = None):
  """config.json (and channel_spec.json), each written atomically."""
  if jax.process_index():
    return
  d = pathlib.Path(workdir)
  d.mkdir(parents=True, exist_ok=True)
  write_json(d / 'config.json', config.to_json_best_effort(indent=1))
  if channels is not None:
    write_json(d / 'channel_spec.json', channels.to_json())


def read_config(workdir) -> ml_collections.ConfigDict:
  path = pathlib.Path(workdir) / 'config.json'
  if not path.is_file():
    raise FileNotFoundError(
        f'{path} not found: {workdir} is not a model directory (a training '
        'workdir or the output of convert/prune)')
  return ml_collections.ConfigDict(json.loads(path.read_text()))


def read_channels(workdir) -> ChannelSpec | None:
  path = pathlib.Path(workdir) / 'channel_spec.json'
  return ChannelSpec.from_json(path.read_text()) if path.is_file() else None


def saved_steps(workdir) -> list[int]:
  """The finished checkpoints (orbax renames a step's folder to its number
  only once it is complete), read without a CheckpointManager."""
  d = pathlib.Path(workdir) / 'checkpoints'
  return sorted(int(p.name) for p in d.iterdir()
                if p.name.isdigit() and (p / 'state').is_dir()) \
      if d.is_dir() else []


def resolve_step(workdir, checkpoint: str = '') -> int:
  """'' or 'latest' -> newest step; 'best' -> best.json's; else a number."""
  steps = saved_steps(workdir)
  if not steps:
    raise FileNotFoundError(f'no checkpoint in {workdir}/checkpoints')
  if checkpoint in ('', 'latest'):
    return max(steps)
  if checkpoint == 'best':
    best = pathlib.Path(workdir) / 'best.json'
    if not best.is_file():
      raise UsageError(f'{best} not found: no evaluation has run in '
                       f'{workdir}', 'use --checkpoint=latest or a step')
    step = json.loads(best.read_text())['step']
    if step not in steps:
      raise UsageError(f'{best} names step {step}, which is not in '
                       f'{workdir}/checkpoints (steps {sorted(steps)})',
                       'the run was written by an older version; use '
                       '--checkpoint=latest or a step')
    return step
  if not checkpoint.isdigit() or int(checkpoint) not in steps:
    raise ValueError(f'--checkpoint={checkpoint}: valid are latest, best or '
                     f'one of the steps {sorted(steps)}')
  return int(checkpoint)


def load_variables(workdir, checkpoint: str = ''):
  """(config, channel spec or None, {'params', 'batch_stats'} as numpy,
  step) of a model directory; callers place them (`jax.device_put`)."""
  config = read_config(workdir)
  channels = read_channels(workdir)
  step = resolve_step(workdir, checkpoint)
  # Restore onto this process's devices, whatever topology saved it (a run
  # on 8 GPUs evaluated, pruned or converted on one device).
  path = pathlib.Path(workdir).absolute() / 'checkpoints' / str(step)
  with ocp.StandardCheckpointer() as ckptr:
    meta = ckptr.metadata(path / 'state').item_metadata
    check_fits(config, channels, meta, workdir, step)
    one = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=one), meta)
    state = ckptr.restore(path / 'state', target)
  variables = jax.device_get({'params': state['params'],
                              'batch_stats': state.get('batch_stats', {})})
  return config, channels, variables, step


def abstract_variables(config, channels=None):
  """{'params', 'batch_stats'} shapes of `config`'s model (no allocation)."""
  import jax.numpy as jnp

  from mstsm_jax.models.mstsm import build_model
  from mstsm_jax.models.task import in_channels
  model = build_model(config.model, channels)
  s = config.data.crop_size
  x = jax.ShapeDtypeStruct((1, config.model.num_segments, s, s,
                            in_channels(config.data)), jnp.float32)
  return jax.eval_shape(model.init, jax.random.key(0), x)


def check_fits(config, channels, meta, workdir, step) -> None:
  """A UsageError when DIR/config.json does not describe the weights in
  the checkpoint (an overwritten or hand-edited config)."""
  from flax import traverse_util
  want = traverse_util.flatten_dict(
      {k: v for k, v in abstract_variables(config, channels).items()
       if k in ('params', 'batch_stats')}, sep='/')
  have = traverse_util.flatten_dict(
      {k: meta[k] for k in ('params', 'batch_stats') if k in meta}, sep='/')
  bad = [f'{k} is {tuple(have[k].shape)} in the checkpoint but '
         f'{tuple(v.shape)} for the config' for k, v in want.items()
         if k in have and tuple(have[k].shape) != tuple(v.shape)]
  missing = [k for k in want if k not in have]
  extra = [k for k in have if k not in want]
  if bad or missing or extra:
    what = bad[:1] + ([f'{len(missing)} tensors the config needs are not '
                       f'in the checkpoint (e.g. {missing[0]})'] if missing
                      else []) + ([f'{len(extra)} checkpoint tensors are '
                                   f'not in the config\'s model (e.g. '
                                   f'{extra[0]})'] if extra else [])
    raise UsageError(
        f'{workdir}/config.json (variant {config.get("variant", "?")}) '
        f'does not describe the weights in {workdir}/checkpoints/{step}: '
        + '; '.join(what),
        'restore the config.json this checkpoint was saved with')


def check_new_model_dir(out_dir) -> None:
  """convert/prune never write over an existing model directory."""
  d = pathlib.Path(out_dir)
  if (d / 'config.json').exists() or (d / 'checkpoints').exists():
    raise UsageError(f'{d} already holds a model', 'pass a new --output or '
                     'remove that directory first')
  check_writable(d, 'output directory')


def write_model(out_dir, config, variables, channels=None, step: int = 0):
  """Writes a model directory holding only variables (convert, prune)."""
  write_config(out_dir, config, channels)
  mngr = manager(out_dir, keep=1)
  save(mngr, step, {'params': variables['params'],
                    'batch_stats': variables['batch_stats'], 'step': step})
  mngr.wait_until_finished()
  mngr.close()


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
  if role == 'stem_conv':
    return np.repeat(src.mean(axis=2, keepdims=True), shape[2], axis=2)
  return None


def merge_variables(init, loaded, backbone: str = 'resnet50'):
  """Fills the model's freshly initialised variables from `loaded`.

  Returns (merged, report). Leaves present in both with equal shapes are
  taken (or adapted, see `adapt`); leaves missing from `loaded` keep their
  init ('missing'); leaves of `loaded` the model lacks are 'unused'. A
  classifier head (`param_role` 'classifier') whose class count differs is
  re-initialised ('reinitialised'); one whose input width differs is not a
  class-count change and is reported under 'mismatched' with every other
  shape that does not fit.
  """
  from flax import traverse_util

  from mstsm_jax.models.mstsm import param_role
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
      merged[key] = jax.numpy.asarray(src, value.dtype)
      continue
    merged[key] = value
    change = f'{key}: {tuple(src.shape)} -> {tuple(value.shape)}'
    role = param_role(key, backbone)
    adapted = adapt(role, src, value.shape)
    if adapted is not None:
      merged[key] = jax.numpy.asarray(adapted, value.dtype)
      report['adapted'].append(change)
    elif role == 'classifier' and (
        src.ndim == 1 or tuple(src.shape[:-1]) == tuple(value.shape[:-1])):
      report['reinitialised'].append(change)
    else:
      report['mismatched'].append(change)
  report['unused'] = sorted(set(flat_loaded) - set(flat_init))
  return traverse_util.unflatten_dict(merged, sep='/'), report


def partial_load_problems(report: dict, backbone: str = 'resnet50'
                          ) -> list[str]:
  """What a merge leaves wrong: backbone tensors at their init, unused
  checkpoint tensors, shapes that do not fit (the expected exceptions, a
  new TFDEM branch, a missing classifier and a classifier re-initialised
  for another class count, are not problems)."""
  from mstsm_jax.models.mstsm import param_role
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


def write_classes(workdir, classes) -> None:
  """classes.json: the class names `predict` prints."""
  if jax.process_index() == 0 and classes:
    write_json(pathlib.Path(workdir) / 'classes.json', list(classes))
