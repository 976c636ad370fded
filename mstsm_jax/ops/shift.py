"""Multi-scale temporal shift (paper §3.2, Figures 3, 4 and 9; SPEC §2).

Pure `jnp` functions on frame-major NHWC batches `[N*T, H, W, C]` (clip-major:
the T frames of a clip are consecutive). Everything is static slicing, padding
and concatenation, so XLA fuses it into the neighbouring convolution inputs and
`jax.vjp` of a shift is the opposite shift. Traced for ONNX (forms.py), the
same slices are taken channels-first, between two transposes.

Semantics follow the official TSM (`mit-han-lab/temporal-shift-module`,
`ops/temporal_shift.py`, `shift` with `fold_div=8`): channels `[0, fold)` of
frame t take frame t+1's, `[fold, 2*fold)` take frame t-1's, zero at the clip
boundaries. The DeepMind `tsm_utils` form permutes channels and would not load
PyTorch weights; it is not what this file computes.

MSTSM adds *concatenated* shifts: `g = floor(C * r_two)` channels taken from
the source channels `[2*fold, 2*fold + g)` of frame t+2 and the same channels
of frame t-2 are appended, so conv1 sees `C + 2g` channels, in this order:
`[one-unit shifted (C) | from t+2 (g) | from t-2 (g)]`. MSTSM_3 appends a
three-unit pair `[from t+3 (g3) | from t-3 (g3)]` from the next source channels
`[2*fold + g, 2*fold + g + g3)`.

MSTSM_2var (Figure 9a, "moving next frame to pad vacancy"): where frame t+2
does not exist, the vacancy holds frame t-3 instead of zeros, and where t-2
does not exist it holds t+3, i.e. the next frame beyond those the frame
already sees. This is the reading under which the temporal receptive field is
4-5 frames as in the paper's Table 3 (MSTSM_2: 3-5); with fewer than 4 frames
the padding frame may not exist either and stays zero.

Causal (online) shifts, `ShiftSpec(causal=True)`, see only the past, as
TSM's online model (`online_demo/mobilenet_v2_tsm.py`): channels `[0, fold)`
of frame t take frame t-1's, the rest stay. Causal MSTSM keeps the
concatenated pair and its width 2g (so parameters, pruning and checkpoints
are those of MSTSM) but takes it from frames t-1 and t-2: every block sees
t-2..t, the causal half of the paper's 5-frame (t-2..t+2) receptive field,
from buffers at most two frames deep. `causal_step` runs one frame of a
causal module from explicit buffers (streaming.py); over a clip it gives the
same values as `temporal_module`.
"""
from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
from jax import lax

from mstsm_jax.ops import forms

KINDS = ('tsn', 'tsm', 'mstsm', 'mstsm2var', 'mstsm3')
CAUSAL_KINDS = ('tsn', 'tsm', 'mstsm')


@dataclasses.dataclass(frozen=True)
class ShiftSpec:
  """A temporal module: which shift, its ratios and the clip length T."""
  kind: str = 'mstsm'
  num_segments: int = 8
  r_one: float = 1 / 8
  r_two: float = 1 / 16
  r_three: float = 1 / 16
  causal: bool = False

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(
          f'unknown temporal module {self.kind!r}; valid: {", ".join(KINDS)}')
    for name in ('r_one', 'r_two', 'r_three'):
      r = getattr(self, name)
      if not 0 < r <= 0.5:
        raise ValueError(f'{name}={r} is outside (0, 1/2]; '
                         'use e.g. 1/8 (r_one) or 1/16 (r_two)')
    if self.causal and self.kind not in CAUSAL_KINDS:
      raise ValueError(f'{self.kind!r} has no causal (online) reading; '
                       f'online variants use {", ".join(CAUSAL_KINDS)}')
    min_t = {'mstsm': 3, 'mstsm2var': 3, 'mstsm3': 4}.get(self.kind, 1)
    if self.num_segments < min_t:
      raise ValueError(
          f'num_segments={self.num_segments} is too short for {self.kind!r}: '
          f'a {min_t - 1}-unit shift needs num_segments >= {min_t}')

  def fold(self, c: int) -> int:
    return int(c * self.r_one) if self.kind != 'tsn' else 0

  def groups(self, c: int) -> tuple[int, int]:
    """(g, g3): channels of the two- and three-unit shifts for `c` inputs."""
    g = math.floor(c * self.r_two) if self.kind.startswith('mstsm') else 0
    g3 = math.floor(c * self.r_three) if self.kind == 'mstsm3' else 0
    return g, g3

  def out_channels(self, c: int) -> int:
    """Channels conv1 sees after the module, for `c` input channels."""
    g, g3 = self.groups(c)
    fold = self.fold(c)
    if 2 * fold + 2 * g + 2 * g3 > c:
      raise ValueError(
          f'{self.kind}: 2*fold + 2*g{" + 2*g3" if g3 else ""} = '
          f'{2 * fold + 2 * g + 2 * g3} exceeds the {c} channels; lower '
          f'r_one={self.r_one} or r_two={self.r_two}')
    return c + 2 * g + 2 * g3


