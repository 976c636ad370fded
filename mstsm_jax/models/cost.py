"""Parameters and multiply-adds per stage, without allocating weights.

Parameters are what torch's `sum(p.numel() for p in model.parameters())`
counts (BN running statistics are buffers, not parameters). GFLOPs are
multiply-adds (MACs) of the convolutions and dense layers, the convention of
the TSM and MSTSM papers; pointwise ops (BN, ReLU, shifts, pooling) are not
counted. Counted exactly from shapes under `jax.eval_shape`.
"""
from __future__ import annotations

import collections
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mstsm_jax.models import task
from mstsm_jax.models.mstsm import build_model, stage_of
from mstsm_jax.models.resnet import ChannelSpec


def of_config(config, channels: ChannelSpec | None = None) -> dict:
  """`analyse` of a whole config's model: its crop size and input
  channels (RGB, or a flow stack's)."""
  return analyse(config.model, channels, config.data.crop_size,
                 task.in_channels(config.data))


def analyse(model_cfg, channels: ChannelSpec | None = None,
            image_size: int = 224, in_channels: int = 3) -> dict:
  """Returns {'params', 'macs_per_frame', 'stages': {name: (params, macs)}}
  for inputs of `in_channels` (3: RGB)."""
  model = build_model(model_cfg, channels)
  t = model_cfg.num_segments
  x = jax.ShapeDtypeStruct((1, t, image_size, image_size, in_channels),
                           jnp.float32)
  macs = collections.Counter()

  def count_macs(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    mod = context.module
    if context.method_name == '__call__' and isinstance(mod, (nn.Conv,
                                                              nn.Dense)):
      inp = args[0]
      k = math.prod(getattr(mod, 'kernel_size', (1,)))
      groups = getattr(mod, 'feature_group_count', 1)
      macs[stage_of(mod.scope.path, model_cfg.backbone)] += (
          math.prod(out.shape[:-1]) * out.shape[-1] * k * inp.shape[-1]
          // groups)
    return out

  with nn.intercept_methods(count_macs):
    variables = jax.eval_shape(
        lambda x: model.init({'params': jax.random.key(0)}, x), x)
  params = collections.Counter()
  flat = jax.tree_util.tree_flatten_with_path(variables['params'])[0]
  for path, leaf in flat:
    names = tuple(p.key for p in path)
    params[stage_of(names, model_cfg.backbone)] += int(np.prod(leaf.shape))
  order = list(macs) + [s for s in params if s not in macs]  # run order
  stages = {s: (params[s], macs[s] / t) for s in order}
  return {'params': sum(params.values()),
          'macs_per_frame': sum(macs.values()) / t,
          'num_segments': t, 'image_size': image_size, 'stages': stages}


def format_table(res: dict, title: str = '') -> str:
  t = res['num_segments']
  lines = [title] if title else []
  lines.append(f'{"stage":<10} {"params":>12} {"GMACs/frame":>12}')
  for name, (p, m) in res['stages'].items():
    lines.append(f'{name:<10} {p:>12,} {m / 1e9:>12.3f}')
  lines.append(f'{"total":<10} {res["params"]:>12,} '
               f'{res["macs_per_frame"] / 1e9:>12.3f}')
  lines.append(f'GFLOPs (multiply-adds) at {res["image_size"]}x'
               f'{res["image_size"]}: {res["macs_per_frame"] / 1e9:.3f} per '
               f'frame, {res["macs_per_frame"] * t / 1e9:.2f} per {t}-frame '
               'clip')
  return '\n'.join(lines)


def to_json(res: dict) -> dict:
  return {'params': res['params'],
          'gflops': round(res['macs_per_frame'] / 1e9, 4),
          'gflops_per_clip': round(res['macs_per_frame']
                                   * res['num_segments'] / 1e9, 4),
          'stages': {k: {'params': p, 'gflops': round(m / 1e9, 4)}
                     for k, (p, m) in res['stages'].items()}}
