"""The event-order task's design properties and the ablate runner."""
import json

import numpy as np

from mstsm_jax.data import synthetic, synthetic_hard

OVERRIDES = {'model.stage_sizes': (1, 1, 1, 1), 'model.width': 8,
             'data.synthetic_videos': 96, 'data.synthetic_size': 36,
             'data.resize_short': 36, 'data.crop_size': 32,
             'train.epochs': 1, 'train.max_steps': 2, 'eval.batch_size': 8,
             'train.batch_size': 8}
TINY = [f'--config.{k}={v}'.replace(' ', '') for k, v in OVERRIDES.items()]
COLORS = np.array([(230, 40, 40), (40, 220, 40), (50, 80, 240)])


def markers(frame):
  """Which marker kinds (A, B, C by their colour) a frame shows."""
  d = np.abs(frame[:, :, None, :].astype(int) - COLORS).max(-1)
  return [k for k, kind in enumerate('ABC') if (d[..., k] < 40).sum() > 20]


def test_events_are_ordered_apart_and_alone():
  """Each class shows every marker once, in its order, for one whole
  segment, never two in a frame, with an empty segment between events:
  no frame and no one-frame difference holds the order."""
  rng = np.random.default_rng(0)
  for _ in range(200):
    s = synthetic_hard.event_segments(rng)
    assert np.all(np.diff(s) >= 2)
  for index in range(24):
    frames, label = synthetic.render_hard(index, seed=1)
    assert frames.shape == (16, 64, 64, 3)
    seen = [markers(f) for f in frames]
    assert all(len(m) <= 1 for m in seen)
    seg = [sorted({m[0] for m in seen[2 * k:2 * k + 2] if m}) for k in
           range(8)]
    assert all(seen[2 * k] == seen[2 * k + 1] for k in range(8))
    events = [(k, m[0]) for k, m in enumerate(seg) if m]
    assert ''.join('ABC'[m] for _, m in events) == \
        synthetic_hard.CLASSES[label]
    assert all(b - a >= 2 for (a, _), (b, _) in zip(events, events[1:]))


def test_far_events_are_two_markers_five_segments_apart():
  """synthetic_far: the class's two markers, in its order, each for one
  whole segment, 5 or more segments apart; every class pair shows the
  same two markers in both orders."""
  for index in range(24):
    frames, label = synthetic.render_far(index, seed=1)
    seen = [markers(f) for f in frames]
    assert all(len(m) <= 1 for m in seen)
    events = [(k, seen[2 * k][0]) for k in range(8) if seen[2 * k]]
    assert all(seen[2 * k] == seen[2 * k + 1] for k in range(8))
    assert ''.join('ABC'[m] for _, m in events) == \
        synthetic_hard.FAR_CLASSES[label]
    assert events[1][0] - events[0][0] >= synthetic_hard.FAR_GAP
  assert sorted(synthetic_hard.FAR_CLASSES) == sorted(
      a + b for a in 'ABC' for b in 'ABC' if a != b)


def test_paired_interval_matches_a_hand_computed_one():
  """Differences 1..5: mean 3, sample std sqrt(2.5), and t(0.975, 4) =
  2.776445 (any t table), so the half-width is 2.776445 * sqrt(0.5)."""
  from mstsm_jax.ablate import paired
  p = paired([1, 2, 3, 4, 5])
  assert p['mean'] == 3 and p['diffs'] == [1, 2, 3, 4, 5]
  np.testing.assert_allclose(p['ci95'], [3 - 1.963243, 3 + 1.963243],
                             atol=1e-6)
  np.testing.assert_allclose(paired([0.1, 0.3])['ci95'],  # t(.975,1)
                             [0.2 - 12.706205 * 0.1, 0.2 + 12.706205 * 0.1],
                             atol=1e-6)
  assert paired([0.2])['ci95'] is None


def test_ablate_runs_resumes_and_reports(tmp_path, job):
  args = ['--config=configs/synthetic_hard.py', '--variants=tsn,tsm',
          '--seeds=2', f'--workdir={tmp_path}', '--json', *TINY]
  r = job('ablate', *args)
  res = r.json()
  assert list(res['variants']) == ['tsn', 'tsm']
  for v in res['variants'].values():
    top1 = [r['top1'] for r in v['runs']]
    assert [r['seed'] for r in v['runs']] == [0, 1]
    assert v['top1_mean'] == np.mean(top1)
    assert v['top1_std'] == np.std(top1, ddof=1)
  tsn, tsm = res['variants']['tsn'], res['variants']['tsm']
  assert 'vs_tsm' not in tsm
  assert tsn['vs_tsm']['diffs'] == [a['top1'] - b['top1'] for a, b in
                                    zip(tsn['runs'], tsm['runs'])]
  assert len(tsn['vs_tsm']['ci95']) == 2
  assert '- tsm [95% CI]' in r.stdout
  assert tsm['params'] == tsn['params']
  assert (tmp_path / 'ablation.png').is_file()
  assert json.loads((tmp_path / 'ablation.json').read_text())['variants']
  again = job('ablate', *args)
  assert again.stderr.count('(reused: same inputs as before)') == 4
  assert again.json()['variants'] == res['variants']
  check_other_inputs_are_refused_or_redone(tmp_path, job, args)
  r = job('ablate', *args[:1], '--variants=tsn,mstsm9', f'--workdir={tmp_path}',
          code=2)
  assert "--variants='tsn,mstsm9': must be a comma-separated list of paper " \
      'variants' in r.stderr


