"""Bad input, as a corpus: every case is one line in CASES.

A case names a fixture writer (below: it builds the files in tmp_path and
returns the job's arguments), the job, the exit code and a regex the
`error:` line must match (`hint:` lines are checked where they matter).
Each runs the job in-process exactly as its command line does, and must
print one `error:` line (plus at most one `hint:` line) and no traceback.
"""
import json
import os
import re
import signal
import subprocess
import sys

import pytest

import model_dirs
import videos

SYN = ['--config=configs/synthetic.py', *model_dirs.TINY_ARGS]


# ------------------------------------------------------------ fixtures
def clips_tree(tmp, classes=('alpha', 'beta', 'gamma'), per_class=2,
               empty=()):
  """manual_dir with a folder of tiny real videos per class."""
  root = tmp / 'vids'
  for c, cls in enumerate(classes):
    for i in range(per_class):
      videos.write_video(root / cls / f'{cls}{i}.mp4', 9, size=(24, 32),
                         seed=c * 10 + i)
  for cls in empty:
    (root / cls).mkdir(parents=True)
  return root


def lists(tmp, train, test='', classes=None):
  """A custom dataset with list files; returns prepare's arguments."""
  root = clips_tree(tmp)
  (tmp / 'train.txt').write_text(train)
  args = ['--dataset=custom', f'--manual_dir={root}',
          f'--data_dir={tmp}/tfds', f'--train_list={tmp}/train.txt',
          '--workers=1']
  if test:
    (tmp / 'test.txt').write_text(test)
    args.append(f'--test_list={tmp}/test.txt')
  if classes:
    (tmp / 'classes.txt').write_text(classes)
    args.append(f'--classes_file={tmp}/classes.txt')
  return args


GOOD = 'alpha/alpha0.mp4 0\nbeta/beta0.mp4 1\ngamma/gamma0.mp4 2\n'


def list_mixed(tmp):
  return lists(tmp, GOOD + 'gamma/gamma1.mp4 delta\n')


def list_negative(tmp):
  return lists(tmp, GOOD + 'alpha/alpha1.mp4 -1\n')


def list_three_fields(tmp):
  return lists(tmp, GOOD + 'gamma/gamma1.mp4 3 1\n')


def list_float(tmp):
  return lists(tmp, GOOD + 'gamma/gamma1.mp4 1.5\n')


def list_gap(tmp):
  return lists(tmp, GOOD + 'gamma/gamma1.mp4 7\n')


def list_gap_classes_file(tmp):
  return lists(tmp, GOOD + 'gamma/gamma1.mp4 7\n',
               classes='alpha\nbeta\ngamma\n')


def list_latin1(tmp):
  """A Latin-1 list: decoded with replacement characters, Café and Cafè
  would be one class."""
  args = lists(tmp, GOOD)
  (tmp / 'train.txt').write_bytes(GOOD.encode() + b'gamma/gamma1.mp4 Caf\xe9\n')
  return args


def list_two_labels(tmp):
  return lists(tmp, GOOD + 'alpha/alpha0.mp4 1\n')


def classes_file_twice(tmp):
  return lists(tmp, GOOD, classes='alpha\nbeta\nAlpha\n')


def classes_file_missing(tmp):
  return [*lists(tmp, GOOD), f'--classes_file={tmp}/nope.txt']


def list_unknown_name(tmp):
  return lists(tmp, 'alpha/alpha0.mp4 alpha\nbeta/beta0.mp4 delta\n',
               classes='alpha\nbeta\ngamma\n')


def list_test_only_class(tmp):
  return lists(tmp, 'alpha/alpha0.mp4 alpha\nbeta/beta0.mp4 beta\n',
               test='gamma/gamma0.mp4 gamma\n')


def empty_class_folder(tmp):
  root = clips_tree(tmp, ('alpha', 'beta'), per_class=3, empty=('gamma',))
  return ['--dataset=custom', f'--manual_dir={root}',
          f'--data_dir={tmp}/tfds', '--workers=1', '--test_fraction=0.3']


