"""TFDEM, the temporal feature difference extraction branch (paper §3.3).

SPEC §3 default: tap ResNet stage 1 (256 ch, 56x56); 1x1 conv stride 2 to 128
+ BN + ReLU (28x28); bilinear upsample back to 56x56; D_t = F_t - F_{t+1}
(the last frame keeps F_T); 3x3 conv 128->128 stride 2 + BN + ReLU; global
average pool; FC -> per-frame logits (the model averages them over the T
segments). Online variants (`causal`) use D_t = F_t - F_{t-1}; streamed one
frame at a time, F_{t-1} comes from a buffer in the 'stream' collection.
194,021 parameters with 101 classes (the convs carry biases, as torch's
nn.Conv2d default) and about 0.14 G multiply-adds per frame.

Upsampling and differencing are both linear, so the difference is taken
before the upsample: the same values at a quarter of the subtraction cost.
"""
from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from mstsm_jax.models.layers import conv_layer
from mstsm_jax.ops.diff import frame_difference


class TFDEM(nn.Module):
  """Feature-difference side path: `[N*T, H, W, C]` -> per-frame logits."""
  num_classes: int
  num_segments: int
  norm: Callable[..., nn.Module]
  width: int = 128
  reduce_stride: int = 2
  conv_stride: int = 2
  dtype: Any = jnp.float32
  causal: bool = False

  @nn.compact
  def __call__(self, x, stream: bool = False):
    """Returns `[N*T, classes]` float32 per-frame logits; sows
    ('intermediates', 'features') F_t and ('intermediates', 'diff') D_t,
    `[N*T, h, w, width]` at the reduced resolution, for visualisation.
    With `stream`, x is one frame of N streams `[N, H, W, C]` and F_{t-1}
    is read from and written to ('stream', 'previous')."""
    h, w = x.shape[1:3]
    y = conv_layer(self.width, 1, self.reduce_stride, name='conv_reduce',
                   dtype=self.dtype, use_bias=True)(x)
    y = nn.relu(self.norm(name='bn_reduce')(y))
    if stream:
      prev = self.variable('stream', 'previous', jnp.zeros_like, y)
      d, prev.value = y - prev.value, y
    else:
      d = frame_difference(y, self.num_segments, self.causal)
    self.sow('intermediates', 'features', y)
    self.sow('intermediates', 'diff', d)
    d = upsample(d, h, w)
    y = conv_layer(self.width, 3, self.conv_stride, name='conv_diff',
                   dtype=self.dtype, use_bias=True)(d)
    y = nn.relu(self.norm(name='bn_diff')(y))
    y = jnp.mean(y, axis=(1, 2))
    logits = nn.Dense(self.num_classes, dtype=self.dtype,
                      param_dtype=jnp.float32,
                      kernel_init=nn.initializers.normal(0.001),
                      name='fc')(y)
    return logits.astype(jnp.float32)


def upsample(d, h: int, w: int):
  """Bilinear resize of `[N, h', w', C]` to `[N, h, w, C]`: the arithmetic
  of `jax.image.resize(d, ..., 'bilinear')` (scale h/h', no translation),
  spelled with `scale_and_translate` so the spatial sizes alone fix the
  computation (two matrix products): ONNX export keeps N symbolic, where
  its converter's Resize rule needs every dimension fixed."""
  hh, ww = d.shape[1:3]
  return jax.image.scale_and_translate(
      d, (d.shape[0], h, w, d.shape[3]), (1, 2),
      jnp.array([h / hh, w / ww], jnp.float32), jnp.zeros(2, jnp.float32),
      'linear')
