"""The recognizer: exact parameter counts (SPEC §2-3), cost, BN modes, loss."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import model_dirs
from mstsm_jax.configs import load_config
from mstsm_jax.models import task
from mstsm_jax.models.mstsm import build_model
from mstsm_jax.models.cost import analyse

# ResNet-50 bottlenecks: (C_in of the block = what the shift sees, width1).
R50_BLOCKS = [(64 if i == 0 else 256, 64) for i in range(3)] + [
    (256 if i == 0 else 512, 128) for i in range(4)] + [
    (512 if i == 0 else 1024, 256) for i in range(6)] + [
    (1024 if i == 0 else 2048, 512) for i in range(3)]


def torchvision_resnet50_params(num_classes):
  """TSN/TSM = torchvision's ResNet-50 (the shift adds no parameter)."""
  torchvision = pytest.importorskip('torchvision')
  return sum(p.numel() for p in torchvision.models.resnet50(
      num_classes=num_classes).parameters())


def mstsm_extra(r_two):
  """MSTSM concatenates 2 floor(C_in r_two) channels to every conv1."""
  return sum(2 * int(c * r_two) * w for c, w in R50_BLOCKS)


def tfdem_params(classes, c_in=256, width=128):
  """1x1 conv + bias, BN, 3x3 conv + bias, BN, FC (SPEC §3)."""
  return (c_in * width + width) + 2 * width + (9 * width * width + width) + \
      2 * width + (width * classes + classes)


# (config, overrides, count from its formula, the paper's Table 1-3 in M)
COUNTS = [
    ('configs/ucf101.py:tsn', {}, lambda: torchvision_resnet50_params(101),
     23.7),
    ('configs/ucf101.py:tsm', {}, lambda: torchvision_resnet50_params(101),
     23.7),
    ('configs/ucf101.py:mstsm', {}, lambda: torchvision_resnet50_params(101)
     + mstsm_extra(1 / 16), 24.25),
    ('configs/ucf101.py:mstsm', {'model.r_two': 1 / 8},
     lambda: torchvision_resnet50_params(101) + mstsm_extra(1 / 8), 24.79),
    ('configs/ucf101.py:mstsm', {'model.r_two': 1 / 12},
     lambda: torchvision_resnet50_params(101) + mstsm_extra(1 / 12), 24.43),
    ('configs/ucf101.py:mstsm', {'model.r_two': 1 / 20},
     lambda: torchvision_resnet50_params(101) + mstsm_extra(1 / 20), 24.14),
    ('configs/hmdb51.py:mstsm', {}, lambda: torchvision_resnet50_params(51)
     + mstsm_extra(1 / 16), None),
    ('configs/ucf101.py:tsm_tfdem', {}, lambda: torchvision_resnet50_params(
        101) + tfdem_params(101), 23.9),
    ('configs/ucf101.py:mstsm_tfdem', {}, lambda: torchvision_resnet50_params(
        101) + mstsm_extra(1 / 16) + tfdem_params(101), 24.5),
    ('configs/ucf101.py', {}, lambda: torchvision_resnet50_params(101)
     + mstsm_extra(1 / 16) + tfdem_params(101), 24.5),
]


@pytest.mark.parametrize('path,overrides,formula,paper', COUNTS)
def test_exact_parameter_counts(path, overrides, formula, paper):
  got = analyse(load_config(path, overrides).model)['params']
  assert got == formula()
  if paper is not None:  # the paper prints 1-2 decimals, rounded or cut
    unit = 10.0 ** -len(str(paper).split('.')[1])
    assert abs(got / 1e6 - paper) < unit


def test_the_counts_the_readme_quotes():
  """README / SPEC numbers, for the record: they follow from the formulas."""
  assert torchvision_resnet50_params(101) == 23_714_981
  assert torchvision_resnet50_params(101) + mstsm_extra(1 / 16) == 24_256_165
  assert tfdem_params(101) == 194_021


def test_tfdem_size_and_cost():
  res = analyse(load_config('configs/ucf101.py').model)
  params, macs = res['stages']['tfdem']
  assert params == 194_021
  assert 0.13e9 < macs < 0.15e9  # about 0.14 G multiply-adds per frame
  # torchvision ResNet-50 is 4.09 GMACs at 224; MSTSM adds conv1 inputs.
  tsm = analyse(load_config('configs/ucf101.py:tsm').model)
  assert abs(tsm['macs_per_frame'] / 1e9 - 4.09) < 0.01


