"""Our train step against the official TSM `main.py` step (issue 24.1).

The PyTorch reference is written here from the official rules
(mit-han-lab/temporal-shift-module): `TSN.train` with `partialBN` (every
BatchNorm of the base model but the first in eval mode, its weight and bias
`requires_grad=False`), `get_optim_policies` (weights lr 1 / decay 1,
biases lr 2 / decay 0, BN lr 1 / decay 0, with `fc_lr5` the classifier's
weight lr 5 and bias lr 10), `adjust_learning_rate` (lr and weight decay
times each group's multipliers), `torch.optim.SGD(momentum=0.9,
weight_decay=5e-4)`, `CrossEntropyLoss` on the segment-averaged logits and
`clip_grad_norm_(model.parameters(), gd)`. A tiny shifted ResNet (one
bottleneck per stage, width 8, 32 px, 8 segments) starts from the same
weights on both sides; dropout is off on both.
"""
import jax
import numpy as np
import pytest

torch = pytest.importorskip('torch')
torchvision = pytest.importorskip('torchvision')

from torch_tsm import Shifted  # noqa: E402,I100

from model_dirs import flax_init, tiny_config, torchvision_state_dict  # noqa: E402,I100
from mstsm_jax.training import sharding, steps  # noqa: E402

T, S, B, STEPS, LR = 8, 32, 2, 3, 0.005


def torch_tsm(state_dict, classes):
  """torchvision's Bottleneck ResNet at width 8, one block per stage,
  shifted, with `state_dict` (our variables under torchvision names)."""
  from torchvision.models.resnet import Bottleneck, ResNet
  net = ResNet(Bottleneck, [1, 1, 1, 1], num_classes=classes)
  net.inplanes = 8
  net.conv1 = torch.nn.Conv2d(3, 8, 7, 2, 3, bias=False)
  net.bn1 = torch.nn.BatchNorm2d(8)
  for i in range(4):
    setattr(net, f'layer{i + 1}',
            net._make_layer(Bottleneck, 8 * 2**i, 1, stride=min(i, 1) + 1))
  net.fc = torch.nn.Linear(256, classes)
  missing, unexpected = net.load_state_dict(
      {k: torch.from_numpy(np.array(v)) for k, v in state_dict.items()},
      strict=False)
  assert not unexpected and all(k.endswith('num_batches_tracked')
                                for k in missing)
  for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
    for blk in layer:
      blk.conv1 = Shifted(blk.conv1)
  return net


def official_train_mode(net, partial_bn):
  """`TSN.train()` with `partialBN(partial_bn)`: BNs after the first eval
  and frozen. bn_mode frozen (SPEC §5) freezes the first one too."""
  net.train()
  bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
  first = 1 if partial_bn == 'partial' else 0
  if partial_bn in ('partial', 'frozen'):
    for m in bns[first:]:
      m.eval()
      m.weight.requires_grad = False
      m.bias.requires_grad = False


def optim_policies(net, fc_lr5):
  """`get_optim_policies`: (params, lr_mult, decay_mult) groups; frozen BN
  parameters are in no group."""
  weights, biases, bn, fc_w, fc_b = [], [], [], [], []
  for m in net.modules():
    if isinstance(m, torch.nn.Conv2d):
      weights.append(m.weight)
      if m.bias is not None:
        biases.append(m.bias)
    elif isinstance(m, torch.nn.Linear):
      (fc_w if fc_lr5 else weights).append(m.weight)
      (fc_b if fc_lr5 else biases).append(m.bias)
    elif isinstance(m, torch.nn.BatchNorm2d) and m.weight.requires_grad:
      bn.extend([m.weight, m.bias])
  groups = [(weights, 1, 1), (biases, 2, 0), (bn, 1, 0), (fc_w, 5, 1),
            (fc_b, 10, 0)]
  return [{'params': p, 'lr': LR * lr, 'weight_decay': 5e-4 * d}
          for p, lr, d in groups if p]


def randomized(config, seed=0):
  """Our initial variables with random BN statistics and affine
  parameters and an O(1) classifier, so that freezing them matters."""
  v = flax_init(config, seed)
  rng = np.random.default_rng(seed)

  def fill(tree, name):
    for k, sub in tree.items():
      if isinstance(sub, dict):
        fill(sub, k)
      elif 'bn' in name:
        low, high = {'scale': (0.5, 1.0), 'var': (0.5, 1.5)}.get(k, (0, 0))
        tree[k] = (rng.uniform(low, high, sub.shape) if high else
                   rng.normal(0, 0.1, sub.shape)).astype(np.float32)
  fill(v['params'], '')
  fill(v['batch_stats'], '')
  fc = v['params']['fc']
  fc['kernel'] = rng.normal(0, 0.1, fc['kernel'].shape).astype(np.float32)
  return v


