"""Issue 23 class 2 for bench, ablate, evaluate, fuse, export and splits: a
flag value or input file that makes no sense is refused in one line naming
it, before any work."""
import numpy as np
import pytest

BENCH = ['--config=configs/synthetic.py', '--what=train']
CASES = [
    ('bench', [*BENCH, '--batch=0'], "--batch='0': must be a "
     'comma-separated list of integers >= 1'),
    ('bench', [*BENCH, '--batch=8,x'], "--batch='8,x': must be"),
    ('bench', [*BENCH, '--batch=3'], '--batch=3: every batch size must split '
     'over the 8 devices'),
    ('bench', [*BENCH, '--steps=0'], '--steps=0'),
    ('bench', [*BENCH, '--repeats=-1'], '--repeats=-1'),
    ('bench', [*BENCH, '--workers=-1'], "--workers='-1': must be a "
     'comma-separated list of integers >= 0'),
    ('bench', [*BENCH[:1], '--what=train,fly'], "--what=train,fly: unknown "
     "['fly']"),
    ('bench', [*BENCH, '--runtimes=xla,tensorrt'], "--runtimes='xla,tensorrt'"
     ": must be '' (every runtime installed) or a comma-separated list of"
     ' runtimes (xla, iree, onnxruntime, openvino), each once'),
    ('bench', [*BENCH, '--runtimes=xla,xla'], "--runtimes='xla,xla': must be"),
    ('ablate', ['--config=configs/synthetic_hard.py', '--seeds=0',
                '--workdir=WORK'], '--seeds=0'),
    ('evaluate', ['--workdir=WORK', '--split=-1'], '--split=-1'),
    ('fuse', ['--scores=a.npz', '--weights=x'], "--weights='x': must be a "
     'comma-separated list of finite numbers >= 0'),
    ('fuse', ['--scores=a.npz', '--scores=b.npz', '--weights=1,nan'],
     "--weights='1,nan': must be"),
    ('fuse', ['--scores=a.npz', '--scores=b.npz', '--weights=0,0'],
     '--weights=0,0: expected comma-separated finite numbers >= 0, not all 0'),
    ('fuse', ['--scores=a.npz', '--weights=1', '--search'],
     '--search takes exactly two --scores files, got 1'),
    # one thing planned twice
    ('ablate', ['--config=configs/synthetic_hard.py', '--variants=tsm,tsm',
                '--seeds=1', '--workdir=WORK'],
     "--variants='tsm,tsm': must be a comma-separated list of paper "
     'variants ('),
    ('export', ['--checkpoint=WORK/model', '--output=WORK/m.mstsm',
                '--platforms=cpu,cuda,cpu'],
     "--platforms='cpu,cuda,cpu': must be a comma-separated list of "
     'platforms (cpu, cuda, rocm, tpu), each once'),
    ('splits', ['--config=configs/synthetic.py:tsn', '--splits=1,1',
                '--workdir=WORK/splits'],
     "--splits='1,1': must be a comma-separated list of splits 1, 2, 3, "
     'each once'),
]


@pytest.mark.parametrize('name,args,error', CASES,
                         ids=[' '.join(c[1][1:]) for c in CASES])
def test_bad_flag_is_one_line(tmp_path, job, name, args, error):
  args = [a.replace('WORK', str(tmp_path)) for a in args]
  r = job(name, *args, code=2)
  assert r.stderr.startswith(f'error: {error}'), r.stderr
  assert 'Traceback' not in r.stderr and 'hint: ' in r.stderr
  assert list(tmp_path.iterdir()) == []  # nothing was started


def test_splits_checks_every_split_before_the_first_trains(
    tmp_path, job, monkeypatch):
  """A split the dataset lacks is refused by the check `train` makes
  (data.pipeline.open_split) before split 1 trains, nothing left behind."""
  from mstsm_jax import splits
  trained = []
  monkeypatch.setattr(splits.trainer, 'train_and_evaluate',
                      lambda config, workdir: trained.append(workdir))
  r = job('splits', '--config=configs/synthetic.py:tsn', '--splits=1,2',
          f'--workdir={tmp_path}', code=2)
  assert r.stderr.startswith('error: data.split=2: synthetic has one split'
                             '\nhint: use split 1'), r.stderr
  assert trained == [] and list(tmp_path.iterdir()) == []


