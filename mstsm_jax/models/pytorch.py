"""PyTorch state dicts -> this project's variables, with numeric parity.

The backbone's module declares what its files look like
(`Backbone.converter`: key formats, detection, name map, description);
this module reads the file, finds whose it is, merges it into the model
and decides whether it fits. Built in: ResNet-50/101 in torchvision,
official TSM and MMAction2 key formats, and torchvision's efficientnet_b0
(`--format=auto` detects them). Kernels OIHW -> HWIO, BN weight/bias ->
scale/bias, running mean/var -> batch_stats (`num_batches_tracked`
ignored). The extra conv1 inputs that MSTSM concatenates get zero weights,
so a TSM checkpoint run as `mstsm` computes exactly what it computes as
`tsm`; TFDEM is freshly initialised; a classifier of another class count is
re-initialised. Anything else that does not load (backbone tensors left at
init, unused or misfitting tensors) is an error naming what the file looks
like (non-local blocks, temporal pooling, another depth or backbone) unless
`allow_partial`. torch is needed for reading .pth files only
(`pip install -e '.[torch]'`).
"""
from __future__ import annotations

import importlib
import pathlib
import pickle
import re

import jax
import numpy as np
from flax import traverse_util

from mstsm_jax.errors import UsageError, one_line
from mstsm_jax.models import backbones, fit
from mstsm_jax.models.mstsm import build_model
from mstsm_jax.models.task import in_channels


def formats() -> tuple[str, ...]:
  """'auto' and every key format a registered converter reads."""
  found = [f for n in backbones.names()
           if backbones.get(n).converter is not None
           for f in backbones.get(n).converter.formats]
  return ('auto',) + tuple(dict.fromkeys(found))


WRAPPERS = ('state_dict', 'model', 'model_state_dict')
DAMAGED_HINT = 're-download it or pass the .pth file itself'
SAVE_HINT = ('save the weights alone, from a Python session that trusts '
             'the file: torch.save(model.state_dict(), path), or for a '
             'checkpoint dict torch.save(torch.load(file, weights_only=False)'
             '["state_dict"], path); then convert that file')


def _refused_global(e: Exception) -> str:
  """The class or function `weights_only` refused to build, or ''."""
  found = re.search(r"Unsupported global: GLOBAL ([\w.]+)|but got <class "
                    r"'([\w.]+)'>", str(e))
  return (found.group(1) or found.group(2)) if found else ''


def _numpy_scalar_global(name: str):
  """The numpy scalar and dtype constructors a checkpoint's metadata may
  hold (MMAction2 / mmengine `meta`: a best score as np.float64): data,
  not code, so loadable under `weights_only`; None for anything else."""
  if name not in ('numpy._core.multiarray.scalar',
                  'numpy.core.multiarray.scalar', 'numpy.dtype') and (
                      not name.startswith('numpy.dtypes.')):
    return None
  module, attr = name.rsplit('.', 1)
  try:
    return getattr(importlib.import_module(module), attr)
  except (ImportError, AttributeError):
    return None


def _load_weights_only(torch, path: str):
  """torch.load with `weights_only=True`, numpy scalars allowed."""
  allowed = []
  while True:
    try:
      with torch.serialization.safe_globals(allowed):
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
      name = _refused_global(e)
      g = _numpy_scalar_global(name) if name else None
      if g is None or g in allowed:
        raise
      allowed.append(g)


def load_torch(path: str) -> dict[str, np.ndarray]:
  """The tensors of a .pth file (`weights_only=True`), unwrapped from
  {'state_dict' | 'model' | 'model_state_dict': ...} and from
  (Distributed)DataParallel's `module.` prefix, as float32 numpy arrays."""
  try:
    import torch
  except ImportError as e:
    raise UsageError(f'reading {path} needs PyTorch, which is not '
                     'installed', "pip install -e '.[torch]'") from e
  if not pathlib.Path(path).exists():
    raise UsageError(f'{path}: no such file', 'pass the .pth file')
  try:
    obj = _load_weights_only(torch, path)
  except pickle.UnpicklingError as e:
    found = _refused_global(e)
    why = re.search(r'WeightsUnpickler error: \s*(.+)', str(e))
    if not found:  # a damaged file
      raise UsageError(f'{path} is not a readable PyTorch checkpoint ('
                       + (why.group(1)[:120] if why else one_line(e, 120))
                       + ')', DAMAGED_HINT) from e
    raise UsageError(f'{path} holds pickled Python objects (e.g. '
                     f'{found}: a whole model saved with '
                     'torch.save(model), or numpy arrays), which are not '
                     'loaded: loading them runs code from the file',
                     SAVE_HINT) from e
  except Exception as e:  # pylint: disable=broad-except
    raise UsageError(f'{path} is not a readable PyTorch checkpoint '
                     f'({one_line(e, 120)})', DAMAGED_HINT) from e
  for key in WRAPPERS:
    if isinstance(obj, dict) and isinstance(obj.get(key), dict):
      obj = obj[key]
  if not isinstance(obj, dict) or not obj:
    raise UsageError(f'{path} holds no state dict', SAVE_HINT)
  sd = {k: v.detach().float().numpy() for k, v in obj.items()
        if hasattr(v, 'detach') and not k.endswith('num_batches_tracked')}
  if not sd:
    raise UsageError(f'{path} holds no tensors at its top level (keys: '
                     f'{", ".join(map(str, list(obj)[:6]))}) nor under '
                     f'{" / ".join(WRAPPERS)}', SAVE_HINT)
  if all(k.startswith('module.') for k in sd):
    sd = {k[len('module.'):]: v for k, v in sd.items()}
  return sd


