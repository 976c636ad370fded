"""ResNet-50/101 in torchvision's v1.5 layout with temporal modules.

Paper §3.2 / Figure 2; SPEC §2. The temporal module sits in the residual
branch of a bottleneck right before conv1 (TSM "blockres"): of every
bottleneck, or, as the official TSM's `make_temporal_shift` places it when
layer3 has 23 or more blocks (ResNet-101: `n_round = 2`), of every other
one (blocks 0, 2, 4, ... of each stage); `shift_every` is that n_round. Widths come
from an explicit `ChannelSpec` so that a pruned model (prune.py) is rebuilt
from the spec saved with its checkpoint. Layout NHWC `[N*T, H, W, C]`.

Parameter names follow torchvision (`conv1`, `bn1`, `layer1_0/conv1`, ...,
`layer1_0/downsample_conv`) so the converter (backbones/resnet.py) maps
state dicts one to one.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mstsm_jax.models.layers import (batch_norm, conv_layer, shifted,
                                     stage_output)
from mstsm_jax.ops import forms
from mstsm_jax.ops.shift import ShiftSpec

STAGES = ('layer1', 'layer2', 'layer3', 'layer4')


@dataclasses.dataclass(frozen=True)
class BlockSpec:
  """Widths of one bottleneck: conv1's and conv2's outputs (equal when
  dense; output pruning narrows conv1 only) and merged input channels.

  `merge` lists channel indices of conv1's input (after the temporal module)
  that are averaged into one channel (prune.py, input averaging); () = none.
  """
  width1: int
  width2: int
  merge: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class ChannelSpec:
  """Per-stage tuples of `BlockSpec`; `out` = each stage's output width."""
  blocks: tuple[tuple[BlockSpec, ...], ...]
  out: tuple[int, ...]
  stem: int

  @classmethod
  def dense(cls, stage_sizes: Sequence[int], width: int) -> 'ChannelSpec':
    mids = [width * 2**i for i in range(len(stage_sizes))]
    return cls(
        blocks=tuple(tuple(BlockSpec(m, m) for _ in range(n))
                     for m, n in zip(mids, stage_sizes)),
        out=tuple(4 * m for m in mids), stem=width)

  def block(self, name: str) -> BlockSpec:
    stage, idx = name.split('_')
    return self.blocks[STAGES.index(stage)][int(idx)]

  def replace_block(self, name: str, spec: BlockSpec) -> 'ChannelSpec':
    stage, idx = name.split('_')
    s, i = STAGES.index(stage), int(idx)
    blocks = [list(b) for b in self.blocks]
    blocks[s][i] = spec
    return dataclasses.replace(self, blocks=tuple(map(tuple, blocks)))

  def block_names(self) -> list[str]:
    return [f'{STAGES[s]}_{i}' for s, stage in enumerate(self.blocks)
            for i in range(len(stage))]

  def to_json(self) -> str:
    return json.dumps({
        'stem': self.stem, 'out': list(self.out),
        'blocks': [[{'width1': b.width1, 'width2': b.width2,
                     'merge': list(b.merge)} for b in stage]
                   for stage in self.blocks]}, indent=1)

  @classmethod
  def from_json(cls, text: str) -> 'ChannelSpec':
    d = json.loads(text)
    return cls(blocks=tuple(tuple(BlockSpec(b['width1'], b['width2'],
                                            tuple(b['merge']))
                                  for b in stage) for stage in d['blocks']),
               out=tuple(d['out']), stem=d['stem'])


def merge_channels(x: jnp.ndarray, group: tuple[int, ...]) -> jnp.ndarray:
  """Averages channels `group` of `[..., C]` into one channel appended last.

  Returns `[..., C - len(group) + 1]`: kept channels in order, then the mean.
  """
  drop = set(group)
  keep = jnp.array([c for c in range(x.shape[-1]) if c not in drop])
  mean = jnp.take(x, jnp.array(group), axis=-1).mean(-1, keepdims=True)
  return jnp.concatenate([jnp.take(x, keep, axis=-1), mean.astype(x.dtype)],
                         axis=-1)