def missing_split_file(tmp):
  root = videos.ucf101_tree(tmp)
  (root / 'ucfTrainTestlist' / 'testlist02.txt').unlink()
  return ['--dataset=ucf101', f'--manual_dir={root}',
          f'--data_dir={tmp}/tfds']


def config_typo(tmp):
  del tmp
  return ['--config=configs/ucf101.py', '--config.model.r_tow=0.1']


def config_bad_value(tmp):
  del tmp
  return ['--config=configs/ucf101.py', '--config.model.r_two=abc']


def config_missing_file(tmp):
  del tmp
  return ['--config=configs/nonexistent.py']


def unknown_variant(tmp):
  del tmp
  return ['--config=configs/ucf101.py:mstsm7']


def restart_other_variant(tmp):
  config = model_dirs.tiny_config()
  (tmp / 'run').mkdir()
  (tmp / 'run' / 'config.json').write_text(config.to_json_best_effort())
  return ['--config=configs/synthetic.py:tsn', *model_dirs.TINY_ARGS,
          f'--workdir={tmp}/run']


def init_from_other_width(tmp):
  """Fine-tuning from a checkpoint of another width (8 -> 16 channels)."""
  model_dirs.model_dir(tmp / 'pre', model_dirs.tiny_config())
  return [*SYN, '--config.model.width=16', f'--workdir={tmp}/run',
          f'--config.init_from={tmp}/pre']


def workdir_not_writable(tmp):
  (tmp / 'file').write_text('')
  return [*SYN, f'--workdir={tmp}/file/run']


def config_disagrees_with_weights(tmp):
  """A tsn checkpoint whose config.json says mstsm_tfdem."""
  model_dirs.model_dir(tmp / 'm', model_dirs.tiny_config('tsn'))
  (tmp / 'm' / 'config.json').write_text(
      model_dirs.tiny_config().to_json_best_effort())
  videos.write_video(tmp / 'v.avi', 12)
  return [f'--checkpoint={tmp}/m', str(tmp / 'v.avi')]


def eval_folder_not_writable(tmp):
  model_dirs.model_dir(tmp / 'm', model_dirs.tiny_config())
  (tmp / 'm' / 'eval').write_text('a file where the folder goes')
  return [f'--workdir={tmp}/m']


def best_without_eval(tmp):
  model_dirs.model_dir(tmp / 'm', model_dirs.tiny_config())
  return [f'--workdir={tmp}/m', '--checkpoint=best']


def predict_unreadable(tmp):
  model_dirs.model_dir(tmp / 'm', model_dirs.tiny_config())
  (tmp / 'bad.avi').write_bytes(b'not a video' * 40)
  return [f'--checkpoint={tmp}/m', str(tmp / 'bad.avi'),
          str(tmp / 'missing.avi')]


def predict_no_video(tmp):
  model_dirs.model_dir(tmp / 'm', model_dirs.tiny_config())
  return [f'--checkpoint={tmp}/m']


def predict_a_folder(tmp):
  model_dirs.model_dir(tmp / 'm', model_dirs.tiny_config())
  (tmp / 'frames').mkdir()
  return [f'--checkpoint={tmp}/m', str(tmp / 'frames')]


def data_rebuilt_with_other_classes(tmp):
  """per_class.csv scored the new class under the old one's output."""
  from mstsm_jax import modeldir
  from mstsm_jax.data import synthetic
  model_dirs.model_dir(tmp / 'm', model_dirs.tiny_config())
  modeldir.write_classes(tmp / 'm', [*synthetic.CLASSES[:9], 'wave'])
  return [f'--workdir={tmp}/m']


def flow_model_on_rgb_data(tmp):
  """Every record was skipped as unreadable ('flow_x'), exit 0."""
  model_dirs.model_dir(tmp / 'fl', model_dirs.tiny_config(
      'tsm', **{'data.modality': 'flow'}))
  return [f'--workdir={tmp}/fl']


