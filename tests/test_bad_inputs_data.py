"""Bad data inputs (issue 23, classes 3, 4 and 7 for prepare): results
reused after their inputs changed, annotation files read too trustingly,
and prepare's small things. Each ends in one line naming the file, line,
field or flag and the fix, or in a report; never a traceback."""
import json

import cv2
import numpy as np
import pytest

from mstsm_jax.data import builder, layouts, video
from mstsm_jax.errors import UsageError

import videos


def clips(root, per_class=(2, 2), size=(24, 32)):
  for c, n in enumerate(per_class):
    for i in range(n):
      videos.write_video(root / f'c{c}' / f'c{c}_{i}.mp4', 6, size=size,
                         seed=10 * c + i)
  return root


# Class 3: results reused after their inputs changed -------------------------

def test_shards_and_merges_check_their_inputs(tmp_path, job):
  root = clips(tmp_path / 'raw')
  args = ['--dataset=custom', f'--manual_dir={root}',
          f'--data_dir={tmp_path}/tfds', '--workers=1', '--test_fraction=0.5']
  job('prepare', *args, '--shard=0/2')
  r = job('prepare', *args, '--shard=0/2', '--short_side=16', code=2)
  assert 'shard 0/2' in r.stderr and 'short_side: 256 -> 16' in r.stderr
  assert 'decoded' not in r.stderr
  assert 'already built from these inputs' in job(
      'prepare', *args, '--shard=0/2').stderr
  # A shard built before its inputs were recorded: read from its metadata.
  shard0 = tmp_path / 'tfds' / 'custom_frames_shards' / '0-of-2' / \
      'custom_frames' / '1.0.0'
  (shard0 / 'prepare_inputs.json').unlink()
  job('prepare', *args, '--shard=0/2', '--fps=5', code=2)
  assert json.loads((shard0 / 'prepare_inputs.json').read_text())[
      'test_fraction'] == 0.5
  job('prepare', *args, '--shard=1/2', '--short_side=16')
  r = job('prepare', *args, '--merge_shards=2', code=2)
  assert 'error: shard 1 of 2' in r.stderr
  assert 'short_side: 16 -> 256)' in r.stderr
  assert 'hint: rebuild it: prepare --shard=1/2 --overwrite' in r.stderr
  assert not (tmp_path / 'tfds' / 'custom_frames').exists()
  r = job('prepare', *args, '--shard=5/6', code=2)
  assert 'error: --shard=5/6: shard 5 has no video to decode (4 videos in ' \
      'all)' in r.stderr and 'hint: use at most 4 shards' in r.stderr


# Class 4: annotation files read too trustingly ------------------------------

def ssv2_lists(root, train, validation, test, labels=None):
  (root / 'labels').mkdir(parents=True)
  (root / '20bn-something-something-v2').mkdir()
  (root / 'labels' / 'labels.json').write_text(json.dumps(
      labels if labels is not None else {'Moving something up': '0'}))
  for name, ids in (('train', train), ('validation', validation)):
    (root / 'labels' / f'{name}.json').write_text(json.dumps(
        [{'id': i, 'template': 'Moving [something] up'} for i in ids]))
  (root / 'labels' / 'test.json').write_text(json.dumps(
      [{'id': i} for i in test]))
  return root


def test_ssv2_id_in_two_files_is_named(tmp_path):
  ssv2_lists(tmp_path / 'a', ['1', '2'], ['3', '2'], [])
  with pytest.raises(UsageError, match=r'validation.json entry 1: 2.webm is '
                     r'also listed in .*train.json entry 1 \(train there, '
                     r'test here\)'):
    layouts.ssv2.read(tmp_path / 'a')
  ssv2_lists(tmp_path / 'b', ['1', '2'], ['3'], ['1'])
  with pytest.raises(UsageError, match=r'test.json entry 0: 1.webm is also '
                     r'listed in .*train.json entry 0 \(train there, '
                     r'unlabelled here\)'):
    layouts.ssv2.read(tmp_path / 'b')


def test_ssv2_labels_written_as_a_list(tmp_path):
  ssv2_lists(tmp_path, ['1'], [], [], labels=['Moving something up'])
  with pytest.raises(UsageError, match=r'labels.json: expected an object '
                     r'\{"template": "index", ...\}, got list'):
    layouts.ssv2.read(tmp_path)


