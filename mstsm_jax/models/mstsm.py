"""MSTSM-TFDEM recognizer: backbone + segment consensus + TFDEM (Figure 2).

`create_model('mstsm_tfdem', num_classes=101)` builds one without a config;
`build_model(config.model)` is the one place a config becomes a module; the
backbone comes from the registry (`models.backbones`) by
`config.model.backbone`; the pruned widths come in as a `ChannelSpec`
(saved beside pruned checkpoints). The model also owns its parameter rules:
`param_role(path)` says which variables are classifier heads, the TFDEM
branch, and (asking the backbone) the stem, the shifted convs and the
normalisation layers, for checkpoint merging, the optimizer, convert, prune
and summary.
"""
from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from mstsm_jax import configs
from mstsm_jax.errors import UsageError
from mstsm_jax.models import backbones
from mstsm_jax.models.layers import batch_norm
from mstsm_jax.models.resnet import ChannelSpec
from mstsm_jax.models.task import DTYPES
from mstsm_jax.models.tfdem import TFDEM
from mstsm_jax.ops.shift import ShiftSpec



class MSTSMNet(nn.Module):
  """Clips `[N, T, H, W, 3]` (normalised) -> (logits, tfdem logits or None).

  Both logits are float32 `[N, classes]`: per-frame logits averaged over the
  T segments (TSN consensus). With `train`, dropout is active and BN follows
  `bn_mode`. TFDEM sows its features and differences (visualize.py).
  Online variants also run one frame at a time (`step`, streaming.py).
  """
  num_classes: int
  backbone: nn.Module  # a registered backbone's, called (x, train, taps)
  backbone_name: str  # its name in the registry (config.model.backbone)
  tfdem: bool = True
  tfdem_tap: str = 'layer1'
  tfdem_width: int = 128
  tfdem_reduce_stride: int = 2
  tfdem_conv_stride: int = 2
  dropout: float = 0.5
  bn_momentum: float = 0.9
  dtype: Any = jnp.float32

  @property
  def shift(self) -> ShiftSpec:
    return self.backbone.shift

  @property
  def channels(self) -> ChannelSpec | None:
    return getattr(self.backbone, 'channels', None)

  def param_role(self, path) -> str:
    """See the module-level `param_role`."""
    return param_role(path, self.backbone_name)

  @property
  def streamable(self) -> bool:
    """True when no part looks at future frames (online variants, TSN
    without TFDEM): the model can run one frame at a time (`step`)."""
    return self.shift.causal or (self.shift.kind == 'tsn' and not self.tfdem)

  @nn.compact
  def frames(self, x, train: bool = False, stream: bool = False):
    """Per-frame logits of frames `[M, H, W, C]` (M = N*T clip-major, or
    one frame of M streams with `stream`): (`[M, classes]`, TFDEM's or
    None), float32."""
    feats, taps = self.backbone(x, train,
                                (self.tfdem_tap,) if self.tfdem else (),
                                stream)
    feats = nn.Dropout(self.dropout, deterministic=not train)(feats)
    logits = nn.Dense(self.num_classes, dtype=self.dtype,
                      param_dtype=jnp.float32,
                      kernel_init=nn.initializers.normal(0.001), name='fc')(
                          feats)
    if not self.tfdem:
      return logits.astype(jnp.float32), None
    # TFDEM is a new branch: its BNs always learn (bn_mode is for the
    # pretrained backbone).
    tfdem_logits = TFDEM(
        self.num_classes, self.shift.num_segments,
        batch_norm(not train, self.bn_momentum, self.dtype),
        self.tfdem_width, self.tfdem_reduce_stride, self.tfdem_conv_stride,
        self.dtype, self.shift.causal, name='tfdem')(taps[self.tfdem_tap],
                                                      stream)
    return logits.astype(jnp.float32), tfdem_logits

  def frame_logits(self, clips, train: bool = False):
    """Clips `[N, T, H, W, C]` -> per-frame (logits, TFDEM logits or None),
    each `[N, T, classes]`."""
    n, t = clips.shape[:2]
    if t != self.shift.num_segments:
      raise ValueError(f'clips have {t} frames but the model was built for '
                       f'num_segments={self.shift.num_segments}')
    out = self.frames(clips.reshape(n * t, *clips.shape[2:]), train)
    return tuple(None if o is None else o.reshape(n, t, -1) for o in out)

  def __call__(self, clips, train: bool = False):
    logits, aux = self.frame_logits(clips, train)
    return logits.mean(axis=1), None if aux is None else aux.mean(axis=1)

  def step(self, frames):
    """One frame of N streams `[N, H, W, C]` -> that frame's (logits,
    TFDEM logits or None) `[N, classes]`; apply with the 'stream'
    collection mutable (the shift and difference buffers)."""
    if not self.streamable:
      raise ValueError(
          'this variant looks at future frames and cannot stream; train an '
          'online variant (tsm_online, mstsm_online, mstsm_tfdem_online)')
    return self.frames(frames, False, stream=True)