def stream_a_folder(tmp):
  model_dirs.model_dir(tmp / 'on', model_dirs.tiny_config('tsm_online'))
  (tmp / 'frames').mkdir()
  return [f'--checkpoint={tmp}/on', f'--video={tmp}/frames']


def prune_over_a_model(tmp):
  model_dirs.model_dir(tmp / 'm', model_dirs.tiny_config())
  model_dirs.model_dir(tmp / 'p', model_dirs.tiny_config())
  return [f'--checkpoint={tmp}/m', f'--output={tmp}/p']


def prune_into_its_input(tmp):
  model_dirs.model_dir(tmp / 'm', model_dirs.tiny_config())
  return [f'--checkpoint={tmp}/m', f'--output={tmp}/m/checkpoints']


def prune_nothing(tmp):
  """A ratio above every width: C / R is 0 kernels in each block."""
  model_dirs.model_dir(tmp / 'm', model_dirs.tiny_config())
  return [f'--checkpoint={tmp}/m', f'--output={tmp}/p', '--r_out=999']


def classes_json_does_not_fit(tmp):
  """9 names for a 10-class model: the scores would print under the
  wrong names."""
  model_dirs.model_dir(tmp / 'm', model_dirs.tiny_config())
  (tmp / 'm' / 'classes.json').write_text(json.dumps(list('abcdefghi')))
  videos.write_video(tmp / 'v.avi', 12)
  return [f'--checkpoint={tmp}/m', str(tmp / 'v.avi')]


def lr_drops_on_one_step(tmp):
  return [*SYN, f'--workdir={tmp}/run', "--config.train.lr_boundaries=(1,1)"]


def stream_output_hard_link(tmp):
  """A hard link to the input is the input (its resolved path is not)."""
  videos.write_video(tmp / 'v.mp4', 10)
  os.link(tmp / 'v.mp4', tmp / 'hard.mp4')
  return ['--checkpoint=x', f'--video={tmp}/v.mp4', f'--output={tmp}/hard.mp4',
          '--overwrite']


def synthetic_split_2(tmp):
  model_dirs.model_dir(tmp / 'm', model_dirs.tiny_config())
  return [f'--workdir={tmp}/m', '--split=2']


def ssv2_unknown_template(tmp):
  videos.ssv2_tree(tmp / 'raw', bad_template=True)
  return ['--dataset=ssv2', f'--manual_dir={tmp}/raw', f'--data_dir={tmp}/d']


def kinetics_bad_header(tmp):
  (tmp / 'raw' / 'annotations').mkdir(parents=True)
  for split in ('train', 'val'):
    (tmp / 'raw' / 'annotations' / f'{split}.csv').write_text(
        'label,youtube_id,start,end\nabseiling,abc,1,11\n')
  return ['--dataset=kinetics400', f'--manual_dir={tmp}/raw',
          f'--data_dir={tmp}/d']


def stream_unreadable(tmp):
  model_dirs.model_dir(tmp / 'm', model_dirs.tiny_config('tsm_online'))
  (tmp / 'bad.mp4').write_bytes(b'not a video' * 40)
  return [f'--checkpoint={tmp}/m', f'--video={tmp}/bad.mp4']


def stream_offline_model(tmp):
  model_dirs.model_dir(tmp / 'm', model_dirs.tiny_config('tsm'))
  videos.write_video(tmp / 'v.avi', 10)
  return [f'--checkpoint={tmp}/m', f'--video={tmp}/v.avi']


def stream_output_not_mp4(tmp):
  return ['--checkpoint=x', '--video=v.avi', f'--output={tmp}/a.avi']


def required_flag(tmp):
  del tmp
  return ['--config=configs/synthetic.py']


