"""Trainer: sharded == single device, exact resume, BN modes, schedule,
decay mask, overfitting, metrics and SIGTERM (on 8 fake CPU devices)."""
import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mstsm_jax.evaluation import metrics
from mstsm_jax.training import sharding
from mstsm_jax.configs import load_config
from mstsm_jax.data import pipeline
from mstsm_jax.models.mstsm import build_model
from mstsm_jax.training.optimizer import (clip_by_global_norm, decay_mask,
                                          global_norm, lr_multipliers,
                                          lr_schedule, make_optimizer)
from mstsm_jax.training.trainer import train_and_evaluate
from mstsm_jax.training.steps import create_state, jit_steps

import jobs
from model_dirs import TINY_ARGS, tiny_config


def setup(config, devices):
  mesh = sharding.make_mesh(devices)
  model = build_model(config.model)
  shape = (1, 8, 32, 32, 3)
  params = jax.eval_shape(model.init, jax.random.key(0),
                          jnp.zeros(shape))['params']
  tx, schedule = make_optimizer(config.train, config.model, params, 10)
  state = jax.jit(lambda r: create_state(model, tx, r, shape),
                  out_shardings=sharding.replicated(mesh))(jax.random.key(0))
  train_fn, _ = jit_steps(model, tx, schedule, config, mesh)
  return mesh, state, train_fn


def batches(config, n):
  split = pipeline.open_split(config.data, train=True)
  it = iter(pipeline.train_dataset(split, config.data, 8,
                                   config.train.batch_size, seed=0))
  return [next(it) for _ in range(n)]


def test_sharded_step_equals_single_device():
  config = tiny_config()
  data = batches(config, 2)
  results = []
  for devices in (jax.devices()[:1], jax.devices()[:4]):
    mesh, state, train_fn = setup(config, devices)
    for b in data:
      state, _ = train_fn(state, sharding.put_batch(b, mesh))
    results.append(jax.device_get(state))
  one, four = results
  assert len(jax.devices()) == 8
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5,
                                                       rtol=1e-4),
               (one.params, one.batch_stats), (four.params, four.batch_stats))


def test_frozen_and_partial_bn_through_the_optimizer():
  for mode in ('frozen', 'partial'):
    config = tiny_config(**{'model.bn_mode': mode})
    mesh, state, train_fn = setup(config, jax.devices()[:1])
    before = jax.device_get(state)
    state, _ = train_fn(state, sharding.put_batch(batches(config, 1)[0],
                                                  mesh))
    after = jax.device_get(state)
    bb, ba = before.params['backbone'], after.params['backbone']
    stats_b, stats_a = (before.batch_stats['backbone'],
                        after.batch_stats['backbone'])
    for name in ('bn1', 'layer2_0'):
      sub = ('bn1',) if name == 'bn1' else ('layer2_0', 'bn2')
      pb, pa, sb, sa = bb, ba, stats_b, stats_a
      for k in sub:
        pb, pa, sb, sa = pb[k], pa[k], sb[k], sa[k]
      first = name == 'bn1' and mode == 'partial'
      # Frozen means bit-identical; learning means some change.
      assert (not np.array_equal(pb['scale'], pa['scale'])) == first, (
          mode, name)
      assert (not np.array_equal(sb['mean'], sa['mean'])) == first, (
          mode, name)
    # convs still learn
    assert not np.allclose(bb['layer1_0']['conv1']['kernel'],
                           ba['layer1_0']['conv1']['kernel'])


def test_lr_schedule_boundaries_and_warmup():
  cfg = load_config('configs/ucf101.py').train
  sched = lr_schedule(cfg, steps_per_epoch=100)
  assert float(sched(0)) == pytest.approx(2.5e-4)
  assert float(sched(999)) == pytest.approx(2.5e-4)
  assert float(sched(1000)) == pytest.approx(2.5e-5)
  assert float(sched(2000)) == pytest.approx(2.5e-6)
  cfg.warmup_epochs = 1.0
  sched = lr_schedule(cfg, steps_per_epoch=100)
  assert float(sched(0)) == pytest.approx(2.5e-6, rel=1e-4)
  # linear from lr / warmup_steps at step 0 to lr at the end of warmup
  assert float(sched(50)) == pytest.approx(2.5e-6 + 0.5 * (2.5e-4 - 2.5e-6),
                                           rel=1e-4)
  assert float(sched(100)) == pytest.approx(2.5e-4)
  # the boundaries stay at their epochs (not shifted by the warmup)
  assert float(sched(999)) == pytest.approx(2.5e-4)
  assert float(sched(1000)) == pytest.approx(2.5e-5)
  assert float(sched(2000)) == pytest.approx(2.5e-6)


