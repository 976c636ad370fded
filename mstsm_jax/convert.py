"""PyTorch checkpoints -> a model directory (orbax), with numeric parity.

ResNet-50 in three key formats, and torchvision's efficientnet_b0
(`--config.model.backbone=efficientnet_b0`).

  python -m mstsm_jax.convert --input=TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth \
      --config=configs/ucf101.py:mstsm_tfdem --output=ckpt/tsm_k400 [--strict]

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
classifier of another class count is re-initialised. torch is needed here
only (`pip install -e '.[torch]'`).
"""
from __future__ import annotations

import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from mstsm_jax import checkpoint
from mstsm_jax.models.mstsm import build_model

FORMATS = ('auto', 'torchvision', 'tsm', 'mmaction2')
BN_LEAVES = {'weight': ('params', 'scale'), 'bias': ('params', 'bias'),
             'running_mean': ('batch_stats', 'mean'),
             'running_var': ('batch_stats', 'var')}
LOG = sys.stderr


def load_torch(path: str) -> dict[str, np.ndarray]:
  """The tensors of a .pth file (`weights_only=True`), unwrapped from
  {'state_dict': ...} / {'model': ...}, as float32 numpy arrays."""
  try:
    import torch
  except ImportError as e:
    raise ImportError("converting needs torch: pip install -e '.[torch]'") \
        from e
  try:
    obj = torch.load(path, map_location='cpu', weights_only=True)
  except FileNotFoundError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'{path} is not a readable PyTorch checkpoint '
                     f'({type(e).__name__}: {str(e)[:200]}); re-download it '
                     'or pass the .pth file itself') from e
  for key in ('state_dict', 'model'):
    if isinstance(obj, dict) and isinstance(obj.get(key), dict):
      obj = obj[key]
  if not isinstance(obj, dict) or not obj:
    raise ValueError(f'{path} holds no state dict')
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
    out[n] = v
  return out


def to_flax(sd: dict) -> dict:
  """torchvision names -> flat {'params/backbone/conv1/kernel': array}."""
  out = {}
  for k, v in sd.items():
    parts = k.split('.')
    if parts[0] == 'fc':
      out[f'params/fc/{"kernel" if parts[1] == "weight" else "bias"}'] = (
          v.T if parts[1] == 'weight' else v)
      continue
    if parts[0].startswith('layer'):
      mod = f'{parts[0]}_{parts[1]}'
      layer = parts[2]
      if layer == 'downsample':
        layer = {'0': 'downsample_conv', '1': 'downsample_bn'}[parts[3]]
      path, leaf = f'backbone/{mod}/{layer}', parts[-1]
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


def convert(input_path: str, config, fmt: str = 'auto', strict: bool = False,
            seed: int = 0):
  """Returns (variables, report, detected format) for `config`'s model."""
  if fmt not in FORMATS:
    raise ValueError(f'--format={fmt}; valid: {", ".join(FORMATS)}')
  sd = load_torch(input_path)
  fmt = detect_format(sd) if fmt == 'auto' else fmt
  effnet = 'features.0.0.weight' in sd
  if effnet != (config.model.backbone == 'efficientnet_b0'):
    raise ValueError(
        f'{input_path} is a {"efficientnet_b0" if effnet else "ResNet"} '
        f'checkpoint but config.model.backbone={config.model.backbone}; pass '
        f'--config.model.backbone={"efficientnet_b0" if effnet else "resnet50"}')
  flat = efficientnet_to_flax(sd) if effnet else to_flax(
      to_torchvision_names(sd, fmt))
  model = build_model(config.model)
  s = config.data.crop_size
  init = jax.jit(model.init)(jax.random.key(seed), jnp.zeros(
      (1, config.model.num_segments, s, s, 3)))
  from flax import traverse_util
  loaded = traverse_util.unflatten_dict(flat, sep='/')
  merged, report = checkpoint.merge_variables(init, loaded, reinit=('fc',))
  expected_new = [k for k in report['missing'] if k.split('/')[1] == 'tfdem']
  report['new_branch'] = expected_new
  report['missing'] = [k for k in report['missing'] if k not in expected_new]
  if strict and (report['missing'] or report['unused']):
    raise ValueError(
        f'--strict: {len(report["missing"])} missing keys '
        f'{report["missing"][:5]}, {len(report["unused"])} unused keys '
        f'{report["unused"][:5]}')
  return merged, report, fmt


def main(argv):
  del argv
  from mstsm_jax import cli
  FLAGS = flags.FLAGS
  config = FLAGS.config
  variables, report, fmt = convert(FLAGS.input, config, FLAGS.format,
                                   FLAGS.strict)
  print(f'{FLAGS.input}: {fmt} checkpoint -> {config.variant} '
        f'({config.model.num_classes} classes)', file=LOG)
  for r in report['reinitialised']:
    print(f'  classifier re-initialised (class count differs): {r}',
          file=LOG)
  for r in report['adapted']:
    print(f'  adapted: {r}', file=LOG)
  if report['new_branch']:
    print(f'  TFDEM freshly initialised ({len(report["new_branch"])} '
          'tensors)', file=LOG)
  for k in report['missing']:
    print(f'  missing (kept its init): {k}', file=LOG)
  for k in report['unused']:
    print(f'  unused: {k}', file=LOG)
  checkpoint.write_model(FLAGS.output, config, jax.device_get(variables))
  if FLAGS.classes_file:
    from mstsm_jax.data.layouts import read_lines
    names = [t for _, t in read_lines(FLAGS.classes_file)]
    names = [n.split(' ', 1)[1] if n.split(' ', 1)[0].isdigit() else n
             for n in names]  # also takes UCF-101's classInd.txt
    if len(names) != config.model.num_classes:
      raise ValueError(f'{FLAGS.classes_file} has {len(names)} classes, the '
                       f'model {config.model.num_classes}')
    checkpoint.write_classes(FLAGS.output, names)
  print(f'wrote {FLAGS.output}', file=LOG)
  cli.emit_json({'format': fmt, 'output': FLAGS.output, **{
      k: v for k, v in report.items()}})


if __name__ == '__main__':
  from mstsm_jax import cli
  cli.define_config()
  cli.define_json()
  flags.DEFINE_string('input', None, 'PyTorch .pth file')
  flags.DEFINE_enum('format', 'auto', FORMATS, 'checkpoint key format')
  flags.DEFINE_string('output', None, 'model directory to write')
  flags.DEFINE_string('classes_file', '', 'class names (one per line, or '
                      'classInd.txt) for predict')
  flags.DEFINE_bool('strict', False, 'missing or unused keys are errors '
                    '(TFDEM and a re-initialised classifier are expected)')
  flags.mark_flags_as_required(['input', 'output'])
  cli.run(main)