def stem_pool(x):
  """torchvision's stem max pool (3x3, stride 2, padding 1): `[N, H, W, C]`
  -> `[N, ceil(H/2), ceil(W/2), C]`, as the maximum of the nine strided
  views, which XLA fuses with the BN and ReLU before it (the same values
  as `nn.max_pool`, whose reduce-window XLA:CPU runs 2x slower); traced
  for ONNX (ops/forms.py), as `nn.max_pool`: one `MaxPool` node."""
  n, h, w, c = x.shape
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-jnp.inf)
  if forms.for_onnx():
    return nn.max_pool(xp, window_shape=(3, 3), strides=(2, 2),
                       padding='VALID')
  ho, wo = (h + 1) // 2, (w + 1) // 2
  views = [xp[:, i:i + 2 * ho - 1:2, j:j + 2 * wo - 1:2]
           for i in range(3) for j in range(3)]
  return functools.reduce(jnp.maximum, views)


class Bottleneck(nn.Module):
  """torchvision Bottleneck (stride on the 3x3 conv) with a temporal module."""
  spec: BlockSpec
  out_features: int
  strides: int
  shift: ShiftSpec
  norm: Callable[..., nn.Module]
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, stream: bool = False):
    conv = functools.partial(conv_layer, dtype=self.dtype)
    y = shifted(self, x, self.shift, stream)
    if self.spec.merge:
      y = merge_channels(y, self.spec.merge)
    y = conv(self.spec.width1, 1, name='conv1')(y)
    y = nn.relu(self.norm(name='bn1')(y))
    y = conv(self.spec.width2, 3, self.strides, name='conv2')(y)
    y = nn.relu(self.norm(name='bn2')(y))
    y = self.norm(name='bn3')(conv(self.out_features, 1, name='conv3')(y))
    residual = x
    if x.shape[-1] != self.out_features or self.strides != 1:
      residual = conv(self.out_features, 1, self.strides,
                      name='downsample_conv')(x)
      residual = self.norm(name='downsample_bn')(residual)
    return nn.relu(y + residual)


class ResNet(nn.Module):
  """Backbone: stem, four stages; returns pooled features and the taps.

  BN modes (SPEC §5): 'train' updates every BN; 'frozen' uses running
  statistics everywhere (affine parameters are frozen by the optimizer);
  'partial' is TSM's partial BN: only the stem's first BN keeps updating.
  """
  channels: ChannelSpec
  shift: ShiftSpec
  bn_mode: str = 'frozen'
  bn_momentum: float = 0.9
  dtype: Any = jnp.float32
  shift_every: int = 1

  def block_shift(self, index: int) -> ShiftSpec:
    """The temporal module of block `index` of a stage: `shift`, or none
    (TSN) for the blocks the official placement skips."""
    if index % self.shift_every == 0:
      return self.shift
    return dataclasses.replace(self.shift, kind='tsn', causal=False)

  @nn.compact
  def __call__(self, x, train: bool, taps: Sequence[str] = (),
               stream: bool = False):
    """x: `[N*T, H, W, 3]` -> (`[N*T, C_out]`, {tap name: features}).
    With `stream`, x is one frame of N streams and shifts use buffers."""
    frozen = not train or self.bn_mode in ('frozen', 'partial')
    norm = batch_norm(frozen, self.bn_momentum, self.dtype)
    stem_norm = batch_norm(not train or self.bn_mode == 'frozen',
                           self.bn_momentum, self.dtype)
    x = conv_layer(self.channels.stem, 7, 2, name='conv1',
                   dtype=self.dtype)(x.astype(self.dtype))
    x = nn.relu(stem_norm(name='bn1')(x))
    x = stem_pool(x)
    found = {'stem': x}
    for s, (blocks, out) in enumerate(zip(self.channels.blocks,
                                          self.channels.out)):
      for i, spec in enumerate(blocks):
        x = Bottleneck(spec, out, 2 if (s > 0 and i == 0) else 1,
                       self.block_shift(i), norm, self.dtype,
                       name=f'{STAGES[s]}_{i}')(x, stream)
      x = found[STAGES[s]] = stage_output(self, STAGES[s], x)
    missing = set(taps) - set(found)
    if missing:
      raise ValueError(f'unknown tap {sorted(missing)}; valid: {list(found)}')
    return jnp.mean(x, axis=(1, 2)), {k: found[k] for k in taps}


def shift_every(stage_sizes: Sequence[int]) -> int:
  """The official TSM's n_round: 2 when layer3 has >= 23 blocks, else 1."""
  return 2 if len(stage_sizes) > 2 and stage_sizes[2] >= 23 else 1


def param_count(tree) -> int:
  return sum(int(x.size) for x in jax.tree.leaves(tree))