def check_other_inputs_are_refused_or_redone(root, job, args):
  """Issue 23 class 3: a re-run with another recipe in the same workdir is
  refused before any training, naming the differing field; --overwrite
  trains the run again and records its new inputs."""
  record = root / 'tsn' / 'seed0' / 'inputs.json'
  before = record.read_text()
  other = [a for a in args if not a.startswith(('--variants', '--seeds'))]
  other += ['--variants=tsn', '--seeds=1', '--config.train.max_steps=1']
  r = job('ablate', *other, code=2)
  line = r.stderr.splitlines()[0]
  assert line.startswith(f'error: run {root}/tsn/seed0 was made from other '
                         'inputs (1 field differ') and 'train.max_steps' in line
  assert '--overwrite' in r.stderr and 'Traceback' not in r.stderr
  assert record.read_text() == before
  r = job('ablate', *other, '--overwrite')
  assert f'removing {root}/tsn/seed0' in r.stderr
  assert json.loads(record.read_text())['train']['max_steps'] == 1
  assert list(r.json()['variants']) == ['tsn']


def test_ablate_reuses_only_runs_of_the_same_inputs(tmp_path, job):
  """The reuse check alone, on runs written by hand (nothing trains): the
  same inputs are reused and said so, a field that does not change the
  result (data.workers) is no difference, another recipe is refused naming
  the field, and so is a started run of another config."""
  from mstsm_jax.ablate import inputs_of, variant_config
  from mstsm_jax.configs import load_config
  from mstsm_jax.files import write_json
  args = ['--config=configs/synthetic_hard.py', '--variants=tsn', '--seeds=1',
          f'--workdir={tmp_path}', '--json', *TINY]
  config = load_config('configs/synthetic_hard.py', OVERRIDES)
  run = tmp_path / 'tsn' / 'seed0'
  run.mkdir(parents=True)
  write_json(run / 'result.json', {'seed': 0, 'top1': 0.5, 'top5': 1.0,
                                   'mean_class_acc': 0.5, 'seconds': 1.0,
                                   'workdir': str(run)})
  write_json(run / 'inputs.json', inputs_of(variant_config(config, 'tsn', 0)))
  r = job('ablate', *args, '--config.data.workers=3')
  assert '[1/1] tsn seed 0: top-1 50.00% (reused: same inputs as before)' \
      in r.stderr
  assert r.json()['variants']['tsn']['runs'][0]['top1'] == 0.5
  r = job('ablate', *args, '--config.train.lr=0.5', code=2)
  assert r.stderr.startswith(
      f'error: run {run} was made from other inputs (1 field differs: '
      f'train.lr: {config.train.lr} -> 0.5)\nhint: pass --overwrite'), r.stderr
  # A report's PNG without its JSON is another plan's too.
  (tmp_path / 'ablation.json').rename(tmp_path / 'kept.json')
  r = job('ablate', *args, code=2)
  assert 'ablation.png exists without its ablation.json' in r.stderr
  (tmp_path / 'kept.json').rename(tmp_path / 'ablation.json')
  # Another plan's report is not replaced unasked (nothing trains).
  r = job('ablate', *args, '--variants=tsn', '--seeds=2', code=2)
  assert f'{tmp_path}/ablation.json reports another plan (tsn x1; this ' \
      'one: tsn x2 seeds)' in r.stderr
  # A damaged result is named before anything trains.
  good = ('"seed": 0, "top5": 1.0, "mean_class_acc": 0.5, "seconds": 1.0, '
          f'"workdir": "{run}"')
  for damage in ('{"seed": 0', '{}', '{' + good + ', "top1": null}',
                 '{' + good + ', "top1": "0.5"}'):
    (run / 'result.json').write_text(damage)
    r = job('ablate', *args, code=2)
    assert r.stderr.startswith(f'error: {run}/result.json is damaged')
    assert 'Traceback' not in r.stderr and 'hint: pass --overwrite' in \
        r.stderr
  (run / 'inputs.json').unlink()
  (run / 'result.json').unlink()
  write_json(run / 'config.json', inputs_of(variant_config(config, 'tsm', 0)))
  r = job('ablate', *args, code=2)
  assert r.stderr.startswith(f'error: {run} holds a run with another config')
  assert 'model.temporal' in r.stderr and '--overwrite' in r.stderr


def test_a_run_stopped_by_sigterm_stops_the_ablation(tmp_path, monkeypatch):
  """A preempted run (train_and_evaluate's {'preempted': True}) records no
  result and ends the job, so the same command resumes it."""
  from mstsm_jax import ablate
  monkeypatch.setattr(ablate, 'train_and_evaluate',
                      lambda config, run_dir: {'preempted': True, 'steps': 3})
  plan = [('tsm', 0, None, False), ('tsm', 1, None, False)]
  assert ablate.run_all(plan, tmp_path) is None
  assert not (tmp_path / 'tsm' / 'seed0' / 'result.json').exists()
  assert not (tmp_path / 'tsm' / 'seed0' / 'inputs.json').exists()
