"""Configs: the paper's recipe, its model variants (Tables 1-3), loading.

The dataset configs live in this package (`ucf101`, `hmdb51`, `custom`,
`synthetic`), so they load from any directory and after a plain
`pip install`; the repository's `configs/*.py` are thin entry points to them.
Each calls `base_config(dataset, num_classes, variant)` and overrides a few
fields. A variant names a paper row; every field stays overridable
(`--config.model.r_two=0.125`, or `get_config('ucf101', **{'model.r_two':
0.125})`). Configs are locked, so a misspelled key is an error, and every
field has a declared type and range (`schema.py`): `load_config`,
`get_config` and `model_config` (create_model's) check them, as the jobs do
before any work, and a value out of range is a one-line UsageError.
"""
from __future__ import annotations

import difflib
import importlib.util
import pathlib

import ml_collections

from mstsm_jax.configs.schema import (FIELDS, backbone_names, use_backbones,
                                      validate, validate_model)
from mstsm_jax.configs.variants import (DEFAULT_VARIANT, VARIANTS,
                                        parse_variant)
from mstsm_jax.errors import UsageError

__all__ = ['FIELDS', 'VARIANTS', 'DEFAULT_VARIANT', 'backbone_names',
           'base_config', 'config_file', 'get_config', 'load_config',
           'model_config', 'parse_variant', 'use_backbones', 'validate',
           'validate_model']


