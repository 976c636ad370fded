"""ResNet-50 and ResNet-101 (models/resnet.py) as backbones: defaults,
parameter rules, the PyTorch name maps and similar-kernel pruning.

Converter formats (detected from the keys):
  torchvision  `conv1.weight`, `layer1.0.conv1.weight`, `fc.weight`, ...
  tsm          official TSM: {'state_dict': {'module.base_model.layer1.0.
               conv1.net.weight', ..., 'module.new_fc.weight'}}, `module.`
               optional
  mmaction2    {'state_dict': {'backbone.layer1.0.conv1.conv.weight',
               'backbone.layer1.0.conv1.bn.weight', 'cls_head.fc_cls.weight'}}
A file the model cannot fully use is described (non-local blocks, temporal
pooling, another depth or backbone) for the conversion's error.
"""
from __future__ import annotations

import collections
import functools
import re

from mstsm_jax.errors import UsageError
from mstsm_jax.models import backbones, pruning, torch_names
from mstsm_jax.models.resnet import STAGES, ChannelSpec, ResNet, shift_every


def build(cfg, shift, channels, dtype, *, stage_sizes):
  """A ResNet of `config.model` (`stage_sizes`, `width` 64 unless set), or
  of a pruned model's `channels`."""
  sizes = tuple(cfg.stage_sizes) or stage_sizes
  if len(sizes) != len(STAGES):
    raise UsageError(f'model.stage_sizes={sizes}: a ResNet has '
                     f'{len(STAGES)} stages', 'fix --config.model.'
                     'stage_sizes: 4 block counts, e.g. (3, 4, 6, 3)')
  channels = channels or ChannelSpec.dense(sizes, cfg.width or 64)
  for c in (channels.stem,) + channels.out:
    shift.out_channels(c)  # validates the shift widths at block inputs
  return ResNet(channels, shift, cfg.bn_mode, cfg.bn_momentum, dtype,
                shift_every([len(b) for b in channels.blocks]))


def param_role(names: tuple[str, ...]) -> str:
  """Role of a ResNet variable (names under 'backbone', e.g. ('layer1_0',
  'conv1', 'kernel')): stem_conv, stem_norm, shifted_conv (the conv that
  sees the temporal module's output), norm or conv."""
  if names[0] in ('conv1', 'bn1'):
    return {'conv1': 'stem_conv', 'bn1': 'stem_norm'}[names[0]]
  layer = names[1]
  if layer == 'conv1':
    return 'shifted_conv'
  return 'norm' if layer in ('bn1', 'bn2', 'bn3', 'downsample_bn') else 'conv'


def stage_of(names: tuple[str, ...]) -> str:
  """('layer2_0', ...) -> 'layer2'; the stem's -> 'stem'."""
  return names[0].split('_')[0] if names[0].startswith('layer') else 'stem'


def detect(sd: dict) -> str | None:
  keys = list(sd)
  if any(re.match(r'(module\.)?base_model\.', k) for k in keys):
    return 'tsm'
  if any(k.startswith('backbone.') for k in keys):
    return 'mmaction2'
  if 'conv1.weight' in sd and any(k.startswith('layer1.') for k in keys):
    return 'torchvision'
  return None


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


def to_flax(sd: dict, fmt: str) -> dict:
  """A state dict in `fmt` -> flat {'params/backbone/conv1/kernel': array}."""
  out = {}
  for k, v in to_torchvision_names(sd, fmt).items():
    parts = k.split('.')
    if parts[0] == 'fc' and len(parts) == 2:
      out.update(torch_names.dense('fc', parts[1], v))
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
      out.update(torch_names.conv(path, leaf, v))
    elif leaf in torch_names.BN_LEAVES:
      out.update(torch_names.norm(path, leaf, v))
    else:
      out[f'unknown/{k}'] = v
  return out


def describe(sd: dict, model) -> list[str]:
  """What a state dict looks like where it is not the model's plain (TSM)
  ResNet: non-local blocks, temporal pooling, another depth (blocks per
  stage other than the model's), another backbone."""
  stage_sizes = tuple(len(b) for b in model.channels.blocks)
  keys = [re.sub(r'^(module\.)?(base_model\.|backbone\.)?', '', k)
          for k in sd]
  notes = []
  nl = [k for k in keys if re.search(r'\.nl\.', k)]
  if nl:
    notes.append(f'non-local blocks ({len(nl)} tensors in '
                 f'{len({k.split(".nl.")[0] for k in nl})} ".nl" modules, '
                 "TSM's _nl models), which this model does not implement")
  if temporal_pooling(keys):
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
    elif found != stage_sizes:
      use = (f' (--config.model.backbone=resnet{depth})'
             if depth in ('50', '101') else '')
      notes.append(f'a ResNet-{depth} (blocks per stage {list(found)}; '
                   f'this model has {list(stage_sizes)}){use}')
  elif any(re.match(r'features\.\d+\.conv\.', k) for k in keys):
    notes.append('a MobileNetV2 (features.N.conv keys), not this backbone')
  elif any(k.startswith(('inception', 'conv1_7x7')) for k in keys):
    notes.append('a BN-Inception, not this backbone')
  return notes


def temporal_pooling(keys) -> bool:
  """TSM's tpool files wrap layer2 (`layer2.net.0...`)."""
  return any(re.match(r'layer\d\.net\.\d', k) for k in keys)


def problems(sd: dict) -> list[str]:
  keys = [re.sub(r'^(module\.)?(base_model\.|backbone\.)?', '', k)
          for k in sd]
  if temporal_pooling(keys):
    return ['its ResNet weights load, but the model it was trained as pools '
            'time after layer1 (tpool)']
  return []


def prune(variables, model, r_out: int, r_in: int):
  """Similar-kernel pruning of every bottleneck's conv1 (models/pruning.py)."""
  return pruning.prune(variables, model.channels, model.shift, r_out, r_in,
                       model.backbone.shift_every)


CONVERTER = backbones.Converter(('torchvision', 'tsm', 'mmaction2'), detect,
                                to_flax, describe, problems)
for _name, _sizes in (('resnet50', (3, 4, 6, 3)),
                      ('resnet101', (3, 4, 23, 3))):
  backbones.register(backbones.Backbone(
      name=_name, build=functools.partial(build, stage_sizes=_sizes),
      stages=STAGES, tfdem_tap='layer1', tfdem_width=128,
      param_role=param_role, stage_of=stage_of, gradcam_layer='layer4',
      converter=CONVERTER, prune=prune))
