"""Data: official layouts with their quirks, prepare's report, sampling,
augmentation, synthetic twins and the grain pipeline's determinism."""
import json

import numpy as np
import pytest

from mstsm_jax.configs import load_config
from mstsm_jax.data import layouts, pipeline, sampling, synthetic, transforms
from mstsm_jax.data.builder import open_prepared
from mstsm_jax.errors import UsageError

import jobs
import videos


def prepare(*args):
  """`python -m mstsm_jax.prepare --json --workers=2 ARGS` -> (exit code,
  stderr, its JSON), in this process (a module-scoped fixture cannot take
  the `job` fixture)."""
  rc, out, err = jobs.run('prepare', '--json', '--workers=2', *args)
  out = out.strip()
  return rc, err, json.loads(out.splitlines()[-1]) if out else None


@pytest.fixture(scope='module')
def ucf(tmp_path_factory):
  root = tmp_path_factory.mktemp('ucf')
  videos.ucf101_tree(root / 'raw')
  code, err, rep = prepare('--dataset=ucf101', f'--manual_dir={root}/raw',
                           f'--data_dir={root}/tfds', '--max_failures=10')
  assert code == 0, err
  return root, rep


def test_ucf101_report(ucf):
  root, rep = ucf
  assert rep['num_classes'] == 3
  assert rep['splits'] == {'train1': 4, 'test1': 3, 'train2': 5, 'test2': 2,
                           'train3': 5, 'test3': 2}
  failed = {(r['file'].split('/')[-1], r['reason']) for r in rep['failed']}
  assert failed == {
      ('v_YoYo_g02_c01.avi', 'undecodable'),
      ('v_YoYo_g03_c01.avi', 'empty')}
  # A duplicate line is stored once: reported apart from the failures.
  assert [r['reason'] for r in rep['listed_twice']] == ['listed twice']
  assert [(r['file'].split('/')[-1], r['reason']) for r in rep['missing']
          ] == [('v_YoYo_g04_c01.avi', 'missing')]
  assert rep['listed_twice'][0]['file'].endswith(
      'trainlist01.txt:8 ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi')
  assert [r['file'].split('/')[-1] for r in rep['unlisted']] == [
      'v_YoYo_g09_c01.avi']
  # A cut video keeps the frames that decoded, and says so.
  cut, = rep['warnings']
  assert cut['file'].endswith('v_YoYo_g01_c01.avi')
  assert cut['reason'] == 'truncated' and 'of the 16 frames the container ' \
      'declares' in cut['detail']


def test_ucf101_records_and_case_quirk(ucf):
  root, _ = ucf
  source, meta = open_prepared(f'{root}/tfds', 'ucf101')
  assert meta['classes'] == videos.UCF_CLASSES
  names = dict(zip(meta['videos'], meta['labels']))
  # Listed as HandstandPushups/v_HandstandPushups_*, on disk HandStand.
  assert names['HandstandPushups/v_HandstandPushups_g01_c01.avi'] == 1
  test1 = [meta['videos'][i] for i in meta['splits']['test1']]
  assert sorted(test1) == sorted(f'{c}/v_{c}_g01_c01.avi'
                                 for c in videos.UCF_CLASSES)
  i = meta['videos'].index('ApplyEyeMakeup/v_ApplyEyeMakeup_g03_c01.avi')
  rec = source[i]
  assert int(rec['label']) == 0 and int(rec['num_frames']) == 24
  assert len(rec['frames']) == 24 and (int(rec['height']),
                                      int(rec['width'])) == (48, 64)
  frame = pipeline.load_frames(rec, np.array([0]))[0]
  assert frame.shape == (48, 64, 3)  # short side 48 < 256: kept


def test_prepare_is_idempotent_and_limits_failures(ucf):
  root, rep = ucf
  code, err, again = prepare('--dataset=ucf101', f'--manual_dir={root}/raw',
                             f'--data_dir={root}/tfds', '--max_failures=10')
  assert code == 0 and 'already prepared' in err and again == rep
  code, err, _ = prepare('--dataset=ucf101', f'--manual_dir={root}/raw',
                         f'--data_dir={root}/tfds', '--max_failures=1')
  assert code == 1 and '2 videos failed (corrupt or unreadable), more ' \
      'than --max_failures=1' in err and 'missing' not in err.split(
          'error:')[1]
  # The missing one has its own limit (default: --max_failures).
  code, err, _ = prepare('--dataset=ucf101', f'--manual_dir={root}/raw',
                         f'--data_dir={root}/tfds', '--max_failures=3',
                         '--max_missing=0')
  assert code == 1 and '1 video is missing, more than --max_missing=0' \
      in err