def base_config(dataset: str, num_classes: int,
                variant: str | None) -> ml_collections.ConfigDict:
  """The paper's recipe (SPEC §1, §5, §6) for `dataset` and a variant."""
  variant = parse_variant(variant)
  FIELDS['model.num_classes'].check('num_classes', num_classes)
  temporal, tfdem, causal = VARIANTS[variant]
  c = ml_collections.ConfigDict()
  c.variant = variant
  c.seed = 0
  c.init_from = ''  # checkpoint dir (convert/train/prune output) to start from
  c.init_partial = False  # init_from may leave backbone tensors at init

  c.model = m = ml_collections.ConfigDict()
  m.backbone = 'resnet50'  # resnet50 | resnet101 | efficientnet_b0
  m.stage_sizes = ()  # () = the backbone's (3, 4, 6, 3) | (3, 4, 23, 3)
  m.width = 0  # 0 = the backbone's (64); stage widths are width * 2**i
  m.num_classes = num_classes
  m.num_segments = 8  # T: frames per clip (paper n = 8)
  m.temporal = temporal  # tsn | tsm | mstsm | mstsm2var | mstsm3
  m.r_one = 1 / 8  # one-unit shift ratio (replace)
  m.r_two = 1 / 16  # two-unit shift ratio (concatenate)
  m.r_three = 1 / 16  # three-unit ratio (mstsm3 only)
  m.causal = causal  # online: shifts and TFDEM see only past frames
  m.tfdem = tfdem  # feature-difference branch with its own loss
  m.tfdem_tap = ''  # stage feeding TFDEM; '' = layer1 (resnet50),
  # features_3 (efficientnet_b0)
  m.tfdem_width = 0  # 0 = 128 (resnet50), 160 (efficientnet_b0)
  m.tfdem_reduce_stride = 2  # stride of TFDEM's 1x1 conv (then upsampled)
  m.tfdem_conv_stride = 2  # stride of TFDEM's 3x3 conv on D_t
  m.tfdem_weight = 1.0  # L = CE(main) + tfdem_weight * CE(TFDEM)
  m.tfdem_fuse = False  # predict with softmax(main) + softmax(TFDEM)
  m.dropout = 0.5  # before the classifier (TSM)
  m.bn_mode = 'frozen'  # train | frozen | partial (TSM partial BN)
  m.bn_momentum = 0.9  # flax convention: torch momentum 0.1
  m.dtype = 'float32'  # compute dtype: float32 | bfloat16 (params float32)

  c.data = d = ml_collections.ConfigDict()
  d.dataset = dataset  # ucf101 | hmdb51 | ssv2 | kinetics400|600|700 | custom |
  # synthetic | synthetic_hard | synthetic_far
  d.data_dir = ''  # where `prepare` wrote the tfds dataset
  d.split = 1  # official split 1 | 2 | 3
  d.resize_short = 256  # short side before cropping (SPEC §1)
  d.crop_size = 224  # network input
  d.scales = (1.0, 0.875, 0.75, 0.66)  # x short side: 256, 224, 192, 168
  d.max_distort = 1  # TSM aspect jitter between the two crop scales
  d.flip = True  # horizontal flip p = 0.5 (turn off for direction labels)
  # Where TSM's code differs from our reading of the paper (issue 24),
  # its rules are a choice (data/sampling.py, data/transforms.py):
  d.crop_offsets = 'five'  # five (4 corners, center) | tsm13 (more_fix_crop)
  d.train_sampling = 'edges'  # edges (floor(i n / T)) | tsm (n // T) | dense
  d.test_sampling = 'spread'  # spread (NxK views) | tsm | twice | dense
  d.test_crops = 'resize'  # resize | tsm | full_res (256 crops, no resize)
  d.workers = 0  # grain worker processes (0 = in-process)
  d.prefetch = 2  # batches buffered per worker
  d.synthetic_videos = 600  # synthetic only: videos (1 in 5 is test)
  d.synthetic_size = 64  # synthetic only: frame size
  d.synthetic_frames = 16  # synthetic only: frames per video
  d.synthetic_seed = 0
  d.mean = (0.485, 0.456, 0.406)  # ImageNet normalisation, on device
  d.std = (0.229, 0.224, 0.225)
  d.modality = 'rgb'  # rgb | flow (prepare --flow=tvl1|farneback)
  d.flow_stack = 5  # flow: consecutive (x, y) pairs per segment
  d.flow_mean = 0.5  # flow normalisation (TSN/TSM)
  d.flow_std = 0.226

  c.train = t = ml_collections.ConfigDict()
  t.batch_size = 16  # clips per step, global over all devices
  t.epochs = 25
  t.lr = 0.00025
  t.lr_boundaries = (10, 20)  # epochs where lr is divided by lr_decay
  t.lr_decay = 10.0
  t.warmup_epochs = 0.0
  t.momentum = 0.9
  t.weight_decay = 5e-4  # L2 added to the gradient, not on BN or biases
  t.fc_lr_mult = 1.0  # TSM: 5 for a new classifier
  t.bias_lr_mult = 1.0  # TSM: 2 for biases
  t.clip_norm = 20.0  # global-norm clipping (TSM); 0 = off
  t.label_smoothing = 0.0
  t.log_every_steps = 20
  t.checkpoint_every_steps = 500
  t.keep_checkpoints = 2  # latest kept, plus the best by top-1
  t.eval_every_epochs = 1  # 0 = only at the end
  t.max_steps = 0  # >0 stops early (smoke runs)

  c.eval = e = ml_collections.ConfigDict()
  e.views = '1x1'  # temporal clips x spatial crops: 1x1 | 10x3 | NxK
  e.batch_size = 16
  e.max_videos = 0  # >0 evaluates a prefix (smoke runs)
  c.lock()
  return c


def config_file(path: str):
  """The config file `path` names: that file when it exists, else the
  packaged config of that name ('configs/ucf101.py', 'ucf101.py' and
  'ucf101' all find mstsm_jax/configs/ucf101.py). A UsageError otherwise."""
  file = pathlib.Path(path).expanduser()
  if file.is_file():
    return file
  name = file.name if file.name.endswith('.py') else f'{file.name}.py'
  packaged = pathlib.Path(__file__).parent / name
  if packaged.is_file() and packaged.stem in packaged_configs():
    return packaged
  known = packaged_configs()
  raise UsageError(f'config file {path} not found',
                   f'give a path to a config file or one of {known}')


