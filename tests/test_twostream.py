"""EfficientNet-B0 counts, optical flow, the flow stream and late fusion."""
import json
import subprocess
import sys

import numpy as np
import pytest

from mstsm_jax import inference
from mstsm_jax.evaluation import fusion as fuse
from mstsm_jax.configs import load_config
from mstsm_jax.data import flow, pipeline
from mstsm_jax.models.cost import analyse

import videos


@pytest.mark.parametrize('variant,want,paper', [
    ('tsn', 4_136_929, None),  # torchvision efficientnet_b0, 101 classes
    ('mstsm', 4_249_537, 4.23),
    ('mstsm_tfdem', 4_503_558, 4.49),
])
def test_efficientnet_counts(variant, want, paper):
  config = load_config(f'configs/ucf101.py:{variant}',
                       {'model.backbone': 'efficientnet_b0'})
  res = analyse(config.model)
  assert res['params'] == want
  if paper:
    assert abs(res['params'] / 1e6 - paper) <= 0.03
  assert res['stages']['head'][0] == 1280 * 101 + 101


def textured(h=96, w=128, seed=0):
  import cv2
  rng = np.random.default_rng(seed)
  img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), np.uint8), (7, 7),
                         2)
  return img


@pytest.mark.parametrize('method', flow.METHODS)
def test_flow_sign_and_magnitude(method):
  img = textured()
  shifted = np.roll(img, (2, 3), axis=(0, 1))  # content moves +3 x, +2 y
  f = flow.compute_flow(img, shifted, method)
  inner = f[16:-16, 16:-16]
  assert np.median(inner[..., 0]) == pytest.approx(3.0, abs=0.3)
  assert np.median(inner[..., 1]) == pytest.approx(2.0, abs=0.3)
  back = flow.compute_flow(shifted, img, method)
  assert np.median(back[16:-16, 16:-16, 0]) == pytest.approx(-3.0, abs=0.3)


def test_flow_quantization_and_flip_negates_x():
  f = np.stack([np.full((4, 6), 5.0), np.full((4, 6), -2.5)], -1)
  q = flow.quantize(f)
  np.testing.assert_allclose(flow.dequantize(q), f, atol=40 / 255)
  assert flow.quantize(np.array([0.0]))[0] == 128
  assert flow.quantize(np.array([50.0]))[0] == 255  # clipped to 20
  x_jpg, y_jpg = flow.encode_pair(f)
  assert abs(int(flow.decode_gray(x_jpg)[2, 3]) - int(q[2, 3, 0])) <= 1
  stack = np.concatenate([q, q], -1)[None]  # [1, H, W, 4]: x, y, x, y
  flipped = flow.flip_flow(stack)
  dx = flow.dequantize(flipped[0, :, :, 0])
  np.testing.assert_allclose(dx, -5.0, atol=40 / 255)  # x negated
  np.testing.assert_allclose(flow.dequantize(flipped[0, :, :, 1]), -2.5,
                             atol=40 / 255)  # y kept
  np.testing.assert_array_equal(flipped[0, :, ::-1, 1], stack[0, :, :, 1])


def test_fusion_equals_hand_computation(tmp_path):
  rgb = np.array([[2.0, 1.0, 0.0], [0.0, 0.5, 0.1], [1.0, 1.0, 3.0]])
  flw = np.array([[0.0, 3.0, 0.0], [0.0, 2.0, 0.0], [4.0, 0.0, 0.0]])
  labels = np.array([1, 1, 0])
  names = np.array(['a', 'b', 'c'])
  np.savez(tmp_path / 'rgb.npz', videos=names, labels=labels, scores=rgb)
  # The flow file lists the videos in another order.
  np.savez(tmp_path / 'flow.npz', videos=names[::-1], labels=labels[::-1],
           scores=flw[::-1])
  sm = lambda z: np.exp(z) / np.exp(z).sum(-1, keepdims=True)
  want = sm(rgb) + 1.5 * sm(flw)
  _, _, scores = fuse.load_scores([tmp_path / 'rgb.npz',
                                   tmp_path / 'flow.npz'])
  np.testing.assert_allclose(fuse.fuse(scores, (1, 1.5)), want, rtol=1e-6)
  r = subprocess.run([sys.executable, '-m', 'mstsm_jax.fuse', '--scores',
                      str(tmp_path / 'rgb.npz'), str(tmp_path / 'flow.npz'),
                      '--weights', '1,1.5', '--json'], capture_output=True,
                     text=True)
  assert r.returncode == 0, r.stderr
  out = json.loads(r.stdout.strip().splitlines()[-1])
  # rgb alone: [0, 1, 2] vs labels [1, 1, 0] -> 1/3; fused: argmax of want
  assert out['streams'][str(tmp_path / 'rgb.npz')]['top1'] == pytest.approx(
      1 / 3)
  assert out['fused']['top1'] == pytest.approx(
      np.mean(want.argmax(-1) == labels))
  np.savez(tmp_path / 'other.npz', videos=np.array(['a', 'b', 'x']),
           labels=labels, scores=flw)
  with pytest.raises(ValueError, match='videos differ'):
    fuse.load_scores([tmp_path / 'rgb.npz', tmp_path / 'other.npz'])