# (id, fixture, job, exit code, regex of the error line, regex of the hint)
CASES = [
    ('list: index and name mixed', list_mixed, 'prepare', 2,
     r"train.txt:4: label 'delta' is a class name but .*train.txt:1 uses "
     r'the index 0', r'same way'),
    ('list: negative index', list_negative, 'prepare', 2,
     r"train.txt:4: label '-1' is not a class index", r'0-based'),
    ('list: three fields', list_three_fields, 'prepare', 2,
     r"train.txt:4: 3 fields in 'gamma/gamma1.mp4 3 1'", r'tab'),
    ('list: non-integer index', list_float, 'prepare', 2,
     r"train.txt:4: label '1.5' is not a class index", None),
    ('list: an index leaves classes empty', list_gap, 'prepare', 2,
     r'train.txt:4: 4 of 8 classes have no training videos: class_003, '
     r'class_004, class_005, class_006', r'--classes_file.*'
     r'--empty_classes=keep'),
    ('list: index beyond the classes file', list_gap_classes_file,
     'prepare', 2, r'train.txt:4: label 7 is not an index into the 3 '
     r'classes of .*classes.txt', r'^(?!.*--classes_file)'),
    ('list: name not in the classes file', list_unknown_name, 'prepare', 2,
     r"train.txt:2: class 'delta' is not one of the 3 classes of "
     r'.*classes.txt', r'^(?!.*--classes_file)'),
    ('list: class only in the test list', list_test_only_class, 'prepare',
     2, r'test.txt:1: 1 of 3 classes have no training videos: gamma',
     r'--empty_classes'),
    ('folders: empty class folder', empty_class_folder, 'prepare', 2,
     r'vids/gamma/: 1 of 3 classes have no training videos: gamma',
     r'--empty_classes=keep \(or drop\)'),
    ('ucf101: missing split file', missing_split_file, 'prepare', 2,
     r'missing split file .*testlist02.txt', r'UCF101TrainTestSplits'),
    ('config: misspelled key', config_typo, 'summary', 2,
     r"--config.model.r_tow: model has no field 'r_tow'",
     r'did you mean r_two'),
    ('config: bad value', config_bad_value, 'summary', 2,
     r"--config.model.r_two=abc: could not convert string to float", None),
    ('config: missing file', config_missing_file, 'summary', 2,
     r'config file configs/nonexistent.py not found', r'ucf101'),
    ('config: unknown variant', unknown_variant, 'summary', 2,
     r"unknown variant 'mstsm7'; valid: tsn, tsm", None),
    ('train: flag missing', required_flag, 'train', 2,
     r'^--workdir is required$', r'--help'),
    ('train: restart with another variant', restart_other_variant, 'train',
     2, r'run holds a run with another config \(\d+ fields differ: '
     r"model.temporal: 'mstsm' -> 'tsn'", r'same config'),
    ('train: init_from does not fit', init_from_other_width, 'train', 2,
     r'--config.init_from=.*pre does not fit this model: \d+ shapes do not '
     r'fit \(e.g. ', r'--config.init_partial=True'),
    ('train: workdir under a file', workdir_not_writable, 'train', 2,
     r'workdir .*file/run: .*file is a file, not a folder',
     r'another workdir'),
    ('predict: config disagrees with weights',
     config_disagrees_with_weights, 'predict', 2,
     r'm/config.json \(variant mstsm_tfdem\) does not describe the weights '
     r'in .*m/checkpoints/0: params/backbone/layer\d_0/conv1/kernel is '
     r'\(1, 1, (\d+), \d+\) in the checkpoint but \(1, 1, (?!\1)\d+, ',
     r'config.json this checkpoint was saved'),
    ('evaluate: report folder not writable', eval_folder_not_writable,
     'evaluate', 2, r'evaluation folder .*m/eval/test1_1x1: .*m/eval is a '
     r'file, not a folder',
     None),
    ('evaluate: a split the dataset lacks', synthetic_split_2, 'evaluate',
     2, r'data.split=2: synthetic has one split', r'split 1'),
    ('evaluate: best before any evaluation', best_without_eval, 'evaluate',
     2, r'best.json not found: no evaluation has run', r'latest'),
    ('predict: no video readable', predict_unreadable, 'predict', 1,
     r'none of the 2 videos could be read', r'PyAV can decode'),
    ('predict: no video given', predict_no_video, 'predict', 2,
     r'no video given', r'video files after the flags'),
    ('predict: a folder', predict_a_folder, 'predict', 2,
     r'.*/frames is a folder, not a video file', r'--rawframes'),
    ('evaluate: data rebuilt with other classes',
     data_rebuilt_with_other_classes, 'evaluate', 2,
     r".*m/classes.json: the model was trained on 10 classes, synthetic has "
     r"10 other ones \(class 9: 'wave' in the model, '\w+' in the data\)",
     r'--data_dir'),
    ('evaluate: a flow model, data without flow', flow_model_on_rgb_data,
     'evaluate', 2, r'data.modality=flow: synthetic data has no optical '
     r'flow', r'--flow'),
    ('stream: a folder', stream_a_folder, 'stream', 2,
     r'cannot read .*/frames: a folder \(not a video file', r'PyAV'),
    ('prune: output holds a model', prune_over_a_model, 'prune', 2,
     r'p already holds a model', r'new --output'),
    ('prune: output inside its input', prune_into_its_input, 'prune', 2,
     r'--output=.*/m/checkpoints is inside .*/m/checkpoints, the model '
     r'this job reads',
     r'directory of its own'),
    ('prune: ratios that remove nothing', prune_nothing, 'prune', 2,
     r'--r_out=999 --r_in=0 removes nothing from .*/m: no block has a '
     r'kernel to drop', r'smaller --r_out'),
    ('ssv2: template not in labels.json', ssv2_unknown_template, 'prepare',
     2, r"train.json: entry 2 \(id 3\): template 'Pushing \[something\] "
     r"from left to rightt' is not in .*labels.json", r'same release'),
    ('kinetics: CSV without the time columns', kinetics_bad_header,
     'prepare', 2, r'train.csv:1: no column time_start, time_end',
     r'label,youtube_id,time_start,time_end,split'),
    ('stream: video unreadable', stream_unreadable, 'stream', 2,
     r'cannot read .*bad.mp4: undecodable', r'video file'),
    ('stream: offline model', stream_offline_model, 'stream', 2,
     r'variant tsm looks at future frames and cannot stream',
     r'online variant'),
    ('stream: output not an MP4', stream_output_not_mp4, 'stream', 2,
     r'--output=.*a.avi', r'\.mp4'),
    ('stream: output a hard link to the input', stream_output_hard_link,
     'stream', 2, r'--output=.*hard.mp4 is a file this job reads .*v.mp4',
     r'another file'),
    ('list: not UTF-8', list_latin1, 'prepare', 2,
     r'train.txt:4: not UTF-8 text \(byte 0xe9 at column 21\)',
     r'save it as UTF-8'),
    ('list: one video, two labels', list_two_labels, 'prepare', 2,
     r"train.txt:4: alpha/alpha0.mp4 is labelled 'class_001' here but "
     r"'class_000' "
     r'in .*train.txt:1', r'one of the two lines'),
    ('classes file: a name twice', classes_file_twice, 'prepare', 2,
     r"classes.txt:3: class 'Alpha' is already on line 1", r'once'),
    ('classes file: missing', classes_file_missing, 'prepare', 2,
     r'missing classes file .*nope.txt', r'one class name per line'),
    ('predict: classes.json does not fit the model',
     classes_json_does_not_fit, 'predict', 2,
     r'm/classes.json names 9 classes, but the model scores 10',
     r'restore the classes.json'),
    ('train: two lr drops on one step', lr_drops_on_one_step, 'train', 2,
     r'train.lr_boundaries=\(1, 1\) \(epochs\) fall on steps \[\d+, \d+\]',
     r'increasing epochs'),
]