def test_splits_checks_every_split_workdir_before_the_first_trains(
    tmp_path, job, monkeypatch):
  """A split workdir holding a run of another config (split 3 here) is
  refused before split 1 trains, as `train` refuses it (check_resume)."""
  import jax
  import videos
  from mstsm_jax import splits
  from mstsm_jax.configs import load_config
  from mstsm_jax.modeldir import write_config
  job('prepare', '--dataset=ucf101',
      f'--manual_dir={videos.ucf101_tree(tmp_path / "raw")}',
      f'--data_dir={tmp_path}/tfds', '--workers=1', '--max_failures=10',
      '--max_missing=1')
  fields = {'data.data_dir': f'{tmp_path}/tfds', 'model.num_classes': 3,
            'train.batch_size': 2}
  args = ['--config=configs/ucf101.py:tsn',
          *[f'--config.{k}={v}' for k, v in fields.items()]]
  other = load_config('configs/ucf101.py:tsn', {
      **fields, 'data.split': 3, 'model.width': 32})
  write_config(tmp_path / 'run' / 'split3', other)
  trained = []
  monkeypatch.setattr(splits.trainer, 'train_and_evaluate',
                      lambda config, workdir: trained.append(workdir))
  # one device: a batch of 2 of the miniature's 4-5 training videos
  mesh = splits.trainer.sharding.make_mesh
  monkeypatch.setattr(splits.trainer.sharding, 'make_mesh',
                      lambda: mesh(jax.devices()[:1]))
  r = job('splits', *args, f'--workdir={tmp_path}/run', code=2)
  assert r.stderr.startswith(f'error: {tmp_path}/run/split3 holds a run with '
                             'another config (1 field differs: model.width: 32'
                             ), r.stderr
  assert trained == []
  # The miniature's YoYo has no training video in split 1: the run says so
  # (once its checks passed), as the data report does.
  p = splits.trainer.plan(load_config('configs/ucf101.py:tsn', fields),
                          tmp_path / 'one')
  assert p.notes[0] == ('warning: 1 of 3 classes have no training video in '
                        'train1 (e.g. YoYo): the model never sees them')


def test_a_split_stopped_by_sigterm_stops_splits_cleanly(tmp_path, job,
                                                         monkeypatch):
  """As train and ablate: a preempted split (train_and_evaluate's
  {'preempted': True}) ends the job with exit 0; the same command
  resumes it; the later splits' workdirs, made by their early checks, are
  not left behind empty."""
  from mstsm_jax import files, splits

  def preempted(config, workdir):
    (workdir / 'checkpoint').touch()  # what the stopped split saved
    return {'preempted': True, 'steps': 3}
  monkeypatch.setattr(splits.trainer, 'train_and_evaluate', preempted)
  monkeypatch.setattr(splits.trainer, 'plan',
                      lambda config, workdir: files.check_writable(workdir))
  r = job('splits', '--config=configs/synthetic.py:tsn', '--splits=1,2',
          f'--workdir={tmp_path}/runs', '--json')
  assert r.json() == {'preempted': True}
  assert ('split 1: stopped (SIGTERM or Ctrl-C), its checkpoint saved; '
          'the same command resumes it') in r.stderr
  assert [p.name for p in (tmp_path / 'runs').iterdir()] == ['split1']


def scores_file(path, num_classes=5, **arrays):
  """`path` as evaluate's scores.npz of 3 videos and `num_classes`
  classes, `arrays` replaced (None: left out)."""
  saved = {'videos': np.array(['v0', 'v1', 'v2']),
           'labels': np.array([0, 1, 2]),
           'scores': np.zeros((3, num_classes), np.float32),
           'classes': np.array([f'c{i}' for i in range(num_classes)]),
           **arrays}
  np.savez(path, **{k: v for k, v in saved.items() if v is not None})
  return path


def video_file(path):
  path.write_bytes(b'\0\0\0\x18ftypmp42' + bytes(64))  # an mp4's start
  return path


