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
import sys

import grain
import jax
import ml_collections
import orbax.checkpoint as ocp
from flax import traverse_util
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

from mstsm_jax import configs
from mstsm_jax.errors import UsageError, one_line
from mstsm_jax.models import fit
from mstsm_jax.models.mstsm import build_model, variable_shapes
from mstsm_jax.models.resnet import ChannelSpec
from mstsm_jax.models.task import in_channels
from mstsm_jax.files import check_writable, write_json


def manager(workdir, keep: int = 2, best_before: int | None = None):
  """CheckpointManager keeping the latest `keep` plus the best by top-1,
  and `best_before` (best.json's step when a run resumes: orbax does not
  read back the metrics of checkpoints an earlier process saved, so its
  best-of policy would delete that one).

  Saves are synchronous: a failed write (full disk, file-size limit)
  surfaces at `save` as one error, before best.json can name the step."""
  policy = pp.AnyPreservationPolicy([
      pp.LatestN(n=keep),
      pp.BestN(get_metric_fn=lambda m: m['top1'], n=1,
               keep_checkpoints_without_metrics=False),
      *([pp.CustomSteps([best_before])] if best_before is not None
        else [])])
  options = ocp.CheckpointManagerOptions(
      preservation_policy=policy, create=True,
      enable_async_checkpointing=False)
  return ocp.CheckpointManager(pathlib.Path(workdir).absolute() /
                               'checkpoints', options=options)


def save(mngr, step: int, state, data_iter=None, metrics=None):
  """Writes checkpoint `step` (state pytree and grain iterator) whole, or
  raises a one-line UsageError; a partial write stays in orbax's temporary
  folder, which no reader takes for a checkpoint."""
  if jax.process_count() == 1:
    # orbax saves an array replicated over N devices as N slices cut with
    # eager jax ops (a compilation per shape: on 8 CPU devices, 16 s of a
    # tiny training job's 40 s); the copy on one device writes the same
    # files.
    state = jax.device_put(state, jax.local_devices()[0])
  args = {'state': ocp.args.StandardSave(state)}
  if data_iter is not None:
    args['data_iter'] = grain.checkpoint.CheckpointSave(data_iter)
  try:
    mngr.save(step, args=ocp.args.Composite(**args), metrics=metrics,
              force=True)
    mngr.wait_until_finished()
  except (OSError, ValueError, RuntimeError) as e:
    steps = [s for s in saved_steps(mngr.directory.parent) if s != step]
    raise UsageError(
        f'could not write checkpoint {step} to {mngr.directory} '
        f'({reason(e)})',
        'free disk space or raise the file-size limit (ulimit -f), then '
        'restart with the same --workdir: it resumes from '
        + (f'checkpoint {max(steps)}' if steps else 'the start')) from e


class Damaged(Exception):
  """A checkpoint that reads but cannot be used (its message says why)."""


def reason(e: BaseException) -> str:
  """An exception as one short line (tensorstore and orbax errors are
  many lines; OSError keeps its strerror)."""
  if isinstance(e, Damaged):
    return str(e)
  if isinstance(e, OSError) and e.strerror:
    return f'{type(e).__name__}: {e.strerror}'
  return one_line(e)


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
  if not pathlib.Path(workdir).exists():
    raise UsageError(f'{workdir} not found: it is not a model directory, '
                     'nor a file', 'give a training workdir, a directory '
                     'written by convert or prune, or an exported file')
  if not path.is_file():
    raise UsageError(
        f'{path} not found: {workdir} is not a model directory',
        'give a training workdir or a directory written by convert or prune '
        '(or an exported file)')
  try:
    config = ml_collections.ConfigDict(json.loads(path.read_text()))
  except ValueError as e:
    raise UsageError(f'{path} is not valid JSON ({e})',
                     'restore it from a backup') from e
  return configs.validate(config, prefix=f'{path}: ')


def read_channels(workdir) -> ChannelSpec | None:
  path = pathlib.Path(workdir) / 'channel_spec.json'
  return ChannelSpec.from_json(path.read_text()) if path.is_file() else None


def saved_steps(workdir) -> list[int]:
  """The finished checkpoints (orbax renames a step's folder to its number
  only once it is complete; a damaged one set aside is `N.damaged`), read
  without a CheckpointManager."""
  d = pathlib.Path(workdir) / 'checkpoints'
  return sorted(int(p.name) for p in d.iterdir()
                if p.name.isdigit() and (p / 'state').is_dir()) \
      if d.is_dir() else []