def test_kinetics_row_with_only_a_label_and_a_bom(tmp_path):
  path = tmp_path / 'train.csv'
  path.write_text('label,youtube_id,time_start,time_end,split\n'
                  'abseiling,yt1,0,10,train\nabseiling\n')
  with pytest.raises(UsageError, match=r'train.csv:3: 1 field where the '
                     r'header has 5 \(label,youtube_id,'):
    layouts.kinetics.parse_csv(path)
  path.write_bytes('\ufefflabel,youtube_id,time_start,time_end,split\n'
                   'abseiling,yt1,0,10,train\n'.encode())
  assert layouts.kinetics.parse_csv(path) == [
      (2, 'abseiling', 'yt1_000000_000010')]


def test_every_entry_missing_is_one_line(tmp_path, job):
  root = clips(tmp_path / 'raw')
  (tmp_path / 'train.txt').write_text('c0/gone0.mp4 0\nc1/gone1.mp4 1\n')
  r = job('prepare', '--dataset=custom', f'--manual_dir={root}',
          f'--data_dir={tmp_path}/tfds', f'--train_list={tmp_path}/train.txt',
          code=2)
  assert 'error: --dataset=custom: none of the 2 listed videos is under ' \
      f'--manual_dir={root} (e.g. {root}/c0/gone0.mp4)' in r.stderr
  assert 'hint: pass the folder' in r.stderr
  assert 'No examples' not in r.stderr


def rawframes(root, folders):
  """Frame folders {name: [(h, w), ...]}, JPEGs img_00001.jpg ..."""
  rng = np.random.default_rng(0)
  for name, sizes in folders.items():
    d = root / name
    d.mkdir(parents=True)
    for t, (h, w) in enumerate(sizes):
      cv2.imwrite(str(d / f'img_{t + 1:05d}.jpg'),
                  rng.integers(0, 255, (h, w, 3)).astype(np.uint8))
  return root


def test_rawframes_template_matching_no_frame(tmp_path, job):
  root = rawframes(tmp_path / 'frames', {'a/a0': [(24, 32)] * 3})
  (tmp_path / 'train.txt').write_text('a/a0 3 0\n')
  r = job('prepare', '--dataset=custom', '--rawframes',
          '--filename_tmpl=frame_{:04d}.png', f'--manual_dir={root}',
          f'--data_dir={tmp_path}/tfds', f'--train_list={tmp_path}/train.txt',
          code=2)
  assert 'error: --filename_tmpl=frame_{:04d}.png matches no frame file ' \
      'under' in r.stderr and 'like img_00001.jpg' in r.stderr
  assert 'hint: pass the template of your frame names, e.g. ' \
      '--filename_tmpl=img_{:05d}.jpg' in r.stderr


def test_mixed_frame_sizes_and_a_zero_count_are_reported(tmp_path, job):
  root = rawframes(tmp_path / 'frames', {
      'a/mixed': [(24, 32), (48, 64), (24, 32), (30, 30)],
      'a/twelve': [(24, 32)] * 12, 'b/b0': [(24, 32)] * 4,
      'b/b1': [(24, 32)] * 4})
  rec = video.read_frame_folder(str(root / 'a' / 'mixed'), 'img_{:05d}.jpg')
  assert rec['mixed_sizes'].startswith('2 of 4 frames differ in size from '
                                       'the first (32x24)')
  assert {video.decode_jpeg(f).shape for f in rec['frames']} == {(24, 32, 3)}
  (tmp_path / 'train.txt').write_text('a/mixed 4 0\na/twelve 0 0\nb/b0 4 1\n')
  (tmp_path / 'test.txt').write_text('b/b1 4 1\n')
  r = job('prepare', '--dataset=custom', '--rawframes', '--workers=1',
          f'--manual_dir={root}', f'--data_dir={tmp_path}/tfds',
          f'--train_list={tmp_path}/train.txt', '--json',
          f'--test_list={tmp_path}/test.txt')
  warned = {(w['file'].split('/')[-1], w['reason']): w['detail']
            for w in r.json()['warnings']}
  assert warned[('twelve', 'frame count')] == \
      'the list says 0, the folder has 12'
  assert ('mixed', 'mixed sizes') in warned
  assert 'frames of mixed sizes, resized to the first: 1' in r.stderr
  assert '1 videos' not in r.stderr and '4 videos, 2 classes' in r.stderr


def test_hash_split_trains_and_tests_every_class_of_two(tmp_path):
  for cls in ('y', 'z'):  # y: both names hash above 0.2, below 0.9
    for i in range(2):
      (tmp_path / cls).mkdir(exist_ok=True)
      (tmp_path / cls / f'{cls}{i}.mp4').write_bytes(b'')
  (tmp_path / 'one').mkdir()
  (tmp_path / 'one' / 'one0.mp4').write_bytes(b'')
  for fraction in (0.2, 0.9):
    lay = layouts.custom.read(tmp_path, test_fraction=fraction)
    for c in ('y', 'z'):
      roles = sorted(e.roles[0] for e in lay.entries if e.class_name == c)
      assert roles == [1, 2], (fraction, c)
  assert layouts.custom.hash_split(['a', 'b'], 0.0) == {'a': 1, 'b': 1}


