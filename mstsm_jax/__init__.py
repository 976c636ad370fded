"""MSTSM-TFDEM action recognition (Wu & Chiu 2021) in JAX/Flax.

  import mstsm_jax as mj
  model = mj.create_model('mstsm_tfdem', num_classes=101)
  config = mj.get_config('ucf101:mstsm_tfdem', **{'model.r_two': 1 / 8})
  predictor = mj.load('runs/ucf101')      # any model directory

The library lives in subpackages (ops, models, data, training, evaluation,
inference, configs); the top-level modules are the command-line jobs
(`python -m mstsm_jax.<job>`). Submodules load on first use, so
`import mstsm_jax` stays cheap.
"""
from __future__ import annotations

import importlib

__version__ = '0.1.0'

# public name -> (module, attribute)
_API = {
    'create_model': ('mstsm_jax.models.mstsm', 'create_model'),
    'build_model': ('mstsm_jax.models.mstsm', 'build_model'),
    'param_role': ('mstsm_jax.models.mstsm', 'param_role'),
    'get_config': ('mstsm_jax.configs', 'get_config'),
    'ShiftSpec': ('mstsm_jax.ops.shift', 'ShiftSpec'),
    'temporal_module': ('mstsm_jax.ops.shift', 'temporal_module'),
    'frame_difference': ('mstsm_jax.ops.diff', 'frame_difference'),
    'loss': ('mstsm_jax.models.task', 'loss'),
    'scores': ('mstsm_jax.models.task', 'scores'),
    'normalize': ('mstsm_jax.models.task', 'normalize'),
    'load': ('mstsm_jax.inference', 'load'),
    'Predictor': ('mstsm_jax.inference', 'Predictor'),
    'Streamer': ('mstsm_jax.inference.streaming', 'Streamer'),
    'grad_cam': ('mstsm_jax.inference.gradcam', 'grad_cam'),
    'UsageError': ('mstsm_jax.errors', 'UsageError'),
}
__all__ = sorted(_API)


def __getattr__(name):
  if name not in _API:
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
  module, attr = _API[name]
  value = getattr(importlib.import_module(module), attr)
  globals()[name] = value
  return value


def __dir__():
  return sorted(list(globals()) + __all__)
