"""The training loop: `train_and_evaluate(config, workdir)`.

Data parallel over every device of every host (jit over a Mesh, see
sharding.py). Restarting with the same workdir resumes from the latest
checkpoint, model, optimizer, RNG and input iterator included, so the
continued run sees the same batches. SIGTERM, or a first Ctrl-C, saves
and exits cleanly (a second Ctrl-C stops at once).

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
from typing import Any

import jax
import numpy as np
import tqdm

from mstsm_jax import files, modeldir
from mstsm_jax.console import LOG
from mstsm_jax.data import pipeline
from mstsm_jax.errors import UsageError
from mstsm_jax.evaluation import evaluator, metrics
from mstsm_jax.models import fit
from mstsm_jax.training import optimizer, sharding, steps
from mstsm_jax.training import workdir as workdirs


class NonFiniteLoss(FloatingPointError):
  pass


def summary_writer(logdir):
  """tensorboardX's SummaryWriter, imported without PyTorch: tensorboardX
  imports torch whenever it is installed (the `torch` extra), 3 s of every
  training process's start, for tensor types scalars never use."""
  import sys
  if 'tensorboardX' in sys.modules or 'torch' in sys.modules:
    from tensorboardX import SummaryWriter
  else:
    sys.modules['torch'] = None  # `import torch` raises ImportError
    try:
      from tensorboardX import SummaryWriter
    finally:
      del sys.modules['torch']
  return SummaryWriter(str(logdir))


@dataclasses.dataclass
class Writer:
  """metrics.jsonl and TensorBoard events in the workdir (process 0)."""
  workdir: pathlib.Path

  def __post_init__(self):
    self.on = jax.process_index() == 0
    self.records = []
    if self.on:
      self.tb = summary_writer(self.workdir / 'tensorboard')
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
    if self.on and not self.jsonl.closed:
      self.jsonl.close()
      self.tb.close()


def load_records(workdir) -> list[dict]:
  path = pathlib.Path(workdir) / 'metrics.jsonl'
  if not path.is_file():
    return []
  return [json.loads(ln) for ln in path.read_text().splitlines() if ln]


def init_from_checkpoint(config, run: steps.Setup):
  """Variables for fine-tuning from `config.init_from` (convert/train/prune
  output). Every classifier head of another class count is re-initialised;
  backbone tensors left at init, unused or misfitting tensors are an error
  unless `init_partial`."""
  _, _, loaded, step = modeldir.load_variables(config.init_from)
  backbone = config.model.backbone
  merged, report = fit.initialise(run.model, jax.random.key(config.seed),
                                  run.clip_shape, loaded, backbone)
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


@dataclasses.dataclass(frozen=True)
class Plan:
  """What a run is, checked before it touches its workdir (`plan`)."""
  config: Any  # num_classes filled in from the dataset
  workdir: pathlib.Path
  mesh: Any
  per_host: int
  train_split: Any
  test_split: Any
  steps_per_epoch: int
  total_steps: int
  notes: list[str]  # classes never trained, the lr schedule's: the log


def plan(config, workdir) -> Plan:
  """Every check of a run before it starts (workdir writable, batch over
  the devices, the split's lists and classes, at least one batch, a
  restart's config the same as the saved one), each a one-line UsageError;
  `splits` asks it for every split before the first one trains."""
  config = copy.deepcopy(config)  # derived here, never edited in place
  workdir = files.check_writable(workdir)
  tc = config.train
  mesh = sharding.make_mesh()
  per_host = sharding.check_batch(tc.batch_size, mesh)
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
  workdirs.check_resume(workdir, config)
  # The data report lists them too; the run must say it (once its checks
  # passed: `splits` plans every split before the first trains).
  unseen = sorted(set(range(len(classes))) - set(train_split.labels.tolist()))
  unseen_note = [f'warning: {len(unseen)} of {len(classes)} classes have no '
                 f'training video in train{config.data.split} (e.g. '
                 f'{classes[unseen[0]]}): the model never sees them'
                 ] if unseen else []
  return Plan(config, workdir, mesh, per_host, train_split, test_split,
              steps_per_epoch, total_steps, unseen_note +
              optimizer.schedule_notes(tc, steps_per_epoch, total_steps))