def detect(sd: dict, backbone: str, name: str) -> str:
  """The key format of `sd` when `backbone`'s converter reads it; else a
  UsageError naming the backbone whose file it is, if one claims it."""
  own = backbones.get(backbone).converter
  fmt = own.detect(sd) if own is not None else None
  if fmt:
    return fmt
  for other in backbones.names():
    conv = backbones.get(other).converter
    if other != backbone and conv is not None and conv.detect(sd):
      raise UsageError(f'{name} is a {other} checkpoint but '
                       f'config.model.backbone={backbone}',
                       f'pass --config.model.backbone={other}')
  if own is None:
    readable = [n for n in backbones.names()
                if backbones.get(n).converter is not None]
    raise UsageError(f'config.model.backbone={backbone} declares no PyTorch '
                     'converter (Backbone.converter)',
                     f'convert into one that does: {", ".join(readable)}')
  raise UsageError(f'{name} is an unrecognised checkpoint: {backbone} reads '
                   f'{", ".join(own.formats)} key formats; first keys: '
                   f'{list(sd)[:4]}', 'pass a checkpoint of this backbone')


def convert(source, config, fmt: str = 'auto', strict: bool = False,
            allow_partial: bool = False, seed: int = 0):
  """Returns (variables, report, detected format) for `config`'s model.

  `source` is a .pth path or a state dict of arrays. Raises UsageError when
  the file does not fit: backbone tensors left at init, unused or
  misfitting tensors (unless `allow_partial`), or, with `strict`, anything
  not loaded besides the new TFDEM branch.
  """
  if fmt not in formats():
    raise UsageError(f'--format={fmt}', f'valid: {", ".join(formats())}')
  backbone = config.model.backbone
  name = source if isinstance(source, str) else 'the state dict'
  sd = load_torch(source) if isinstance(source, str) else {
      k: np.asarray(v, np.float32) for k, v in source.items()}
  if bad := fit.nonfinite(sd):
    raise UsageError(f'{name}: {bad}', 'the run that saved it diverged: '
                     'convert an earlier checkpoint of it')
  detected = detect(sd, backbone, name)
  converter = backbones.get(backbone).converter
  if fmt not in ('auto', detected):
    raise UsageError(f'--format={fmt}, but {name} has {detected} key '
                     f'names', f'pass --format=auto (or {detected})')
  fmt = detected if fmt == 'auto' else fmt
  if fmt not in converter.formats:
    raise UsageError(f'--format={fmt}: {backbone} reads '
                     f'{", ".join(converter.formats)}',
                     f'pass --format=auto (the file looks like {detected})')
  flat = converter.to_flax(sd, fmt)
  model = build_model(config.model)
  s = config.data.crop_size
  loaded = traverse_util.unflatten_dict(flat, sep='/')
  merged, report = fit.initialise(
      model, jax.random.key(seed), (1, config.model.num_segments, s, s,
                                     in_channels(config.data)),
      loaded, backbone)
  new = [k for k in report['missing'] if k.split('/')[1] == 'tfdem']
  report['new_branch'] = new
  report['missing'] = [k for k in report['missing'] if k not in new]
  report['looks_like'] = converter.describe(sd, model)
  problems = (converter.problems(sd)
              + fit.partial_load_problems(report, backbone))
  if strict and report['reinitialised']:
    problems.append(f'--strict: {len(report["reinitialised"])} classifier '
                    'tensors re-initialised')
  if strict and report['missing']:
    problems.append(f'--strict: {len(report["missing"])} tensors missing '
                    f'(e.g. {report["missing"][:2]})')
  report['problems'] = problems
  if problems and not allow_partial:
    looks = ('; the file has ' + ' and '.join(report['looks_like'])
             if report['looks_like'] else '')
    raise UsageError(
        f'{name} does not fit {config.variant} ({backbone}): '
        + '; '.join(dict.fromkeys(problems)) + looks,
        'drop --strict to allow a new classifier' if all(
            p.startswith('--strict') for p in problems) else
        '--allow_partial converts it anyway (what does not fit keeps its '
        'initial value)')
  return merged, report, fmt