@pytest.mark.parametrize('name,fixture,job_name,code,error,hint', CASES,
                         ids=[c[0] for c in CASES])
def test_bad_input(name, fixture, job_name, code, error, hint, tmp_path,
                   job, monkeypatch):
  del name
  monkeypatch.setenv('MSTSM_TRACEBACK', '')
  args = fixture(tmp_path)
  before = set(tmp_path.rglob('*'))
  r = job(job_name, *args, code=code)
  assert 'Traceback' not in r.stderr, r.stderr
  # Refused: nothing written, not even an empty output folder or a lock.
  assert set(tmp_path.rglob('*')) == before, set(tmp_path.rglob('*')) - before
  errors = [ln for ln in r.stderr.splitlines() if ln.startswith('error: ')]
  hints = [ln for ln in r.stderr.splitlines() if ln.startswith('hint: ')]
  assert len(errors) == 1 and len(hints) <= 1, r.stderr
  assert re.search(error, errors[0][len('error: '):]), errors[0]
  if hint is not None:
    assert hints and re.search(hint, hints[0][len('hint: '):]), r.stderr


# --------------------------------------------- what the checks leave intact
def test_refused_restart_leaves_the_workdir_untouched(tmp_path, job):
  args = restart_other_variant(tmp_path)
  before = sorted(p.name for p in (tmp_path / 'run').iterdir())
  saved = (tmp_path / 'run' / 'config.json').read_bytes()
  job('train', *args, code=2)
  assert sorted(p.name for p in (tmp_path / 'run').iterdir()) == before
  assert (tmp_path / 'run' / 'config.json').read_bytes() == saved


