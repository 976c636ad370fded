"""EfficientNet-B0 (models/efficientnet.py) as a backbone: its parameter
rules and torchvision's `efficientnet_b0` name map; not prunable."""
from __future__ import annotations

from mstsm_jax.errors import UsageError
from mstsm_jax.models import backbones, torch_names
from mstsm_jax.models.efficientnet import EfficientNetB0

STAGES = tuple(f'features_{s}' for s in range(1, 9))


def build(cfg, shift, channels, dtype):
  del channels  # not prunable: build_model refuses a channel spec
  if tuple(cfg.stage_sizes) or cfg.width:
    raise UsageError(
        f'model.stage_sizes={tuple(cfg.stage_sizes)} model.width='
        f'{cfg.width}: efficientnet_b0 has torchvision\'s fixed layout',
        'leave both at their defaults ((), 0); they size ResNets')
  return EfficientNetB0(shift, cfg.bn_mode, cfg.bn_momentum, dtype)


def param_role(names: tuple[str, ...]) -> str:
  """Role of an EfficientNet-B0 variable (names under 'backbone'):
  stem_conv, stem_norm, shifted_conv (the expansion conv of a residual
  block, which sees the temporal module's output), norm or conv."""
  layer = names[-2] if len(names) > 2 else names[0]
  if names[0].startswith('stem_'):
    return 'stem_conv' if layer == 'stem_conv' else 'stem_norm'
  if layer.endswith('_bn'):
    return 'norm'
  residual = names[0].startswith('features_') and names[0].split('_')[2] != '0'
  return 'shifted_conv' if layer == 'expand_conv' and residual else 'conv'


def stage_of(names: tuple[str, ...]) -> str:
  """('features_3_1', ...) -> 'features_3'; head_* -> 'features_8'."""
  if names[0].startswith('features_'):
    return '_'.join(names[0].split('_')[:2])
  return 'features_8' if names[0].startswith('head_') else 'stem'


def detect(sd: dict) -> str | None:
  return 'torchvision' if 'features.0.0.weight' in sd else None


def to_flax(sd: dict, fmt: str) -> dict:
  """torchvision efficientnet_b0 names -> flat flax keys: features.0 stem,
  features.{1-7}.{i}.block.{j} MBConvs, features.8 head conv, classifier.1
  the classifier."""
  del fmt  # torchvision's only
  out = {}
  for k, v in sd.items():
    parts = k.split('.')
    if parts[0] == 'classifier':
      out.update(torch_names.dense('fc', parts[-1], v))
      continue
    if parts[0] != 'features':
      out[f'unknown/{k}'] = v
      continue
    s = int(parts[1])
    if s in (0, 8):
      name = {0: 'stem', 8: 'head'}[s]
      layer = f'backbone/{name}_{"conv" if parts[2] == "0" else "bn"}'
    else:
      roles = ['dw', 'se', 'project'] if s == 1 else [
          'expand', 'dw', 'se', 'project']
      role = roles[int(parts[4])]
      mod = f'backbone/features_{s}_{parts[2]}'
      if role == 'se':
        out.update(torch_names.conv(f'{mod}/se_{parts[5]}', parts[-1], v))
        continue
      layer = f'{mod}/{role}_{"conv" if parts[5] == "0" else "bn"}'
    if layer.endswith('conv'):
      out.update(torch_names.conv(layer, parts[-1], v))
    else:
      out.update(torch_names.norm(layer, parts[-1], v))
  return out


backbones.register(backbones.Backbone(
    name='efficientnet_b0', build=build, stages=STAGES,
    tfdem_tap='features_3', tfdem_width=160, param_role=param_role,
    stage_of=stage_of, gradcam_layer='features_8',
    converter=backbones.Converter(('torchvision',), detect, to_flax)))
