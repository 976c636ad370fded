"""A backbone from outside the package (tests/toy_backbone.py, registered
by name): train, predict, export, convert, summary and Grad-CAM take it
without a change to the package; prune refuses it (it declares no rules)."""
import dataclasses

import jax
import numpy as np
import pytest

import mstsm_jax
import model_dirs
from mstsm_jax import modeldir
from mstsm_jax.inference import gradcam
from mstsm_jax.models import backbones, cost, pytorch, task

NAME = 'toy_backbone:toy'  # the module registers it on import
ARGS = [f'--config.{k}={v}' for k, v in {
    **model_dirs.TINY, 'model.backbone': NAME, 'data.synthetic_size': 32,
    'data.resize_short': 32}.items()
    if k != 'model.stage_sizes']
LEAF = {'kernel': 'weight', 'scale': 'weight', 'bias': 'bias',
        'mean': 'running_mean', 'var': 'running_var'}
TORCH = {'stem_conv': 'stem.0', 'stem_bn': 'stem.1', 'block_conv': 'block.0',
         'block_bn': 'block.1'}


def torch_state_dict(variables):
  """The toy's variables under its PyTorch names and layouts."""
  out = {}
  for coll in ('params', 'batch_stats'):
    for mod, leaves in variables[coll]['backbone'].items():
      for leaf, v in leaves.items():
        v = np.asarray(v)
        out[f'{TORCH[mod]}.{LEAF[leaf]}'] = (v.transpose(3, 2, 0, 1)
                                             if v.ndim == 4 else v)
  fc = variables['params']['fc']
  out['fc.weight'], out['fc.bias'] = np.asarray(fc['kernel']).T, fc['bias']
  return out


def test_toy_backbone_trains_predicts_exports_converts(tmp_path, job):
  run = tmp_path / 'run'
  job('train', '--config=configs/synthetic.py:mstsm_tfdem', *ARGS,
      f'--workdir={run}', '--config.train.max_steps=2',
      '--config.eval.max_videos=8')
  spec = backbones.get(NAME)  # registered by importing toy_backbone
  assert NAME in backbones.names() and spec.prune is None

  clips = np.random.default_rng(0).integers(0, 256, (2, 8, 32, 32, 3),
                                            np.uint8)
  p = mstsm_jax.load(run, batch_size=2)
  assert p.model.backbone_name == NAME
  scores = np.asarray(p(clips))
  assert scores.shape == (2, 10) and np.isfinite(scores).all()

  meta = job('export', f'--checkpoint={run}', f'--output={tmp_path}/t.mstsm',
             '--json').json()
  assert meta['backbone'] == NAME
  exported = np.asarray(mstsm_jax.load(tmp_path / 't.mstsm')(clips))
  np.testing.assert_allclose(exported, scores,
                             atol=1e-4 * np.abs(scores).max() + 1e-6)

  config, _, variables, _ = modeldir.load_variables(run)
  got, report, fmt = pytorch.convert(torch_state_dict(variables), config)
  assert fmt == 'torchvision' and not report['unused']
  assert report['missing'] == [] and report['new_branch']
  jax.tree.map(np.testing.assert_array_equal, got['params']['backbone'],
               variables['params']['backbone'])

  stages = cost.analyse(config.model, image_size=32)['stages']
  assert set(stages) == {'stage1', 'stage2', 'head', 'tfdem'}
  x = np.asarray(task.normalize(clips[0], *task.norm_stats(config.data)))
  maps, _, _ = gradcam.grad_cam(p.model, p.variables, x)  # stage2
  assert maps.shape == (8, 32, 32) and gradcam.last_stage(p.model) == 'stage2'

  r = job('prune', f'--checkpoint={run}', f'--output={tmp_path}/p', code=2)
  assert 'declares no pruning rules' in r.stderr


def test_a_backbone_name_that_does_not_resolve_is_one_line(tmp_path, job):
  for name, says in (('vgg16', "unknown backbone 'vgg16'"),
                     ('no_such_pkg.mod', 'cannot import its module'),
                     ('model_dirs:toy', 'registers no backbone')):
    r = job('summary', '--config=configs/synthetic.py',
            f'--config.model.backbone={name}', code=2)
    assert says in r.stderr.splitlines()[0], r.stderr
  with pytest.raises(ValueError, match='already registered'):
    backbones.register(dataclasses.replace(backbones.get('resnet50'),
                                           tfdem_width=64))
