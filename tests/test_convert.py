"""PyTorch -> JAX conversion: numeric parity with torchvision's ResNet-50
(TSN) and a PyTorch TSM (official zero-padded shift around each block's
conv1), for torchvision, official-TSM and MMAction2 key formats."""
import functools
import re

import jax
import numpy as np
import pytest

torch = pytest.importorskip('torch')
torchvision = pytest.importorskip('torchvision')

from torch_tsm import Shifted  # noqa: E402,I100

import model_dirs  # noqa: E402
from mstsm_jax import modeldir  # noqa: E402
from mstsm_jax.errors import UsageError  # noqa: E402
from mstsm_jax.models import pytorch as convert  # noqa: E402
from mstsm_jax.configs import load_config  # noqa: E402

T = 8


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


@functools.cache
def forward(variant):
  """`variant`'s jitted inference forward, one per variant in the module
  (two key formats convert to the same TSM model: traced once)."""
  from mstsm_jax.models.mstsm import build_model
  model = build_model(load_config(f'configs/ucf101.py:{variant}').model)
  return jax.jit(lambda v, x: model.apply(v, x, train=False))


def ours(reference, fmt, variant):
  config = load_config(f'configs/ucf101.py:{variant}')
  variables, report, detected = convert.convert(
      str(reference['files'][fmt]), config)
  logits, aux = forward(variant)(variables, reference['x'])
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


def test_unused_mismatch_strict_and_corrupt(tmp_path):
  """On a tiny ResNet: an unused tensor and a misfitting one stop the
  conversion (allow_partial proceeds); --strict also refuses a new
  classifier; a corrupt file is one clear error."""
  config = model_dirs.tiny_config('tsm')
  sd = model_dirs.torchvision_state_dict(model_dirs.init_variables(config))
  sd['extra.weight'] = np.zeros(3, np.float32)
  with pytest.raises(UsageError, match=r'1 checkpoint tensors would go '
                     r'unused \(e.g. unknown/extra.weight\)'):
    convert.convert(sd, config)
  _, report, _ = convert.convert(sd, config, allow_partial=True)
  assert report['unused'] == ['unknown/extra.weight']
  del sd['extra.weight']
  sd['layer1.0.conv2.weight'] = sd['layer1.0.conv2.weight'][:4]
  with pytest.raises(UsageError, match=r'1 shapes do not fit \(e.g. params/'
                     r'backbone/layer1_0/conv2/kernel: \(3, 3, 8, 4\) -> '
                     r'\(3, 3, 8, 8\)\)'):
    convert.convert(sd, config)
  sd['layer1.0.conv2.weight'] = np.zeros((8, 8), np.float32)  # not 4-D
  with pytest.raises(UsageError, match=r'params/backbone/layer1_0/conv2/'
                     r'kernel: \(8, 8\) -> \(3, 3, 8, 8\)'):
    convert.convert(sd, config)
  del sd['layer1.0.conv2.weight']
  with pytest.raises(UsageError, match=r'1 backbone tensors would keep their '
                     r'random init \(e.g. params/backbone/layer1_0/conv2/'):
    convert.convert(sd, config)
  sd = model_dirs.torchvision_state_dict(model_dirs.init_variables(config))
  sd['fc.weight'], sd['fc.bias'] = sd['fc.weight'][:7], sd['fc.bias'][:7]
  _, report, _ = convert.convert(sd, config)  # 7 -> 10 classes: expected
  assert len(report['reinitialised']) == 2
  with pytest.raises(UsageError, match='--strict: 2 classifier tensors'):
    convert.convert(sd, config, strict=True)
  sd = model_dirs.torchvision_state_dict(model_dirs.init_variables(config))
  sd['fc.bias'] = sd['fc.bias'][:7]  # a head that disagrees with itself
  with pytest.raises(UsageError, match=r'params/fc/bias: \(7,\) -> \(10,\) '
                     r'\(the rest of params/fc fits\)'):
    convert.convert(sd, config)
  (tmp_path / 'corrupt.pth').write_bytes(b'\x80\x02garbage' * 100)
  with pytest.raises(UsageError, match='corrupt.pth is not a readable '
                     'PyTorch checkpoint'):
    convert.convert(str(tmp_path / 'corrupt.pth'), config)