def test_weight_decay_mask_and_lr_multipliers():
  config = tiny_config()
  model = build_model(config.model)
  params = jax.eval_shape(model.init, jax.random.key(0),
                          jnp.zeros((1, 8, 32, 32, 3)))['params']
  mask = decay_mask(params)
  assert mask['backbone']['conv1']['kernel'] is True
  assert mask['fc']['kernel'] is True and mask['fc']['bias'] is False
  assert mask['backbone']['bn1']['scale'] is False
  assert mask['tfdem']['conv_reduce']['bias'] is False
  mult = lr_multipliers(params, bn_mode='train', fc_lr_mult=5,
                        bias_lr_mult=2)
  assert mult['fc']['kernel'] == 5 and mult['fc']['bias'] == 10
  assert mult['tfdem']['conv_diff']['bias'] == 2
  assert mult['backbone']['bn1']['bias'] == 1
  # Decay acts on the gradient like torch's SGD(weight_decay): one step
  # with zero gradient and lr 1 moves a kernel by -wd * w and a bias not.
  import optax
  tx = optax.chain(optax.add_decayed_weights(0.5, {'k': True, 'b': False}),
                   optax.sgd(1.0))
  p = {'k': jnp.ones(2), 'b': jnp.ones(2)}
  upd, _ = tx.update(jax.tree.map(jnp.zeros_like, p), tx.init(p), p)
  np.testing.assert_allclose(upd['k'], -0.5)
  np.testing.assert_allclose(upd['b'], 0.0)


def test_clip_on_the_step_norm_is_optaxs_clip():
  """The clip that takes the train step's norm gives optax's clipped
  updates (on either side of max_norm, with the norm given or not) and
  keeps optax's (empty) state, so checkpoints keep their structure."""
  import optax
  rng = np.random.default_rng(0)
  g = {'a': jnp.asarray(rng.normal(size=(3, 4)), jnp.float32),
       'b': {'c': jnp.asarray(rng.normal(size=(5,)), jnp.float32)}}
  norm = global_norm(g)
  np.testing.assert_allclose(norm, optax.tree.norm(g), rtol=1e-6)
  for max_norm in (0.5, 100.0):
    ours, theirs = clip_by_global_norm(max_norm), optax.clip_by_global_norm(
        max_norm)
    want, _ = theirs.update(g, theirs.init(g))
    assert jax.tree.structure(ours.init(g)) == jax.tree.structure(
        theirs.init(g))
    for kw in ({'grad_norm': norm}, {}):
      got, _ = ours.update(g, ours.init(g), **kw)
      jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6),
                   got, want)


def test_loss_falls_overfitting_one_batch():
  config = tiny_config(**{'train.lr': 0.05, 'model.dropout': 0.0,
                          'model.bn_mode': 'train'})
  mesh, state, train_fn = setup(config, jax.devices()[:2])
  b = sharding.put_batch(batches(config, 1)[0], mesh)
  losses = []
  for _ in range(12):  # halved by step 8 (4.60 -> 2.22), 2.03 at step 12
    state, m = train_fn(state, b)
    losses.append(float(m['loss']))
  assert losses[-1] < 0.5 * losses[0], losses
  assert train_fn._cache_size() == 1  # one compilation: no retracing


def test_nonfinite_step_is_not_applied():
  config = tiny_config()
  mesh, state, train_fn = setup(config, jax.devices()[:1])
  b = batches(config, 1)[0]
  before = jax.device_get(state)
  config.data.std = (0.0, 0.0, 0.0)  # division by zero -> inf inputs
  _, _, bad_fn = setup(config, jax.devices()[:1])
  new, m = bad_fn(state, sharding.put_batch(b, mesh))
  assert int(m['nonfinite']) == 1
  after = jax.device_get(new)
  assert int(after.step) == int(before.step)
  jax.tree.map(np.testing.assert_array_equal, before.params, after.params)


