"""The command-line contracts: module names, flags and --json last lines
(jobs run in-process through `cli.invoke`, as their command lines do)."""
import json

import numpy as np

from model_dirs import TINY_ARGS

TINY = [a for a in TINY_ARGS if 'synthetic_videos' not in a and
        'log_every' not in a] + ['--config.data.synthetic_videos=60']


def test_summary_json_and_table(job):
  r = job('summary', '--config=configs/ucf101.py:mstsm_tfdem', '--json')
  res = r.json()
  assert res['params'] == 24_450_186
  assert res['stages']['tfdem']['params'] == 194_021
  assert 4.3 < res['gflops'] < 4.4
  assert 'layer4' in r.stdout and 'GFLOPs (multiply-adds)' in r.stdout


def test_bad_config_values_are_one_line(job):
  for arg, msg in [('--config.model.r_two=0.75',
                    '--config.model.r_two=0.75: must be a finite number in '
                    '(0, 0.5]'),
                   ('--config.model.temporal=mstsm9',
                    "--config.model.temporal='mstsm9': must be one of tsn, ")]:
    r = job('summary', '--config=configs/ucf101.py', arg, code=2)
    assert r.stderr.splitlines()[0].startswith(f'error: {msg}'), r.stderr
    assert 'Traceback' not in r.stderr


def test_bench_cpu_json(job):
  r = job('bench', '--config=configs/synthetic.py', *TINY,
          '--config.model.dtype=bfloat16', '--batch=8',
          '--what=train,infer,latency', '--steps=2', '--repeats=1', '--json')
  res = r.json()
  assert res['dtype'] == 'bfloat16'
  assert res['train_clips_s'] > 0 and res['infer_clips_s'] > 0
  assert res['latency_ms_p50'] > 0 and res['rows'][0]['compile_s'] > 0
  assert 'train clips/s' in r.stdout
  r = job('bench', '--config=configs/synthetic.py:mstsm_tfdem_online', *TINY,
          '--batch=8', '--what=stream', '--steps=2', '--json')
  res = r.json()
  assert res['stream_ms_p90'] >= res['stream_ms_p50'] > 0
  assert res['stream_frames_s'] > 0 and 'streaming' in r.stdout


def test_train_evaluate_best_views_and_splits(tmp_path, job):
  """Evaluations that tie (lr 0, frozen BN): best.json keeps the first,
  retention never deletes it, `evaluate --checkpoint=best` loads it and
  writes its own folder, never over the final report."""
  w = tmp_path / 'run'
  res = job('train', '--config=configs/synthetic.py', f'--workdir={w}',
            *TINY, '--config.train.epochs=3', '--config.train.lr=0.0',
            '--config.model.bn_mode=frozen',
            '--config.train.keep_checkpoints=1', '--json').json()
  assert set(res) >= {'top1', 'top5', 'mean_class_acc', 'steps', 'seconds'}
  assert res['steps'] == 18  # 50 training videos // 8 x 3 epochs
  final = w / 'eval' / 'test1_1x1'
  assert (final / 'confusion.png').is_file()
  assert (final / 'tfdem_maps.png').is_file()
  assert (w / 'curves.png').is_file() and (w / 'metrics.jsonl').is_file()
  assert json.loads((w / 'best.json').read_text())['step'] == 6
  steps = sorted(int(p.name) for p in (w / 'checkpoints').iterdir()
                 if p.name.isdigit())
  assert steps == [6, 18]  # the best and the latest, nothing else
  final_metrics = (final / 'metrics.json').read_bytes()
  ev = job('evaluate', f'--workdir={w}', '--checkpoint=best',
           '--json').json()
  assert ev['step'] == 6 and ev['report_dir'].endswith('test1_1x1_step6')
  assert ev['top1'] == res['top1']  # nothing learned: the same scores
  assert (final / 'metrics.json').read_bytes() == final_metrics
  ev = job('evaluate', f'--workdir={w}', '--views=2x3', '--json').json()
  assert ev['views'] == '2x3' and ev['videos'] == 10 and ev['step'] == 18
  out = w / 'eval' / 'test1_2x3'
  for f in ('confusion.png', 'confusion.csv', 'per_class.csv', 'scores.npz',
            'metrics.json'):
    assert (out / f).is_file(), f
  scores = np.load(out / 'scores.npz')
  assert scores['scores'].shape == (10, 10) and len(scores['videos']) == 10
  header = (out / 'confusion.csv').read_text().splitlines()[0]
  assert 'move_right' in header
  r = job('evaluate', f'--workdir={w}', '--views=2x2', code=2)
  assert "views='2x2'" in r.stderr
  r = job('splits', '--config=configs/synthetic.py',
          f'--workdir={tmp_path}/splits', '--splits=1',
          '--config.train.max_steps=2', *TINY, '--json')
  assert set(r.json()) == {'split1', 'mean'}
  assert 'top1' in r.stderr and 'split' in r.stderr


def test_missing_model_dir_is_clear(tmp_path, job):
  r = job('evaluate', f'--workdir={tmp_path}/nothing', code=2)
  assert 'is not a model directory' in r.stderr