def read_best(workdir) -> dict | None:
  """best.json ({'step', 'top1'}), or None when no evaluation ran."""
  path = pathlib.Path(workdir) / 'best.json'
  if not path.is_file():
    return None
  try:
    return json.loads(path.read_text())
  except ValueError as e:
    raise UsageError(f'{path} is not valid JSON ({e})',
                     'delete it: the next evaluation writes it again') from e


def resolve_step(workdir, checkpoint: str = '') -> int:
  """'' or 'latest' -> newest step; 'best' -> best.json's; else a number."""
  steps = saved_steps(workdir)
  if not steps:
    raise UsageError(f'no checkpoint in {workdir}/checkpoints',
                     'train it first (a run saves one each epoch), or give '
                     'a model directory written by train, convert or prune')
  if checkpoint in ('', 'latest'):
    return max(steps)
  if checkpoint == 'best':
    best = read_best(workdir)
    if best is None:
      raise UsageError(f'{workdir}/best.json not found: no evaluation has '
                       f'run in {workdir}', 'use --checkpoint=latest or a '
                       'step')
    if best['step'] not in steps:
      raise UsageError(f'{workdir}/best.json names step {best["step"]}, '
                       f'which is not in {workdir}/checkpoints (steps '
                       f'{sorted(steps)})', 'use --checkpoint=latest or a '
                       'step')
    return best['step']
  if not checkpoint.isdigit() or int(checkpoint) not in steps:
    raise UsageError(f'--checkpoint={checkpoint}: not a checkpoint of '
                     f'{workdir}', f'valid: latest, best or one of the '
                     f'steps {sorted(steps)}')
  return int(checkpoint)


def newest_intact(workdir, read, checkpoint: str = ''):
  """(step, read(step)) for the checkpoint `checkpoint` names; for ''
  / 'latest', the newest one that reads: each damaged newer one is said
  on stderr and skipped. A damaged checkpoint named explicitly (a step,
  'best'), or no intact one at all, is a one-line UsageError naming it."""
  step = resolve_step(workdir, checkpoint)
  candidates = ([s for s in reversed(saved_steps(workdir))]
                if checkpoint in ('', 'latest') else [step])
  damaged = []
  for s in candidates:
    try:
      out = read(s)
    except UsageError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      damaged.append((s, reason(e), isinstance(e, Damaged)))
      continue
    for d, why, _ in damaged:
      print(f'warning: {workdir}/checkpoints/{d} is damaged ({why}); '
            f'using checkpoint {s}, the newest intact one', file=sys.stderr)
    return s, out
  d, why, _ = damaged[0]
  diverged = all(nan for _, _, nan in damaged)  # a backup holds the same
  raise UsageError(
      f'{workdir}/checkpoints/{d} is damaged ({why})' + (
          f' and so are the {len(damaged) - 1} older checkpoints'
          if len(damaged) > 1 else ''),
      ('its weights diverged: train again (lower train.lr), or convert '
       'the model from a sound file' if diverged else
       'restore the folder from a backup') + (
          '' if checkpoint in ('', 'latest') else
          ', or load another with --checkpoint=latest or a step'))


def set_aside_newer(workdir, step: int) -> list[int]:
  """Renames every checkpoint newer than `step` (the damaged ones a resumed
  run skipped) to `checkpoints/N.damaged`: kept for inspection, never read
  again, and out of the way of the steps the run saves anew."""
  newer = [s for s in saved_steps(workdir) if s > step]
  if jax.process_index() == 0:
    root = pathlib.Path(workdir) / 'checkpoints'
    for s in newer:
      (root / str(s)).rename(root / f'{s}.damaged')
      print(f'warning: set aside {root / str(s)} as {s}.damaged',
            file=sys.stderr)
  return newer


def restore(mngr, step: int, abstract_state, data_iter=None):
  """Checkpoint `step` of a training run: its state (shaped and sharded
  as `abstract_state`) and, given `data_iter`, the grain iterator."""
  args = {'state': ocp.args.StandardRestore(abstract_state)}
  if data_iter is not None:
    args['data_iter'] = grain.checkpoint.CheckpointRestore(data_iter)
  return mngr.restore(step, args=ocp.args.Composite(**args))


