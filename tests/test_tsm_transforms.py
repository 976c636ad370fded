"""Our data path under TSM's rules (issue 24.2) against references written
here from the official code (mit-han-lab/temporal-shift-module,
ops/transforms.py and ops/dataset.py): the multi-scale crop's 13 fixed
positions with their frequencies, the training frame offsets, and the
test-time boxes and indices. Frames are stored at short side 256, as
TSM's extracted frames are. Pure numpy."""
import collections
import itertools
import math

import numpy as np
import pytest

from mstsm_jax.configs import load_config
from mstsm_jax.data import pipeline, sampling, transforms
from mstsm_jax.errors import UsageError

SCALES = (1, .875, .75, .66)


def chi2_bound(dof: int, z: float = 4.75) -> float:
  """The chi-square quantile at about p = 1e-6 (Wilson-Hilferty)."""
  return dof * (1 - 2 / (9 * dof) + z * math.sqrt(2 / (9 * dof))) ** 3


def assert_fits(counts: dict, probs: dict):
  """Observed `counts` drawn from `probs`: same support, and a chi-square
  statistic below its p = 1e-6 bound."""
  assert set(counts) == set(probs), set(counts) ^ set(probs)
  n = sum(counts.values())
  stat = sum((counts[k] - n * p) ** 2 / (n * p) for k, p in probs.items())
  assert stat < chi2_bound(len(probs) - 1), stat


def official_crop_boxes(image_w, image_h, input_size=224, max_distort=1):
  """GroupMultiScaleCrop(input_size, [1, .875, .75, .66]) with fix_crop and
  more_fix_crop: {(x, y, w, h): probability}. A size pair is drawn
  uniformly from those within `max_distort` scale steps (sizes within 3 px
  of the input snap to it), then one of 13 offsets on the quarter grid."""
  base = min(image_w, image_h)
  sizes = [int(base * s) for s in SCALES]
  sizes = [input_size if abs(s - input_size) < 3 else s for s in sizes]
  pairs = [(w, h) for i, h in enumerate(sizes) for j, w in enumerate(sizes)
           if abs(i - j) <= max_distort]
  probs = collections.Counter()
  for w, h in pairs:
    ws, hs = (image_w - w) // 4, (image_h - h) // 4
    offsets = [(0, 0), (4 * ws, 0), (0, 4 * hs), (4 * ws, 4 * hs),
               (2 * ws, 2 * hs), (0, 2 * hs), (4 * ws, 2 * hs),
               (2 * ws, 4 * hs), (2 * ws, 0), (ws, hs), (3 * ws, hs),
               (ws, 3 * hs), (3 * ws, 3 * hs)]
    for x, y in offsets:
      probs[(x, y, w, h)] += 1 / (len(pairs) * len(offsets))
  return probs


def ours_boxes(h, w, n, offsets, seed=0):
  rng = np.random.default_rng(seed)
  counts = collections.Counter()
  for _ in range(n):
    y, x, ch, cw = transforms.multiscale_box(
        h, w, rng, resize_short=min(h, w), crop_size=224, scales=SCALES,
        offsets=offsets)
    counts[(x, y, cw, ch)] += 1
  return counts


def test_13_crop_positions_with_the_official_frequencies():
  probs = official_crop_boxes(340, 256)
  assert len(probs) == 114  # distinct boxes on a 340x256 frame
  assert_fits(ours_boxes(256, 340, 30000, 'tsm13'), probs)
  # our default (4 corners and the center) reaches fewer of them
  five = ours_boxes(256, 340, 3000, 'five')
  assert len(five) < len(probs) and len(set(five) & set(probs)) < 60
  # a portrait frame and a square one: the same rules
  for h, w in ((320, 256), (256, 256)):
    assert_fits(ours_boxes(h, w, 8000, 'tsm13', seed=1),
                official_crop_boxes(w, h))


def official_train_offsets(n, t):
  """`_sample_indices` (RGB, new_length 1, no dense sample), 0-based: the
  support of each segment's frame, equally likely."""
  seg = n // t
  if seg > 0:
    return [list(range(x * seg, (x + 1) * seg)) for x in range(t)]
  return [[0]] * t  # n < t: frame 0 everywhere (n > t cannot reach here)


@pytest.mark.parametrize('t', [8, 3])
def test_train_offsets_uniform_within_the_official_segments(t):
  rng = np.random.default_rng(0)
  for n in range(1, 201):  # the support, for every length
    draws = np.stack([sampling.train_indices(n, t, rng, 'tsm')
                      for _ in range(40)])
    for x, support in enumerate(official_train_offsets(n, t)):
      assert set(draws[:, x]) <= set(support), (n, x)
  for n in (9, 17, 23, 61, 150):  # uniform within each segment
    draws = np.stack([sampling.train_indices(n, t, rng, 'tsm')
                      for _ in range(3000)])
    for x, support in enumerate(official_train_offsets(n, t)):
      if len(support) > 1:
        assert_fits(collections.Counter(draws[:, x].tolist()),
                    {i: 1 / len(support) for i in support})
  # our default draws from floor edges over the whole video: the tail too
  tail = {int(sampling.train_indices(23, 8, rng)[-1]) for _ in range(300)}
  assert 22 in tail


