"""The command-line contracts: module names, flags and --json last lines."""
import json
import subprocess
import sys

import pytest

TINY = ['--config.model.stage_sizes=(1,1,1,1)', '--config.model.width=8',
        '--config.model.tfdem_width=8', '--config.data.synthetic_size=36',
        '--config.data.resize_short=36', '--config.data.crop_size=32',
        '--config.data.synthetic_videos=60', '--config.train.batch_size=8',
        '--config.eval.batch_size=8']


def run(*args, code=0):
  r = subprocess.run([sys.executable, '-m', *args], capture_output=True,
                     text=True)
  assert r.returncode == code, r.stderr[-3000:]
  return r


def last_json(r):
  return json.loads(r.stdout.strip().splitlines()[-1])


def test_summary_json_and_table():
  r = run('mstsm_jax.summary', '--config=configs/ucf101.py:mstsm_tfdem',
          '--json')
  res = last_json(r)
  assert res['params'] == 24_450_186
  assert res['stages']['tfdem']['params'] == 194_021
  assert 4.3 < res['gflops'] < 4.4
  assert 'layer4' in r.stdout and 'GFLOPs (multiply-adds)' in r.stdout


@pytest.mark.parametrize('arg,msg', [
    ('--config.model.r_two=0.75', r'r_two=0.75 is outside (0, 1/2]'),
    ('--config.model.temporal=mstsm9', "unknown temporal module 'mstsm9'"),
    ('--config.model.r_tow=0.1', 'r_tow'),
])
def test_bad_config_values_are_clear(arg, msg):
  r = run('mstsm_jax.summary', '--config=configs/ucf101.py', arg, code=1
          if 'r_tow' in arg else 2)
  assert msg in r.stderr


def test_unknown_variant():
  r = run('mstsm_jax.summary', '--config=configs/ucf101.py:mstsm7', code=1)
  assert "unknown variant 'mstsm7'; valid: tsn, tsm" in r.stderr


def test_bench_cpu_json():
  r = run('mstsm_jax.bench', '--config=configs/synthetic.py', *TINY,
          '--config.model.dtype=bfloat16', '--batch=8',
          '--what=train,infer,latency', '--steps=2', '--repeats=1', '--json')
  res = last_json(r)
  assert res['dtype'] == 'bfloat16'
  assert res['train_clips_s'] > 0 and res['infer_clips_s'] > 0
  assert res['latency_ms_p50'] > 0 and res['rows'][0]['compile_s'] > 0
  assert 'train clips/s' in r.stdout


def test_train_evaluate_views_and_splits(tmp_path):
  w = tmp_path / 'run'
  r = run('mstsm_jax.train', '--config=configs/synthetic.py',
          f'--workdir={w}', '--config.train.max_steps=3', *TINY, '--json')
  res = last_json(r)
  assert set(res) >= {'top1', 'top5', 'mean_class_acc', 'steps', 'seconds'}
  assert res['steps'] == 3
  assert (w / 'eval' / 'test1_1x1' / 'confusion.png').is_file()
  assert (w / 'eval' / 'test1_1x1' / 'tfdem_maps.png').is_file()
  assert (w / 'curves.png').is_file() and (w / 'metrics.jsonl').is_file()
  assert list((w / 'tensorboard').glob('events.out.tfevents.*'))
  r = run('mstsm_jax.evaluate', f'--workdir={w}', '--views=2x3', '--json')
  ev = last_json(r)
  assert ev['views'] == '2x3' and ev['videos'] == 10
  out = w / 'eval' / 'test1_2x3'
  for f in ('confusion.png', 'confusion.csv', 'per_class.csv', 'scores.npz',
            'metrics.json'):
    assert (out / f).is_file(), f
  import numpy as np
  scores = np.load(out / 'scores.npz')
  assert scores['scores'].shape == (10, 10) and len(scores['videos']) == 10
  header = (out / 'confusion.csv').read_text().splitlines()[0]
  assert 'move_right' in header
  r = run('mstsm_jax.evaluate', f'--workdir={w}', '--views=2x2', code=2)
  assert "views='2x2'" in r.stderr
  r = run('mstsm_jax.splits', '--config=configs/synthetic.py',
          f'--workdir={tmp_path}/splits', '--splits=1',
          '--config.train.max_steps=2', *TINY, '--json')
  assert set(last_json(r)) == {'split1', 'mean'}
  assert 'top1' in r.stderr and 'split' in r.stderr


def test_missing_model_dir_is_clear(tmp_path):
  r = run('mstsm_jax.evaluate', f'--workdir={tmp_path}/nothing', code=2)
  assert 'is not a model directory' in r.stderr