def test_setup_is_shared_by_the_seeds_of_one_config():
  """steps.setup: a config that differs only by its seed gets the same
  Setup (its steps trace and compile once per ablation variant); any
  other field or epoch length, another one."""
  from mstsm_jax.training import steps
  mesh = sharding.make_mesh(jax.devices()[:1])
  config = tiny_config()
  first = steps.setup(config, mesh, steps_per_epoch=10)
  config.seed = 1
  assert steps.setup(config, mesh, steps_per_epoch=10) is first
  assert steps.setup(config, mesh, steps_per_epoch=11) is not first
  config.train.lr = 0.5
  assert steps.setup(config, mesh, steps_per_epoch=10) is not first
  # A fresh state holds flax's `init` of the model, bit for bit (its lazy
  # init skips the forward pass).
  state = first.new_state(3)
  init_rng = jax.random.split(jax.random.key(3))[0]
  want = jax.jit(first.model.init)(init_rng, jnp.zeros(first.clip_shape))
  jax.tree.map(np.testing.assert_array_equal,
               (state.params, state.batch_stats),
               (want['params'], want['batch_stats']))


def test_host_fields_do_not_reach_the_steps():
  """steps.HOST_FIELDS, which configs sharing a Setup may differ in: two
  configs that differ in every one of them trace the same train and eval
  programs (and the same Setup key); a field the steps read does not."""
  from mstsm_jax.training import steps
  other = {'seed': 5, 'init_from': '/elsewhere', 'init_partial': True,
           'train.batch_size': 4, 'train.epochs': 7, 'train.max_steps': 3,
           'train.log_every_steps': 5, 'train.checkpoint_every_steps': 7,
           'train.keep_checkpoints': 4, 'train.eval_every_epochs': 2,
           'eval.batch_size': 4, 'eval.max_videos': 3, 'eval.views': '1x3',
           'data.dataset': 'ucf101', 'data.data_dir': '/data',
           'data.split': 2, 'data.workers': 2, 'data.prefetch': 4,
           'data.synthetic_videos': 100, 'data.synthetic_size': 40,
           'data.synthetic_frames': 12, 'data.synthetic_seed': 3,
           'data.resize_short': 40, 'data.scales': (1.0,),
           'data.max_distort': 0, 'data.flip': True,
           'data.crop_offsets': 'tsm13', 'data.train_sampling': 'tsm',
           'data.test_sampling': 'tsm', 'data.test_crops': 'tsm'}
  assert set(other) == set(steps.HOST_FIELDS)
  mesh = sharding.make_mesh(jax.devices()[:1])

  def programs(config):
    s = steps._build(config, mesh, None, 10)
    state = s.abstract_state()
    clips = jax.ShapeDtypeStruct((8, 8, 32, 32, 3), jnp.uint8)
    batch = {'clips': clips, 'label': jax.ShapeDtypeStruct((8,), jnp.int32),
             'valid': jax.ShapeDtypeStruct((8,), jnp.bool_)}
    views = jax.ShapeDtypeStruct((8, 2, 8, 32, 32, 3), jnp.uint8)
    yield str(s.train_step.trace(state, batch).jaxpr)
    yield str(s.eval_step.trace(steps.variables_of(state),
                                {'clips': views}).jaxpr)
  base = tiny_config()
  changed = tiny_config(**other)
  assert steps.steps_key(changed) == steps.steps_key(base)
  want = list(programs(base))
  assert list(programs(changed)) == want
  smoothed = tiny_config(**{'train.label_smoothing': 0.1})
  assert steps.steps_key(smoothed) != steps.steps_key(base)
  assert next(programs(smoothed)) != want[0]


def test_metrics_against_hand_computation():
  scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6],
                     [0.5, 0.4, 0.1]])
  labels = np.array([0, 2, 2, 1])
  r = metrics.classification_metrics(scores, labels, 3)
  assert r['top1'] == pytest.approx(0.5)  # videos 0 and 2
  assert r['top5'] == 1.0  # 3 classes: every label is in the top 5
  # per class: 0 -> 1/1, 1 -> 0/1, 2 -> 1/2
  np.testing.assert_allclose(r['per_class'], [1.0, 0.0, 0.5])
  assert r['mean_class_acc'] == pytest.approx(0.5)
  np.testing.assert_array_equal(r['confusion'],
                                [[1, 0, 0], [1, 0, 0], [0, 1, 1]])
  # 7 classes; labels ranked 1st, 5th, 6th and 1st: top-5 holds 3 of 4.
  seven = np.array([[7, 6, 5, 4, 3, 2, 1], [7, 6, 5, 4, 3, 2, 1],
                    [7, 6, 5, 4, 3, 2, 1], [1, 2, 3, 4, 5, 6, 7]], float)
  r7 = metrics.classification_metrics(seven, np.array([0, 4, 5, 6]), 7)
  assert r7['top1'] == pytest.approx(0.5)  # videos 0 and 3
  assert r7['top5'] == pytest.approx(0.75)  # video 1 (5th) too, not 2
  r7 = metrics.classification_metrics(seven, np.array([0, 4, 5, 0]), 7)
  assert r7['top1'] == pytest.approx(0.25) and r7['top5'] == 0.5