def test_empty_classes_kept_or_dropped_on_request(tmp_path, job):
  args = empty_class_folder(tmp_path)
  rep = job('prepare', *args, '--empty_classes=keep', '--json').json()
  assert rep['num_classes'] == 3 and rep['empty_classes'] == ['gamma']
  assert rep['per_class']['train1']['gamma'] == 0
  r = job('prepare', *args, '--empty_classes=drop', '--json', code=2)
  assert 'empty_classes' in r.stderr and '--overwrite' in r.stderr
  r = job('prepare', *args, '--empty_classes=drop', '--overwrite', '--json')
  rep = r.json()
  assert rep['num_classes'] == 2 and rep['dropped_classes'] == ['gamma']
  assert 'classes dropped (--empty_classes=drop): gamma' in r.stderr


def test_a_deliberate_gap_is_allowed_and_named(tmp_path, job):
  r = job('prepare', *list_gap(tmp_path), '--empty_classes=keep', '--json')
  rep = r.json()
  assert rep['num_classes'] == 8
  assert rep['empty_classes'] == [f'class_00{i}' for i in (3, 4, 5, 6)]
  assert 'kept without training videos' in r.stderr


def test_lock_refuses_a_second_live_run(tmp_path, job):
  from mstsm_jax.training import workdir
  (tmp_path / 'run').mkdir()
  held = workdir.lock(tmp_path / 'run')
  try:
    r = job('train', *SYN, f'--workdir={tmp_path}/run', code=2)
    assert re.search(r'run is in use by a live run \(pid \d+ on ', r.stderr)
    assert not (tmp_path / 'run' / 'config.json').exists()
  finally:
    held.release()


def test_a_killed_run_leaves_no_stuck_lock(tmp_path):
  from mstsm_jax.training import workdir
  code = ('import sys, time; from mstsm_jax.training import workdir; '
          f'workdir.lock({str(tmp_path)!r}); print("locked", flush=True); '
          'time.sleep(60)')
  proc = subprocess.Popen([sys.executable, '-c', code],
                          stdout=subprocess.PIPE, text=True)
  assert proc.stdout.readline().strip() == 'locked'
  with pytest.raises(Exception, match='in use by a live run'):
    workdir.lock(tmp_path)
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait(timeout=30)
  workdir.lock(tmp_path).release()  # free again


