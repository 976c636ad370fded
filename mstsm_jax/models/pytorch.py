"""PyTorch state dicts -> this project's variables, with numeric parity.

ResNet-50 in three key formats, and torchvision's efficientnet_b0.
Formats (`--format=auto` detects them):
  torchvision  `conv1.weight`, `layer1.0.conv1.weight`, `fc.weight`, ...
  tsm          official TSM: {'state_dict': {'module.base_model.layer1.0.
               conv1.net.weight', ..., 'module.new_fc.weight'}}, `module.`
               optional
  mmaction2    {'state_dict': {'backbone.layer1.0.conv1.conv.weight',
               'backbone.layer1.0.conv1.bn.weight', 'cls_head.fc_cls.weight'}}
Kernels OIHW -> HWIO, BN weight/bias -> scale/bias, running mean/var ->
batch_stats (`num_batches_tracked` ignored). The extra conv1 inputs that
MSTSM concatenates get zero weights, so a TSM checkpoint run as `mstsm`
computes exactly what it computes as `tsm`; TFDEM is freshly initialised; a
classifier of another class count is re-initialised. Anything else that does
not load (backbone tensors left at init, unused or misfitting tensors) is an
error naming what the file looks like (non-local blocks, temporal pooling,
another depth or backbone) unless `allow_partial`. torch is needed for
reading .pth files only (`pip install -e '.[torch]'`).
"""
from __future__ import annotations

import collections
import re

import jax
import jax.numpy as jnp
import numpy as np

from mstsm_jax.errors import UsageError
from mstsm_jax.models.mstsm import build_model
from mstsm_jax.models import fit

FORMATS = ('auto', 'torchvision', 'tsm', 'mmaction2')
BN_LEAVES = {'weight': ('params', 'scale'), 'bias': ('params', 'bias'),
             'running_mean': ('batch_stats', 'mean'),
             'running_var': ('batch_stats', 'var')}


def load_torch(path: str) -> dict[str, np.ndarray]:
  """The tensors of a .pth file (`weights_only=True`), unwrapped from
  {'state_dict': ...} / {'model': ...}, as float32 numpy arrays."""
  try:
    import torch
  except ImportError as e:
    raise UsageError(f'reading {path} needs PyTorch, which is not '
                     'installed', "pip install -e '.[torch]'") from e
  try:
    obj = torch.load(path, map_location='cpu', weights_only=True)
  except FileNotFoundError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    first = (str(e).strip().splitlines() or [''])[0][:120]
    raise UsageError(f'{path} is not a readable PyTorch checkpoint '
                     f'({type(e).__name__}: {first})',
                     're-download it or pass the .pth file itself') from e
  for key in ('state_dict', 'model'):
    if isinstance(obj, dict) and isinstance(obj.get(key), dict):
      obj = obj[key]
  if not isinstance(obj, dict) or not obj:
    raise UsageError(f'{path} holds no state dict',
                     'pass a checkpoint saved from a model\'s state_dict()')
  return {k: v.detach().float().numpy() for k, v in obj.items()
          if hasattr(v, 'detach') and not k.endswith('num_batches_tracked')}


def detect_format(sd: dict) -> str:
  keys = list(sd)
  if any(re.match(r'(module\.)?base_model\.', k) for k in keys):
    return 'tsm'
  if any(k.startswith('backbone.') for k in keys):
    return 'mmaction2'
  if 'conv1.weight' in sd and any(k.startswith('layer1.') for k in keys):
    return 'torchvision'
  if 'features.0.0.weight' in sd:
    return 'torchvision'  # efficientnet_b0
  raise ValueError('unrecognised checkpoint: expected torchvision '
                   "(conv1.weight), TSM ('module.base_model.*') or MMAction2 "
                   f"('backbone.*') keys; first keys: {keys[:4]}")