def build_model(cfg: ml_collections.ConfigDict,
                channels: ChannelSpec | None = None) -> MSTSMNet:
  """Builds the network of a `config.model`, dense unless `channels` given."""
  configs.validate_model(cfg)
  spec = backbones.get(cfg.backbone)
  if cfg.num_classes <= 0:
    raise UsageError(f'model.num_classes={cfg.num_classes}: a model needs '
                     'at least one class',
                     'give the class count (create_model(num_classes=N), '
                     '--config.model.num_classes=N; train fills 0 in from '
                     'the prepared dataset, and prepare prints it)')
  if channels is not None and spec.prune is None:
    raise UsageError(f'a pruning channel spec applies to prunable backbones '
                     f'({", ".join(backbones.prunable())}), not '
                     f'{cfg.backbone}')
  tap = cfg.tfdem_tap or spec.tfdem_tap
  if cfg.tfdem and tap not in (*spec.stages, 'stem', 'features_0'):
    raise UsageError(f'model.tfdem_tap={tap!r}: not a stage of '
                     f'{cfg.backbone}', f'fix --config.model.tfdem_tap: one '
                     f'of {", ".join(spec.stages)}')
  if cfg.get('tfdem_fuse') and not cfg.tfdem:  # fused raw logits: < 0
    raise UsageError('model.tfdem_fuse=True with model.tfdem=False: there '
                     'is no TFDEM head to fuse', 'fix --config.model.'
                     'tfdem_fuse: False, or keep model.tfdem=True')
  try:
    shift = ShiftSpec(cfg.temporal, cfg.num_segments, cfg.r_one, cfg.r_two,
                      cfg.r_three, bool(cfg.get('causal', False)))
    dtype = DTYPES[cfg.dtype]
    net = spec.build(cfg, shift, channels, dtype)
  except ValueError as e:  # the shift's widths, named by their fields
    if isinstance(e, UsageError):
      raise
    raise UsageError(f'config.model: {e}', 'fix --config.model.r_one / '
                     'r_two / r_three / num_segments as it says') from e
  return MSTSMNet(cfg.num_classes, net,
                  spec.name, cfg.tfdem, tap,
                  cfg.tfdem_width or spec.tfdem_width,
                  cfg.tfdem_reduce_stride, cfg.tfdem_conv_stride, cfg.dropout,
                  cfg.bn_momentum, dtype)


# The classifier heads (module paths under 'params'): re-initialised when a
# checkpoint has another class count, the new-classifier lr multiplier.
CLASSIFIERS = (('fc',), ('tfdem', 'fc'))
ROLES = ('classifier', 'tfdem') + backbones.ROLES


def param_role(path, backbone: str = 'resnet50') -> str:
  """The role of a variable, by its path with or without the collection
  ('params/backbone/layer1_0/conv1/kernel' or a tuple of names):
  classifier (a head's Dense), tfdem (the rest of the new branch), or the
  backbone's stem_conv, stem_norm, shifted_conv, norm, conv."""
  names = tuple(path.split('/')) if isinstance(path, str) else tuple(path)
  if names[0] in ('params', 'batch_stats'):
    names = names[1:]
  if any(names[:len(c)] == c for c in CLASSIFIERS):
    return 'classifier'
  if names[0] == 'tfdem':
    return 'tfdem'
  if names[0] != 'backbone':
    raise ValueError(f'unknown variable {"/".join(names)}')
  return backbones.get(backbone).param_role(names[1:])


def stage_of(path, backbone: str = 'resnet50') -> str:
  """Summary stage of a variable or module path: the backbone's
  (`Backbone.stage_of`), head (the classifier), tfdem."""
  names = tuple(path)
  if names[0] == 'backbone':
    return backbones.get(backbone).stage_of(names[1:])
  return {'fc': 'head'}.get(names[0], names[0])


def create_model(variant: str = 'mstsm_tfdem', *, num_classes: int,
                 backbone: str = 'resnet50', dtype: str = 'float32',
                 channels: ChannelSpec | None = None,
                 **model_fields) -> MSTSMNet:
  """The Flax module of a paper variant, without a config file.

  `create_model('mstsm_tfdem', num_classes=101)`; any `config.model` field
  (`r_two=1/8`, `num_segments=16`, `stage_sizes=(1, 1, 1, 1)`, ...) is a
  keyword. Call it on normalised clips `[N, T, H, W, 3]`: it returns
  (logits, TFDEM logits or None), both `[N, num_classes]`.
  """
  cfg = configs.model_config(variant, num_classes=num_classes,
                             backbone=backbone, dtype=dtype, **model_fields)
  return build_model(cfg, channels)


@functools.lru_cache(maxsize=16)
def variable_shapes(model: MSTSMNet, clip_shape: tuple[int, ...]) -> dict:
  """`model.init`'s variables as `jax.ShapeDtypeStruct`s for a float32
  input of `clip_shape` `[N, T, S, S, C]` (no allocation). Tracing an init
  takes about half a second, and one process asks for the same model's
  shapes again and again (reading a model directory checks them, setting
  up its steps and initialising a fine-tune need them): traced once per
  model and input shape. Shared: callers must not change it."""
  x = jax.ShapeDtypeStruct(tuple(clip_shape), jnp.float32)
  return jax.eval_shape(model.init, jax.random.key(0), x)