def test_prepare_refuses_other_inputs_on_a_finished_build(tmp_path, job):
  root = clips_tree(tmp_path)
  base = ['--dataset=custom', f'--manual_dir={root}',
          f'--data_dir={tmp_path}/tfds', '--workers=1',
          '--test_fraction=0.5']
  job('prepare', *base)
  r = job('prepare', *base[:-1], '--test_fraction=0.3', code=2)
  assert "test_fraction: 0.5 -> 0.3" in r.stderr
  assert 'already prepared' in job('prepare', *base).stderr


def test_help_exits_0_and_lists_every_flag(job):
  for name, flag_names in [
      ('train', ('--config', '--workdir', '--json', '--distributed')),
      ('summary', ('--config', '--json')),
      ('evaluate', ('--workdir', '--checkpoint', '--views', '--split')),
      ('prepare', ('--dataset', '--empty_classes', '--train_list')),
      ('convert', ('--input', '--allow_partial', '--strict')),
      ('predict', ('--checkpoint', '--views')), ('prune', ('--r_out',)),
      ('fuse', ('--scores', '--weights')), ('splits', ('--splits',)),
      ('bench', ('--what', '--batch')),
      ('ablate', ('--variants', '--seeds', '--workdir')),
      ('export', ('--checkpoint', '--output', '--batch', '--platforms',
                  '--streaming')),
      ('stream', ('--checkpoint', '--video', '--every', '--smooth',
                  '--output')),
      ('explain', ('--checkpoint', '--video', '--output', '--class',
                   '--layer'))]:
    r = job(name, '--help')
    for f in flag_names:
      assert f'  {f}:' in r.stdout, (name, f)