def run_torch(variables, config, x, labels, clip):
  mode = config.model.bn_mode
  net = torch_tsm(torchvision_state_dict(variables), config.model.num_classes)
  official_train_mode(net, mode)
  opt = torch.optim.SGD(optim_policies(net, config.train.fc_lr_mult == 5),
                        LR, momentum=0.9, weight_decay=5e-4)
  xt = torch.from_numpy(x.reshape(B * T, S, S, 3)).permute(0, 3, 1, 2)
  losses, norms = [], []
  for _ in range(STEPS):
    out = net(xt).view(B, T, -1).mean(1)
    loss = torch.nn.functional.cross_entropy(out, torch.from_numpy(labels).long())
    loss.backward()
    norms.append(float(torch.nn.utils.clip_grad_norm_(
        net.parameters(), clip or float('inf'))))
    opt.step()
    opt.zero_grad()
    losses.append(loss.item())
  return losses, norms, {k.replace('.net.', '.'): v.detach().numpy()
                         for k, v in net.state_dict().items()}


def run_ours(variables, config, clips, labels):
  mesh = sharding.make_mesh(jax.devices()[:1])
  s = steps.setup(config, mesh, steps_per_epoch=1000)
  state = s.new_state(0, variables)
  batch = sharding.put_batch({'clips': clips, 'label': labels,
                              'valid': np.ones(B, bool)}, mesh)
  losses, norms = [], []
  for _ in range(STEPS):
    state, m = s.train_step(state, batch)
    losses.append(float(m['loss']))
    norms.append(float(m['grad_norm']))
  return losses, norms, torchvision_state_dict(
      jax.device_get(steps.variables_of(state)))


CASES = [  # bn_mode, fc_lr_mult, clip_norm (a clip below the norm: active)
    ('partial', 5.0, 0.5),
    ('frozen', 1.0, 0.5),
    ('train', 5.0, 0.0),
]


def tsm_config(**fields):
  return tiny_config('tsm', **{
      'model.dropout': 0.0, 'train.lr': LR, 'train.momentum': 0.9,
      'train.weight_decay': 5e-4, 'train.bias_lr_mult': 2.0,
      'train.warmup_epochs': 0.0, **fields})


@pytest.fixture(scope='module')
def start():
  """The shared starting weights (the same for every bn_mode)."""
  return randomized(tsm_config())


@pytest.mark.parametrize('bn_mode,fc_lr_mult,clip', CASES)
def test_step_equals_official(start, bn_mode, fc_lr_mult, clip):
  config = tsm_config(**{'model.bn_mode': bn_mode,
                         'train.fc_lr_mult': fc_lr_mult,
                         'train.clip_norm': clip})
  variables = jax.tree.map(np.copy, start)
  rng = np.random.default_rng(1)
  clips = rng.integers(0, 256, (B, T, S, S, 3), dtype=np.uint8)
  labels = np.array([3, 7], np.int32)
  mean, std = np.float32(config.data.mean), np.float32(config.data.std)
  x = ((clips / np.float32(255) - mean) / std).astype(np.float32)
  before = torchvision_state_dict(variables)
  t_loss, t_norm, t_after = run_torch(variables, config, x, labels, clip)
  o_loss, o_norm, o_after = run_ours(variables, config, clips, labels)
  if clip:
    assert min(t_norm) > 2 * clip  # clipping is active at every step
  np.testing.assert_allclose(o_loss, t_loss, rtol=1e-5)
  np.testing.assert_allclose(o_norm, t_norm, rtol=1e-4)
  worst = 0.0
  for k, b in before.items():
    if k.endswith('running_var') and np.any(t_after[k] != b):
      continue  # a training BN: flax averages the biased batch variance
      # into its statistics, torch the unbiased one (n / (n - 1))
    want, got = t_after[k] - b, o_after[k] - b
    scale = np.abs(want).max()
    if scale == 0:
      assert np.abs(got).max() == 0, k  # frozen on both sides
      continue
    worst = max(worst, float(np.abs(got - want).max() / scale))
    # The updates are read off float32 weights: two equal updates may
    # round to neighbouring floats (a BatchNorm weight near 1 stores a
    # 1e-3 update to 1.2e-7, 1.1e-4 of it; seen on an AVX-512 CPU).
    ulp = np.spacing(np.abs(t_after[k]).astype(np.float32))
    assert np.all(np.abs(got - want) <= 1e-4 * scale + ulp), k
  print(f'{bn_mode} fc x{fc_lr_mult} clip {clip}: loss {o_loss} vs '
        f'{t_loss}, norm {o_norm} vs {t_norm}, worst update diff {worst:.1e}')
