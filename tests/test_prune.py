"""Similar-kernel pruning: K_GM and ranking against brute force, exactness,
parameter counts (22.4M), reloading in a fresh process, fine-tuning."""
import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

import model_dirs
from mstsm_jax.models import pruning as prune
from mstsm_jax import modeldir
from mstsm_jax.configs import load_config
from mstsm_jax.models.mstsm import build_model
from mstsm_jax.models.resnet import BlockSpec, Bottleneck, batch_norm


def test_geometric_median_and_ranking_brute_force():
  rng = np.random.default_rng(0)
  kernel = rng.normal(size=(3, 3, 4, 12))
  rows = [kernel[..., o].reshape(-1) for o in range(12)]
  total = [sum(np.linalg.norm(a - b) for b in rows) for a in rows]
  gm = int(np.argmin(total))
  assert prune.geometric_median(prune.kernel_rows(kernel)) == gm
  dist = [np.linalg.norm(r - rows[gm]) for r in rows]
  np.testing.assert_array_equal(
      prune.rank_by_similarity(prune.kernel_rows(kernel)), np.argsort(dist))
  cand = np.arange(4, 12)
  np.testing.assert_array_equal(
      prune.rank_by_similarity(prune.kernel_rows(kernel), cand),
      cand[np.argsort(np.array(dist)[4:])])


def tiny(variant='mstsm_tfdem'):
  return load_config(f'configs/synthetic.py:{variant}',
                     {'model.stage_sizes': (1, 1, 1, 1), 'model.width': 16,
                      'model.tfdem_width': 8})


def init_vars(model, size=32):
  return model_dirs.random_variables(model, (1, 8, size, size, 3))


def test_output_pruning_is_exact_for_duplicate_kernels():
  config = tiny()
  model = build_model(config.model)
  v = init_vars(model)
  r_out = 4
  for name in model.channels.block_names():
    p = v['params']['backbone'][name]
    s = v['batch_stats']['backbone'][name]
    k1 = np.array(p['conv1']['kernel'])
    n = k1.shape[-1] // r_out
    # n + 1 identical (zero) kernels: they are the geometric median and
    # rank first; the stable ranking drops copies 0..n-1 and keeps copy n.
    k1[..., :n + 1] = 0.0
    p['conv1']['kernel'] = k1
    for coll, leaves in ((p['bn1'], ('scale', 'bias')),
                         (s['bn1'], ('mean', 'var'))):
      for leaf in leaves:
        a = np.array(coll[leaf])
        a[:n + 1] = a[n] + (0.3 if leaf == 'bias' else 0.0)
        coll[leaf] = a
    # conv2's inputs from the copies, folded onto the kept copy.
    k2 = np.array(p['conv2']['kernel'])
    k2[:, :, n] = k2[:, :, :n + 1].sum(axis=2)
    k2[:, :, :n] = 0.0
    p['conv2']['kernel'] = k2
    assert set(prune.rank_by_similarity(prune.kernel_rows(k1))[:n]) == set(
        range(n))
  x = jax.random.normal(jax.random.key(2), (2, 8, 32, 32, 3))
  want = jax.jit(model.apply)(v, x)  # jitted: op by op costs 15 s
  pruned, channels, report = prune.prune(v, model.channels, model.shift,
                                         r_out=r_out)
  assert [r['dropped_kernels'] for r in report] == [4, 8, 16, 32]
  small = build_model(config.model, channels)
  got = jax.jit(small.apply)(pruned, x)
  np.testing.assert_allclose(got[0], want[0], atol=1e-4, rtol=1e-4)
  np.testing.assert_allclose(got[1], want[1], atol=1e-4, rtol=1e-4)
  # and the input pytree was not modified
  assert v['params']['backbone']['layer1_0']['conv1']['kernel'].shape[-1] == 16


def test_input_averaging_is_exact_for_identical_channels():
  config = tiny('mstsm')
  model = build_model(config.model)
  v = init_vars(model)
  pruned, channels, report = prune.prune(v, model.channels, model.shift,
                                         r_out=0, r_in=8)
  name = 'layer2_0'  # input: 64 channels from layer1_0's conv3
  spec = channels.block(name)
  feed = prune.kernel_rows(v['params']['backbone']['layer1_0']['conv3'][
      'kernel'])
  shift = model.shift
  start = 2 * shift.fold(64)
  want_group = sorted(prune.rank_by_similarity(
      feed, np.arange(start, 64))[:64 // 8])
  assert list(spec.merge) == want_group and spec.width1 == 32
  # A block input whose merged channels are identical: same output.
  x = np.array(jax.random.normal(jax.random.key(3), (16, 8, 8, 64)))
  x[..., list(spec.merge)] = x[..., [spec.merge[0]]]
  norm = batch_norm(True, 0.9, jnp.float32)

  def block(bspec, variables):
    return Bottleneck(bspec, 128, 2, shift, norm).apply(
        {'params': variables['params']['backbone'][name],
         'batch_stats': variables['batch_stats']['backbone'][name]}, x)
  ref = block(BlockSpec(32, 32), v)
  out = block(spec, pruned)
  np.testing.assert_allclose(out, ref, atol=1e-5, rtol=1e-5)
  k = pruned['params']['backbone'][name]['conv1']['kernel']
  assert k.shape[2] == 64 + 2 * 4 - 8 + 1


def run(*args):
  r = subprocess.run([sys.executable, *args], capture_output=True, text=True)
  assert r.returncode == 0, r.stderr[-3000:]
  return r


def test_cli_resnet50_lands_at_22_4m_and_reloads(tmp_path, job):
  config = load_config('configs/ucf101.py:mstsm_tfdem')
  model = build_model(config.model)
  modeldir.write_model(tmp_path / 'full', config, init_vars(model))
  r = job('prune', f'--checkpoint={tmp_path}/full',
          f'--output={tmp_path}/pruned', '--json')
  res = r.json()
  assert res['params_before'] == 24_450_186
  assert res['params_after'] == 22_425_754  # paper: 22.4M
  assert res['gflops_after'] < res['gflops_before']
  assert 'layer4' in r.stderr and 'total' in r.stderr
  # A fresh process restores the pruned model from its directory alone.
  code = ('import numpy as np, sys; from mstsm_jax import inference; '
          f'p = inference.load("{tmp_path}/pruned", batch_size=1); '
          'out = p.scores_normalized(np.zeros((1, 8, 32, 32, 3))); '
          'print(out.shape, p.model.channels.block("layer1_0").width1)')
  assert run('-c', code).stdout.split() == ['(1,', '101)', '56']


def test_pruned_checkpoint_fine_tunes(tmp_path, job):
  """A model directory pruned, then trained from (its channel spec
  carried into the run; random weights stand for trained ones: pruning
  reads shapes and values alike). A folder of the run beside its
  checkpoints takes the pruned model."""
  args = [*model_dirs.TINY_ARGS, '--config.train.max_steps=2']
  model_dirs.model_dir(tmp_path / 'a', model_dirs.tiny_config())
  job('prune', f'--checkpoint={tmp_path}/a', f'--output={tmp_path}/a/p',
      '--r_out=4', '--r_in=4')
  r = job('train', '--config=configs/synthetic.py', f'--workdir={tmp_path}/b',
          f'--config.init_from={tmp_path}/a/p', '--json', *args)
  assert 'initialised from' in r.stderr
  spec = json.loads((tmp_path / 'b' / 'channel_spec.json').read_text())
  assert spec['blocks'][0][0]['width1'] == 6 and spec['blocks'][0][0]['merge']