def test_only_what_the_checkpoint_lacks_is_initialised():
  """fit.initialise: checkpoint tensors where they fit; the new TFDEM
  branch and a classifier of another class count get exactly the values
  the whole model's init gives them."""
  from flax import traverse_util
  from mstsm_jax.models import fit
  from mstsm_jax.models.mstsm import build_model
  config = model_dirs.tiny_config('mstsm_tfdem')
  full = traverse_util.flatten_dict(model_dirs.flax_init(config, 4),
                                    sep='/')
  loaded = {k: v + 1 for k, v in full.items() if '/tfdem/' not in k}
  width = full['params/fc/kernel'].shape[0]  # a 3-class head; the model: 10
  loaded['params/fc/kernel'] = np.zeros((width, 3), np.float32)
  loaded['params/fc/bias'] = np.zeros(3, np.float32)
  s = config.data.crop_size
  got, report = fit.initialise(
      build_model(config.model), jax.random.key(4), (1, T, s, s, 3),
      traverse_util.unflatten_dict(loaded, sep='/'))
  got = traverse_util.flatten_dict(got, sep='/')
  assert got.keys() == full.keys()
  fresh = {k for k in full if '/tfdem/' in k or k.startswith('params/fc/')}
  assert len(report['reinitialised']) == 2 and set(report['missing']) == {
      k for k in fresh if '/tfdem/' in k}
  for k, v in got.items():
    np.testing.assert_array_equal(v, full[k] if k in fresh else loaded[k])


def tsm_file(sd, path):
  """`sd` saved as an official TSM checkpoint (module.base_model., new_fc,
  conv1 wrapped by the shift as conv1.net)."""
  out = {}
  for k, v in sd.items():
    k = ('new_fc.' + k[3:] if k.startswith('fc.') else 'base_model.'
         + re.sub(r'^(layer\d\.\d+\.)conv1\.', r'\1conv1.net.', k))
    out['module.' + k] = torch.from_numpy(np.array(v))
  torch.save({'epoch': 50, 'state_dict': out}, path)
  return path


def non_local(sd):
  """TSM's _nl models: NL3DWrapper around layer2.0 and layer3.0."""
  out = {}
  for k, v in sd.items():
    out[re.sub(r'^(layer[23]\.0)\.', r'\1.block.', k)] = v
  for blk in ('layer2.0', 'layer3.0'):
    for part in ('g', 'theta', 'phi'):
      out[f'{blk}.nl.{part}.weight'] = np.zeros((2, 4, 1, 1, 1), np.float32)
      out[f'{blk}.nl.{part}.bias'] = np.zeros(2, np.float32)
    out[f'{blk}.nl.W.0.weight'] = np.zeros((4, 2, 1, 1, 1), np.float32)
  return out


def deeper(sd, sizes=(3, 4, 23, 3)):
  """More blocks per stage (e.g. ResNet-101's), copies of block 0."""
  out = dict(sd)
  for s, n in enumerate(sizes, start=1):
    for i in range(1, n):
      for k, v in sd.items():
        if k.startswith(f'layer{s}.0.') and 'downsample' not in k:
          out[k.replace(f'layer{s}.0.', f'layer{s}.{i}.')] = v
  return out


def temporal_pool(sd):
  return {re.sub(r'^layer2\.', 'layer2.net.', k): v for k, v in sd.items()}


def mobilenet_v2(num_classes=10):
  z = lambda *s: np.zeros(s, np.float32)
  return {'features.0.0.weight': z(32, 3, 3, 3), 'features.0.1.weight': z(32),
          'features.1.conv.0.weight': z(32, 1, 3, 3),
          'features.2.conv.0.weight': z(96, 16, 1, 1),
          'features.18.0.weight': z(1280, 320, 1, 1),
          'fc.weight': z(num_classes, 1280), 'fc.bias': z(num_classes)}


@pytest.mark.parametrize('make,message', [
    (non_local, r'non-local blocks \(14 tensors in 2 ".nl" modules'),
    (deeper, r'a ResNet-101 \(blocks per stage \[3, 4, 23, 3\]; this model '
             r'has \[1, 1, 1, 1\]\)'),
    (temporal_pool, r'temporal pooling \(TSM\'s tpool'),
    (lambda sd: mobilenet_v2(), r'a MobileNetV2'),
])
def test_official_zoo_files_that_do_not_fit(make, message, tmp_path, job):
  """Non-local, deeper, tpool and MobileNetV2 TSM files: exit 2 with what
  the file looks like, nothing written; --allow_partial converts."""
  config = model_dirs.tiny_config('tsm')
  sd = model_dirs.torchvision_state_dict(model_dirs.init_variables(config))
  path = tsm_file(make(sd), tmp_path / 'zoo.pth')
  args = ['--config=configs/synthetic.py:tsm', *model_dirs.TINY_ARGS,
          f'--input={path}']
  r = job('convert', *args, f'--output={tmp_path}/out', code=2)
  error = r.stderr.splitlines()[0]
  assert re.search(message, error), error
  assert 'class count' not in r.stderr
  assert '--allow_partial' in r.stderr.splitlines()[1]
  assert not (tmp_path / 'out').exists()
  r = job('convert', *args, f'--output={tmp_path}/part', '--allow_partial',
          '--json')
  assert r.json()['problems'] and '--allow_partial: converted' in r.stderr