def test_hmdb51_layout_and_report(tmp_path):
  videos.hmdb51_tree(tmp_path / 'raw')
  code, err, rep = prepare('--dataset=hmdb51', f'--manual_dir={tmp_path}/raw',
                           f'--data_dir={tmp_path}/tfds')
  assert code == 0, err
  assert rep['num_classes'] == 2 and rep['failed'] == []
  # per class per split: 1 test, 1 unused, 1 train.
  assert rep['splits'] == {f'{r}{k}': 2 for k in (1, 2, 3)
                           for r in ('train', 'test')}
  _, meta = open_prepared(f'{tmp_path}/tfds', 'hmdb51')
  test1 = {meta['videos'][i] for i in meta['splits']['test1']}
  assert test1 == {
      'brush_hair/Amazing_Hair_(Brushing)_&_Stuff!_brush_hair_f_nm_np1_ba_goo_0.avi',
      "shoot_ball/Bob's_ball_shoot_ball_u_cm_np1_fr_med_1.avi"}


def test_missing_split_file_and_unknown_class(tmp_path):
  root = videos.ucf101_tree(tmp_path)
  (root / 'ucfTrainTestlist' / 'testlist02.txt').unlink()
  with pytest.raises(UsageError, match='missing split file .*'
                     r'testlist02.txt \(download UCF101TrainTestSplits'):
    layouts.ucf101.read(root)
  videos.crlf(root / 'ucfTrainTestlist' / 'testlist02.txt',
              ['Juggling/v_Juggling_g01_c01.avi'])
  with pytest.raises(ValueError, match=r'testlist02.txt:1: class of '
                     "'Juggling/v_Juggling_g01_c01.avi' is not in"):
    layouts.ucf101.read(root)


def test_read_video_fps_and_short_side(tmp_path):
  from mstsm_jax.data import video
  videos.write_video(tmp_path / 'v.avi', 20, size=(300, 400), fps=25)
  full = video.read_video(str(tmp_path / 'v.avi'))
  assert full['num_frames'] == 20 and (full['height'], full['width']) == (
      300, 400)
  assert video.decode_jpeg(full['frames'][0]).shape == (256, 341, 3)
  five = video.read_video(str(tmp_path / 'v.avi'), fps=5, as_jpeg=False)
  assert five['num_frames'] == 4 and five['fps'] == pytest.approx(5.0)
  assert five['frames'].shape == (4, 256, 341, 3)


def test_custom_lists(tmp_path):
  for cls in ('jump', 'run'):
    for i in range(2):
      videos.write_video(tmp_path / 'vids' / cls / f'{cls}{i}.mp4', 9)
  (tmp_path / 'train.txt').write_text('jump/jump0.mp4 jump\nrun/run0.mp4 run\n')
  (tmp_path / 'test.txt').write_text('jump/jump1.mp4\trun\nrun/run1.mp4 run\n')
  (tmp_path / 'classes.txt').write_text('jump\nrun\n')
  lay = layouts.custom.read(tmp_path / 'vids', str(tmp_path / 'train.txt'),
                       str(tmp_path / 'test.txt'),
                       str(tmp_path / 'classes.txt'))
  assert lay.classes == ('jump', 'run') and not lay.problems
  assert {e.name: (e.label, e.roles[0]) for e in lay.entries} == {
      'jump/jump0.mp4': (0, 1), 'run/run0.mp4': (1, 1),
      'jump/jump1.mp4': (1, 2), 'run/run1.mp4': (1, 2)}  # the label wins
  # All indices, no classes file: class_000, class_001.
  (tmp_path / 'itrain.txt').write_text('jump/jump0.mp4 0\nrun/run0.mp4 1\n')
  idx = layouts.custom.read(tmp_path / 'vids', str(tmp_path / 'itrain.txt'))
  assert idx.classes == ('class_000', 'class_001')
  # A training video in the test list: one line (it was kept in train,
  # reported as listed twice); twice in one list: reported.
  (tmp_path / 'test2.txt').write_text('jump/jump1.mp4 jump\njump/jump0.mp4 jump\n')
  with pytest.raises(UsageError, match=r'test2.txt:2: jump/jump0.mp4 is '
                     r'also listed in .*train.txt:1 \(train there, test '
                     r'here\); a video belongs to one side of a split'):
    layouts.custom.read(tmp_path / 'vids', str(tmp_path / 'train.txt'),
                        str(tmp_path / 'test2.txt'),
                        str(tmp_path / 'classes.txt'))
  (tmp_path / 'test3.txt').write_text('jump/jump1.mp4 jump\njump/jump1.mp4 jump\n')
  dup = layouts.custom.read(tmp_path / 'vids', str(tmp_path / 'train.txt'),
                       str(tmp_path / 'test3.txt'),
                       str(tmp_path / 'classes.txt'))
  assert [p['reason'] for p in dup.problems] == ['listed twice', 'unlisted']
  assert dup.problems[0]['file'].endswith('test3.txt:2 jump/jump1.mp4')
  tree = layouts.custom.read(tmp_path / 'vids', test_fraction=0.5)
  assert tree.classes == ('jump', 'run') and len(tree.entries) == 4


