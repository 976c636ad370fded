"""Damaged or partial checkpoints (issue 23, class 5): every job falls back
to the newest intact checkpoint and says which; a failed write is one line
and leaves nothing a later run reads as valid; best.json only ever names a
written checkpoint; a resumed run never duplicates metrics rows."""
import errno
import json
import pathlib
import shutil

import jax
import numpy as np
import pytest

import model_dirs
from mstsm_jax import modeldir
from mstsm_jax.errors import UsageError
from mstsm_jax.models import pytorch
from mstsm_jax.training.trainer import train_and_evaluate

from model_dirs import TINY_ARGS, tiny_config

# 40 training videos, batch 8: 5 steps an epoch; two epochs, evaluated
# after each.
RUN = {'data.synthetic_videos': 50, 'train.epochs': 2,
       'train.eval_every_epochs': 1, 'eval.max_videos': 8,
       'train.keep_checkpoints': 3}


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """A run with checkpoints 5 and 10, copied for each test."""
  root = tmp_path_factory.mktemp('run')
  train_and_evaluate(tiny_config(**RUN), root)
  assert modeldir.saved_steps(root) == [5, 10]
  return root


def copy(trained, tmp_path) -> pathlib.Path:
  out = tmp_path / 'run'
  shutil.copytree(trained, out)
  return out


