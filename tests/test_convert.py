"""PyTorch -> JAX conversion: numeric parity with torchvision's ResNet-50
(TSN) and a PyTorch TSM (official zero-padded shift around each block's
conv1), for torchvision, official-TSM and MMAction2 key formats."""
import json
import subprocess
import sys

import jax
import numpy as np
import pytest

torch = pytest.importorskip('torch')
torchvision = pytest.importorskip('torchvision')

from mstsm_jax import convert, inference  # noqa: E402
from mstsm_jax.config_lib import load_config  # noqa: E402

T = 8


def tsm_shift(x, n_segment=T, fold_div=8):
  """Official TSM `TemporalShift.shift` (mit-han-lab), NCHW."""
  nt, c, h, w = x.size()
  x = x.view(nt // n_segment, n_segment, c, h, w)
  fold = c // fold_div
  out = torch.zeros_like(x)
  out[:, :-1, :fold] = x[:, 1:, :fold]  # shift left
  out[:, 1:, fold:2 * fold] = x[:, :-1, fold:2 * fold]  # shift right
  out[:, :, 2 * fold:] = x[:, :, 2 * fold:]  # not shift
  return out.view(nt, c, h, w)


class Shifted(torch.nn.Module):
  """TSM's residual ("blockres") placement: shift, then the block's conv1."""

  def __init__(self, net):
    super().__init__()
    self.net = net

  def forward(self, x):
    return self.net(tsm_shift(x))


def randomize(model, head, seed):
  """Random BN statistics and affine parameters (so that converting them
  matters), a visible classifier; eval mode."""
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for m in model.modules():
      if isinstance(m, torch.nn.BatchNorm2d):
        n = m.num_features
        m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
        m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
        m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
        m.bias.copy_(torch.randn(n, generator=g) * 0.1)
    head.weight.normal_(0, 0.05, generator=g)
  model.eval()


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  d = tmp_path_factory.mktemp('torch')
  torch.manual_seed(0)
  model = torchvision.models.resnet50(num_classes=101)
  randomize(model, model.fc, seed=1)
  sd = model.state_dict()
  files = {'torchvision': d / 'resnet50.pth', 'tsm': d / 'tsm.pth',
           'mmaction2': d / 'mmaction2.pth'}
  torch.save(sd, files['torchvision'])
  tsm = {}
  for k, v in sd.items():
    k2 = k.replace('fc.', 'new_fc.') if k.startswith('fc.') else (
        'base_model.' + (k.replace('.conv1.weight', '.conv1.net.weight')
                         if k.startswith('layer') else k))
    tsm['module.' + k2] = v
  torch.save({'epoch': 50, 'arch': 'resnet50', 'state_dict': tsm},
             files['tsm'])
  mm = {}
  for k, v in sd.items():
    if k.startswith('fc.'):
      mm['cls_head.fc_cls.' + k[3:]] = v
      continue
    k2 = k
    k2 = k2.replace('downsample.0.', 'downsample.conv.')
    k2 = k2.replace('downsample.1.', 'downsample.bn.')
    for i in (1, 2, 3):
      k2 = k2.replace(f'.conv{i}.weight', f'.conv{i}.conv.weight')
      k2 = k2.replace(f'.bn{i}.', f'.conv{i}.bn.')
    if k2.startswith('conv1.'):
      k2 = 'conv1.conv.' + k2[6:]
    if k2.startswith('bn1.'):
      k2 = 'conv1.bn.' + k2[4:]
    mm['backbone.' + k2] = v
  torch.save({'meta': {'mmaction_version': '1.2'}, 'state_dict': mm},
             files['mmaction2'])
  x = np.random.default_rng(0).normal(size=(2, T, 64, 64, 3)).astype(
      np.float32)
  xt = torch.from_numpy(x.reshape(2 * T, 64, 64, 3)).permute(0, 3, 1, 2)
  with torch.no_grad():
    tsn_logits = model(xt).view(2, T, -1).mean(1).numpy()
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
      for blk in layer:
        blk.conv1 = Shifted(blk.conv1)
    tsm_logits = model(xt).view(2, T, -1).mean(1).numpy()
  assert not np.allclose(tsn_logits, tsm_logits, atol=1e-3)
  return {'files': files, 'x': x, 'tsn': tsn_logits, 'tsm': tsm_logits,
          'dir': d}


def ours(reference, fmt, variant, tmp_path=None):
  config = load_config(f'configs/ucf101.py:{variant}')
  variables, report, detected = convert.convert(
      str(reference['files'][fmt]), config)
  from mstsm_jax.models.mstsm import build_model
  logits, aux = jax.jit(lambda v, x: build_model(config.model).apply(
      v, x, train=False))(variables, reference['x'])
  return np.asarray(logits), aux, report, detected


def max_rel_diff(a, b):
  return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize('fmt,variant,want', [
    ('torchvision', 'tsn', 'tsn'),
    ('tsm', 'tsm', 'tsm'),
    ('mmaction2', 'tsm', 'tsm'),
    ('tsm', 'mstsm', 'tsm'),
    ('tsm', 'mstsm_tfdem', 'tsm'),
])
def test_parity(reference, fmt, variant, want):
  logits, aux, report, detected = ours(reference, fmt, variant)
  assert detected == fmt
  diff = max_rel_diff(logits, reference[want])
  print(f'{fmt} -> {variant}: max |diff| / max |logit| = {diff:.2e}')
  assert diff <= 1e-3
  assert not report['missing'] and not report['unused']
  assert (aux is not None) == variant.endswith('tfdem')
  assert bool(report['new_branch']) == variant.endswith('tfdem')


def test_classifier_reinitialised_when_classes_differ(reference, tmp_path):
  torch.save({k: v for k, v in torch.load(
      reference['files']['torchvision'], weights_only=True).items()},
      tmp_path / 'x.pth')
  config = load_config('configs/hmdb51.py:tsn')  # 51 classes, ckpt 101
  variables, report, _ = convert.convert(str(tmp_path / 'x.pth'), config)
  assert report['reinitialised'] == [
      'params/fc/bias: (101,) -> (51,)', 'params/fc/kernel: (2048, 101) -> '
      '(2048, 51)']
  assert variables['params']['fc']['kernel'].shape == (2048, 51)


def test_strict_shape_mismatch_and_corrupt(reference, tmp_path):
  sd = torch.load(reference['files']['torchvision'], weights_only=True)
  sd['extra.weight'] = torch.zeros(3)
  torch.save(sd, tmp_path / 'extra.pth')
  config = load_config('configs/ucf101.py:tsm')
  with pytest.raises(ValueError, match=r"--strict: 0 missing keys .* 1 "
                     r"unused keys \['unknown/extra.weight'\]"):
    convert.convert(str(tmp_path / 'extra.pth'), config, strict=True)
  _, report, _ = convert.convert(str(tmp_path / 'extra.pth'), config)
  assert report['unused'] == ['unknown/extra.weight']
  del sd['extra.weight']
  sd['layer1.0.conv2.weight'] = sd['layer1.0.conv2.weight'][:32]
  torch.save(sd, tmp_path / 'bad.pth')
  with pytest.raises(ValueError, match=r'shape mismatch for params/backbone/'
                     r'layer1_0/conv2/kernel: checkpoint has \(3, 3, 64, 32\)'
                     r', the model needs \(3, 3, 64, 64\)'):
    convert.convert(str(tmp_path / 'bad.pth'), config)
  (tmp_path / 'corrupt.pth').write_bytes(b'\x80\x02garbage' * 100)
  with pytest.raises(ValueError, match='corrupt.pth is not a readable '
                     'PyTorch checkpoint'):
    convert.convert(str(tmp_path / 'corrupt.pth'), config)


def test_cli_to_predict(reference, tmp_path):
  """The README's two commands: convert a TSM .pth, predict on a video."""
  import videos
  out = tmp_path / 'ckpt'
  classes = tmp_path / 'classInd.txt'
  classes.write_text(''.join(f'{i + 1} Class{i}\n' for i in range(101)))
  r = subprocess.run([
      sys.executable, '-m', 'mstsm_jax.convert',
      f'--input={reference["files"]["tsm"]}',
      '--config=configs/ucf101.py:mstsm_tfdem', f'--output={out}',
      f'--classes_file={classes}', '--json'], capture_output=True, text=True)
  assert r.returncode == 0, r.stderr
  rep = json.loads(r.stdout.strip().splitlines()[-1])
  assert rep['format'] == 'tsm' and rep['missing'] == []
  # The converted directory restores as the same model.
  pred = inference.load(out, batch_size=2)
  logits = pred(reference['x'])
  assert max_rel_diff(logits, reference['tsm']) <= 1e-3
  assert pred(reference['x'][:1]).shape == (1, 101)
  clip = tmp_path / 'v.avi'
  videos.write_video(clip, 24, size=(72, 96))
  r = subprocess.run([sys.executable, '-m', 'mstsm_jax.predict',
                      f'--checkpoint={out}', '--json', str(clip)],
                     capture_output=True, text=True)
  assert r.returncode == 0, r.stderr
  res = json.loads(r.stdout.strip().splitlines()[-1])
  assert len(res['top5']) == 5 and res['top5'][0]['class'].startswith('Class')
  probs = [t['probability'] for t in res['top5']]
  assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001


@pytest.fixture(scope='module')
def effnet_reference(tmp_path_factory):
  d = tmp_path_factory.mktemp('effnet')
  torch.manual_seed(0)
  model = torchvision.models.efficientnet_b0(num_classes=101)
  randomize(model, model.classifier[1], seed=2)
  torch.save(model.state_dict(), d / 'efficientnet_b0.pth')
  x = np.random.default_rng(1).normal(size=(2, T, 64, 64, 3)).astype(
      np.float32)
  xt = torch.from_numpy(x.reshape(2 * T, 64, 64, 3)).permute(0, 3, 1, 2)
  with torch.no_grad():
    tsn = model(xt).view(2, T, -1).mean(1).numpy()
    for m in model.modules():  # the shift before the expand conv
      if type(m).__name__ == 'MBConv' and m.use_res_connect:
        m.block[0] = Shifted(m.block[0])
    tsm = model(xt).view(2, T, -1).mean(1).numpy()
  return {'file': d / 'efficientnet_b0.pth', 'x': x, 'tsn': tsn, 'tsm': tsm}


@pytest.mark.parametrize('variant,want', [('tsn', 'tsn'), ('tsm', 'tsm'),
                                          ('mstsm_tfdem', 'tsm')])
def test_efficientnet_parity(effnet_reference, variant, want):
  from mstsm_jax.models.mstsm import build_model
  config = load_config(f'configs/ucf101.py:{variant}',
                       {'model.backbone': 'efficientnet_b0'})
  variables, report, fmt = convert.convert(str(effnet_reference['file']),
                                           config)
  assert fmt == 'torchvision' and not report['missing']
  assert not report['unused']
  logits, _ = jax.jit(lambda v, x: build_model(config.model).apply(
      v, x, train=False))(variables, effnet_reference['x'])
  diff = max_rel_diff(np.asarray(logits), effnet_reference[want])
  print(f'efficientnet_b0 -> {variant}: {diff:.2e}')
  assert diff <= 1e-3


def test_backbone_mismatch_is_clear(effnet_reference):
  with pytest.raises(ValueError, match='is a efficientnet_b0 checkpoint but '
                     'config.model.backbone=resnet50'):
    convert.convert(str(effnet_reference['file']),
                    load_config('configs/ucf101.py:tsn'))