def test_train_sampling_one_frame_per_segment():
  rng = np.random.default_rng(0)
  for n in (8, 9, 30, 301):
    for _ in range(20):
      idx = sampling.train_indices(n, 8, rng)
      seg = np.floor(np.arange(9) * n / 8)
      assert np.all((idx >= seg[:-1]) & (idx < seg[1:]))


def test_test_sampling_middle_and_short_videos():
  np.testing.assert_array_equal(sampling.test_indices(80, 8)[0],
                                np.arange(8) * 10 + 5)
  np.testing.assert_array_equal(sampling.train_indices(3, 8, None),
                                [0, 0, 0, 1, 1, 1, 2, 2])
  assert sampling.test_indices(3, 8).max() <= 2
  assert sampling.test_indices(1, 8, views=10).shape == (10, 8)


def test_train_crop_inside_same_for_all_frames_and_flip():
  # Frames whose pixel value encodes (frame, x): the crop is read back.
  t, h, w = 4, 256, 340
  x = np.broadcast_to(np.arange(w)[None, None, :, None] % 100,
                      (t, h, w, 3)).astype(np.uint8).copy()
  x += (np.arange(t) * 40)[:, None, None, None].astype(np.uint8)
  for seed in range(30):
    rng = np.random.default_rng(seed)
    box = transforms.multiscale_box(h, w, rng, resize_short=256,
                                    crop_size=224, scales=(1, .875, .75, .66))
    y0, x0, ch, cw = box
    assert 0 <= y0 and y0 + ch <= h and 0 <= x0 and x0 + cw <= w
    assert ch in (256, 224, 192, 168) and cw in (256, 224, 192, 168)
    clip = transforms.train_clip(x, np.random.default_rng(seed),
                                 resize_short=256, crop_size=224,
                                 scales=(1, .875, .75, .66))
    assert clip.shape == (t, 224, 224, 3)
    d = clip.astype(int) - (np.arange(t) * 40)[:, None, None, None]
    np.testing.assert_allclose(d[0], d[-1], atol=1)  # same crop and flip
  flips = set()
  for seed in range(20):
    c = transforms.train_clip(x[:1], np.random.default_rng(seed),
                              resize_short=256, crop_size=224,
                              scales=(1.0,), max_distort=0)
    flips.add(bool(c[0, 0, 0, 0] > c[0, 0, -1, 0]))
  assert flips == {True, False}  # both orientations occur


def test_test_crop_is_centered():
  x = np.zeros((2, 240, 320, 3), np.uint8)
  x[:, 120, 160] = 255
  out = transforms.test_clips(x, resize_short=240, crop_size=224)
  assert out.shape == (1, 2, 224, 224, 3)
  assert out[0, 0, 112, 112, 0] == 255
  assert transforms.test_clips(x, resize_short=240, crop_size=224,
                               crops=3).shape == (3, 2, 224, 224, 3)