def describe(sd: dict, stage_sizes=(3, 4, 6, 3)) -> list[str]:
  """What a state dict looks like where it is not the model's plain (TSM)
  ResNet: non-local blocks, temporal pooling, another depth (blocks per
  stage other than `stage_sizes`), another backbone."""
  keys = [re.sub(r'^(module\.)?(base_model\.|backbone\.)?', '', k)
          for k in sd]
  notes = []
  nl = [k for k in keys if re.search(r'\.nl\.', k)]
  if nl:
    notes.append(f'non-local blocks ({len(nl)} tensors in '
                 f'{len({k.split(".nl.")[0] for k in nl})} ".nl" modules, '
                 "TSM's _nl models), which this model does not implement")
  if any(re.match(r'layer\d\.net\.\d', k) for k in keys):
    notes.append('temporal pooling (TSM\'s tpool: layer2 halves T), which '
                 'this model does not implement')
  blocks = collections.Counter()
  for k in keys:
    m = re.match(r'(layer\d)\.(?:net\.)?(\d+)\.', k)
    if m:
      blocks[m.group(1)] = max(blocks[m.group(1)], int(m.group(2)) + 1)
  if blocks:
    found = tuple(blocks[f'layer{i}'] for i in range(1, 5))
    depth = {(3, 4, 6, 3): '50', (3, 4, 23, 3): '101',
             (3, 8, 36, 3): '152'}.get(found, '?')
    if not any('.conv3.' in k for k in keys):
      notes.append('a ResNet-18/34 (basic blocks without conv3)')
    elif found != tuple(stage_sizes):
      use = (f' (--config.model.backbone=resnet{depth})'
             if depth in ('50', '101') else '')
      notes.append(f'a ResNet-{depth} (blocks per stage {list(found)}; '
                   f'this model has {list(stage_sizes)}){use}')
  elif any(re.match(r'features\.\d+\.conv\.', k) for k in keys):
    notes.append('a MobileNetV2 (features.N.conv keys), not this backbone')
  elif any(k.startswith(('inception', 'conv1_7x7')) for k in keys):
    notes.append('a BN-Inception, not this backbone')
  return notes


def to_torchvision_names(sd: dict, fmt: str) -> dict:
  """Renames TSM / MMAction2 keys to torchvision's ResNet names."""
  out = {}
  for k, v in sd.items():
    n = k
    if fmt == 'tsm':
      n = re.sub(r'^module\.', '', n)
      n = re.sub(r'^base_model\.', '', n)
      n = re.sub(r'^new_fc\.', 'fc.', n)
    elif fmt == 'mmaction2':
      n = re.sub(r'^module\.', '', n)
      n = re.sub(r'^cls_head\.fc_cls\.', 'fc.', n)
      n = re.sub(r'^backbone\.', '', n)
      n = re.sub(r'^conv1\.conv\.', 'conv1.', n)
      n = re.sub(r'^conv1\.bn\.', 'bn1.', n)
      n = re.sub(r'\.conv(\d)\.(?:net\.)?conv\.', r'.conv\1.', n)
      n = re.sub(r'\.conv(\d)\.bn\.', r'.bn\1.', n)
      n = re.sub(r'\.downsample\.conv\.', '.downsample.0.', n)
      n = re.sub(r'\.downsample\.bn\.', '.downsample.1.', n)
    n = n.replace('.net.', '.')  # TSM's shift wrapper around conv1
    n = n.replace('.block.', '.')  # TSM's non-local wrapper (NL3DWrapper)
    out[n] = v
  return out


def to_flax(sd: dict) -> dict:
  """torchvision names -> flat {'params/backbone/conv1/kernel': array}."""
  out = {}
  for k, v in sd.items():
    parts = k.split('.')
    if parts[0] == 'fc' and len(parts) == 2:
      out[f'params/fc/{"kernel" if parts[1] == "weight" else "bias"}'] = (
          v.T if parts[1] == 'weight' else v)
      continue
    block = re.fullmatch(
        r'(layer\d)\.(\d+)\.((?:conv|bn)[123]|downsample\.[01])\.(\w+)', k)
    if block:
      stage, idx, layer, leaf = block.groups()
      layer = {'downsample.0': 'downsample_conv',
               'downsample.1': 'downsample_bn'}.get(layer, layer)
      path = f'backbone/{stage}_{idx}/{layer}'
    elif parts[0] in ('conv1', 'bn1') and len(parts) == 2:
      path, leaf = f'backbone/{parts[0]}', parts[-1]
    else:
      out[f'unknown/{k}'] = v
      continue
    if 'conv' in path.split('/')[-1] and leaf == 'weight':
      out[f'params/{path}/kernel'] = v.transpose(2, 3, 1, 0)  # OIHW->HWIO
    elif leaf in BN_LEAVES:
      coll, name = BN_LEAVES[leaf]
      out[f'{coll}/{path}/{name}'] = v
    else:
      out[f'unknown/{k}'] = v
  return out