def test_flow_stream_end_to_end(tmp_path, job):
  """prepare --flow, RGB model -> flow model (cross-modality init), train,
  evaluate, fuse."""
  for c in range(2):
    for i in range(10):
      videos.write_video(tmp_path / 'raw' / f'c{c}' / f'v{i}.avi', 14,
                         size=(48, 64), seed=10 * c + i)
  r = job('prepare', '--dataset=custom',
          f'--manual_dir={tmp_path}/raw', f'--data_dir={tmp_path}/tfds',
          '--flow=farneback', '--test_fraction=0.3', '--workers=2', '--json')
  assert r.json()['failed'] == []
  from mstsm_jax.data.builder import open_prepared
  source, meta = open_prepared(f'{tmp_path}/tfds', 'custom')
  assert meta['flow'] == 'farneback'
  rec = source[0]
  assert len(rec['flow_x']) == len(rec['frames']) - 1 == 13
  cfg = load_config('configs/custom.py', {'data.modality': 'flow'}).data
  tf = pipeline.ClipTransform(cfg, 8, train=True)
  out = tf((0, rec), np.random.default_rng(0))
  assert out['valid'] and out['clips'].shape == (8, 224, 224, 10)
  # Downscaled too (the runs below): OpenCV resizes at most 4 channels at
  # a non-integer scale, and the 10-channel stacks were skipped as invalid.
  small = load_config('configs/custom.py', {
      'data.modality': 'flow', 'data.resize_short': 36,
      'data.crop_size': 32}).data
  for train in (True, False):
    out = pipeline.ClipTransform(small, 8, train=train)(
        (0, rec), np.random.default_rng(0))
    assert out['valid'] and out['clips'].shape[-3:] == (32, 32, 10), train
  common = ['--config.model.stage_sizes=(1,1,1,1)', '--config.model.width=8',
            '--config.model.tfdem_width=8', '--config.data.resize_short=36',
            '--config.data.crop_size=32', '--config.train.batch_size=8',
            '--config.eval.batch_size=8', '--config.train.max_steps=2',
            f'--config.data.data_dir={tmp_path}/tfds',
            '--config.model.num_classes=2']
  job('train', '--config=configs/custom.py:tsm', f'--workdir={tmp_path}'
      '/rgb', *common)
  r = job('train', '--config=configs/custom.py:tsm',
          f'--workdir={tmp_path}/flow', '--config.data.modality=flow',
          f'--config.init_from={tmp_path}/rgb', *common, '--json')
  assert 'adapted params/backbone/conv1/kernel: (7, 7, 3, 8) -> (7, 7, 10, 8)' \
      in r.stderr
  assert r.json()['skipped_train'] == 0
  # A flow model's predictor takes 10-channel clips of any size.
  scores = inference.load(tmp_path / 'flow')(np.random.default_rng(0).integers(
      0, 256, (1, 8, 48, 64, 10), np.uint8))
  assert scores.shape == (1, 2) and np.isfinite(scores).all()
  from mstsm_jax.modeldir import load_variables
  _, _, rgb_vars, _ = load_variables(tmp_path / 'rgb')
  k = rgb_vars['params']['backbone']['conv1']['kernel']
  init = np.repeat(k.mean(axis=2, keepdims=True), 10, axis=2)
  _, _, flow_vars, _ = load_variables(tmp_path / 'flow')
  k2 = flow_vars['params']['backbone']['conv1']['kernel']
  assert k2.shape == init.shape and np.abs(k2 - init).max() < 0.05
  for name in ('rgb', 'flow'):
    job('evaluate', f'--workdir={tmp_path}/{name}')
  r = job('fuse', '--scores',
          f'{tmp_path}/rgb/eval/test1_1x1/scores.npz',
          f'{tmp_path}/flow/eval/test1_1x1/scores.npz', '--json')
  assert 'fused' in r.json()
