"""The layers every backbone shares: torch-padded convs, torch's BatchNorm,
the temporal module of a block (whole clips or streamed), and the stage
marker Grad-CAM reads. Layout NHWC `[N*T, H, W, C]`.

Padding is explicit (torch's symmetric padding), never 'SAME', which pads
stride-2 convolutions asymmetrically and would not reproduce torchvision.
"""
from __future__ import annotations

import functools

import flax.linen as nn
import jax.numpy as jnp

from mstsm_jax.ops.shift import (ShiftSpec, causal_buffers, causal_step,
                                 temporal_module)

# torchvision's conv init (kaiming_normal_, mode='fan_out', relu).
conv_init = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')


def conv_layer(features, kernel, strides=1, *, name, dtype, use_bias=False):
  """A torch-padded conv: `padding = kernel // 2` on both sides."""
  p = kernel // 2
  return nn.Conv(features, (kernel, kernel), strides=strides,
                 padding=((p, p), (p, p)), use_bias=use_bias, dtype=dtype,
                 param_dtype=jnp.float32, kernel_init=conv_init, name=name)


def batch_norm(use_running_average: bool, momentum: float, dtype):
  """BatchNorm as torch's: eps 1e-5; torch momentum 0.1 == flax 0.9."""
  return functools.partial(nn.BatchNorm,
                           use_running_average=use_running_average,
                           momentum=momentum, epsilon=1e-5, dtype=dtype,
                           param_dtype=jnp.float32)


def shifted(block: nn.Module, x, shift: ShiftSpec, stream: bool):
  """The temporal module of `block` on `x`: over whole clips, or (`stream`)
  on one frame per stream `[N, H, W, C]` with the block's buffers kept in
  its ('stream', 'shift') variable (zeros until the first frame)."""
  if not stream:
    return temporal_module(x, shift)
  buf = block.variable('stream', 'shift', causal_buffers, shift, x.shape,
                       x.dtype)
  y, buf.value = causal_step(x, buf.value, shift)
  return y


def stage_output(module: nn.Module, name: str, x):
  """Marks a stage's output for Grad-CAM (inference/gradcam.py): sown as
  ('intermediates', name) and perturbable as ('perturbations', name), so
  its gradient is the gradient of that perturbation. Both are no-ops
  unless the caller makes those collections mutable (never at init)."""
  if module.is_initializing():
    return x
  module.sow('intermediates', name, x)
  return module.perturb(name, x)