def tiny(variant='mstsm_tfdem', **model):
  config = load_config(f'configs/ucf101.py:{variant}',
                       {'model.stage_sizes': (1, 1, 1, 1), 'model.width': 16,
                        'model.tfdem_width': 16, 'model.num_classes': 5,
                        **{f'model.{k}': v for k, v in model.items()}})
  return build_model(config.model)


def clips(n=2, t=8, size=32, seed=0):
  return jax.random.normal(jax.random.key(seed), (n, t, size, size, 3))


def test_forward_shapes_and_dtypes():
  model = tiny(dtype='bfloat16')
  variables = model_dirs.random_variables(model, clips().shape)
  # in the init's dtypes (random_variables keeps them)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))
  logits, aux = jax.jit(model.apply)(variables, clips())
  assert logits.shape == aux.shape == (2, 5)
  assert logits.dtype == aux.dtype == jnp.float32
  model = tiny('mstsm')
  logits, aux = jax.jit(model.apply)(
      model_dirs.random_variables(model, clips().shape), clips())
  assert aux is None


def test_tsn_ignores_frame_order_and_tsm_does_not():
  x = clips()
  perm = x[:, ::-1]
  for variant, invariant in [('tsn', True), ('tsm', False), ('mstsm', False)]:
    model = tiny(variant)
    v = model_dirs.random_variables(model, x.shape)
    apply = jax.jit(model.apply)
    a, _ = apply(v, x)
    b, _ = apply(v, perm)
    assert np.allclose(a, b, atol=1e-5) == invariant, variant


@pytest.mark.parametrize('mode,changed', [
    ('train', None),  # every BN
    ('frozen', set()),
    ('partial', {('backbone', 'bn1')}),
])
def test_bn_modes(mode, changed):
  model = tiny(bn_mode=mode)
  v = model_dirs.random_variables(model, clips().shape)
  _, new = jax.jit(lambda v, x: model.apply(
      v, x, train=True, mutable=['batch_stats'],
      rngs={'dropout': jax.random.key(1)}))(v, clips())
  flat_old = jax.tree_util.tree_flatten_with_path(v['batch_stats'])[0]
  flat_new = jax.tree.leaves(new['batch_stats'])
  moved = {tuple(p.key for p in path[:-1]) for (path, a), b in
           zip(flat_old, flat_new) if not np.allclose(a, b)}
  backbone = {m for m in moved if m[0] == 'backbone'}
  # TFDEM is a new branch: its BNs always learn.
  assert {m for m in moved if m[0] == 'tfdem'} == {('tfdem', 'bn_reduce'),
                                                   ('tfdem', 'bn_diff')}
  if changed is None:
    assert len(backbone) == 1 + 4 * 3 + 4  # stem + 3 per block + downsample
  else:
    assert backbone == changed


def test_loss_matches_hand_computation():
  """The step's loss by hand: log-softmax CE, smoothing eps/K spread,
  TFDEM weight, and the valid mask (a bad clip counts for nothing)."""
  z1 = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0], [9.0, -9.0, 0.0]])
  z2 = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 3.0], [0.0, 0.0, 9.0]])
  y = np.array([0, 2, 1])
  valid = np.array([True, True, False])

  def ce(z, label, eps=0.0):
    logp = z - np.log(np.exp(z).sum())
    target = np.full(3, eps / 3)
    target[label] += 1 - eps
    return -(target * logp).sum()
  want_main = (ce(z1[0], 0) + ce(z1[1], 2)) / 2
  want_aux = (ce(z2[0], 0) + ce(z2[1], 2)) / 2
  total, parts = task.loss(z1, z2, y, valid=valid, tfdem_weight=0.5)
  np.testing.assert_allclose(parts['loss_main'], want_main, rtol=1e-6)
  np.testing.assert_allclose(parts['loss_tfdem'], want_aux, rtol=1e-6)
  np.testing.assert_allclose(total, want_main + 0.5 * want_aux, rtol=1e-6)
  smooth, parts = task.loss(z1[:2], None, y[:2], label_smoothing=0.1)
  assert set(parts) == {'loss_main'}
  np.testing.assert_allclose(
      smooth, (ce(z1[0], 0, 0.1) + ce(z1[1], 2, 0.1)) / 2, rtol=1e-6)
  none, _ = task.loss(z1, None, y, valid=np.zeros(3, bool))
  assert float(none) == 0.0  # no valid clip: no loss, no NaN