FUSE = {  # the second --scores file -> the start of the error line
    'an mp4': (lambda d: video_file(d / 'clip.mp4'),
               "{B}: not an .npz archive; expected evaluate's scores.npz: "
               'videos [N] (names), labels [N] (integers 0..classes-1), '
               'scores [N, classes] (numbers)'),
    'other classes': (lambda d: scores_file(d / 'b.npz', num_classes=7),
                      '{B}: scores [N, 7]; expected [N, 5] as in {A}'),
    'no scores': (lambda d: scores_file(d / 'b.npz', scores=None),
                  '{B}: holds videos [3] <U2, labels [3] int'),
    'pickled': (lambda d: scores_file(d / 'b.npz', videos=np.array(
        ['v0', 1, None], dtype=object)),
                '{B}: holds pickled (object) arrays; expected'),
    'label past the classes': (lambda d: scores_file(
        d / 'b.npz', labels=np.array([0, 1, 5])), '{B}: holds videos [3]'),
    'NaN scores': (lambda d: scores_file(d / 'b.npz', scores=np.array(
        [[0] * 5, [np.nan] + [0] * 4, [0] * 5], np.float32)),
                   '{B}: 1 video with NaN or inf scores, e.g. v1'),
    'other class names': (lambda d: np.savez(
        d / 'b.npz', **{**np.load(scores_file(d / 'b.npz')),
                        'classes': np.array(['c0', 'c1', 'x', 'c3', 'c4'])})
                          or d / 'b.npz',
                          "{B}: its classes differ from the other scores' "
                          "(column 2 is 'x' here, 'c2' there)"),
    'a video twice': (lambda d: scores_file(d / 'b.npz', videos=np.array(
        ['v0', 'v1', 'v1'])), '{B}: video v1 is in it twice'),
    'an extra video': (lambda d: scores_file(d / 'b.npz', videos=np.array(
        ['v0', 'v1', 'v9'])), '{B}: videos differ from {A} (1 missing, '
                              'e.g. v2; 1 not in {A}, e.g. v9)'),
    'the same file twice': (lambda d: d / 'a.npz',
                            '--scores: {A} given twice (it would count '
                            'twice)'),
}


@pytest.mark.parametrize('case', FUSE)
def test_fuse_refuses_scores_that_are_not_evaluates(tmp_path, job, case):
  """Checked before fusing: one line naming the file and what `fuse`
  expected, not numpy's text."""
  make, error = FUSE[case]
  a = scores_file(tmp_path / 'a.npz')
  b = make(tmp_path)
  r = job('fuse', f'--scores={a}', f'--scores={b}', code=2)
  assert r.stderr.startswith('error: ' + error.format(A=a, B=b)), r.stderr
  assert 'Traceback' not in r.stderr and '\nhint: ' in r.stderr
  assert r.stdout == ''


def test_fuse_reads_class_names_as_text_and_says_when_a_file_has_none(
    tmp_path, job):
  """Class names stored as bytes (kind S) compare as text ("b'c0'" was
  a column that differed); a file naming no classes is said."""
  a = scores_file(tmp_path / 'a.npz')
  b = scores_file(tmp_path / 'b.npz', classes=np.array(
      [f'c{i}' for i in range(5)], dtype='S'))
  job('fuse', f'--scores={a}', f'--scores={b}')
  c = scores_file(tmp_path / 'c.npz', classes=None)
  r = job('fuse', f'--scores={a}', f'--scores={c}')
  assert f'warning: {c} names no classes' in r.stderr


def test_bench_says_which_config_fields_a_checkpoint_takes(tmp_path,
                                                           capsys):
  """bench --checkpoint benchmarks that model, taking only the dtype and
  crop size from --config: said, as every other --config field is not
  used (a --config.model.width there changes nothing)."""
  import types

  import model_dirs
  from mstsm_jax import bench
  model_dirs.model_dir(tmp_path / 'm', model_dirs.tiny_config())
  given = model_dirs.tiny_config(**{'model.width': 16,
                                    'data.crop_size': 48,
                                    'data.resize_short': 52})
  fv = {'config': types.SimpleNamespace(value=given),
        'checkpoint': types.SimpleNamespace(value=str(tmp_path / 'm'))}
  config, channels = bench.bench_config(fv)
  assert config.model.width == 8 and config.data.crop_size == 48
  assert channels is None
  assert ("crop size 48 px; no other --config field is used"
          in capsys.readouterr().err)