def efficientnet_to_flax(sd: dict) -> dict:
  """torchvision efficientnet_b0 names -> flat flax keys (models/
  efficientnet.py): features.0 stem, features.{1-7}.{i}.block.{j} MBConvs,
  features.8 head conv, classifier.1 the classifier."""
  out = {}
  for k, v in sd.items():
    parts = k.split('.')
    if parts[0] == 'classifier':
      leaf = 'kernel' if parts[-1] == 'weight' else 'bias'
      out[f'params/fc/{leaf}'] = v.T if leaf == 'kernel' else v
      continue
    if parts[0] != 'features':
      out[f'unknown/{k}'] = v
      continue
    s = int(parts[1])
    if s in (0, 8):
      name = {0: 'stem', 8: 'head'}[s]
      mod, sub, leaf = f'backbone/{name}', parts[2], parts[-1]
      layer = f'{mod}_{"conv" if sub == "0" else "bn"}'
    else:
      roles = ['dw', 'se', 'project'] if s == 1 else [
          'expand', 'dw', 'se', 'project']
      role = roles[int(parts[4])]
      mod = f'backbone/features_{s}_{parts[2]}'
      if role == 'se':
        layer, leaf = f'{mod}/se_{parts[5]}', parts[-1]
        out[f'params/{layer}/{"kernel" if leaf == "weight" else "bias"}'] = (
            v.transpose(2, 3, 1, 0) if leaf == 'weight' else v)
        continue
      layer = f'{mod}/{role}_{"conv" if parts[5] == "0" else "bn"}'
      leaf = parts[-1]
    if layer.endswith('conv') and leaf == 'weight':
      out[f'params/{layer}/kernel'] = v.transpose(2, 3, 1, 0)
    else:
      coll, name = BN_LEAVES[leaf]
      out[f'{coll}/{layer}/{name}'] = v
  return out


def convert(source, config, fmt: str = 'auto', strict: bool = False,
            allow_partial: bool = False, seed: int = 0):
  """Returns (variables, report, detected format) for `config`'s model.

  `source` is a .pth path or a state dict of arrays. Raises UsageError when
  the file does not fit: backbone tensors left at init, unused or
  misfitting tensors (unless `allow_partial`), or, with `strict`, anything
  not loaded besides the new TFDEM branch.
  """
  if fmt not in FORMATS:
    raise UsageError(f'--format={fmt}', f'valid: {", ".join(FORMATS)}')
  name = source if isinstance(source, str) else 'the state dict'
  sd = load_torch(source) if isinstance(source, str) else {
      k: np.asarray(v, np.float32) for k, v in source.items()}
  fmt = detect_format(sd) if fmt == 'auto' else fmt
  effnet = 'features.0.0.weight' in sd
  if effnet != (config.model.backbone == 'efficientnet_b0'):
    want = 'efficientnet_b0' if effnet else 'resnet50'
    raise UsageError(
        f'{name} is a {"efficientnet_b0" if effnet else "ResNet"} '
        f'checkpoint but config.model.backbone={config.model.backbone}',
        f'pass --config.model.backbone={want}')
  flat = efficientnet_to_flax(sd) if effnet else to_flax(
      to_torchvision_names(sd, fmt))
  model = build_model(config.model)
  s = config.data.crop_size
  init = jax.jit(model.init)(jax.random.key(seed), jnp.zeros(
      (1, config.model.num_segments, s, s, 3)))
  from flax import traverse_util
  loaded = traverse_util.unflatten_dict(flat, sep='/')
  merged, report = fit.merge_variables(init, loaded,
                                              config.model.backbone)
  new = [k for k in report['missing'] if k.split('/')[1] == 'tfdem']
  report['new_branch'] = new
  report['missing'] = [k for k in report['missing'] if k not in new]
  report['looks_like'] = [] if effnet else describe(
      sd, model.channels and tuple(len(b) for b in model.channels.blocks))
  problems = fit.partial_load_problems(report, config.model.backbone)
  if any(n.startswith('temporal pooling') for n in report['looks_like']):
    problems.insert(0, 'its ResNet weights load, but the model it was '
                    'trained as pools time after layer1 (tpool)')
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
        f'{name} does not fit {config.variant} ({config.model.backbone}): '
        + '; '.join(dict.fromkeys(problems)) + looks,
        'drop --strict to allow a new classifier' if all(
            p.startswith('--strict') for p in problems) else
        '--allow_partial converts it anyway (what does not fit keeps its '
        'initial value)')
  return merged, report, fmt