def test_non_local_file_loads_its_resnet_weights(tmp_path):
  """--allow_partial on an _nl file: every ResNet tensor loads (the
  NL3DWrapper's block), only the non-local modules are left out."""
  config = model_dirs.tiny_config('tsm')
  v = model_dirs.init_variables(config, seed=3)
  sd = non_local(model_dirs.torchvision_state_dict(v))
  got, report, _ = convert.convert(sd, config, allow_partial=True)
  assert not report['missing'] and len(report['unused']) == 14
  np.testing.assert_array_equal(
      got['params']['backbone']['layer2_0']['conv1']['kernel'],
      v['params']['backbone']['layer2_0']['conv1']['kernel'])


def test_feature_width_change_is_not_a_class_count_change():
  config = model_dirs.tiny_config('tsm')
  sd = model_dirs.torchvision_state_dict(model_dirs.init_variables(config))
  sd['fc.weight'] = np.zeros((10, 1280), np.float32)  # MobileNetV2 width
  with pytest.raises(UsageError, match=r'shapes do not fit \(e.g. params/fc/'
                     r'kernel: \(1280, 10\) -> \(256, 10\)\)') as e:
    convert.convert(sd, config)
  assert 'class count' not in str(e.value)


def test_cli_to_predict(reference, tmp_path, job):
  """The README's two commands: convert a TSM .pth, predict on a video
  (in-process through `job`, as their command lines run them)."""
  import videos
  out = tmp_path / 'ckpt'
  classes = tmp_path / 'classInd.txt'
  classes.write_text(''.join(f'{i + 1} Class{i}\n' for i in range(101)))
  # 64 px crops: the full ResNet-50 at 224 px runs 15 s at the tests' -O0.
  rep = job('convert', f'--input={reference["files"]["tsm"]}',
            '--config=configs/ucf101.py:mstsm_tfdem', f'--output={out}',
            '--config.data.resize_short=72', '--config.data.crop_size=64',
            f'--classes_file={classes}', '--json').json()
  assert rep['format'] == 'tsm' and rep['missing'] == []
  # The directory scores as PyTorch does (test_parity's forward, traced
  # once in this module; predict below runs the directory).
  config, _, got, _ = modeldir.load_variables(out)
  assert config.data.crop_size == 64
  logits, _ = forward('mstsm_tfdem')(got, reference['x'])
  assert max_rel_diff(np.asarray(logits), reference['tsm']) < 1e-5
  clip = tmp_path / 'v.avi'
  videos.write_video(clip, 24, size=(72, 96))
  res = job('predict', f'--checkpoint={out}', '--json', str(clip)).json()
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


def test_resnet101_official_placement_parity(tmp_path):
  """The official TSM ResNet-101 (`make_temporal_shift`: n_round = 2 when
  layer3 has >= 23 blocks, so blocks 0, 2, 4, ... of each stage shift) in
  its zoo key format converts with parity. (MSTSM on ResNet-101 loads the
  same file with the same result, 5.2e-7, measured; its placement is
  tested in test_model.py without compiling a ResNet-101 twice.)"""
  torch.manual_seed(0)
  model = torchvision.models.resnet101(num_classes=101)
  randomize(model, model.fc, seed=2)
  sd = model.state_dict()
  tsm = {}
  for k, v in sd.items():
    m = re.match(r'layer\d\.(\d+)\.conv1\.weight', k)
    if m and int(m.group(1)) % 2 == 0:
      k = k.replace('.conv1.weight', '.conv1.net.weight')
    tsm['module.' + ('new_fc.' + k[3:] if k.startswith('fc.') else
                     'base_model.' + k)] = v
  path = tmp_path / 'TSM_something_resnet101.pth'
  torch.save({'state_dict': tsm}, path)
  x = np.random.default_rng(0).normal(size=(1, T, 32, 32, 3)).astype(
      np.float32)
  with torch.no_grad():
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
      for i, blk in enumerate(layer):
        if i % 2 == 0:
          blk.conv1 = Shifted(blk.conv1)
    want = model(torch.from_numpy(x.reshape(T, 32, 32, 3)).permute(
        0, 3, 1, 2)).view(1, T, -1).mean(1).numpy()
  from mstsm_jax.models.mstsm import build_model
  for variant in ('tsm',):
    config = load_config(f'configs/ucf101.py:{variant}',
                         {'model.backbone': 'resnet101'})
    variables, report, fmt = convert.convert(str(path), config)
    assert fmt == 'tsm' and not report['missing'] and not report['unused']
    logits, _ = jax.jit(lambda v, a: build_model(config.model).apply(
        v, a, train=False))(variables, x)
    diff = max_rel_diff(np.asarray(logits), want)
    print(f'resnet101 {variant}: max |diff| / max |logit| = {diff:.2e}')
    assert diff <= 1e-3