def to_clips(x: jnp.ndarray, num_segments: int) -> jnp.ndarray:
  """`[N*T, ...]` -> `[N, T, ...]`, with a clear error for a ragged batch."""
  if x.shape[0] % num_segments:
    raise ValueError(
        f'batch of {x.shape[0]} frames is not divisible by num_segments='
        f'{num_segments}; frames must come as whole clips [N*T, H, W, C]')
  return x.reshape(x.shape[0] // num_segments, num_segments, *x.shape[1:])


def shift_time(v: jnp.ndarray, k: int, fill: jnp.ndarray | None = None):
  """out[:, t] = v[:, t + k] along axis 1 of `[N, T, ...]`; outside -> `fill`.

  `fill` (same shape as `v`) supplies the frames where t + k leaves the clip;
  zeros when None. `|k| >= T` gives only the fill.
  """
  t = v.shape[1]
  if k == 0:
    return v
  n = min(abs(k), t)
  pad = jnp.zeros_like(v[:, :n]) if fill is None else (
      fill[:, t - n:] if k > 0 else fill[:, :n])
  if k > 0:
    return jnp.concatenate([v[:, n:], pad], axis=1)
  return jnp.concatenate([pad, v[:, :t - n]], axis=1)


def channels(v: jnp.ndarray, start: int, stop: int, axis: int = -1):
  """Channels [start, stop) of `v` along its channel `axis`."""
  return lax.slice_in_dim(v, start, stop, axis=axis % v.ndim)


def one_unit_parts(v: jnp.ndarray, fold: int,
                   axis: int = -1) -> list[jnp.ndarray]:
  """The TSM shift of clips `[N, T, H, W, C]` (channels on `axis`) as
  channel pieces: `[0, fold)` from t+1, `[fold, 2*fold)` from t-1, the rest
  unchanged."""
  return [shift_time(channels(v, 0, fold, axis), 1),
          shift_time(channels(v, fold, 2 * fold, axis), -1),
          channels(v, 2 * fold, v.shape[axis], axis)]


def concat_parts(v: jnp.ndarray, units: int, start: int, width: int,
                 pad_next: bool = False, axis: int = -1) -> list[jnp.ndarray]:
  """The `units`-unit concatenated pair of clips `[N, T, H, W, C]`
  (channels on `axis`) for source channels [start, start+width): from
  t+units, then from t-units. With `pad_next` the vacancies hold frames
  t-(units+1) / t+(units+1) (MSTSM_2var) instead of zeros."""
  v = channels(v, start, start + width, axis)
  fwd_fill = shift_time(v, -(units + 1)) if pad_next else None
  bwd_fill = shift_time(v, units + 1) if pad_next else None
  return [shift_time(v, units, fwd_fill), shift_time(v, -units, bwd_fill)]


def one_unit_shift(x: jnp.ndarray, num_segments: int, r_one: float = 1 / 8):
  """TSM shift, replace in place: `[N*T, H, W, C]` -> same shape."""
  parts = one_unit_parts(to_clips(x, num_segments), int(x.shape[-1] * r_one))
  return jnp.concatenate(parts, axis=-1).reshape(x.shape)


def temporal_module(x: jnp.ndarray, spec: ShiftSpec) -> jnp.ndarray:
  """Applies `spec` to `[N*T, H, W, C]` -> `[N*T, H, W, spec.out_channels(C)]`.

  Dtype is preserved (bf16 in, bf16 out). Traced for ONNX (forms.py), it
  computes on `[N*T, C, H, W]` between two transposes, which cancel against
  those jax2onnx puts around the convolutions.
  """
  spec.out_channels(x.shape[-1])  # validates the widths
  if spec.kind == 'tsn':
    to_clips(x, spec.num_segments)
    return x
  if forms.for_onnx():
    y = _module(jnp.transpose(x, (0, 3, 1, 2)), spec, axis=2)
    return jnp.transpose(y, (0, 2, 3, 1))
  return _module(x, spec, axis=-1)


def _module(x: jnp.ndarray, spec: ShiftSpec, axis: int) -> jnp.ndarray:
  """`temporal_module` of frames whose channels lie on `axis` of their
  clips `[N, T, ...]`: -1 for `[N*T, H, W, C]`, 2 for `[N*T, C, H, W]`."""
  v = to_clips(x, spec.num_segments)
  c = v.shape[axis]
  fold = spec.fold(c)
  g, g3 = spec.groups(c)
  if spec.causal:
    parts = [shift_time(channels(v, 0, fold, axis), -1),
             channels(v, fold, c, axis)]
    if g:
      src = channels(v, 2 * fold, 2 * fold + g, axis)
      parts += [shift_time(src, -1), shift_time(src, -2)]
  else:
    parts = one_unit_parts(v, fold, axis)
    if g:
      parts += concat_parts(v, 2, 2 * fold, g,
                            pad_next=spec.kind == 'mstsm2var', axis=axis)
    if g3:
      parts += concat_parts(v, 3, 2 * fold + g, g3, axis=axis)
  # One concatenate: XLA:CPU copies each nested one again (3% of ResNet-50).
  y = jnp.concatenate(parts, axis=axis)
  return y.reshape(x.shape[0], *y.shape[2:])


def causal_buffers(spec: ShiftSpec, shape, dtype) -> dict:
  """Zero buffers of one block for frames `shape` = `[N, H, W, C]` (N
  streams): {'one': `[1, N, H, W, fold]`} (frame t-1's replaced channels)
  and, for MSTSM, {'two': `[2, N, H, W, g]`} (t-1's and t-2's concatenated
  channels); {} for TSN."""
  if spec.kind == 'tsn':
    return {}
  *lead, c = shape
  g, _ = spec.groups(c)
  out = {'one': jnp.zeros((1, *lead, spec.fold(c)), dtype)}
  if g:
    out['two'] = jnp.zeros((2, *lead, g), dtype)
  return out


def causal_step(x: jnp.ndarray, buffers: dict, spec: ShiftSpec):
  """One frame of a causal module: (`[N, H, W, C]` frame t, its block's
  buffers) -> (`[N, H, W, out_channels(C)]`, the buffers for frame t+1).
  Traced for ONNX (forms.py), the frame is sliced channels-first; the
  buffers keep their layout (transposed in and out: 1/8 of the channels)."""
  if spec.kind == 'tsn':
    return x, buffers
  if not forms.for_onnx():
    return _step(x, buffers, spec, axis=-1)
  to_nchw = lambda b: jnp.moveaxis(b, -1, -3)  # noqa: E731
  y, new = _step(to_nchw(x), {k: to_nchw(b) for k, b in buffers.items()},
                 spec, axis=1)
  return (jnp.moveaxis(y, -3, -1),
          {k: jnp.moveaxis(b, -3, -1) for k, b in new.items()})


def _step(x: jnp.ndarray, buffers: dict, spec: ShiftSpec, axis: int):
  """`causal_step` of a frame whose channels lie on `axis` (-1: `[N, H, W,
  C]`; 1: `[N, C, H, W]`), its buffers `[k, *x.shape]` alike."""
  c = x.shape[axis]
  fold = spec.fold(c)
  g, _ = spec.groups(c)
  parts = [buffers['one'][0], channels(x, fold, c, axis)]
  new = {'one': channels(x, 0, fold, axis)[None]}
  if g:
    src = channels(x, 2 * fold, 2 * fold + g, axis)
    parts += [buffers['two'][0], buffers['two'][1]]
    new['two'] = jnp.stack([src, buffers['two'][0]])
  return jnp.concatenate(parts, axis=axis), new