def test_synthetic_twins_share_per_frame_statistics():
  """Class 2m+1 is class 2m's random video played backwards: for the same
  draw the frames are the same multiset, so single frames cannot tell twins
  apart (TSN is capped near 50%)."""
  for i in range(20):
    frames, label = synthetic.render(i, seed=3)
    fwd = synthetic.motion_frames(np.random.default_rng([3, i]), label // 2,
                                  64, 16)
    want = fwd[::-1] if label % 2 else fwd
    np.testing.assert_array_equal(frames, want)
    # And a forward video really moves: consecutive frames differ.
    assert np.abs(np.diff(fwd.astype(int), axis=0)).sum() > 0
  grow = synthetic.motion_frames(np.random.default_rng(0), 3, 64, 16)
  bg = np.median(grow[0])
  assert (np.abs(grow[0] - bg) > 60).sum() < (np.abs(grow[-1] - bg) > 60).sum()
  assert synthetic.render(0)[0].shape == (16, 64, 64, 3)


def small_data_cfg():
  cfg = load_config('configs/synthetic.py').data
  return cfg


def test_pipeline_deterministic_and_resumable():
  cfg = small_data_cfg()
  split = pipeline.open_split(cfg, train=True)
  ds = pipeline.train_dataset(split, cfg, 8, batch=4, seed=1)
  it = iter(ds)
  first = [next(it) for _ in range(2)]
  state = it.get_state()
  after = [next(it) for _ in range(2)]
  it2 = iter(pipeline.train_dataset(split, cfg, 8, batch=4, seed=1))
  np.testing.assert_array_equal(next(it2)['clips'], first[0]['clips'])
  it2.set_state(state)
  for a in after:
    b = next(it2)
    np.testing.assert_array_equal(a['clips'], b['clips'])
    np.testing.assert_array_equal(a['label'], b['label'])
  assert first[0]['clips'].shape == (4, 8, 56, 56, 3)
  assert first[0]['clips'].dtype == np.uint8


def test_pipeline_workers_match_in_process():
  cfg = small_data_cfg()
  split = pipeline.open_split(cfg, train=True)
  a = next(iter(pipeline.train_dataset(split, cfg, 8, batch=2, seed=5)))
  cfg.workers = 2
  it = iter(pipeline.train_dataset(split, cfg, 8, batch=2, seed=5))
  b = next(it)
  np.testing.assert_array_equal(a['clips'], b['clips'])


def test_bad_record_is_skipped_and_flagged():
  cfg = small_data_cfg()
  tf = pipeline.ClipTransform(cfg, 8, train=True)
  bad = {'frames': [b'garbage'] * 10, 'label': 3}
  out = tf((7, bad), np.random.default_rng(0))
  assert not out['valid'] and out['clips'].shape == (8, 56, 56, 3)
  empty = tf((8, {'frames': [], 'label': 1}), np.random.default_rng(0))
  assert not empty['valid']


def test_eval_pipeline_pads_last_batch_and_views():
  cfg = small_data_cfg()
  split = pipeline.open_split(cfg, train=False)
  batches = list(pipeline.eval_dataset(split, cfg, 8, batch=7,
                                       views=(2, 3), max_videos=10))
  assert [b['clips'].shape for b in batches] == [(7, 6, 8, 56, 56, 3)] * 2
  valid = np.concatenate([b['valid'] for b in batches])
  assert valid.sum() == 10 and not valid[10:].any()
  idx = np.concatenate([b['index'] for b in batches])[:10]
  np.testing.assert_array_equal(idx, np.arange(10))
  # 9 videos on 4 processes (3, 2, 2, 2): each runs 2 batches of 2.
  for p in range(4):
    got = list(pipeline.eval_dataset(split, cfg, 8, batch=2, process_index=p,
                                     process_count=4, max_videos=9))
    assert len(got) == 2
    idx = np.concatenate([b['index'] for b in got])
    np.testing.assert_array_equal(idx[idx >= 0], np.arange(p, 9, 4))


def test_synthetic_as_prepared_tfds_dataset(tmp_path):
  code, err, rep = prepare('--dataset=synthetic', '--num_videos=60',
                           f'--data_dir={tmp_path}')
  assert code == 0, err
  assert rep['splits'] == {'train1': 50, 'test1': 10}
  assert rep['num_classes'] == 10 and rep['failed'] == []
  cfg = small_data_cfg()
  cfg.data_dir = str(tmp_path)
  split = pipeline.open_split(cfg, train=False)
  assert split.classes == list(synthetic.CLASSES)
  assert split.videos[0] == 'move_right/synthetic_00040'
  # The stored JPEG frames decode to (nearly) the rendered ones.
  rec = split.source[0]
  frames, label = synthetic.render(40)
  got = pipeline.load_frames(rec, np.arange(16))
  assert int(rec['label']) == label
  assert np.abs(got.astype(int) - frames.astype(int)).mean() < 6


