"""What the independent bad-input corpus still caught after the redesign
(issue 23): each is now a clean refusal or a said report."""
import pytest

import mstsm_jax as mj
from mstsm_jax import modeldir

import model_dirs
from test_bad_inputs_data import clips


def test_a_changed_listing_is_a_changed_input(tmp_path, job):
  """A finished build is reused only while its lists name the same videos:
  a deleted video (or a changed list line) is refused, not reused."""
  root = clips(tmp_path / 'raw', per_class=(3, 3))
  args = ['--dataset=custom', f'--manual_dir={root}',
          f'--data_dir={tmp_path}/tfds', '--short_side=24', '--workers=1']
  job('prepare', *args)
  job('prepare', *args)  # same inputs: reused
  next(root.glob('*/*.mp4')).unlink()
  r = job('prepare', *args, code=2)
  assert 'listing:' in r.stderr and 'hint: ' in r.stderr, r.stderr


def test_an_empty_training_list_is_refused(tmp_path, job):
  root = clips(tmp_path / 'raw')
  (tmp_path / 'train.txt').write_text('')
  (tmp_path / 'test.txt').write_text('c0/c0_0.mp4 0\nc1/c1_0.mp4 1\n')
  r = job('prepare', '--dataset=custom', f'--manual_dir={root}',
          f'--data_dir={tmp_path}/tfds', f'--train_list={tmp_path}/train.txt',
          f'--test_list={tmp_path}/test.txt', code=2)
  assert 'has no training video' in r.stderr, r.stderr


def test_python_api_and_model_directories_say_what_is_missing(tmp_path,
                                                              capfd):
  with pytest.raises(mj.UsageError, match='at least one class'):
    mj.create_model('mstsm_tfdem', num_classes=0)
  (tmp_path / 'empty' / 'checkpoints').mkdir(parents=True)
  modeldir.write_config(tmp_path / 'empty', model_dirs.tiny_config())
  with pytest.raises(mj.UsageError) as e:
    modeldir.load_variables(tmp_path / 'empty')
  assert 'no checkpoint in' in e.value.message and e.value.hint
  with pytest.raises(mj.UsageError, match='not a model directory'):
    modeldir.read_config(tmp_path / 'nothing')
  model_dirs.model_dir(tmp_path / 'm', model_dirs.tiny_config())
  capfd.readouterr()
  mj.load(tmp_path / 'm')
  assert 'has no classes.json; the classes are named class_0' in \
      capfd.readouterr().err


def test_no_output_over_a_file_of_an_input_folder(tmp_path, job):
  """Even with --overwrite, export never writes over a file of the model
  directory it reads (its config.json); a new file there is fine."""
  model_dirs.model_dir(tmp_path / 'm', model_dirs.tiny_config())
  config = (tmp_path / 'm' / 'config.json').read_bytes()
  r = job('export', f'--checkpoint={tmp_path / "m"}',
          f'--output={tmp_path / "m" / "config.json"}', '--overwrite', code=2)
  assert 'is a file this job reads' in r.stderr
  assert (tmp_path / 'm' / 'config.json').read_bytes() == config
