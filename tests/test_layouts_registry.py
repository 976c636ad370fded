"""Dataset layouts as a registry (issue 22): a layout registered from
outside the package is prepared end to end, with its own flag, defaults and
builder name, without editing the package; the package's own layouts are
all in the registry with their defaults."""
import pathlib

import pytest

from mstsm_jax.data import builder, layouts
from mstsm_jax.data.builder import open_prepared
from mstsm_jax.errors import UsageError

import videos

ROLE = {'train': 1, 'test': 2}


def read_toy(manual_dir, toy_list='toy.txt'):
  """A toy layout: "<video> <class> <train|test>" lines in `toy_list`
  (relative to manual_dir); classes in order of first appearance."""
  root = pathlib.Path(manual_dir)
  path = root / toy_list
  listing, seen, classes = layouts.Listing(1), set(), []
  for no, text in layouts.read_lines(path):
    name, cls, role = text.split()
    if cls not in classes:
      classes.append(cls)
    listing.add(seen, f'{path}:{no}', name, classes.index(cls), cls, 0,
                ROLE[role])
  return listing.layout(classes, layouts.scan_videos(root), root,
                        lists=str(path))


TOY = layouts.Reader(
    'toy', read_toy, 'toy.txt + videos', splits=('train1', 'test1'),
    options=(layouts.Option('toy_list', 'toy.txt', 'toy: the list file'),),
    max_failures=0, max_missing=0, builder_name='toy_clips')


@pytest.fixture
def toy(monkeypatch):
  monkeypatch.setattr(layouts, 'REGISTRY', dict(layouts.REGISTRY))
  return layouts.register(TOY)


def test_toy_layout_registered_from_outside_is_prepared(tmp_path, job, toy):
  root = tmp_path / 'raw'
  for i, (cls, role) in enumerate([('hop', 'train'), ('hop', 'test'),
                                   ('spin', 'train'), ('spin', 'test')]):
    videos.write_video(root / f'{cls}{i}.mp4', 6, size=(24, 32), seed=i)
  (root / 'mine.txt').write_text(
      'hop0.mp4 hop train\nhop1.mp4 hop test\nspin2.mp4 spin train\n'
      'spin3.mp4 spin test\n')
  assert '--toy_list' in job('prepare', '--help').stdout
  args = ['--dataset=toy', f'--manual_dir={root}', f'--data_dir={tmp_path}/t',
          '--toy_list=mine.txt', '--workers=1', '--json']
  rep = job('prepare', *args).json()
  assert rep['splits'] == {'train1': 2, 'test1': 2}
  assert rep['num_classes'] == 2 and rep['failed'] == []
  assert rep['data_dir'].endswith('toy_clips/1.0.0')
  source, meta = open_prepared(f'{tmp_path}/t', 'toy')
  assert meta['classes'] == ['hop', 'spin'] and len(source) == 4
  assert meta['videos'] == ['hop0.mp4', 'hop1.mp4', 'spin2.mp4', 'spin3.mp4']
  # Its own flag is one of its inputs: another list is another build.
  (root / 'other.txt').write_text((root / 'mine.txt').read_text())
  r = job('prepare', *args[:-2], '--toy_list=other.txt', code=2)
  assert "toy_list: 'mine.txt' -> 'other.txt'" in r.stderr
  # Its flag is refused for a layout that does not read it.
  r = job('prepare', '--dataset=ucf101', f'--manual_dir={root}',
          f'--data_dir={tmp_path}/u', '--toy_list=x', code=2)
  assert 'error: --toy_list is an option of toy, not of --dataset=ucf101' \
      in r.stderr
  # Its default limits apply: one missing video is too many.
  (root / 'mine.txt').write_text((root / 'mine.txt').read_text()
                                 + 'gone.mp4 hop train\n')
  r = job('prepare', *args, '--overwrite', code=1)
  assert '1 video is missing, more than --max_missing=0' in r.stderr


def test_every_layout_is_registered_with_its_defaults():
  assert layouts.names() == [
      'ucf101', 'hmdb51', 'ssv2', 'kinetics400', 'kinetics600',
      'kinetics700', 'custom', 'synthetic', 'synthetic_hard',
      'synthetic_far']
  assert layouts.get('kinetics700').max_missing == 0.1
  assert layouts.get('ucf101').splits[-1] == 'test3'
  assert 'unlabelled' in layouts.get('ssv2').splits
  assert {o.name for o in layouts.get('custom').options} == {
      'train_list', 'test_list', 'classes_file', 'test_fraction',
      'rawframes', 'filename_tmpl'}
  assert builder.dataset_dir('d', 'synthetic').parts[-2] == \
      'synthetic_motions'
  with pytest.raises(UsageError, match="dataset 'ucf 101' is not a "
                     'registered layout'):
    layouts.get('ucf 101')
  with pytest.raises(ValueError, match='already registered'):
    layouts.register(layouts.Reader('ucf101', read_toy, 'another'))


def test_layout_is_frozen_and_class_policy_returns_a_new_one(tmp_path):
  for cls in ('a', 'b'):
    for i in range(2):
      (tmp_path / cls).mkdir(exist_ok=True)
      (tmp_path / cls / f'{i}.mp4').write_bytes(b'')
  (tmp_path / 'c').mkdir()  # an empty class
  lay = layouts.custom.read(tmp_path)
  with pytest.raises(AttributeError):
    lay.classes = ()
  with pytest.raises(AttributeError):
    lay.entries[0].label = 5
  dropped = layouts.apply_class_policy(lay, 'drop')
  assert dropped.classes == ('a', 'b') and dropped.dropped_classes == ('c',)
  assert lay.classes == ('a', 'b', 'c') and not lay.dropped_classes
  kept = layouts.apply_class_policy(lay, 'keep')
  assert kept.empty_classes == ('c',) and not lay.empty_classes