def test_all_videos_undecodable_is_one_line(tmp_path, job):
  for c in range(2):
    (tmp_path / 'raw' / f'c{c}').mkdir(parents=True)
    (tmp_path / 'raw' / f'c{c}' / 'v.mp4').write_bytes(b'garbage' * 20)
  r = job('prepare', '--dataset=custom', f'--manual_dir={tmp_path}/raw',
          f'--data_dir={tmp_path}/tfds', '--workers=1', code=2)
  assert 'error: none of the 2 videos of custom_frames could be decoded ' \
      '(e.g. ' in r.stderr and 'undecodable' in r.stderr


# Class 7: numbers that make no sense, refused before any work ---------------

@pytest.mark.parametrize('flag, valid', [
    ('--short_side=-5', 'must be an integer >= 0'),
    ('--merge_shards=-1', 'must be an integer >= 0'),
    ('--max_failures=-1', 'must be a finite number >= 0'),
    ('--max_missing=-2', 'must be -1 (the default) or'),
    ('--fps=nan', 'must be a finite number >= 0'), ('--workers=0', '1 or more'),
    ('--test_fraction=1.5', 'must be a finite number in (0, 1)')])
def test_prepare_refuses_bad_numbers_before_work(tmp_path, job, flag, valid):
  r = job('prepare', '--dataset=custom', f'--manual_dir={tmp_path}/nothing',
          f'--data_dir={tmp_path}/tfds', flag, code=2)
  name, value = flag.split('=')
  assert f'error: {name}={value}' in r.stderr.replace('.0\n', '\n') or \
      f'error: {name}=' in r.stderr
  assert valid in r.stderr
  assert not (tmp_path / 'tfds').exists()


def test_layout_checks_its_own_flags(tmp_path, job):
  r = job('prepare', '--dataset=custom', f'--manual_dir={tmp_path}',
          f'--data_dir={tmp_path}/tfds', '--rawframes', '--fps=5', code=2)
  assert 'error: --fps=5.0 with --rawframes' in r.stderr
  r = job('prepare', '--dataset=ucf101', f'--manual_dir={tmp_path}',
          f'--data_dir={tmp_path}/tfds', '--num_videos=5', code=2)
  assert 'error: --num_videos is an option of synthetic, synthetic_hard, ' \
      'synthetic_far, not of --dataset=ucf101' in r.stderr
  r = job('prepare', '--dataset=synthetic', f'--data_dir={tmp_path}/tfds',
          '--num_videos=20', code=2)  # stored, then no test split
  assert ('error: --num_videos=20: synthetic puts every fifth round of its '
          '10 classes in test, so test1 would hold 0 videos') in r.stderr


def test_an_empty_frame_file_fails_its_video_only(tmp_path):
  """A 0-byte JPEG in a frame folder made OpenCV assert, an internal
  error that ended the whole prepare; it is that video's failure now, and
  so is any other exception a decoder raises on one file."""
  root = rawframes(tmp_path / 'frames', {'a/a0': [(24, 32)] * 3})
  (root / 'a' / 'a0' / 'img_00002.jpg').write_bytes(b'')
  with pytest.raises(video.VideoError) as e:
    video.read_frame_folder(str(root / 'a' / 'a0'), 'img_{:05d}.jpg')
  assert e.value.reason == 'undecodable'
  assert e.value.detail == 'img_00002.jpg: empty JPEG frame (0 bytes)'
  # A listed folder with no frame file failed; it is not missing.
  (root / 'a' / 'empty').mkdir()
  (tmp_path / 'list.txt').write_text('a/a0 3 0\na/empty 0 0\n')
  lay = layouts.custom.read(root, train_list=str(tmp_path / 'list.txt'),
                            rawframes=True)
  assert [(p['file'].split('/')[-1], p['reason']) for p in lay.problems] \
      == [('empty', 'zero frames')]
  assert lay.problems[0]['detail'] == ('the folder holds no frame file '
                                       'named like img_{:05d}.jpg '
                                       '(--filename_tmpl)')
  # Two files of one frame number are the folder's failure too.
  (root / 'a' / 'a0' / 'img_00002.jpg').unlink()
  (root / 'a' / 'a0' / 'img_1.jpg').write_bytes(
      (root / 'a' / 'a0' / 'img_00001.jpg').read_bytes())
  with pytest.raises(video.VideoError, match='two files of frame 1: '
                     'img_00001.jpg and img_1.jpg'):
    video.read_frame_folder(str(root / 'a' / 'a0'), 'img_{:05d}.jpg')

  def broken(*args, **kwargs):
    raise ZeroDivisionError('a decoder bug')
  i, rec = builder.decode_job((7, 'v.mp4', 0, 0.0, '', '', broken))
  assert i == 7 and rec == {'file': 'v.mp4', 'reason': 'undecodable',
                            'detail': 'ZeroDivisionError: a decoder bug'}