def test_resume_equals_straight_run(tmp_path):
  """N steps straight == N/2, a restart in the same workdir, N/2 more."""
  extra = {'train.epochs': 1, 'train.checkpoint_every_steps': 3,
           'train.eval_every_epochs': 0, 'eval.max_videos': 8}
  straight = tiny_config(**extra, **{'train.max_steps': 6})
  train_and_evaluate(straight, tmp_path / 'a')
  first = tiny_config(**extra, **{'train.max_steps': 3})
  train_and_evaluate(first, tmp_path / 'b')
  second = tiny_config(**extra, **{'train.max_steps': 6})
  train_and_evaluate(second, tmp_path / 'b')
  from mstsm_jax.modeldir import load_variables
  _, _, va, sa = load_variables(tmp_path / 'a')
  _, _, vb, sb = load_variables(tmp_path / 'b')
  assert sa == sb == 6
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6),
               va, vb)
  la = [json.loads(x) for x in open(tmp_path / 'a' / 'metrics.jsonl')]
  lb = [json.loads(x) for x in open(tmp_path / 'b' / 'metrics.jsonl')]
  loss = lambda rows: {r['step']: r['loss'] for r in rows if 'loss' in r}
  assert loss(la)[6] == pytest.approx(loss(lb)[6], rel=1e-5)  # same data


@pytest.mark.parametrize('stop', ['SIGTERM', 'SIGINT'])
def test_sigterm_saves_a_restorable_checkpoint(tmp_path, stop):
  """Preemption, and a first Ctrl-C (SIGINT), save and exit cleanly. A
  terminal's Ctrl-C reaches the whole process group, grain's data workers
  too, which printed their own tracebacks."""
  env = dict(os.environ, PYTHONUNBUFFERED='1')
  cmd = [sys.executable, '-m', 'mstsm_jax.train',
         '--config=configs/synthetic.py', f'--workdir={tmp_path}',
         '--config.train.epochs=50', '--config.train.eval_every_epochs=0',
         '--config.train.checkpoint_every_steps=100000', *TINY_ARGS,
         f'--config.data.workers={int(stop == "SIGINT")}']
  proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env,
                          start_new_session=True)
  deadline = time.time() + 120
  seen = ''
  while time.time() < deadline:
    line = proc.stderr.readline()
    seen += line
    if 'loss=' in line:  # steps run: the data workers are up
      break
  os.killpg(proc.pid, getattr(signal, stop))
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 0, seen + err
  assert f'{stop}: saved step' in err and 'Traceback' not in err, err
  assert 'KeyboardInterrupt' not in err, err
  from mstsm_jax.modeldir import load_variables
  _, _, variables, step = load_variables(tmp_path)
  assert step > 0 and 'backbone' in variables['params']


def test_two_processes_equal_one_process(tmp_path):
  """Multi-host on one machine: 2 processes x 2 CPU devices (jax.distributed
  with gloo collectives, per-process input shards) reach the parameters of
  1 process x 4 devices."""
  import socket
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  # No dropout: its masks follow a clip's position in the global batch,
  # which interleaves the processes' shards.
  args = ['--config=configs/synthetic.py:tsm', *TINY_ARGS,
          '--config.train.max_steps=3', '--config.train.eval_every_epochs=0',
          '--config.eval.max_videos=8', '--config.model.dropout=0.0']
  def launch(workdir, devices, pid=None):
    env = dict(os.environ, XLA_FLAGS=jobs.xla_flags(devices))
    extra = []
    if pid is not None:
      env.update(JAX_COORDINATOR_ADDRESS=f'127.0.0.1:{port}',
                 JAX_NUM_PROCESSES='2', JAX_PROCESS_ID=str(pid))
      extra = ['--distributed']
    return subprocess.Popen([sys.executable, '-m', 'mstsm_jax.train',
                             f'--workdir={workdir}', *extra, *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
  procs = [launch(tmp_path / 'multi', 2, pid) for pid in (0, 1)]
  procs.append(launch(tmp_path / 'single', 4))
  for p in procs:
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-2000:]
  from mstsm_jax.modeldir import load_variables
  _, _, multi, s1 = load_variables(tmp_path / 'multi')
  _, _, single, s2 = load_variables(tmp_path / 'single')
  assert s1 == s2 == 3
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=2e-5,
                                                       rtol=1e-4),
               multi, single)
