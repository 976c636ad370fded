"""The training loop: `train_and_evaluate(config, workdir)`.

Data parallel over every device of every host (jit over a Mesh, see
sharding.py). Restarting with the same workdir resumes from the latest
checkpoint, model, optimizer, RNG and input iterator included, so the
continued run sees the same batches. SIGTERM saves and exits cleanly.

The workdir is protected (training/workdir.py): one live run at a time, a
restart must use the saved config, config.json is written once, and the
best checkpoint (best.json) is never removed by retention: only a strictly
better evaluation carries metrics to orbax's best-N policy.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import pathlib
import signal
import time

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from mstsm_jax.console import LOG
from mstsm_jax.data import pipeline
from mstsm_jax.errors import UsageError
from mstsm_jax.evaluation import evaluator, metrics
from mstsm_jax.models.mstsm import build_model
from mstsm_jax.models.task import in_channels
from mstsm_jax import files, modeldir
from mstsm_jax.models import fit
from mstsm_jax.training import sharding
from mstsm_jax.training import workdir as workdirs
from mstsm_jax.training.optimizer import make_optimizer
from mstsm_jax.training.steps import TrainState, create_state, jit_steps


class NonFiniteLoss(FloatingPointError):
  pass


@dataclasses.dataclass
class Writer:
  """metrics.jsonl and TensorBoard events in the workdir (process 0)."""
  workdir: pathlib.Path

  def __post_init__(self):
    self.on = jax.process_index() == 0
    self.records = []
    if self.on:
      from tensorboardX import SummaryWriter
      self.tb = SummaryWriter(str(self.workdir / 'tensorboard'))
      self.jsonl = open(self.workdir / 'metrics.jsonl', 'a')

  def write(self, step: int, values: dict):
    row = {'step': int(step), **{k: float(v) for k, v in values.items()}}
    self.records.append(row)
    if self.on:
      self.jsonl.write(json.dumps(row) + '\n')
      self.jsonl.flush()
      for k, v in values.items():
        self.tb.add_scalar(k, float(v), step)

  def close(self):
    if self.on:
      self.jsonl.close()
      self.tb.close()


def load_records(workdir) -> list[dict]:
  path = pathlib.Path(workdir) / 'metrics.jsonl'
  if not path.is_file():
    return []
  return [json.loads(ln) for ln in path.read_text().splitlines() if ln]


def init_from_checkpoint(config, model_vars):
  """Variables for fine-tuning from `config.init_from` (convert/train/prune
  output). Every classifier head of another class count is re-initialised;
  backbone tensors left at init, unused or misfitting tensors are an error
  unless `init_partial`."""
  _, _, loaded, step = modeldir.load_variables(config.init_from)
  backbone = config.model.backbone
  merged, report = fit.merge_variables(model_vars, loaded, backbone)
  problems = fit.partial_load_problems(report, backbone)
  if problems and not config.init_partial:
    raise UsageError(
        f'--config.init_from={config.init_from} does not fit this model: '
        + '; '.join(problems),
        'pass --config.init_partial=True to start from it anyway')
  print(f'initialised from {config.init_from} (step {step})', file=LOG)
  for line in fit.merge_report_lines(report):
    print(f'  {line}', file=LOG)
  return merged


def train_and_evaluate(config, workdir) -> dict:
  """Trains `config` in `workdir` (resuming if it has checkpoints) and
  returns the final evaluation {'top1', 'top5', 'mean_class_acc', ...}."""
  t_start = time.time()
  config = copy.deepcopy(config)  # derived here, never edited in place
  workdir = files.check_writable(workdir)
  tc = config.train

  # ---------------------------------------------------------------- mesh
  mesh = sharding.make_mesh()
  per_host = sharding.check_batch(tc.batch_size, mesh)

  # --------------------------------------------------------------- input
  train_split = pipeline.open_split(config.data, train=True)
  test_split = pipeline.open_split(config.data, train=False)
  classes = train_split.classes
  if config.model.num_classes == 0:
    config.model.num_classes = len(classes)
  elif config.model.num_classes != len(classes):
    raise UsageError(f'model.num_classes={config.model.num_classes} but the '
                     f'dataset has {len(classes)} classes',
                     f'pass --config.model.num_classes={len(classes)}')
  steps_per_epoch = len(train_split.source) // tc.batch_size
  if not steps_per_epoch:
    raise UsageError(f'{len(train_split.source)} training videos are fewer '
                     f'than one batch of train.batch_size={tc.batch_size}',
                     'lower --config.train.batch_size')
  total_steps = int(tc.epochs * steps_per_epoch)
  if tc.max_steps:
    total_steps = min(total_steps, tc.max_steps)

  # ------------------------------------------------- the workdir is ours
  workdirs.check_resume(workdir, config)  # before touching anything,
  # even the lock file
  lock = workdirs.lock(workdir)
  try:
    return _train(config, workdir, mesh, per_host, train_split, test_split,
                  steps_per_epoch, total_steps, t_start)
  finally:
    lock.release()


def _train(config, workdir, mesh, per_host, train_split, test_split,
           steps_per_epoch, total_steps, t_start) -> dict:
  tc = config.train
  classes = train_split.classes
  # Again under the lock: a run that ended between the first check and the
  # lock may have written config.json since.
  resuming = workdirs.check_resume(workdir, config)
  train_iter = iter(pipeline.train_dataset(
      train_split, config.data, config.model.num_segments, per_host,
      config.seed, jax.process_index(), jax.process_count()))

  # --------------------------------------------------------------- model
  channels = (modeldir.read_channels(config.init_from)
              if config.init_from else None)
  channels = channels or modeldir.read_channels(workdir)
  model = build_model(config.model, channels)
  s = config.data.crop_size
  clip_shape = (1, config.model.num_segments, s, s, in_channels(config.data))
  abstract_vars = jax.eval_shape(model.init, jax.random.key(0),
                                 jnp.zeros(clip_shape))
  tx, schedule = make_optimizer(tc, config.model, abstract_vars['params'],
                                steps_per_epoch)
  rep = sharding.replicated(mesh)

  # ---------------------------------------------------------- checkpoint
  variables = None
  if config.init_from and not modeldir.saved_steps(workdir):
    # Before anything is written: a checkpoint that does not fit stops here.
    init = jax.jit(model.init)(jax.random.key(config.seed),
                               jnp.zeros(clip_shape))
    variables = init_from_checkpoint(config, init)
  if not resuming:  # written once: a restart checks against it
    modeldir.write_config(workdir, config, channels)
    modeldir.write_classes(workdir, classes)
  mngr = modeldir.manager(workdir, tc.keep_checkpoints)
  start = mngr.latest_step()
  if start is None:
    state = jax.jit(lambda v, r: create_state(model, tx, r, clip_shape, v),
                    out_shardings=rep)(variables,
                                       jax.random.key(config.seed))
    start = 0
  else:
    abstract = jax.eval_shape(
        lambda: create_state(model, tx, jax.random.key(0), clip_shape))
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=rep),
        abstract)
    restored = modeldir.restore(mngr, start, abstract, train_iter)
    state = restored['state']
    print(f'resumed from {workdir}/checkpoints/{start}', file=LOG)

  train_fn, eval_fn = jit_steps(model, tx, schedule, config, mesh)
  writer = Writer(workdir)
  best = {'step': -1, 'top1': -1.0}
  best_path = workdir / 'best.json'
  if best_path.is_file():
    best = json.loads(best_path.read_text())

  def variables_of(st: TrainState):
    return {'params': st.params, 'batch_stats': st.batch_stats}

  def log_eval(step, res) -> dict | None:
    """Writes the eval metrics; a strictly better top-1 updates best.json
    and returns the metrics orbax keeps that checkpoint by (None else, so
    a later tie never displaces the best)."""
    nonlocal best
    writer.write(step, {f'eval_{k}': res[k] for k in
                        ('top1', 'top5', 'mean_class_acc')})
    if res['top1'] > best['top1'] or best['step'] == step:
      best = {'step': step, 'top1': res['top1']}
      if jax.process_index() == 0:
        files.write_json(best_path, best)
      return {'top1': res['top1']}
    return None

  # ---------------------------------------------------------------- loop
  stop = {'sigterm': False}
  previous = signal.signal(signal.SIGTERM,
                           lambda *_: stop.__setitem__('sigterm', True))
  pending, t_log, step_log = [], time.time(), start
  totals = {'skipped': 0.0}

  def flush(step):
    """Fetches pending step metrics (the only host sync) and logs them."""
    nonlocal pending, t_log, step_log
    if not pending:
      return
    ms = jax.device_get(pending)
    pending = []
    if any(m['nonfinite'] for m in ms):
      raise NonFiniteLoss(
          f'non-finite loss or gradient before step {step}: the update was '
          f'not applied and training stops; the last checkpoint '
          f'({mngr.latest_step()}) is intact. Lower train.lr, or check the '
          'data (data.mean/std) and train.clip_norm.')
    n = sum(m['samples'] for m in ms)
    totals['skipped'] += sum(m['skipped'] for m in ms)
    dt = time.time() - t_log
    row = {k: float(np.mean([m[k] for m in ms]))
           for k in ('loss', 'loss_main', 'grad_norm', 'lr')}
    if 'loss_tfdem' in ms[0]:
      row['loss_tfdem'] = float(np.mean([m['loss_tfdem'] for m in ms]))
    row['train_acc'] = sum(m['correct'] for m in ms) / max(n, 1)
    row['clips_per_s'] = (step - step_log) * tc.batch_size / max(dt, 1e-9)
    row['skipped_total'] = totals['skipped']
    row['epoch'] = step / steps_per_epoch
    writer.write(step, row)
    bar.set_postfix(epoch=f'{row["epoch"]:.2f}', loss=f'{row["loss"]:.3f}',
                    lr=f'{row["lr"]:.2g}',
                    clips_s=f'{row["clips_per_s"]:.1f}',
                    skipped=int(totals['skipped']))
    t_log, step_log = time.time(), step

  def save(step, eval_metrics=None):
    flush(step)
    modeldir.save(mngr, step, state, train_iter, eval_metrics)

  bar = tqdm.tqdm(total=total_steps, initial=start, unit='step', file=LOG,
                  desc='train', disable=jax.process_index() != 0,
                  dynamic_ncols=True)
  step = start
  try:
    while step < total_steps:
      batch = sharding.put_batch(next(train_iter), mesh)
      state, m = train_fn(state, batch)
      pending.append(m)
      step += 1
      bar.update()
      if step % tc.log_every_steps == 0:
        flush(step)
      epoch_end = step % steps_per_epoch == 0
      if epoch_end and tc.eval_every_epochs and (
          step // steps_per_epoch) % tc.eval_every_epochs == 0 and (
              step < total_steps):
        flush(step)
        res = evaluator.summarize(evaluator.predict_split(
            eval_fn, variables_of(state), test_split, config, mesh,
            max_videos=config.eval.max_videos, progress=False), classes)
        bar.write(f'epoch {step // steps_per_epoch} step {step}: '
                  f'{evaluator.format_result(res)}', file=LOG)
        save(step, log_eval(step, res))
      elif (epoch_end or step % tc.checkpoint_every_steps == 0) and (
          step < total_steps):  # the last step is saved after its eval
        save(step)
      if stop['sigterm']:
        save(step)
        mngr.wait_until_finished()
        bar.close()
        print(f'SIGTERM: saved step {step} to {workdir}/checkpoints; '
              'restart with the same --workdir to resume', file=LOG)
        return {'preempted': True, 'steps': step}
    flush(step)
  finally:
    signal.signal(signal.SIGTERM, previous)
    bar.close()

  # ---------------------------------------------------------- final eval
  views = evaluator.parse_views(config.eval.views)
  res = evaluator.full_report(eval_fn, model, variables_of(state),
                              test_split, config, mesh, views,
                              evaluator.report_dir(workdir, config, views))
  best_metrics = log_eval(step, res)
  if mngr.latest_step() != step:
    save(step, best_metrics)
  mngr.wait_until_finished()
  writer.close()
  if jax.process_index() == 0:
    res.setdefault('files', []).append(metrics.plot_curves(
        load_records(workdir), workdir / 'curves.png'))
  res.update(steps=int(step), seconds=round(time.time() - t_start, 1),
             skipped_train=int(totals['skipped']), workdir=str(workdir))
  return res