def load_variables(workdir, checkpoint: str = ''):
  """(config, channel spec or None, {'params', 'batch_stats'} as numpy,
  step) of a model directory; callers place them (`jax.device_put`). The
  newest intact checkpoint when `checkpoint` is ''/'latest' (a damaged
  newer one is said and skipped)."""
  config = read_config(workdir)
  channels = read_channels(workdir)
  root = pathlib.Path(workdir).absolute() / 'checkpoints'
  # The state item alone, through its handler: no CheckpointManager, which
  # warns about the training run's other items (the data iterator).
  reader = ocp.StandardCheckpointHandler()

  def read(step):
    path = root / str(step) / 'state'
    meta = reader.metadata(path)
    check_fits(config, channels, meta, workdir, step)
    # Onto this process's first device, whatever topology saved it (a run
    # on 8 GPUs evaluated, pruned or converted on one device).
    one = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    state = reader.restore(path, args=ocp.args.StandardRestore(jax.tree.map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=one),
        meta)))
    variables = jax.device_get({'params': state['params'],
                                'batch_stats': state.get('batch_stats', {})})
    if bad := fit.nonfinite(variables):  # damaged: an older one is taken
      raise Damaged(bad)
    return variables

  try:
    step, variables = newest_intact(workdir, read, checkpoint)
  finally:
    reader.close()
  return config, channels, variables, step


def abstract_variables(config, channels=None):
  """{'params', 'batch_stats'} shapes of `config`'s model (no allocation)."""
  s = config.data.crop_size
  return variable_shapes(build_model(config.model, channels),
                         (1, config.model.num_segments, s, s,
                          in_channels(config.data)))


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


def check_new_model_dir(out_dir, source: str = '') -> None:
  """convert/prune never write over an existing model directory, nor
  into the checkpoints of the `source` one they read (its checkpoints
  folder held a second model that way)."""
  d = pathlib.Path(out_dir)
  if (d / 'config.json').exists() or (d / 'checkpoints').exists():
    raise UsageError(f'{d} already holds a model', 'pass a new --output or '
                     'remove that directory first')
  if source and d.resolve().is_relative_to(
      pathlib.Path(source).resolve() / 'checkpoints'):
    raise UsageError(f'--output={out_dir} is inside {source}/checkpoints, '
                     'the model this job reads', 'write it to a directory '
                     'of its own')
  check_writable(d, 'output directory')


def write_model(out_dir, config, variables, channels=None, step: int = 0):
  """Writes a model directory holding only variables (convert, prune)."""
  write_config(out_dir, config, channels)
  mngr = manager(out_dir, keep=1)
  save(mngr, step, {'params': variables['params'],
                    'batch_stats': variables['batch_stats'], 'step': step})
  mngr.wait_until_finished()
  mngr.close()


def read_classes(workdir, num_classes: int) -> list[str] | None:
  """classes.json's names, or None when the directory has none. One name
  per class the model scores, each once: otherwise scores would be
  printed under the wrong names, or some under none."""
  path = pathlib.Path(workdir) / 'classes.json'
  if not path.is_file():
    return None
  hint = ('restore the classes.json written with this model (a JSON list '
          'of its class names, in index order), or delete it')
  try:
    names = json.loads(path.read_text(encoding='utf-8'))
  except (ValueError, UnicodeDecodeError) as e:
    raise UsageError(f'{path} is not a JSON list of names ({e})',
                     hint) from None
  if not (isinstance(names, list) and all(isinstance(n, str)
                                          for n in names)):
    raise UsageError(f'{path} is not a JSON list of names', hint)
  if len(names) != num_classes:
    raise UsageError(f'{path} names {len(names)} classes, but the model '
                     f'scores {num_classes}', hint)
  if len(set(names)) != len(names):
    twice = next(n for n in names if names.count(n) > 1)
    raise UsageError(f'{path} names class {twice!r} twice', hint)
  return names


def check_same_classes(workdir, num_classes: int, classes, data: str) -> None:
  """A UsageError when the model in `workdir` was trained on other classes
  than the dataset's `classes` (its data rebuilt since: every score would
  be counted under another class's name)."""
  saved = read_classes(workdir, num_classes)
  if saved is None or list(saved) == list(classes):
    return
  i = next((i for i, (a, b) in enumerate(zip(saved, classes)) if a != b),
           min(len(saved), len(classes)))
  had = repr(saved[i]) if i < len(saved) else 'none'
  has = repr(classes[i]) if i < len(classes) else 'none'
  raise UsageError(
      f'{workdir}/classes.json: the model was trained on {len(saved)} '
      f'classes, {data} has {len(classes)} other ones (class {i}: {had} '
      f'in the model, {has} in the data)', 'use the data the model was '
      'trained on (--data_dir), or train a new run on this data')


def write_classes(workdir, classes) -> None:
  """classes.json: the class names `predict` prints."""
  if jax.process_index() == 0 and classes:
    write_json(pathlib.Path(workdir) / 'classes.json', list(classes))
