"""Clip augmentation on uint8 frames (SPEC §1; TSM's GroupMultiScaleCrop).

Train: the short side scaled to `resize_short` (256); a crop whose height and
width are drawn independently from {1, .875, .75, .66} x short side (TSM
snaps sizes within 3 px of the output to it; `max_distort` bounds the aspect
jitter), placed at one of the 4 corners or the center (`offsets='five'`)
or at one of TSM's 13 fixed positions (`'tsm13'`: `fill_fix_offset` with
`more_fix_crop`, on a grid of quarter steps); resized to `crop_size`;
flipped with p = 0.5. One crop and flip for every frame of a clip. The
scale-to-256 and the crop's resize are folded into one resize per frame on
the stored pixels.

Test (`crops='resize'`): short side to 256, center crop 224; 3 spatial
views take the two ends and the center along the long side. `'tsm'` and
`'full_res'` are TSM's test script: a torchvision center crop, or
`GroupFullResSample`'s left / right / center boxes on the quarter-step
grid; `'full_res'` crops 256 x 256 and keeps that size (no resize to 224).
With frames stored at short side 256 (TSM's extracted frames) every box is
TSM's to the pixel.
"""
from __future__ import annotations

import cv2
import numpy as np


def resize(img: np.ndarray, size: tuple[int, int],
           interpolation: int) -> np.ndarray:
  """`cv2.resize` of `[H, W, C]` to `size` (width, height) for any C:
  OpenCV resizes at most 4 channels at once (INTER_AREA at a non-integer
  scale asserts), so a flow stack (2 x flow_stack channels) is resized a
  channel at a time, as TSM resizes each flow image on its own."""
  img = np.ascontiguousarray(img)
  if img.ndim == 2 or img.shape[-1] <= 4:
    return cv2.resize(img, size, interpolation=interpolation).reshape(
        size[1], size[0], *img.shape[2:])
  return np.stack([cv2.resize(np.ascontiguousarray(img[..., c]), size,
                              interpolation=interpolation)
                   for c in range(img.shape[-1])], -1)


def crop_and_resize(frames, box, out: int) -> np.ndarray:
  """frames `[T, H, W, C]`, box (y, x, h, w) in pixels -> `[T, out, out,
  C]`."""
  y, x, h, w = box
  interp = cv2.INTER_AREA if min(h, w) > out else cv2.INTER_LINEAR
  return np.stack([resize(f[y:y + h, x:x + w], (out, out), interp)
                   for f in frames])


OFFSETS = ('five', 'tsm13')
TEST_CROPS = ('resize', 'tsm', 'full_res')


def fixed_offsets(h: int, w: int, ch: int, cw: int, more: bool = True):
  """TSM's fixed crop corners (y, x) for a `ch x cw` box in `h x w`: the
  4 corners and the center in steps of a quarter of the slack, then
  (`more`) the 4 edge centers and the 4 quarter points: 13 in all."""
  sy, sx = (h - ch) // 4, (w - cw) // 4
  grid = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2)]
  if more:
    grid += [(2, 0), (2, 4), (4, 2), (0, 2), (1, 1), (1, 3), (3, 1), (3, 3)]
  return [(i * sy, j * sx) for i, j in grid]


def multiscale_box(h: int, w: int, rng: np.random.Generator, *,
                   resize_short: int, crop_size: int, scales, max_distort=1,
                   offsets: str = 'five'):
  """A TSM multi-scale crop box (y, x, h, w) in stored-pixel coordinates;
  `offsets`: 'five' (corners, center) or 'tsm13' (`fixed_offsets`)."""
  k = min(h, w) / resize_short  # stored pixels per 256-scale pixel
  base = resize_short
  sizes = [int(base * s) for s in scales]
  sizes = [crop_size if abs(s - crop_size) < 3 else s for s in sizes]
  pairs = [(i, j) for i in range(len(sizes)) for j in range(len(sizes))
           if abs(i - j) <= max_distort]
  i, j = pairs[rng.integers(len(pairs))]
  cw = min(w, max(1, round(sizes[i] * k)))
  ch = min(h, max(1, round(sizes[j] * k)))
  if offsets == 'tsm13':
    corners = fixed_offsets(h, w, ch, cw)
    y, x = corners[rng.integers(len(corners))]
    return y, x, ch, cw
  # 4 corners or the center.
  pos = rng.integers(5)
  ys = (0, 0, h - ch, h - ch, (h - ch) // 2)
  xs = (0, w - cw, 0, w - cw, (w - cw) // 2)
  return ys[pos], xs[pos], ch, cw


def train_clip(frames, rng, *, resize_short, crop_size, scales,
               max_distort=1, flip=True, flip_fn=None,
               offsets: str = 'five') -> np.ndarray:
  """`[T, H, W, C]` uint8 -> `[T, crop, crop, C]` uint8, one box for all;
  `flip_fn` replaces the plain mirror (flow negates x)."""
  box = multiscale_box(*frames.shape[1:3], rng, resize_short=resize_short,
                       crop_size=crop_size, scales=scales,
                       max_distort=max_distort, offsets=offsets)
  out = crop_and_resize(frames, box, crop_size)
  if flip and rng.random() < 0.5:
    out = flip_fn(out) if flip_fn else out[:, :, ::-1]
  return np.ascontiguousarray(out)


def test_size(resize_short: int, crop_size: int, mode: str = 'resize'):
  """The side of a test view: `crop_size`, or `resize_short` (full_res)."""
  return resize_short if mode == 'full_res' else crop_size


def test_boxes(h: int, w: int, *, resize_short, crop_size, crops=1,
               mode: str = 'resize'):
  """The (y, x, side, side) boxes of `crops` (1 or 3) test views of an
  `h x w` frame in stored pixels (see the module docstring for `mode`)."""
  k = min(h, w) / resize_short
  size = test_size(resize_short, crop_size, mode)
  side = min(h, w, max(1, round(size * k)))
  if mode != 'resize':
    if crops == 1:  # torchvision CenterCrop: Python's round of half
      return [(int(round((h - side) / 2.0)), int(round((w - side) / 2.0)),
               side, side)]
    sy, sx = (h - side) // 4, (w - side) // 4  # GroupFullResSample
    return [(2 * sy, 0, side, side), (2 * sy, 4 * sx, side, side),
            (2 * sy, 2 * sx, side, side)]
  starts = {1: (0.5,), 3: (0.0, 0.5, 1.0)}[crops]
  boxes = []
  for s in starts:
    if w >= h:
      boxes.append(((h - side) // 2, int((w - side) * s), side, side))
    else:
      boxes.append((int((h - side) * s), (w - side) // 2, side, side))
  return boxes


def test_clips(frames, *, resize_short, crop_size, crops=1,
               mode: str = 'resize') -> np.ndarray:
  """`[T, H, W, 3]` -> `[crops, T, S, S, 3]` (S = `test_size`): the views
  of `test_boxes`."""
  out = test_size(resize_short, crop_size, mode)
  return np.stack([crop_and_resize(frames, b, out) for b in test_boxes(
      *frames.shape[1:3], resize_short=resize_short, crop_size=crop_size,
      crops=crops, mode=mode)])