def packaged_configs() -> list[str]:
  """Names of the dataset configs in this package (not its modules)."""
  return sorted(p.stem for p in pathlib.Path(__file__).parent.glob('*.py')
                if not p.stem.startswith('_') and p.stem not in LIBRARY)


LIBRARY = ('schema', 'variants')  # modules of this package, not configs


def load_config(spec: str, overrides: dict | None = None,
                check: bool = True):
  """Loads 'path/to/config.py[:variant]' (or a packaged 'ucf101[:variant]')
  as the --config flag does; `overrides` is a flat {'model.r_two': 0.125}
  dict. Returns a new, locked ConfigDict, validated (`schema.validate`;
  `check=False`: not yet, more overrides follow): a bad field, value or
  type is a UsageError."""
  path, _, arg = spec.partition(':')
  file = config_file(path)
  mod_spec = importlib.util.spec_from_file_location('_mstsm_config', file)
  module = importlib.util.module_from_spec(mod_spec)
  mod_spec.loader.exec_module(module)
  if not callable(getattr(module, 'get_config', None)):
    raise UsageError(f'{file} defines no get_config()',
                     'a config file defines get_config(arg=None) returning '
                     'a ConfigDict, as mstsm_jax/configs/ucf101.py does')
  config = module.get_config(arg) if arg else module.get_config()
  for key, value in (overrides or {}).items():
    _override(config, key, value)
  return validate(config, prefix='') if check else config


def _override(config, key: str, value) -> None:
  """config[key] = value for a dotted key, as a UsageError when the key
  names no field or the value has the wrong type."""
  if not isinstance(key, str) or _get_node(config, key) is None:
    close = difflib.get_close_matches(str(key), FIELDS, n=3)
    raise UsageError(f'{key}: the config has no such field',
                     f'did you mean {" or ".join(close)}?' if close else
                     'the fields are listed in mstsm_jax.configs.FIELDS')
  value = _plain(value)
  if key in FIELDS:  # the range first: a wrong type reads the same way
    FIELDS[key].check(key, value)
  try:
    config.update_from_flattened_dict({key: value})
  except (TypeError, ValueError, KeyError) as e:
    raise UsageError(f'{key}={value!r}: {str(e).splitlines()[0]}') from e


def _get_node(config, key: str):
  node = config
  for part in key.split('.'):
    if not hasattr(node, 'keys') or part not in node.keys():
      return None
    node = node[part]
  return node if not hasattr(node, 'keys') else None


def _plain(value):
  """A list given for a tuple field is stored as the tuple it stands for."""
  return tuple(value) if isinstance(value, list) else value


def model_config(variant: str | None = None, **fields):
  """A validated `config.model` of a paper variant with `fields` set
  (`num_classes=101, r_two=1/8, ...`): what create_model builds. An
  unknown field, a wrong type or a value out of range is a UsageError."""
  model = base_config('custom', 0, variant).model
  for key, value in fields.items():
    if key not in model:
      raise UsageError(f'no model field {key!r}',
                       f'fields: {", ".join(model.keys())}')
    value = _plain(value)
    FIELDS[f'model.{key}'].check(key, value)  # the caller's keyword
    try:
      setattr(model, key, value)
    except (TypeError, ValueError) as e:
      raise UsageError(f'{key}={value!r}: {e}') from e
  return validate_model(model)


def get_config(name: str = 'synthetic', **overrides):
  """`get_config('ucf101:mstsm_tfdem', **{'model.r_two': 0.125})`: a
  packaged config (or a config file path) with flat or nested overrides
  (`model={'r_two': 0.125}`)."""
  flat = {}
  for key, value in overrides.items():
    if isinstance(value, dict):
      flat.update({f'{key}.{k}': v for k, v in value.items()})
    else:
      flat[key] = value
  return load_config(name, flat)