def test_scores_fuse_and_views_by_hand():
  """Video scores: logits averaged over views; with tfdem_fuse the sum of
  the two softmaxes, then the view average."""
  main = np.array([[1.0, 0.0], [3.0, 1.0], [0.0, 2.0], [0.0, 0.0]])
  aux = np.array([[0.0, 1.0], [0.0, 0.0], [2.0, 0.0], [0.0, 4.0]])
  np.testing.assert_allclose(task.scores(main, aux, views=2),
                             [[2.0, 0.5], [0.0, 1.0]])
  sm = lambda z: np.exp(z) / np.exp(z).sum(-1, keepdims=True)
  fused = sm(main) + sm(aux)
  np.testing.assert_allclose(task.scores(main, aux, fuse=True, views=2),
                             [fused[:2].mean(0), fused[2:].mean(0)],
                             rtol=1e-6)
  np.testing.assert_allclose(task.scores(main, None, fuse=True), main)
  np.testing.assert_allclose(
      task.probabilities(task.scores(main, aux, fuse=True), fuse=True).sum(-1),
      1.0, rtol=1e-6)


def test_bad_model_config():
  with pytest.raises(ValueError, match="unknown backbone 'vgg16'"):
    tiny(backbone='vgg16')
  with pytest.raises(ValueError, match="bn_mode='half'"):
    tiny(bn_mode='half')
  with pytest.raises(ValueError, match='clips have 4 frames'):
    model = tiny()
    model.init(jax.random.key(0), clips(t=4))


def test_full_resnet50_forward_backward_jit():
  """Full-size ResNet-50 MSTSM-TFDEM, small frames: jitted fwd + bwd."""
  config = load_config('configs/ucf101.py:mstsm_tfdem',
                       {'model.bn_mode': 'partial'})
  model = build_model(config.model)
  x = clips(n=1, size=64)
  v = model_dirs.random_variables(model, x.shape)

  @jax.jit
  def loss_and_grad(params, batch_stats):
    def loss_fn(p):
      (logits, aux), new = model.apply(
          {'params': p, 'batch_stats': batch_stats}, x, train=True,
          mutable=['batch_stats'], rngs={'dropout': jax.random.key(0)})
      return task.loss(logits, aux, jnp.array([3]))[0], new
    return jax.value_and_grad(loss_fn, has_aux=True)(params)

  (loss, _), grads = loss_and_grad(v['params'], v['batch_stats'])
  assert np.isfinite(loss)
  assert jax.tree.structure(grads) == jax.tree.structure(v['params'])
  g = grads['backbone']['layer1_0']['conv1']['kernel']
  assert g.shape == (1, 1, 64 + 8, 64) and float(jnp.abs(g).sum()) > 0


def test_resnet101_counts_and_official_shift_placement():
  """TSN ResNet-101 has torchvision's resnet101 parameter count; MSTSM
  concatenates channels only in the blocks the official TSM shifts
  (n_round = 2: even block indices), and the shift itself sits there too."""
  import jax
  from mstsm_jax.models.resnet import param_count
  from mstsm_jax.models.mstsm import create_model

  def count(variant, **kw):
    m = create_model(variant, num_classes=1000, backbone='resnet101', **kw)
    v = jax.eval_shape(m.init, jax.random.key(0),
                       jax.numpy.zeros((1, 8, 32, 32, 3)))
    return param_count(v['params']), m

  tsn, _ = count('tsn')
  assert tsn == 44_549_160  # torchvision.models.resnet101()
  mstsm, m = count('mstsm')
  extra, c_in = 0, 64
  for s, n in enumerate((3, 4, 23, 3)):
    width = 64 * 2**s
    for i in range(n):
      if i % 2 == 0:
        extra += 2 * (c_in // 16) * width  # 2g inputs into conv1
      c_in = 4 * width
  assert mstsm - tsn == extra
  assert m.backbone_name == 'resnet101' and m.backbone.shift_every == 2
  assert [m.backbone.block_shift(i).kind for i in range(4)] == [
      'mstsm', 'tsn', 'mstsm', 'tsn']
  # ResNet-50 (layer3 has 6 blocks) shifts every block.
  _, m50 = count('mstsm', stage_sizes=(3, 4, 6, 3))
  assert m50.backbone.shift_every == 1
