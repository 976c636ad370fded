"""A toy backbone from outside the package, as a user would write one: this
one module declares everything (tests/test_toy_backbone.py).

Registered as 'toy_backbone:toy' when imported; a config naming it makes
the registry import this module (it must be on the path, as tests/ is under
pytest). Stem conv (stride 2) -> 'stage1' -> temporal module + conv (stride
2) -> 'stage2'; `width` channels (config.model.width, default 8).
Its PyTorch names: stem.0 (conv), stem.1 (BN), block.0, block.1, fc.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from mstsm_jax.models import backbones, torch_names
from mstsm_jax.models.layers import (batch_norm, conv_layer, shifted,
                                     stage_output)
from mstsm_jax.ops.shift import ShiftSpec

NAME = f'{__name__}:toy'
STAGES = ('stage1', 'stage2')
TORCH = {'stem.0': 'stem_conv', 'stem.1': 'stem_bn', 'block.0': 'block_conv',
         'block.1': 'block_bn'}


class ToyNet(nn.Module):
  width: int
  shift: ShiftSpec
  bn_mode: str = 'frozen'
  bn_momentum: float = 0.9
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool, taps=(), stream: bool = False):
    norm = batch_norm(not train or self.bn_mode != 'train', self.bn_momentum,
                      self.dtype)
    x = conv_layer(self.width, 3, 2, name='stem_conv', dtype=self.dtype)(
        x.astype(self.dtype))
    x = stage_output(self, 'stage1', nn.relu(norm(name='stem_bn')(x)))
    found = {'stage1': x}
    y = shifted(self, x, self.shift, stream)
    y = conv_layer(self.width, 3, 2, name='block_conv', dtype=self.dtype)(y)
    x = stage_output(self, 'stage2', nn.relu(norm(name='block_bn')(y)))
    found['stage2'] = x
    if set(taps) - set(found):
      raise ValueError(f'unknown tap {sorted(set(taps) - set(found))}')
    return jnp.mean(x, axis=(1, 2)), {k: found[k] for k in taps}


def build(cfg, shift, channels, dtype):
  del channels  # not prunable
  width = cfg.width or 8
  shift.out_channels(width)
  return ToyNet(width, shift, cfg.bn_mode, cfg.bn_momentum, dtype)


def param_role(names):
  return {'stem_conv': 'stem_conv', 'stem_bn': 'stem_norm',
          'block_conv': 'shifted_conv', 'block_bn': 'norm'}[names[0]]


def stage_of(names):
  return 'stage1' if names[0].startswith('stem') else 'stage2'


def detect(sd):
  return 'torchvision' if 'stem.0.weight' in sd and 'block.0.weight' in sd \
      else None


def to_flax(sd, fmt):
  del fmt
  out = {}
  for k, v in sd.items():
    module, _, leaf = k.rpartition('.')
    if module == 'fc':
      out.update(torch_names.dense('fc', leaf, v))
    elif module in TORCH:
      path = f'backbone/{TORCH[module]}'
      helper = torch_names.conv if module.endswith('0') else torch_names.norm
      out.update(helper(path, leaf, v))
    else:
      out[f'unknown/{k}'] = v
  return out


backbones.register(backbones.Backbone(
    name=NAME, build=build, stages=STAGES, tfdem_tap='stage1',
    tfdem_width=8, param_role=param_role, stage_of=stage_of,
    converter=backbones.Converter(('torchvision',), detect, to_flax)))
