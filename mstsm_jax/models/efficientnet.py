"""EfficientNet-B0 in torchvision's layout with the temporal module (paper
§4.4.2, Table 1: 4.23M MSTSM / 4.49M MSTSM-TFDEM with 101 classes).

The temporal module sits in the residual branch of every MBConv block that
has a residual connection (stride 1, equal widths), before its first
(expansion) conv: the MBConv counterpart of TSM's "blockres". Blocks without
a residual are left alone. Names follow torchvision's `features.{s}.{i}` so
the converter (backbones/efficientnet.py) maps `efficientnet_b0` state
dicts one to one; BN as torchvision's B0 (eps 1e-5, torch momentum 0.1),
SiLU, squeeze-excitation to `input_channels // 4`, stochastic depth
0.2 * block / 16 per frame.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from mstsm_jax.models.layers import (batch_norm, conv_layer, shifted,
                                     stage_output)
from mstsm_jax.ops.shift import ShiftSpec

# (expand ratio, kernel, stride, in, out, layers): torchvision's B0.
B0 = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
      (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
      (6, 3, 1, 192, 320, 1))


class MBConv(nn.Module):
  """Inverted residual block with squeeze-excitation."""
  in_features: int
  out_features: int
  expand: int
  kernel: int
  strides: int
  shift: ShiftSpec
  norm: Callable[..., nn.Module]
  drop_prob: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False, stream: bool = False):
    conv = functools.partial(conv_layer, dtype=self.dtype)
    residual = self.strides == 1 and self.in_features == self.out_features
    y = shifted(self, x, self.shift, stream) if residual else x
    wide = self.in_features * self.expand
    if self.expand != 1:
      y = nn.silu(self.norm(name='expand_bn')(conv(wide, 1,
                                                   name='expand_conv')(y)))
    y = nn.Conv(wide, (self.kernel,) * 2, strides=self.strides,
                padding=((self.kernel // 2,) * 2,) * 2,
                feature_group_count=wide, use_bias=False, dtype=self.dtype,
                param_dtype=jnp.float32, name='dw_conv')(y)
    y = nn.silu(self.norm(name='dw_bn')(y))
    s = jnp.mean(y, axis=(1, 2), keepdims=True)
    s = nn.silu(conv(max(1, self.in_features // 4), 1, name='se_fc1',
                     use_bias=True)(s))
    y = y * nn.sigmoid(conv(wide, 1, name='se_fc2', use_bias=True)(s))
    y = self.norm(name='project_bn')(conv(self.out_features, 1,
                                          name='project_conv')(y))
    if not residual:
      return y
    if train and self.drop_prob:
      keep = jax.random.bernoulli(self.make_rng('dropout'),
                                  1 - self.drop_prob, (y.shape[0], 1, 1, 1))
      y = jnp.where(keep, y / (1 - self.drop_prob), 0).astype(y.dtype)
    return y + x


class EfficientNetB0(nn.Module):
  """Backbone: `[N*T, H, W, 3]` -> (`[N*T, 1280]`, {tap: features}).

  Taps are `features_0` ... `features_8` (torchvision's `features[k]`).
  `bn_mode` as ResNet's ('partial': only features.0's BN learns).
  """
  shift: ShiftSpec
  bn_mode: str = 'frozen'
  bn_momentum: float = 0.9
  dtype: Any = jnp.float32
  stochastic_depth: float = 0.2

  @nn.compact
  def __call__(self, x, train: bool, taps=(), stream: bool = False):
    frozen = not train or self.bn_mode in ('frozen', 'partial')
    norm = batch_norm(frozen, self.bn_momentum, self.dtype)
    stem_norm = batch_norm(not train or self.bn_mode == 'frozen',
                           self.bn_momentum, self.dtype)
    x = conv_layer(32, 3, 2, name='stem_conv', dtype=self.dtype)(
        x.astype(self.dtype))
    x = nn.silu(stem_norm(name='stem_bn')(x))
    found = {'features_0': x}
    total = sum(layers for *_, layers in B0)
    block = 0
    for s, (e, k, st, cin, cout, layers) in enumerate(B0, start=1):
      for i in range(layers):
        x = MBConv(cin if i == 0 else cout, cout, e, k, st if i == 0 else 1,
                   self.shift, norm, self.stochastic_depth * block / total,
                   self.dtype, name=f'features_{s}_{i}')(x, train, stream)
        block += 1
      x = found[f'features_{s}'] = stage_output(self, f'features_{s}', x)
    x = conv_layer(1280, 1, name='head_conv', dtype=self.dtype)(x)
    x = nn.silu(norm(name='head_bn')(x))
    x = found['features_8'] = stage_output(self, 'features_8', x)
    missing = set(taps) - set(found)
    if missing:
      raise ValueError(f'unknown tap {sorted(missing)}; valid: {list(found)}')
    return jnp.mean(x, axis=(1, 2)), {k: found[k] for k in taps}
