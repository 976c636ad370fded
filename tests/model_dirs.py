"""Small model directories and PyTorch-style state dicts for the tests."""
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from mstsm_jax.configs import load_config
from mstsm_jax.models.mstsm import build_model, variable_shapes
from mstsm_jax.models.task import in_channels
from mstsm_jax import modeldir

TINY = {'model.stage_sizes': (1, 1, 1, 1), 'model.width': 8,
        'model.tfdem_width': 8, 'data.synthetic_size': 36,
        'data.resize_short': 36, 'data.crop_size': 32,
        'data.synthetic_videos': 80, 'train.batch_size': 8,
        'eval.batch_size': 8, 'train.log_every_steps': 2}
TINY_ARGS = [f'--config.{k}={v}' for k, v in TINY.items()]
# Full-width EfficientNet-B0 on TINY's data: the one model of test_export
# and test_onnx.
EFFICIENTNET = {'model.backbone': 'efficientnet_b0', 'model.stage_sizes': (),
                'model.width': 0}


def tiny_config(variant='mstsm_tfdem', **extra):
  return load_config(f'configs/synthetic.py:{variant}', {**TINY, **extra})


def flax_init(config, seed=0):
  """`config`'s model as `model.init` draws it (numpy): for the tests of
  the init itself. A jitted init compiles one initialiser per tensor (10
  s for full-width EfficientNet-B0), so the other tests take
  `init_variables`."""
  s = config.data.crop_size
  model = build_model(config.model)
  return jax.tree.map(np.array, jax.device_get(jax.jit(model.init)(
      jax.random.key(seed), jnp.zeros((1, config.model.num_segments, s, s,
                                       in_channels(config.data))))))


def truncated_normal(rng, shape):
  """Standard normal draws cut at +-2 (flax's `variance_scaling`)."""
  v = rng.normal(size=shape)
  while (out := np.abs(v) > 2).any():
    v[out] = rng.normal(size=out.sum())
  return v


def random_variables(model, clip_shape, seed=0):
  """`model`'s variables (numpy) for clips of `clip_shape`, drawn from the
  init's distributions into the init's shapes (the package's
  `variable_shapes`, traced once per model and shape in a process):
  convolutions torchvision's (He, fan out, truncated at 2 sd), classifier
  heads N(0, 0.001), biases 0, BatchNorm scale 1, statistics (0, 1)."""
  rng = np.random.default_rng(seed)
  out = {}
  for path, x in traverse_util.flatten_dict(
      variable_shapes(model, tuple(clip_shape))).items():
    if path[-1] == 'kernel' and len(x.shape) == 4:  # as layers.conv_init
      v = truncated_normal(rng, x.shape) * (
          2 / (np.prod(x.shape[:2]) * x.shape[-1])) ** .5 / .87962566
    elif path[-1] == 'kernel':
      v = rng.normal(0, 0.001, x.shape)
    else:
      v = np.full(x.shape, path[-1] in ('scale', 'var'))
    out[path] = v.astype(x.dtype)
  return traverse_util.unflatten_dict(out)


def init_variables(config, seed=0):
  """`random_variables` of `config`'s model at its crop size and input
  channels."""
  s = config.data.crop_size
  return random_variables(build_model(config.model),
                          (1, config.model.num_segments, s, s,
                           in_channels(config.data)), seed)


def calibrate_bn(config, variables, seed=0):
  """`variables` with every BatchNorm's running statistics set to the
  statistics of one random batch. A random-init EfficientNet-B0 in
  inference mode shrinks its activations block after block (running
  variance 1 against far smaller real ones) to scores of about 1e-7, where
  rounding is the signal and parity tests compare noise."""
  model = build_model(config.model)
  s, m = config.data.crop_size, config.model.bn_momentum
  x = jax.random.normal(jax.random.key(seed),
                        (2, config.model.num_segments, s, s,
                         in_channels(config.data)))
  zero = jax.tree.map(jnp.zeros_like, variables['batch_stats'])
  # From zero, one training-mode step leaves (1 - momentum) x batch stats.
  _, new = jax.jit(lambda v: model.apply(
      v, x, train=True, mutable=['batch_stats'],
      rngs={'dropout': jax.random.key(0)}))(
          {'params': variables['params'], 'batch_stats': zero})
  return {**variables, 'batch_stats': jax.device_get(jax.tree.map(
      lambda b: b / (1 - m), new['batch_stats']))}


def model_dir(path, config, seed=0, head_std=0.0, calibrate=False):
  """A model directory (as convert writes) of `config` at random init;
  `head_std` > 0 redraws the classifier heads so scores are O(1) (the
  init's 0.001 makes every logit nearly 0, which hides differences);
  `calibrate` sets BatchNorm statistics from a batch (`calibrate_bn`)."""
  variables = init_variables(config, seed)
  if calibrate:
    variables = calibrate_bn(config, variables, seed)
  if head_std:
    rng = np.random.default_rng(seed)
    params = variables['params']
    for head in (params['fc'], params.get('tfdem', {}).get('fc')):
      if head:
        head['kernel'] = rng.normal(0, head_std, head['kernel'].shape
                                    ).astype(np.float32)
  modeldir.write_model(path, config, variables)
  return variables


def efficientnet_dir(run_tmp):
  """test_export's and test_onnx's full-width EfficientNet-B0 (BN
  calibrated, heads redrawn): made once in a run, in `run_tmp` (conftest's
  folder every xdist worker sees); another worker waits on its lock."""
  import filelock
  d = run_tmp / 'efficientnet_b0'
  with filelock.FileLock(f'{d}.lock'):
    if not (run_tmp / 'efficientnet_b0.done').exists():
      model_dir(d, tiny_config('mstsm_tfdem', **EFFICIENTNET), head_std=0.5,
                calibrate=True)
      (run_tmp / 'efficientnet_b0.done').touch()
  return d


LEAF = {'kernel': 'weight', 'scale': 'weight', 'bias': 'bias',
        'mean': 'running_mean', 'var': 'running_var'}


def torchvision_state_dict(variables) -> dict:
  """Our ResNet variables under torchvision's names and layouts (OIHW):
  what a torchvision / TSM ResNet file of the same widths holds."""
  out = {}
  for key, v in traverse_util.flatten_dict(
      {k: variables[k] for k in ('params', 'batch_stats')}, sep='/').items():
    parts = key.split('/')[1:]
    if parts[0] == 'tfdem':
      continue
    leaf = LEAF[parts[-1]]
    if parts[0] == 'fc':
      out[f'fc.{leaf}'] = np.asarray(v).T if leaf == 'weight' else v
      continue
    mods = parts[1:-1]
    if mods[0].startswith('layer'):
      stage, block = mods[0].split('_')
      layer = {'downsample_conv': 'downsample.0',
               'downsample_bn': 'downsample.1'}.get(mods[1], mods[1])
      name = f'{stage}.{block}.{layer}'
    else:
      name = mods[0]
    v = np.asarray(v)
    out[f'{name}.{leaf}'] = v.transpose(3, 2, 0, 1) if v.ndim == 4 else v
  return out