def test_dense_train_start_uniform():
  """I3D dense sampling: start uniform in [0, n - 64), stride 64 // T."""
  rng = np.random.default_rng(0)
  n, t = 100, 8
  draws = np.stack([sampling.train_indices(n, t, rng, 'dense')
                    for _ in range(6000)])
  assert (np.diff(draws, axis=1) % n == 8).all()
  assert_fits(collections.Counter(draws[:, 0].tolist()),
              {s: 1 / (n - 64) for s in range(n - 64)})
  assert (sampling.train_indices(40, t, rng, 'dense') ==
          np.arange(8) * 8 % 40).all()


def official_test_indices(n, t, rule):
  """`_get_test_indices`, 0-based, [views, T]."""
  if rule == 'dense':
    sample_pos = max(1, 1 + n - 64)
    starts = np.linspace(0, sample_pos - 1, num=10, dtype=int)
    return [[(i * (64 // t) + s) % n for i in range(t)] for s in starts]
  tick = n / float(t)
  views = [[int(tick / 2.0 + tick * x) for x in range(t)]]
  if rule == 'twice':
    views.append([int(tick * x) for x in range(t)])
  return views


@pytest.mark.parametrize('rule', ['tsm', 'twice', 'dense'])
def test_test_indices_equal(rule):
  for t in (8, 16, 3):
    for n in range(1, 301):
      want = official_test_indices(n, t, rule)
      got = sampling.test_indices(n, t, rule=rule)
      assert got.tolist() == want, (n, t)
      assert len(want) == sampling.TEST_VIEWS[rule]


def official_test_boxes(image_w, image_h, crops, full_res):
  """test_models.py: GroupScale(256) (identity at short side 256), then one
  GroupCenterCrop(224) (torchvision rounds the margin) or
  GroupFullResSample's left / right / center; --full_res crops 256."""
  size = 256 if full_res else 224
  if crops == 1:
    return [(int(round((image_h - size) / 2.0)),
             int(round((image_w - size) / 2.0)), size, size)]
  ws, hs = (image_w - size) // 4, (image_h - size) // 4
  return [(2 * hs, x, size, size) for x in (0, 4 * ws, 2 * ws)]


@pytest.mark.parametrize('h,w', [(256, 340), (256, 455), (256, 256),
                                 (320, 256), (256, 341)])
def test_test_boxes_equal(h, w):
  for crops, full_res in itertools.product((1, 3), (False, True)):
    mode = 'full_res' if full_res else 'tsm'
    got = transforms.test_boxes(h, w, resize_short=256, crop_size=224,
                                crops=crops, mode=mode)
    assert [tuple(map(int, b)) for b in got] == official_test_boxes(
        w, h, crops, full_res), (crops, mode)
  frames = np.zeros((2, h, w, 3), np.uint8)
  assert transforms.test_clips(frames, resize_short=256, crop_size=224,
                               crops=3, mode='full_res').shape == (
                                   3, 2, 256, 256, 3)


def test_recipe_and_views_rule():
  c = load_config('configs/ucf101.py:tsm_official')
  assert (c.model.temporal, c.model.bn_mode, c.model.dropout) == (
      'tsm', 'partial', 0.8)
  assert (c.train.lr, c.train.lr_boundaries, c.train.epochs,
          c.train.batch_size, c.train.clip_norm, c.train.fc_lr_mult) == (
              0.001, (10, 20), 25, 64, 20.0, 5.0)
  assert (c.data.crop_offsets, c.data.train_sampling) == ('tsm13', 'tsm')
  with pytest.raises(UsageError, match='takes 2 temporal clips'):
    load_config('configs/ucf101.py:tsm_official',
                {'data.test_sampling': 'twice'})
  load_config('configs/ucf101.py:tsm_official',
              {'data.test_sampling': 'twice', 'eval.views': '2x3'})


def test_clip_transform_takes_the_rules():
  """The pipeline's element under TSM's rules: shapes, validity, and the
  views a protocol needs."""
  c = load_config('configs/synthetic.py:tsm', {
      'data.crop_offsets': 'tsm13', 'data.train_sampling': 'tsm',
      'data.test_sampling': 'twice', 'data.test_crops': 'full_res',
      'data.resize_short': 40, 'data.crop_size': 32, 'eval.views': '2x3'})
  record = {'frames': np.random.default_rng(0).integers(
      0, 256, (20, 40, 52, 3), dtype=np.uint8), 'label': 1}
  train = pipeline.ClipTransform(c.data, 8, train=True)
  out = train((0, record), np.random.default_rng(0))
  assert out['valid'] and out['clips'].shape == (8, 32, 32, 3)
  test = pipeline.ClipTransform(c.data, 8, train=False, views=(2, 3))
  out = test((0, record))
  assert out['valid'] and out['clips'].shape == test.shape() == (
      6, 8, 40, 40, 3)
  with pytest.raises(UsageError, match='takes 2 temporal clips'):
    pipeline.ClipTransform(c.data, 8, train=False, views=(1, 1))