def train_and_evaluate(config, workdir) -> dict:
  """Trains `config` in `workdir` (resuming if it has checkpoints) and
  returns the final evaluation {'top1', 'top5', 'mean_class_acc', ...}."""
  t_start = time.time()
  p = plan(config, workdir)  # before touching anything, even the lock file
  for line in p.notes:
    print(line, file=LOG)
  lock = workdirs.lock(p.workdir)
  try:
    res = Run(p).run()
  finally:
    lock.release()
  if not res.get('preempted'):
    res.update(seconds=round(time.time() - t_start, 1),
               workdir=str(p.workdir))
  return res


class Run:
  """One training run in its workdir, as the loop's named steps: `resume`
  (model, optimizer and the newest intact checkpoint), `train` (steps up to
  the next epoch end, logged), `evaluate_and_keep_best`, `save`, `preempt`
  (SIGTERM) and `finish` (the full evaluation)."""

  def __init__(self, p: Plan):
    self.config, self.workdir, self.mesh = p.config, p.workdir, p.mesh
    self.per_host, self.steps_per_epoch = p.per_host, p.steps_per_epoch
    self.train_split, self.test_split = p.train_split, p.test_split
    self.total_steps, self.classes = p.total_steps, p.train_split.classes
    self.pending, self.skipped = [], 0.0
    self.best = {'step': -1, 'top1': -1.0}
    self.sigterm = ''  # the name of the signal that stops the run

  # ------------------------------------------------------------- resume
  def resume(self) -> int:
    """Builds the model and optimizer and restores the newest intact
    checkpoint (or initialises); returns the step to continue from."""
    cfg, workdir = self.config, self.workdir
    # Again under the lock: a run that ended between the first check and
    # the lock may have written config.json since.
    resuming = workdirs.check_resume(workdir, cfg)
    if resuming:  # the data rebuilt with other classes since
      modeldir.check_same_classes(workdir, cfg.model.num_classes,
                                  self.classes, cfg.data.data_dir or
                                  cfg.data.dataset)
    self.train_iter = iter(pipeline.train_dataset(
        self.train_split, cfg.data, cfg.model.num_segments, self.per_host,
        cfg.seed, jax.process_index(), jax.process_count()))
    channels = (modeldir.read_channels(cfg.init_from)
                if cfg.init_from else None)
    channels = channels or modeldir.read_channels(workdir)
    run = steps.setup(cfg, self.mesh, channels=channels,
                      steps_per_epoch=self.steps_per_epoch)
    self.model, self.train_fn, self.eval_fn = (run.model, run.train_step,
                                               run.eval_step)
    variables = None
    if cfg.init_from and not modeldir.saved_steps(workdir):
      # Before anything is written: a checkpoint that does not fit stops
      # here.
      variables = init_from_checkpoint(cfg, run)
    if not resuming:  # written once: a restart checks against it
      modeldir.write_config(workdir, cfg, channels)
      modeldir.write_classes(workdir, self.classes)
    best = modeldir.read_best(workdir) if resuming else None
    self.mngr = modeldir.manager(workdir, cfg.train.keep_checkpoints,
                                 best['step'] if best else None)
    if not modeldir.saved_steps(workdir):
      self.state = run.new_state(cfg.seed, variables)
      return 0
    abstract = run.abstract_state()
    start, restored = modeldir.newest_intact(
        workdir, lambda step: modeldir.restore(self.mngr, step, abstract,
                                               self.train_iter))
    self.state = restored['state']
    if modeldir.set_aside_newer(workdir, start):
      self.mngr.reload()
    dropped = trim_records(workdir, start, final=start >= self.total_steps)
    self.best = self.intact_best() or self.best
    print(f'resumed from {workdir}/checkpoints/{start}' + (
        f' (metrics.jsonl: {dropped} rows after step {start} dropped, '
        'they are recomputed)' if dropped else ''), file=LOG)
    return start

  def intact_best(self) -> dict | None:
    """best.json, chosen again among the intact checkpoints' evaluations
    when the step it names was set aside as damaged."""
    best = modeldir.read_best(self.workdir)
    steps = modeldir.saved_steps(self.workdir)
    if best is None or best['step'] in steps:
      return best
    evals = [r for r in load_records(self.workdir)
             if 'eval_top1' in r and r['step'] in steps]
    best = (max(({'step': r['step'], 'top1': r['eval_top1']} for r in evals),
                key=lambda b: b['top1']) if evals else None)
    print(f'warning: best.json named a damaged checkpoint; now '
          f'{best or "none (the next evaluation writes it)"}', file=LOG)
    if jax.process_index() == 0:
      if best:
        files.write_json(self.workdir / 'best.json', best)
      else:
        (self.workdir / 'best.json').unlink()
    return best

  # -------------------------------------------------------------- train
  def train(self, step: int, until: int) -> int:
    """Train steps from `step` up to `until` (an epoch end or the last
    step), logging every `log_every_steps` and saving every
    `checkpoint_every_steps`; stops early on SIGTERM."""
    tc = self.config.train
    while step < until:
      batch = sharding.put_batch(next(self.train_iter), self.mesh)
      self.state, m = self.train_fn(self.state, batch)
      self.pending.append(m)
      step += 1
      self.bar.update()
      if step % tc.log_every_steps == 0:
        self.log(step)
      if step % tc.checkpoint_every_steps == 0 and step < until:
        self.save(step)
      if self.sigterm:  # after the step: a preempted run always moves on
        break
    return step

  def log(self, step: int) -> None:
    """Fetches pending step metrics (the only host sync) and logs them."""
    if not self.pending:
      return
    ms, self.pending = jax.device_get(self.pending), []
    if any(m['nonfinite'] for m in ms):
      raise NonFiniteLoss(
          f'non-finite loss or gradient before step {step}: the update was '
          'not applied and training stops; the last checkpoint '
          f'({self.mngr.latest_step()}) is intact. Lower train.lr, or check '
          'the data (data.mean/std) and train.clip_norm.')
    n = sum(m['samples'] for m in ms)
    self.skipped += sum(m['skipped'] for m in ms)
    dt = time.time() - self.t_log
    row = {k: float(np.mean([m[k] for m in ms]))
           for k in ('loss', 'loss_main', 'grad_norm', 'lr')}
    if 'loss_tfdem' in ms[0]:
      row['loss_tfdem'] = float(np.mean([m['loss_tfdem'] for m in ms]))
    row['train_acc'] = sum(m['correct'] for m in ms) / max(n, 1)
    row['clips_per_s'] = ((step - self.step_log) * self.config.train.batch_size
                          / max(dt, 1e-9))
    row['skipped_total'] = self.skipped
    row['epoch'] = step / self.steps_per_epoch
    self.writer.write(step, row)
    self.bar.set_postfix(epoch=f'{row["epoch"]:.2f}',
                         loss=f'{row["loss"]:.3f}', lr=f'{row["lr"]:.2g}',
                         clips_s=f'{row["clips_per_s"]:.1f}',
                         skipped=int(self.skipped))
    self.t_log, self.step_log = time.time(), step

  def save(self, step: int, eval_metrics=None) -> None:
    self.log(step)
    modeldir.save(self.mngr, step, self.state, self.train_iter,
                  eval_metrics)

  # ----------------------------------------------------------- evaluate
  def evaluate_and_keep_best(self, step: int, res: dict | None = None
                             ) -> dict:
    """Evaluates (unless `res` is given), saves checkpoint `step` and,
    once it is written, names it in best.json when its top-1 is strictly
    better (a later tie never displaces the best)."""
    self.log(step)
    if res is None:
      # One crop of each temporal clip the test sampling takes (a 'twice'
      # model died here, its epoch unsaved); the final report: eval.views.
      res = evaluator.summarize(evaluator.predict_split(
          self.eval_fn, steps.variables_of(self.state), self.test_split,
          self.config, self.mesh,
          views=pipeline.own_views(self.config.data),
          max_videos=self.config.eval.max_videos, progress=False),
          self.classes)
      self.bar.write(f'epoch {step // self.steps_per_epoch} step {step}: '
                     f'{evaluator.format_result(res)}', file=LOG)
    self.writer.write(step, {f'eval_{k}': res[k] for k in
                             ('top1', 'top5', 'mean_class_acc')})
    better = res['top1'] > self.best['top1'] or self.best['step'] == step
    if self.mngr.latest_step() != step:
      self.save(step, {'top1': res['top1']} if better else None)
    if better:
      self.best = {'step': step, 'top1': res['top1']}
      if jax.process_index() == 0:
        files.write_json(self.workdir / 'best.json', self.best)
    return res

  def stop_on(self, signum, frame) -> None:
    """Stops at the next step boundary, saved; after a first Ctrl-C a
    second one interrupts at once (Python's own handler)."""
    del frame
    self.sigterm = signal.Signals(signum).name
    if signum == signal.SIGINT:
      print('\nCtrl-C: stopping once this step (or the evaluation under '
            'way) ends, saved; Ctrl-C again stops at once, unsaved',
            file=LOG)
      signal.signal(signal.SIGINT, signal.default_int_handler)

  def preempt(self, step: int) -> dict:
    if self.mngr.latest_step() != step:
      self.save(step)
    self.bar.write(f'{self.sigterm}: saved step {step} to '  # its own line
                   f'{self.workdir}/checkpoints; restart with the same '
                   '--workdir to resume', file=LOG)
    return {'preempted': True, 'steps': step}

  def finish(self, step: int) -> dict:
    """The full evaluation (every view, reports and PNGs) of the last
    step, kept as best when it is."""
    cfg = self.config
    views = evaluator.parse_views(cfg.eval.views)
    res = evaluator.full_report(
        self.eval_fn, self.model, steps.variables_of(self.state), self.test_split, cfg,
        self.mesh, views, evaluator.report_dir(self.workdir, cfg, views))
    self.evaluate_and_keep_best(step, res)
    self.writer.close()
    if jax.process_index() == 0:
      res.setdefault('files', []).append(metrics.plot_curves(
          load_records(self.workdir), self.workdir / 'curves.png'))
    return res

  # ---------------------------------------------------------------- run
  def run(self) -> dict:
    # SIGTERM and Ctrl-C are caught from the start: a preemption during
    # resume stops at the first step boundary.
    previous = {s: signal.signal(s, self.stop_on)
                for s in (signal.SIGTERM, signal.SIGINT)}
    spe, tc = self.steps_per_epoch, self.config.train
    self.writer = None
    try:
      step = self.resume()
      self.writer = Writer(self.workdir)
      self.t_log, self.step_log = time.time(), step
      self.bar = tqdm.tqdm(total=self.total_steps, initial=step,
                           unit='step', file=LOG, desc='train',
                           disable=jax.process_index() != 0,
                           dynamic_ncols=True)
      while step < self.total_steps:
        step = self.train(step, min((step // spe + 1) * spe,
                                    self.total_steps))
        if self.sigterm:
          return self.preempt(step)
        if step == self.total_steps:
          break
        epoch = step // spe
        if tc.eval_every_epochs and epoch % tc.eval_every_epochs == 0:
          self.evaluate_and_keep_best(step)
        else:
          self.save(step)
      self.log(step)
      self.bar.close()
      return {**self.finish(step), 'steps': int(step),
              'skipped_train': int(self.skipped)}
    finally:
      for s, handler in previous.items():
        signal.signal(s, handler)
      if self.writer is not None:
        self.bar.close()
        self.writer.close()
      # grain's worker processes stopped now, not by finalizers at exit
      # (a restored iterator's printed OSError tracebacks from them).
      it = getattr(self, 'train_iter', None)
      if hasattr(it, 'close'):
        it.close()


def trim_records(workdir, step: int, final: bool = False) -> int:
  """Drops metrics.jsonl rows after `step` (a resumed run recomputes them)
  and, when `step` is the run's last (`final`: a finished run started
  again evaluates it again), that step's evaluation row; returns how
  many."""
  rows = load_records(workdir)
  keep = [r for r in rows if r['step'] < step or r['step'] == step and not (
      final and any(k.startswith('eval_') for k in r))]
  if len(keep) != len(rows) and jax.process_index() == 0:
    files.write_text(pathlib.Path(workdir) / 'metrics.jsonl',
                     ''.join(json.dumps(r) + '\n' for r in keep))
  return len(rows) - len(keep)