def test_process_shards_partition_the_single_process_stream():
  """Host p of 2 gets elements p, p+2, ... of the one-host stream, with the
  same augmentation (seeded by the global index)."""
  cfg = small_data_cfg()
  split = pipeline.open_split(cfg, train=True)
  one = next(iter(pipeline.train_dataset(split, cfg, 8, batch=4, seed=3)))
  for p in range(2):
    part = next(iter(pipeline.train_dataset(split, cfg, 8, batch=2, seed=3,
                                            process_index=p,
                                            process_count=2)))
    np.testing.assert_array_equal(part['clips'], one['clips'][p::2])
    np.testing.assert_array_equal(part['index'], one['index'][p::2])


def test_ssv2_layout_report(tmp_path):
  root = videos.ssv2_tree(tmp_path / 'raw')
  code, err, rep = prepare('--dataset=ssv2', f'--manual_dir={root}',
                           f'--data_dir={tmp_path}/tfds', '--max_failures=2',
                           '--max_missing=2')
  assert code == 0, err
  assert rep['num_classes'] == 3
  assert rep['splits'] == {'train1': 5, 'test1': 2, 'unlabelled': 2}
  assert [(r['file'].split('/')[-1], r['reason']) for r in rep['failed']] \
      == [('6.webm', 'undecodable')]
  assert [r['file'].split('/')[-1] for r in rep['missing']] == ['9.webm']
  assert rep['missing_per_class'] == {videos.SSV2_CLASSES[2]: 1}
  assert 'unlabelled: 2 videos stored without labels' in err
  assert set(rep['per_class']) == {'train1', 'test1'}
  source, meta = open_prepared(f'{tmp_path}/tfds', 'ssv2')
  assert meta['classes'] == videos.SSV2_CLASSES
  by_name = dict(zip(meta['videos'], meta['labels']))
  # The class of an entry is its template without brackets.
  assert by_name['3.webm'] == 1 and by_name['7.webm'] == 0
  assert [by_name[f'{i}.webm'] for i in (10, 11)] == [-1, -1]  # no labels
  assert sorted(meta['videos'][i] for i in meta['splits']['unlabelled']) \
      == ['10.webm', '11.webm']
  # The recipe: TSM's Something-Something V2 command, no flip.
  cfg = load_config('configs/ssv2.py:tsm')
  assert (cfg.model.num_classes, cfg.data.flip, cfg.train.lr,
          cfg.train.lr_boundaries, cfg.train.epochs) == (174, False, 0.01,
                                                         (20, 40), 50)


def test_kinetics_layout_report(tmp_path):
  root = videos.kinetics_tree(tmp_path / 'raw')
  code, err, rep = prepare('--dataset=kinetics400', f'--manual_dir={root}',
                           f'--data_dir={tmp_path}/tfds', '--max_failures=1')
  assert code == 0, err  # 1 of 10 missing: under the 0.1 default
  assert rep['num_classes'] == 3
  assert rep['splits'] == {'train1': 4, 'test1': 3, 'unlabelled': 1}
  assert [r['file'] for r in rep['missing']] == ['yt002-_x_000020_000030']
  assert rep['missing_per_class'] == {'abseiling': 1}
  assert 'missing per class: abseiling 1' in err
  assert [(r['file'].split('/')[-1], r['reason']) for r in rep['failed']] \
      == [('yt005-_x_000050_000060.mp4', 'undecodable')]
  source, meta = open_prepared(f'{tmp_path}/tfds', 'kinetics400')
  assert meta['classes'] == videos.KINETICS_CLASSES
  names = dict(zip(meta['videos'], meta['labels']))
  assert names['train/yt004-_x_000040_000050.mp4'] == 1  # flat train/
  assert names['train/petting animal (not cat)/'
               'yt007-_x_000070_000080.mp4'] == 2
  assert names['videos_val/yt003-_x_000030_000040.mp4'] == 0
  # A stricter missing limit fails the run, after writing the report.
  code, err, _ = prepare('--dataset=kinetics400', f'--manual_dir={root}',
                         f'--data_dir={tmp_path}/tfds2', '--max_failures=1',
                         '--max_missing=0')
  assert code == 1 and '1 video is missing, more than --max_missing=0' \
      in err
  cfg = load_config('configs/kinetics400.py:tsm')
  assert (cfg.model.num_classes, cfg.data.flip, cfg.train.lr,
          cfg.train.weight_decay, cfg.train.batch_size) == (400, True, 0.02,
                                                            1e-4, 128)


