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

from mstsm_jax.models.resnet import ChannelSpec


def manager(workdir, keep: int = 2, read_only: bool = False):
  """CheckpointManager keeping the latest `keep` plus the best by top-1."""
  policy = pp.AnyPreservationPolicy([
      pp.LatestN(n=keep),
      pp.BestN(get_metric_fn=lambda m: m['top1'], n=1,
               keep_checkpoints_without_metrics=False)])
  options = ocp.CheckpointManagerOptions(
      preservation_policy=policy, create=not read_only, read_only=read_only,
      enable_async_checkpointing=not read_only)
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
  if jax.process_index():
    return
  d = pathlib.Path(workdir)
  d.mkdir(parents=True, exist_ok=True)
  (d / 'config.json').write_text(config.to_json_best_effort(indent=1))
  if channels is not None:
    (d / 'channel_spec.json').write_text(channels.to_json())


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


def resolve_step(workdir, checkpoint: str = '') -> int:
  """'' or 'latest' -> newest step; 'best' -> best.json's; else a number."""
  mngr = manager(workdir, read_only=True)
  steps = mngr.all_steps()
  if not steps:
    raise FileNotFoundError(f'no checkpoint in {workdir}/checkpoints')
  if checkpoint in ('', 'latest'):
    return max(steps)
  if checkpoint == 'best':
    best = pathlib.Path(workdir) / 'best.json'
    if not best.is_file():
      raise FileNotFoundError(f'{best} not found: no evaluation has run')
    return json.loads(best.read_text())['step']
  if not checkpoint.isdigit() or int(checkpoint) not in steps:
    raise ValueError(f'--checkpoint={checkpoint}: valid are latest, best or '
                     f'one of the steps {sorted(steps)}')
  return int(checkpoint)


def load_variables(workdir, checkpoint: str = ''):
  """(config, channel spec or None, {'params', 'batch_stats'} as numpy,
  step) of a model directory; callers place them (`jax.device_put`)."""
  config = read_config(workdir)
  step = resolve_step(workdir, checkpoint)
  mngr = manager(workdir, read_only=True)
  # Restore onto this process's devices, whatever topology saved it (a run
  # on 8 GPUs evaluated, pruned or converted on one device).
  path = pathlib.Path(workdir).absolute() / 'checkpoints' / str(step)
  meta = ocp.StandardCheckpointer().metadata(path / 'state').item_metadata
  one = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree.map(
      lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=one), meta)
  restored = mngr.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(target)))
  state = restored['state']
  variables = jax.device_get({'params': state['params'],
                              'batch_stats': state.get('batch_stats', {})})
  return config, read_channels(workdir), variables, step


def write_model(out_dir, config, variables, channels=None, step: int = 0):
  """Writes a model directory holding only variables (convert, prune)."""
  write_config(out_dir, config, channels)
  mngr = manager(out_dir, keep=1)
  save(mngr, step, {'params': variables['params'],
                    'batch_stats': variables['batch_stats'], 'step': step})
  mngr.wait_until_finished()
  mngr.close()


SHIFTED_CONVS = ('conv1/kernel', 'expand_conv/kernel')  # see temporal module
STEM_CONVS = ('params/backbone/conv1/kernel', 'params/backbone/stem_conv/kernel')


def adapt(key: str, src, shape):
  """A checkpoint kernel adapted to the model's `shape`, or None.

  - The channels MSTSM concatenates to a block's first conv get zero
    weights, so a TSM checkpoint computes the same as `mstsm`.
  - A stem conv with another input count (RGB -> 10 flow channels) gets
    the RGB kernel averaged over its inputs and replicated (TSN's
    cross-modality initialisation).
  """
  src = np.asarray(src)
  if src.ndim != 4 or src.shape[:2] != tuple(shape[:2]) or (
      src.shape[3] != shape[3]):
    return None
  if key.endswith(SHIFTED_CONVS) and shape[2] > src.shape[2] and (
      key not in STEM_CONVS):
    pad = np.zeros((*src.shape[:2], shape[2] - src.shape[2], shape[3]),
                   src.dtype)
    return np.concatenate([src, pad], axis=2)
  if key in STEM_CONVS:
    return np.repeat(src.mean(axis=2, keepdims=True), shape[2], axis=2)
  return None


def merge_variables(init, loaded, *, reinit=('fc',)):
  """Fills the model's freshly initialised variables from `loaded`.

  Returns (merged, report). Leaves present in both with equal shapes are
  taken (or adapted, see `adapt`); leaves missing from `loaded` keep their
  init (reported as missing); leaves of `loaded` the model lacks are
  reported as unused. A shape mismatch is a ValueError naming the key and
  both shapes, except under a top-level module in `reinit` (a classifier
  with another class count), which is re-initialised with a message.
  """
  from flax import traverse_util
  flat_init = traverse_util.flatten_dict(init, sep='/')
  flat_loaded = traverse_util.flatten_dict(loaded, sep='/')
  merged, report = {}, {'missing': [], 'unused': [], 'reinitialised': [],
                        'adapted': []}
  for key, value in flat_init.items():
    if key not in flat_loaded:
      merged[key] = value
      report['missing'].append(key)
      continue
    src = flat_loaded[key]
    if tuple(src.shape) != tuple(value.shape):
      adapted = adapt(key, src, value.shape)
      if adapted is not None:
        merged[key] = jax.numpy.asarray(adapted, value.dtype)
        report['adapted'].append(f'{key}: {tuple(src.shape)} -> '
                                 f'{tuple(value.shape)}')
        continue
      if key.split('/')[1] in reinit:
        merged[key] = value
        report['reinitialised'].append(
            f'{key}: {tuple(src.shape)} -> {tuple(value.shape)}')
        continue
      raise ValueError(f'shape mismatch for {key}: checkpoint has '
                       f'{tuple(src.shape)}, the model needs '
                       f'{tuple(value.shape)}')
    merged[key] = jax.numpy.asarray(src, value.dtype)
  report['unused'] = sorted(set(flat_loaded) - set(flat_init))
  return traverse_util.unflatten_dict(merged, sep='/'), report


def write_classes(workdir, classes) -> None:
  """classes.json: the class names `predict` prints."""
  if jax.process_index() == 0 and classes:
    (pathlib.Path(workdir) / 'classes.json').write_text(
        json.dumps(list(classes)))