def test_kinetics_ids_keep_their_case_and_copies_are_not_guessed(tmp_path):
  """YouTube ids differ by case (yt007-_x is not YT007-_X): both rows and
  both files were one video, the other dropped unreported. A file no row
  names is reported unlisted; a listed video found in two folders is one
  line instead of whichever os.walk met first."""
  root = videos.kinetics_tree(tmp_path / 'raw')
  with open(root / 'annotations' / 'train.csv', 'a', newline='') as f:
    f.write('petting animal (not cat),YT007-_X,70,80,train,0\n')
  cls = root / 'train' / 'petting animal (not cat)'
  (cls / 'YT007-_X_000070_000080.mp4').write_bytes(b'x')
  (root / 'train' / 'ytUNLISTED_000001_000002.mp4').write_bytes(b'x')
  lay = layouts.kinetics.read(root)
  paths = {e.name: e.path for e in lay.entries}
  assert paths['train/petting animal (not cat)/yt007-_x_000070_000080.mp4'] \
      != paths['train/petting animal (not cat)/YT007-_X_000070_000080.mp4']
  assert not [p for p in lay.problems if p['reason'] == 'listed twice']
  assert [p['file'].split('/')[-1] for p in lay.problems
          if p['reason'] == 'unlisted'] == ['ytUNLISTED_000001_000002.mp4']
  (root / 'resized').mkdir()
  (root / 'resized' / 'yt001-_x_000010_000020.mp4').write_bytes(b'x')
  with pytest.raises(UsageError, match='1 listed video found more than once'
                     r'.*yt001-_x_000010_000020: resized/.* and train/'):
    layouts.kinetics.read(root)


def test_kinetics_labelled_test_rows_are_split_2_not_val(tmp_path):
  """Labelled test.csv rows joined val in test1 without a word; they are
  test2 now (train2 = train), val alone test1."""
  root = videos.kinetics_tree(tmp_path / 'raw')
  with open(root / 'annotations' / 'test.csv', 'a', newline='') as f:
    f.write('abseiling,ytLABELLED,1,11,test,0\n')
  (root / 'test' / 'ytLABELLED_000001_000011.mp4').write_bytes(b'x')
  lay = layouts.kinetics.read(root)
  members = lay.split_members()
  names = {k: sorted(lay.entries[i].name.split('/')[-1][:10] for i in v)
           for k, v in members.items()}
  assert names['test2'] == ['ytLABELLED']
  assert 'ytLABELLED' not in names['test1'] and len(names['test1']) == 3
  assert names['train2'] == names['train1'] and len(names['train1']) == 6
  assert [lay.entries[i].name for i in members['unlabelled']] == [
      'test/ytTEST_000005_000015.mp4']
  # A labelled test row that is a training video: one line.
  with open(root / 'annotations' / 'test.csv', 'a', newline='') as f:
    f.write('abseiling,yt001-_x,10,20,test,0\n')
  with pytest.raises(UsageError, match='yt001-_x_000010_000020 is also '
                     'listed in .*train.csv'):
    layouts.kinetics.read(root)


@pytest.mark.parametrize('text,error', [
    ('3 c\n1 a\n2 b\n', r'cls.txt:1: class number 3, but it is line 1'),
    ('1 a\n2 b\n4 c\n', r'cls.txt:3: class number 4, but it is line 3'),
    ('1 a\nb\n', r'cls.txt:1: starts with a class number but line 2 does '
                 r'not'),
    ('1 a\n2 b\n3 c\n', None), ('0 a\n1 b\n2 c\n', None), ('a\nb\nc\n', None),
])
def test_numbered_class_names_count_up_in_file_order(tmp_path, text, error):
  """classInd.txt-style numbers (convert --classes_file) were dropped
  unread: "3 c" on the first line named class 0 'c'."""
  (tmp_path / 'cls.txt').write_text(text)
  if error:
    with pytest.raises(UsageError, match=error):
      layouts.read_class_names(tmp_path / 'cls.txt', numbered=True)
  else:
    assert layouts.read_class_names(tmp_path / 'cls.txt',
                                    numbered=True) == ['a', 'b', 'c']