def test_two_way_sharded_build_equals_one_way(ucf):
  """--shard=0/2, --shard=1/2 (as two array-job tasks would), then
  --merge_shards=2: the same dataset as the one-machine build, record for
  record and in its metadata (splits, failures, names)."""
  root, rep = ucf
  args = ['--dataset=ucf101', f'--manual_dir={root}/raw',
          f'--data_dir={root}/tfds2', '--max_failures=10']
  decoded = 0
  for k in (0, 1):
    code, err, shard = prepare(*args, f'--shard={k}/2')
    assert code == 0, err
    decoded += shard['videos']
  code, err, merged = prepare(*args, '--merge_shards=2')
  assert code == 0, err
  assert decoded == rep['videos'] == merged['videos']
  for key in ('splits', 'failed', 'missing', 'unlisted', 'per_class'):
    assert merged[key] == rep[key], key
  one, meta1 = open_prepared(f'{root}/tfds', 'ucf101')
  two, meta2 = open_prepared(f'{root}/tfds2', 'ucf101')
  assert meta1 == meta2
  assert len(one) == len(two)
  for i in range(len(one)):
    a, b = one[i], two[i]
    assert set(a) == set(b)
    for key in a:
      assert np.array_equal(np.asarray(a[key]), np.asarray(b[key])), key
  code, err, _ = prepare('--dataset=ucf101', f'--manual_dir={root}/raw',
                         f'--data_dir={root}/tfds3', '--merge_shards=2')
  assert code == 2 and 'shard 0 of 2 is not built' in err


def test_rawframe_lists(tmp_path):
  """TSM / MMAction2 rawframe lists over extracted JPEGs: small frames are
  stored as their own bytes, large ones resized; a count that disagrees
  with the folder, a corrupt frame and a missing folder are reported per
  entry."""
  root = videos.rawframes_tree(tmp_path / 'raw')
  code, err, rep = prepare(
      '--dataset=custom', '--rawframes', '--filename_tmpl=img_{:05}.jpg',
      f'--manual_dir={root}/frames', f'--train_list={root}/train.txt',
      f'--test_list={root}/test.txt', f'--data_dir={tmp_path}/tfds',
      '--short_side=32', '--max_failures=2', '--max_missing=1')
  assert code == 0, err
  assert rep['splits'] == {'train1': 3, 'test1': 2}
  assert [(r['file'].split('/')[-1], r['reason'], r['detail'])
          for r in rep['failed']] == [('wave_0', 'undecodable',
                                       'img_00004.jpg: corrupt JPEG frame')]
  assert [r['file'].split('/')[-1] for r in rep['missing']] == ['jump_9']
  assert [(r['file'].split('/')[-1], r['detail']) for r in rep['warnings']
          ] == [('wave_1', 'the list says 10, the folder has 8')]
  assert 'frame count differs from the list: 1' in err
  source, meta = open_prepared(f'{tmp_path}/tfds', 'custom')
  recs = {meta['videos'][i]: source[i] for i in range(len(source))}
  small = recs['jump/jump_0']
  disk = root / 'frames' / 'jump' / 'jump_0' / 'img_00003.jpg'
  assert small['frames'][2] == disk.read_bytes()  # copied, not re-encoded
  big = recs['jump/jump_1']
  frame = pipeline.load_frames(big, np.array([0]))[0]
  assert frame.shape == (32, 43, 3) and int(big['num_frames']) == 8
  code, err, _ = prepare('--dataset=custom', f'--manual_dir={root}/frames',
                         f'--train_list={root}/train.txt',
                         f'--data_dir={tmp_path}/tfds2')
  assert code == 2 and 'pass --rawframes' in err
