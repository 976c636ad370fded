"""Model directories: the one owner of their files.

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
import jax.numpy as jnp
import ml_collections
import orbax.checkpoint as ocp
from flax import traverse_util
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

from mstsm_jax.errors import UsageError
from mstsm_jax.models.mstsm import build_model
from mstsm_jax.models.resnet import ChannelSpec
from mstsm_jax.models.task import in_channels
from mstsm_jax.files import check_writable, write_json


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
  model = build_model(config.model, channels)
  s = config.data.crop_size
  x = jax.ShapeDtypeStruct((1, config.model.num_segments, s, s,
                            in_channels(config.data)), jnp.float32)
  return jax.eval_shape(model.init, jax.random.key(0), x)


def check_fits(config, channels, meta, workdir, step) -> None:
  """A UsageError when DIR/config.json does not describe the weights in
  the checkpoint (an overwritten or hand-edited config)."""
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


def read_classes(workdir) -> list[str] | None:
  """classes.json's names, or None when the directory has none."""
  path = pathlib.Path(workdir) / 'classes.json'
  return json.loads(path.read_text()) if path.is_file() else None


def write_classes(workdir, classes) -> None:
  """classes.json: the class names `predict` prints."""
  if jax.process_index() == 0 and classes:
    write_json(pathlib.Path(workdir) / 'classes.json', list(classes))
