"""Backbones as a registry: one module per backbone, found by name.

A backbone is one module that declares a `Backbone`: everything the package
asks of it (defaults, `build`, parameter roles, summary stages, Grad-CAM
stages, the PyTorch converter's name map, the pruning rules). The rest of
the package asks `get(name)` and never names a backbone.

Built-in backbones are the modules of this package (`resnet`: resnet50,
resnet101; `efficientnet`: efficientnet_b0), imported on the first lookup.
Code outside the package calls `register(Backbone(...))`. The registry
lives in one process, so a backbone from outside is named after its module:
a name 'pkg.module' or 'pkg.module:anything' that is not registered yet
imports `pkg.module` (big_vision's importlib lookup), which registers it.
A config or model directory that names it then works in any process that
can import the module:

  # mypkg/tiny.py
  from mstsm_jax.models import backbones
  backbones.register(backbones.Backbone(name=f'{__name__}:tiny', ...))
  # --config.model.backbone=mypkg.tiny:tiny
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
from typing import Any, Callable

from mstsm_jax import configs
from mstsm_jax.errors import UsageError

ROLES = ('stem_conv', 'stem_norm', 'shifted_conv', 'norm', 'conv')


def _none(*_) -> list[str]:
  return []


@dataclasses.dataclass(frozen=True)
class Converter:
  """How a PyTorch state dict of the backbone becomes its variables.

  formats: the key formats it reads ('torchvision', 'tsm', ...).
  detect: state dict -> its format, or None when it is not this
    backbone's file.
  to_flax: (state dict, format) -> flat {'params/backbone/conv1/kernel':
    array, ...} (`models.torch_names` has the layouts); keys it does not
    map go to 'unknown/<key>' so they are reported unused.
  describe: (state dict, model) -> what the file looks like where it does
    not fit (another depth, extra modules), for the error message.
  problems: state dict -> what makes a file wrong even when every tensor
    fits (a model trained with an operation this one lacks).
  """
  formats: tuple[str, ...]
  detect: Callable[[dict], str | None]
  to_flax: Callable[[dict, str], dict]
  describe: Callable[[dict, Any], list[str]] = _none
  problems: Callable[[dict], list[str]] = _none


@dataclasses.dataclass(frozen=True)
class Backbone:
  """Everything the package asks of a backbone.

  build: (config.model, ShiftSpec, channel spec or None, compute dtype) ->
    a Flax module with a `shift` field (and `channels` when prunable),
    called (frames `[M, H, W, C]`, train, taps, stream) -> (pooled
    features `[M, F]`, {tap: `[M, h, w, c]`}); it marks each of `stages`
    with `layers.stage_output` and accepts each as a tap.
  stages: the stages it marks, in order (Grad-CAM layers).
  tfdem_tap, tfdem_width: where TFDEM taps and its width, when the
    config leaves them '' / 0.
  param_role: names under 'backbone' (('layer1_0', 'conv1', 'kernel')) ->
    one of `ROLES` (optimizer, checkpoint merging, convert).
  stage_of: names under 'backbone' -> its summary stage.
  gradcam_layer: the default Grad-CAM stage; '' = the last of `stages`.
  converter: the PyTorch name map, or None (convert refuses).
  prune: (variables, model, r_out, r_in) -> (variables, channel spec,
    per-block report), or None (not prunable).
  """
  name: str
  build: Callable[..., Any]
  stages: tuple[str, ...]
  tfdem_tap: str
  tfdem_width: int
  param_role: Callable[[tuple[str, ...]], str]
  stage_of: Callable[[tuple[str, ...]], str]
  gradcam_layer: str = ''
  converter: Converter | None = None
  prune: Callable[..., Any] | None = None

  def __post_init__(self):
    if not self.name or self.name != self.name.strip():
      raise ValueError(f'backbone name {self.name!r}: give a non-empty name')
    if self.gradcam_layer and self.gradcam_layer not in self.stages:
      raise ValueError(f'backbone {self.name}: gradcam_layer='
                       f'{self.gradcam_layer!r} is not one of its stages '
                       f'{list(self.stages)}')

  @property
  def default_layer(self) -> str:
    """The Grad-CAM layer when none is asked for."""
    return self.gradcam_layer or self.stages[-1]


_REGISTRY: dict[str, Backbone] = {}
_BUILTINS_LOADED = False


def register(spec: Backbone, replace: bool = False) -> Backbone:
  """Adds `spec` under `spec.name` (for this process). Registering another
  spec under a taken name is an error unless `replace`."""
  if not isinstance(spec, Backbone):
    raise TypeError(f'register takes a Backbone, got {type(spec).__name__}')
  old = _REGISTRY.get(spec.name)
  if old is not None and old is not spec and not replace:
    raise ValueError(f'backbone {spec.name!r} is already registered; pass '
                     'replace=True to replace it')
  _REGISTRY[spec.name] = spec
  return spec


def _load_builtins() -> None:
  """Imports every module of this package once (each registers its own)."""
  global _BUILTINS_LOADED
  if not _BUILTINS_LOADED:
    _BUILTINS_LOADED = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
      importlib.import_module(f'{__name__}.{info.name}')


def names() -> list[str]:
  """Every registered backbone (the built-in ones included), in
  registration order."""
  _load_builtins()
  return list(_REGISTRY)


MODULE_NAME = re.compile(r'[A-Za-z_]\w*(\.[A-Za-z_]\w*)*')


def get(name: str) -> Backbone:
  """The backbone registered as `name`; 'pkg.module[:name]' imports
  pkg.module first when it is not registered yet."""
  _load_builtins()
  if name in _REGISTRY:
    return _REGISTRY[name]
  module = name.split(':', 1)[0]
  plugin = ':' in name or '.' in name
  valid = f'valid: {", ".join(names())}'
  if not plugin or not MODULE_NAME.fullmatch(module):
    raise UsageError(f'unknown backbone {name!r} (config.model.backbone)',
                     f"{valid}, or a module path 'pkg.module[:name]' whose "
                     'module registers it')
  try:
    importlib.import_module(module)
  except ImportError as e:
    raise UsageError(f'backbone {name!r} (config.model.backbone): cannot '
                     f'import its module {module} ({e})',
                     f'put {module} on the path (PYTHONPATH) or use a '
                     f'registered backbone; {valid}') from e
  if name not in _REGISTRY:
    raise UsageError(f'backbone {name!r} (config.model.backbone): module '
                     f'{module} registers no backbone of that name',
                     f'registered: {", ".join(names())}')
  return _REGISTRY[name]


def prunable() -> list[str]:
  """The backbones that declare pruning rules."""
  return [n for n in names() if _REGISTRY[n].prune is not None]


# The config validator accepts every registered name (and dotted module
# paths, imported on first use).
configs.use_backbones(names)
