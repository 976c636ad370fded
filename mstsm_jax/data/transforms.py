"""Clip augmentation on uint8 frames (SPEC §1; TSM's GroupMultiScaleCrop).

Train: the short side scaled to `resize_short` (256); a crop whose height and
width are drawn independently from {1, .875, .75, .66} x short side (TSM
snaps sizes within 3 px of the output to it; `max_distort` bounds the aspect
jitter), placed at one of the 4 corners or the center; resized to
`crop_size`; flipped with p = 0.5. One crop and flip for every frame of a
clip. The scale-to-256 and the crop's resize are folded into one resize per
frame on the stored pixels.

Test: short side to 256, center crop 224; 3 spatial views take the two ends
and the center along the long side.
"""
from __future__ import annotations

import cv2
import numpy as np


def crop_and_resize(frames, box, out: int) -> np.ndarray:
  """frames `[T, H, W, 3]`, box (y, x, h, w) in pixels -> `[T, out, out, 3]`."""
  y, x, h, w = box
  interp = cv2.INTER_AREA if min(h, w) > out else cv2.INTER_LINEAR
  out_frames = [cv2.resize(np.ascontiguousarray(f[y:y + h, x:x + w]),
                           (out, out), interpolation=interp) for f in frames]
  return np.stack([o.reshape(out, out, -1) for o in out_frames])


def multiscale_box(h: int, w: int, rng: np.random.Generator, *,
                   resize_short: int, crop_size: int, scales, max_distort=1):
  """A TSM multi-scale crop box in stored-pixel coordinates."""
  k = min(h, w) / resize_short  # stored pixels per 256-scale pixel
  base = resize_short
  sizes = [int(base * s) for s in scales]
  sizes = [crop_size if abs(s - crop_size) < 3 else s for s in sizes]
  pairs = [(i, j) for i in range(len(sizes)) for j in range(len(sizes))
           if abs(i - j) <= max_distort]
  i, j = pairs[rng.integers(len(pairs))]
  cw = min(w, max(1, round(sizes[i] * k)))
  ch = min(h, max(1, round(sizes[j] * k)))
  # 4 corners or the center.
  pos = rng.integers(5)
  ys = (0, 0, h - ch, h - ch, (h - ch) // 2)
  xs = (0, w - cw, 0, w - cw, (w - cw) // 2)
  return ys[pos], xs[pos], ch, cw


def train_clip(frames, rng, *, resize_short, crop_size, scales,
               max_distort=1, flip=True, flip_fn=None) -> np.ndarray:
  """`[T, H, W, C]` uint8 -> `[T, crop, crop, C]` uint8, one box for all;
  `flip_fn` replaces the plain mirror (flow negates x)."""
  box = multiscale_box(*frames.shape[1:3], rng, resize_short=resize_short,
                       crop_size=crop_size, scales=scales,
                       max_distort=max_distort)
  out = crop_and_resize(frames, box, crop_size)
  if flip and rng.random() < 0.5:
    out = flip_fn(out) if flip_fn else out[:, :, ::-1]
  return np.ascontiguousarray(out)


def test_clips(frames, *, resize_short, crop_size, crops=1) -> np.ndarray:
  """`[T, H, W, 3]` -> `[crops, T, crop, crop, 3]`: center (crops=1) or
  start/center/end along the long side (crops=3)."""
  h, w = frames.shape[1:3]
  k = min(h, w) / resize_short
  side = min(h, w, max(1, round(crop_size * k)))
  starts = {1: (0.5,), 3: (0.0, 0.5, 1.0)}[crops]
  boxes = []
  for s in starts:
    if w >= h:
      boxes.append(((h - side) // 2, int((w - side) * s), side, side))
    else:
      boxes.append((int((h - side) * s), (w - side) // 2, side, side))
  return np.stack([crop_and_resize(frames, b, crop_size) for b in boxes])