def touch(root, *names):
  for n in names:
    (root / n).parent.mkdir(parents=True, exist_ok=True)
    (root / n).write_bytes(b'')
  return root


@pytest.mark.parametrize('files,lists,error', [
    (('jump/v0.mp4', 'jump/V0.mp4', 'run/r0.mp4'), None,
     r'jump/(v|V)0.mp4 and .*jump/(V|v)0.mp4 differ only in case'),
    (('Jump/a.mp4', 'jump/b.mp4'), None,
     r'class folders Jump/ and jump/ differ only in case'),
    (('jump/a.mp4', 'jump/b.mp4'), ('jump/a.mp4 Jump\n', 'jump/b.mp4 jump\n'),
     r"test.txt:1: class 'jump', but .*train.txt:1 writes it 'Jump'"),
    (('wave/wave 9.mp4',), ('wave/wave 9.mp4\n', ''),
     r"train.txt:1: 'wave/wave 9.mp4' reads as the path 'wave/wave' with "
     r"the label '9.mp4', or as one path with a space"),
])
def test_names_a_layout_could_read_two_ways(tmp_path, files, lists, error):
  """Each was read one way silently: a video hidden by its twin in
  another case, a class folder's videos lost, one class split in two, a
  path with a space made a class of its file name."""
  root = touch(tmp_path / 'v', *files)
  args = []
  if lists:
    for name, text in zip(('train.txt', 'test.txt'), lists):
      (tmp_path / name).write_text(text)
      args.append(str(tmp_path / name))
  with pytest.raises(UsageError, match=error):
    layouts.custom.read(root, *args)


def test_symlinked_folders_and_more_video_extensions_are_found(tmp_path):
  touch(tmp_path / 'elsewhere', 'r0.mp4', 'r1.3gp')
  root = touch(tmp_path / 'v', 'jump/a.MTS', 'jump/b.mp4')
  (root / 'run').symlink_to(tmp_path / 'elsewhere')
  lay = layouts.custom.read(root, test_fraction=0.5)
  assert sorted(e.name for e in lay.entries) == [
      'jump/a.MTS', 'jump/b.mp4', 'run/r0.mp4', 'run/r1.3gp']


def test_kinetics_train_and_val_overlap_and_an_unlabelled_test_csv(tmp_path):
  """A video in train.csv and val.csv was kept in train only, reported as
  listed twice; Kinetics-600/700's test.csv has no label column."""
  ann = tmp_path / 'annotations'
  ann.mkdir()
  head = 'label,youtube_id,time_start,time_end,split\n'
  (ann / 'train.csv').write_text(head + 'abseiling,yt001-_x,10,20,train\n')
  (ann / 'val.csv').write_text(head + 'abseiling,yt001-_x,10,20,val\n')
  with pytest.raises(UsageError, match=r'val.csv:2: yt001-_x_000010_000020 '
                     r'is also listed in .*train.csv:2 \(train there, test '
                     r'here\)'):
    layouts.kinetics.read(tmp_path)
  (ann / 'val.csv').write_text(head + 'abseiling,yt002,10,20,val\n')
  (ann / 'test.csv').write_text('youtube_id,time_start,time_end,split\n'
                                'yt003,0,10,test\n')
  lay = layouts.kinetics.read(tmp_path)
  assert {e.name: e.roles for e in lay.entries}[
      'yt003_000000_000010'] == (3,)  # unlabelled


def test_list_paths_written_with_dot_or_absolute(tmp_path):
  """'./jump/a.mp4' and an absolute path under --manual_dir were reported
  missing and unlisted at once."""
  root = touch(tmp_path / 'v', 'jump/a.mp4', 'jump/b.mp4')
  (tmp_path / 'tr.txt').write_text('./jump/a.mp4 jump\n')
  (tmp_path / 'te.txt').write_text(f'{root}/jump/b.mp4 jump\n')
  lay = layouts.custom.read(root, str(tmp_path / 'tr.txt'),
                            str(tmp_path / 'te.txt'))
  assert [(e.name, e.roles) for e in lay.entries] == [
      ('jump/a.mp4', (1,)), ('jump/b.mp4', (2,))] and not lay.problems
  (tmp_path / 'te.txt').write_text(f'{tmp_path}/b.mp4 jump\n')
  with pytest.raises(UsageError, match=r'te.txt:1: .*/b.mp4 is not under '
                     r'--manual_dir'):
    layouts.custom.read(root, str(tmp_path / 'tr.txt'),
                        str(tmp_path / 'te.txt'))