def test_predict_warns_on_a_short_video(tmp_path, job):
  model_dirs.model_dir(tmp_path / 'm', model_dirs.tiny_config())
  videos.write_video(tmp_path / 'short.avi', 2)
  videos.write_video(tmp_path / 'ok.avi', 12)
  videos.write_video(tmp_path / 'full.avi', 40)
  data = (tmp_path / 'full.avi').read_bytes()
  (tmp_path / 'cut.avi').write_bytes(data[:len(data) * 2 // 3])
  r = job('predict', f'--checkpoint={tmp_path}/m', '--json',
          str(tmp_path / 'short.avi'), str(tmp_path / 'ok.avi'),
          str(tmp_path / 'missing.avi'), str(tmp_path / 'cut.avi'))
  rows = [json.loads(ln) for ln in r.stdout.splitlines()]
  assert rows[0]['frames'] == 2 and 'warning' in rows[0]
  assert 'warning' not in rows[1] and rows[2]['error'] == 'missing'
  assert 'short.avi: warning: 2 frames for 8 segments' in r.stderr
  assert 'truncated' not in rows[1]
  assert 'of the 40 frames the container declares' in rows[3]['truncated']
  assert 'cut.avi: warning: truncated (' in r.stderr


def test_config_from_another_directory(tmp_path, job, monkeypatch):
  monkeypatch.chdir(tmp_path)
  res = job('summary', '--config=configs/hmdb51.py:mstsm', '--json').json()
  assert res['params'] == job('summary', '--config=hmdb51:mstsm',
                              '--json').json()['params']


def test_the_command_line_itself():
  """As a subprocess: exit code 2, one line, no traceback; --help exits 0
  (the jobs no other test starts as a subprocess)."""
  r = subprocess.run([sys.executable, '-m', 'mstsm_jax.summary',
                      '--config=configs/ucf101.py', '--config.nonexistent=1'],
                     capture_output=True, text=True)
  assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr
  assert r.stderr.splitlines()[0] == (
      "error: --config.nonexistent: the config has no field 'nonexistent'")
  # Each job's `__main__` with --help, in one process (one jax start).
  jobs = {'train': '--workdir', 'evaluate': '--views', 'splits': '--splits',
          'bench': '--what', 'prune': '--r_out'}
  code = ('import runpy, sys\n'
          f'for name in {list(jobs)}:\n'
          '  sys.argv = [name, "--help"]\n'
          '  try:\n'
          '    runpy.run_module(f"mstsm_jax.{name}", run_name="__main__")\n'
          '  except SystemExit as e:\n'
          '    print(f"<<{name} exit {e.code}>>", flush=True)\n')
  r = subprocess.run([sys.executable, '-c', code], capture_output=True,
                     text=True)
  assert r.returncode == 0, r.stderr
  rest = r.stdout
  for name, flag in jobs.items():
    out, _, rest = rest.partition(f'<<{name} exit ')
    assert rest.startswith('0>>') and f'  {flag}:' in out, (name, r.stdout)


def test_convert_without_torch_is_one_line(tmp_path, job, monkeypatch):
  monkeypatch.setitem(sys.modules, 'torch', None)  # import torch fails
  (tmp_path / 'x.pth').write_bytes(b'\x80\x02')
  r = job('convert', '--config=configs/synthetic.py', *model_dirs.TINY_ARGS,
          f'--input={tmp_path}/x.pth', f'--output={tmp_path}/out', code=2)
  assert r.stderr.splitlines() == [
      f'error: reading {tmp_path}/x.pth needs PyTorch, which is not '
      'installed', "hint: pip install -e '.[torch]'"]


def test_written_files_get_the_mode_of_a_plain_write(tmp_path):
  """Atomic writes go through a temporary file (mkstemp: 0o600); the file
  must end up as a plain write leaves it: umask applied to a new file,
  an existing file's own mode kept."""
  from mstsm_jax import files
  mask = os.umask(0o022)
  try:
    files.write_json(tmp_path / 'new.json', {'a': 1})
    assert (tmp_path / 'new.json').stat().st_mode & 0o777 == 0o644
    (tmp_path / 'old.json').write_text('{}')
    os.chmod(tmp_path / 'old.json', 0o640)
    files.write_json(tmp_path / 'old.json', {'a': 2})
    assert (tmp_path / 'old.json').stat().st_mode & 0o777 == 0o640
    with files.atomic_path(tmp_path / 'm.mstsm') as tmp:
      assert tmp.suffix == '.mstsm'  # writers that pick a format by it
      tmp.write_bytes(b'x')
    assert (tmp_path / 'm.mstsm').stat().st_mode & 0o777 == 0o644
  finally:
    os.umask(mask)


def test_a_stream_that_fails_leaves_the_old_output(tmp_path, job,
                                                   monkeypatch):
  """--overwrite replaces the annotated MP4 only once it is whole: a run
  that dies midway leaves the old file (and no temporary one)."""
  from mstsm_jax import stream
  model_dirs.model_dir(tmp_path / 'm', model_dirs.tiny_config('tsm_online'))
  videos.write_video(tmp_path / 'v.mp4', 10)
  (tmp_path / 'out.mp4').write_bytes(b'the old annotated video')
  real = stream.stream_frames

  def dies_midway(streamer, frames, fps, every, k, writer, path):
    def two_then_fail():
      yield from list(frames)[:2]
      raise MemoryError('killed midway')
    return real(streamer, two_then_fail(), fps, every, k, writer, path)

  monkeypatch.setattr(stream, 'stream_frames', dies_midway)
  monkeypatch.setenv('MSTSM_TRACEBACK', '')
  job('stream', f'--checkpoint={tmp_path}/m', f'--video={tmp_path}/v.mp4',
      f'--output={tmp_path}/out.mp4', '--overwrite', code=1)
  assert (tmp_path / 'out.mp4').read_bytes() == b'the old annotated video'
  assert sorted(p.name for p in tmp_path.iterdir()) == ['m', 'out.mp4',
                                                        'v.mp4']