def test_rgb_weights_into_a_flow_model_and_not_back(tmp_path):
  """An RGB file converts to a flow model (the stem averaged over its
  inputs, TSN's cross-modality init; convert built the model with 3 inputs,
  a directory no job could load), a flow file does not load into an RGB
  model, and the cost table counts the flow stem."""
  from mstsm_jax.models import cost
  rgb = model_dirs.tiny_config('tsm')
  flow = model_dirs.tiny_config('tsm', **{'data.modality': 'flow'})
  sd = model_dirs.torchvision_state_dict(model_dirs.init_variables(rgb))
  variables, report, _ = convert.convert(sd, flow)
  stem = variables['params']['backbone']['conv1']['kernel']
  want = sd['conv1.weight'].transpose(2, 3, 1, 0).mean(2, keepdims=True)
  np.testing.assert_allclose(stem, np.repeat(want, 10, 2), rtol=1e-6)
  assert any('conv1' in a for a in report['adapted']), report
  modeldir.write_model(tmp_path / 'f', flow, variables)
  assert modeldir.load_variables(tmp_path / 'f')[3] == 0
  flow_sd = model_dirs.torchvision_state_dict(model_dirs.init_variables(flow))
  with pytest.raises(UsageError, match=r'1 shapes do not fit \(e.g. params/'
                     r'backbone/conv1/kernel: \(7, 7, 10, 8\) -> '
                     r'\(7, 7, 3, 8\)\)'):
    convert.convert(flow_sd, rgb)
  assert (cost.of_config(flow)['params'] - cost.of_config(rgb)['params']
          == 7 * 7 * 7 * 8)


def test_how_a_state_dict_is_wrapped_and_files_that_hold_none(tmp_path):
  """DataParallel's `module.` prefix and a 'model_state_dict' wrapper are
  read; a file of other objects, a pickled model and a missing path are
  one line each (a bare errno, torch's page of pickling advice with
  terminal codes, or "first keys: []")."""
  config = model_dirs.tiny_config('tsm')
  sd = {k: torch.from_numpy(v) for k, v in model_dirs.torchvision_state_dict(
      model_dirs.init_variables(config)).items()}
  want = convert.load_torch
  torch.save(sd, tmp_path / 'plain.pth')
  plain = want(str(tmp_path / 'plain.pth'))
  for name, obj in (('dp', {f'module.{k}': v for k, v in sd.items()}),
                    ('msd', {'model_state_dict': sd, 'optimizer': {}}),
                    ('meta', {'state_dict': sd, 'meta': {  # mmengine's
                        'best_score': np.float64(0.5), 'epoch': np.int64(3),
                        'dtype': np.dtype('float32')}})):
    torch.save(obj, tmp_path / f'{name}.pth')
    got = want(str(tmp_path / f'{name}.pth'))
    assert got.keys() == plain.keys()
  convert.convert(str(tmp_path / 'dp.pth'), config)
  with pytest.raises(UsageError, match=r'--format=mmaction2, but .*plain.pth '
                     r'has torchvision key names'):
    convert.convert(str(tmp_path / 'plain.pth'), config, fmt='mmaction2')
  torch.save({'epoch': 3, 'optim': {}}, tmp_path / 'none.pth')
  with pytest.raises(UsageError, match=r'none.pth holds no tensors at its '
                     r'top level \(keys: epoch, optim\)'):
    want(str(tmp_path / 'none.pth'))
  torch.save(torch.nn.Linear(2, 2), tmp_path / 'module.pth')
  with pytest.raises(UsageError, match=r'module.pth holds pickled Python '
                     r'objects') as e:
    want(str(tmp_path / 'module.pth'))
  assert '\x1b' not in str(e.value) and 'state_dict()' in e.value.hint
  with pytest.raises(UsageError, match=r'nope.pth: no such file'):
    want(str(tmp_path / 'nope.pth'))