def damage_data(workdir, step):
  """Truncates the array data of checkpoint `step` to half its size."""
  data = [p for p in (workdir / 'checkpoints' / str(step) / 'state').rglob(
      '*') if p.is_file() and p.stat().st_size > 1000]
  assert data
  for p in data:
    p.write_bytes(p.read_bytes()[:p.stat().st_size // 2])


def rows(workdir):
  return [json.loads(ln) for ln in
          (workdir / 'metrics.jsonl').read_text().splitlines()]


def test_damaged_latest_falls_back_in_every_reader(trained, tmp_path, job):
  run = copy(trained, tmp_path)
  damage_data(run, 10)
  _, _, _, step = modeldir.load_variables(run)
  assert step == 5
  for name, args in (
      ('evaluate', [f'--workdir={run}']),
      ('export', [f'--checkpoint={run}', f'--output={tmp_path / "m.zip"}'])):
    r = job(name, *args)
    assert f'{run}/checkpoints/10 is damaged' in r.stderr, r.stderr
    assert 'using checkpoint 5' in r.stderr
    assert 'Traceback' not in r.stderr
  # Asked for by name, the damaged one is one line naming it.
  r = job('evaluate', f'--workdir={run}', '--checkpoint=10', code=2)
  assert f'{run}/checkpoints/10 is damaged' in r.stderr
  assert len(r.stderr.strip().splitlines()) <= 3


def test_resume_skips_a_damaged_checkpoint(trained, tmp_path):
  """train resumes from the intact step, sets the damaged one aside
  (kept), recomputes metrics rows after it (no duplicates) and best.json
  names only written checkpoints."""
  run = copy(trained, tmp_path)
  (run / 'checkpoints' / '10' / 'data_iter').mkdir(exist_ok=True)
  for p in (run / 'checkpoints' / '10' / 'data_iter').rglob('*'):
    if p.is_file():
      p.write_text('')  # an empty iterator file
  res = train_and_evaluate(tiny_config(**{**RUN, 'train.epochs': 3}), run)
  assert res['steps'] == 15
  assert (run / 'checkpoints' / '10.damaged').is_dir()
  assert 10 in modeldir.saved_steps(run) and 15 in modeldir.saved_steps(run)
  steps = [r['step'] for r in rows(run) if 'loss' in r]
  assert len(steps) == len(set(steps)), steps
  best = json.loads((run / 'best.json').read_text())
  assert best['step'] in modeldir.saved_steps(run)


def test_failed_write_is_one_line_and_resumes(tmp_path, job, monkeypatch):
  """A checkpoint write that hits the file-size limit: exit 2 with one
  line, best.json never names the unwritten step, and the restarted run
  resumes without duplicate metrics rows."""
  real = modeldir.ocp.CheckpointManager.save

  def save(self, step, *args, **kwargs):
    if step == 10:
      raise OSError(errno.EFBIG, 'File too large')
    return real(self, step, *args, **kwargs)
  monkeypatch.setattr(modeldir.ocp.CheckpointManager, 'save', save)
  args = ['--config=configs/synthetic.py', f'--workdir={tmp_path}',
          *TINY_ARGS, *[f'--config.{k}={v}' for k, v in RUN.items()]]
  r = job('train', *args, code=2)
  err = [ln for ln in r.stderr.splitlines() if ln.startswith('error:')]
  assert err and 'could not write checkpoint 10' in err[0], r.stderr
  assert 'File too large' in err[0] and 'Traceback' not in r.stderr
  assert 'Event loop is closed' not in r.stderr
  assert modeldir.saved_steps(tmp_path) == [5]
  assert json.loads((tmp_path / 'best.json').read_text())['step'] == 5
  monkeypatch.setattr(modeldir.ocp.CheckpointManager, 'save', real)
  job('train', *args)
  steps = [r['step'] for r in rows(tmp_path) if 'loss' in r]
  assert len(steps) == len(set(steps)), steps
  assert modeldir.saved_steps(tmp_path)[-1] == 10


def test_sound_model_directory_loads_without_warnings(trained, capfd,
                                                     caplog):
  """No orbax/absl warning (they read as a broken checkpoint) and no
  warning of ours when nothing is wrong."""
  capfd.readouterr()
  caplog.clear()
  with caplog.at_level('WARNING'):
    modeldir.load_variables(trained)
  out, err = capfd.readouterr()
  assert 'WARNING' not in err and 'warning' not in err, err
  assert not [r for r in caplog.records if r.levelno >= 30], caplog.text


def test_nonfinite_weights_are_a_damaged_checkpoint(tmp_path, job, capfd):
  """Weights holding NaN (a diverged run's, a converted file's) scored
  NaN with exit 0: a checkpoint that holds them is damaged (the newest
  intact one is taken, said), and convert refuses such a source."""
  config = tiny_config()
  variables = model_dirs.init_variables(config)
  d = tmp_path / 'm'
  modeldir.write_model(d, config, variables)
  bad = jax.tree.map(np.copy, variables)
  bad['params']['fc']['kernel'][0, :3] = [np.nan, np.inf, np.nan]
  mngr = modeldir.manager(d)
  modeldir.save(mngr, 5, {**bad, 'step': 5})
  mngr.wait_until_finished()
  capfd.readouterr()
  assert modeldir.load_variables(d)[3] == 0
  assert (f'{d}/checkpoints/5 is damaged (params/fc/kernel holds 3 NaN or '
          'inf of ') in capfd.readouterr().err
  r = job('evaluate', f'--workdir={d}', '--checkpoint=5', code=2)
  assert 'params/fc/kernel holds 3 NaN' in r.stderr
  assert 'hint: its weights diverged' in r.stderr  # no backup helps
  assert len(r.stderr.strip().splitlines()) <= 3 and 'Traceback' not in (
      r.stderr)
  sd = model_dirs.torchvision_state_dict(variables)
  sd['layer1.0.conv2.weight'][0, 0, 0, 0] = np.nan
  with pytest.raises(UsageError, match=r'the state dict: layer1.0.conv2.'
                     r'weight holds 1 NaN or inf of \d+ values'):
    pytorch.convert(sd, config)


def test_a_model_directory_is_not_a_run_to_resume(tmp_path, job):
  """train into what convert/prune wrote called its checkpoint damaged
  (it holds no data iterator); init_from naming the workdir itself."""
  model_dirs.model_dir(tmp_path / 'm', tiny_config())
  r = job('train', '--config=configs/synthetic.py', f'--workdir={tmp_path}/m',
          *TINY_ARGS, code=2)
  assert r.stderr.startswith(f'error: {tmp_path}/m is a model directory '
                             '(weights only'), r.stderr
  assert f'--config.init_from={tmp_path}/m' in r.stderr
  r = job('train', '--config=configs/synthetic.py', f'--workdir={tmp_path}/n',
          f'--config.init_from={tmp_path}/n', *TINY_ARGS, code=2)
  assert 'is the --workdir itself' in r.stderr


def test_a_resumed_run_keeps_the_best_checkpoint_of_before(tmp_path):
  """orbax does not read back the metrics of checkpoints an earlier
  process saved: a resumed run deleted best.json's step (its best-of
  policy saw no metrics), and --checkpoint=best failed."""
  state = {'w': np.zeros(2, np.float32)}
  mngr = modeldir.manager(tmp_path / 'a', keep=2)
  modeldir.save(mngr, 1, state, metrics={'top1': 0.9})
  mngr.close()
  for name, best in (('a', 1), ('b', None)):
    if name == 'b':
      modeldir.save(modeldir.manager(tmp_path / 'b', keep=2), 1, state,
                    metrics={'top1': 0.9})
    mngr = modeldir.manager(tmp_path / name, keep=2, best_before=best)
    for step in (2, 3, 4):
      modeldir.save(mngr, step, state)
    mngr.close()
    assert modeldir.saved_steps(tmp_path / name) == (
        [1, 3, 4] if best else [3, 4])


def test_a_twice_sampled_run_evaluates_each_epoch(tmp_path, job):
  """Evaluations during training took 1x1 views, which a model of
  data.test_sampling='twice' refuses: the run died at its first epoch's
  end with nothing saved. They take one crop of each temporal clip."""
  r = job('train', '--config=configs/synthetic.py', f'--workdir={tmp_path}',
          *TINY_ARGS, '--config.data.test_sampling=twice',
          '--config.eval.views=2x1', '--config.data.synthetic_videos=50',
          '--config.train.max_steps=10', '--config.eval.max_videos=8',
          '--json')  # 2 epochs of 5 steps
  assert json.loads((tmp_path / 'best.json').read_text())['step'] in (5, 10)
  assert r.json()['steps'] == 10
  assert (tmp_path / 'eval' / 'test1_2x1').is_dir()  # the final report


def test_a_finished_run_started_again_adds_no_row_twice(trained, tmp_path):
  run = copy(trained, tmp_path)
  train_and_evaluate(tiny_config(**RUN), run)  # the same, finished run
  evals = [r['step'] for r in rows(run) if 'eval_top1' in r]
  assert len(evals) == len(set(evals)) == 2, evals


def test_a_run_with_data_workers_stops_them(tmp_path, job):
  """grain's worker processes were left to finalizers at exit, which
  printed OSError tracebacks for a resumed run's restored iterator: the
  run stops them itself."""
  import multiprocessing
  job('train', '--config=configs/synthetic.py', f'--workdir={tmp_path}',
      *TINY_ARGS, '--config.data.workers=1', '--config.eval.max_videos=8',
      '--config.train.eval_every_epochs=0', '--config.train.max_steps=2')
  assert not [p for p in multiprocessing.active_children()
              if 'grain' in p.name], multiprocessing.active_children()
