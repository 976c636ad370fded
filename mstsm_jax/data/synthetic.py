"""Synthetic motions: classes that differ only in temporal order.

Five motions, each with its time-reversed twin: move left / right, move up /
down, rotate clockwise / counter-clockwise, grow / shrink, appear /
disappear (fade). A twin is rendered as the same random video played
backwards, so both classes have exactly the same distribution of single
frames: a model that averages per-frame features (TSN) cannot tell twins
apart and is capped near 50%, while a temporal model can reach ~100%.

Deterministic from (seed, index), generated on the fly (no download, no
storage), as an in-memory random-access source; `prepare --dataset=synthetic`
stores it as a tfds dataset (`record`, data/layouts.py).
`SyntheticSource(task='synthetic_hard')` serves the harder event-order task
(data/synthetic_hard.py) the same way.
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

from mstsm_jax.data import synthetic_hard, video

CLASSES = ('move_right', 'move_left', 'move_down', 'move_up',
           'rotate_cw', 'rotate_ccw', 'grow', 'shrink', 'appear',
           'disappear')
SPLITS = {'train1': 1, 'test1': 2}


def label_of(index: int, classes=CLASSES) -> int:
  return index % len(classes)


def video_name(index: int, classes=CLASSES) -> str:
  return f'{classes[label_of(index, classes)]}/synthetic_{index:05d}'


def render(index: int, seed: int = 0, size: int = 64, num_frames: int = 16):
  """Video `index`: (uint8 `[F, size, size, 3]` RGB frames, label)."""
  label = label_of(index)
  frames = motion_frames(np.random.default_rng([seed, index]), label // 2,
                         size, num_frames)
  if label % 2:  # the twin: the same kind of video played backwards
    frames = frames[::-1].copy()
  return frames, label


def object_masks(index: int, seed: int = 0, size: int = 64,
                 num_frames: int = 16) -> np.ndarray:
  """Where video `index`'s object is, bool `[F, size, size]` (frames where
  it is less than half faded in are empty): ground truth for Grad-CAM."""
  label = label_of(index)
  _, masks = motion_frames(np.random.default_rng([seed, index]), label // 2,
                           size, num_frames, with_masks=True)
  return masks[::-1].copy() if label % 2 else masks


def motion_frames(rng: np.random.Generator, motion: int, size: int,
                  num_frames: int, with_masks: bool = False):
  """The forward video of motion 0-4 (uint8 `[F, size, size, 3]`), drawn
  from `rng`: random background, colour, size, position and orientation.
  `with_masks`: (frames, `object_masks`)."""
  background = rng.integers(0, 96, 3)
  noise = rng.integers(0, 40, (size, size, 1))
  canvas = np.clip(background + noise, 0, 255).astype(np.uint8)
  color = rng.integers(128, 256, 3)
  # An asymmetric polygon (a flag), so rotation is visible.
  shape = np.array([[-1, -1], [1, -1], [1, -0.2], [0, -0.2], [0, 1],
                    [-1, 1]], np.float32)
  s = size / 64
  radius = rng.uniform(7, 10) * s
  center = rng.uniform(0.35, 0.65, 2) * size
  angle0 = rng.uniform(0, 2 * np.pi)
  travel = rng.uniform(0.35, 0.5) * size
  t = np.linspace(0, 1, num_frames)
  frames, masks = [], []
  for u in t:
    c, r, a, alpha = center.copy(), radius, angle0, 1.0
    if motion == 0:
      c[0] += (u - 0.5) * travel
    elif motion == 1:
      c[1] += (u - 0.5) * travel
    elif motion == 2:
      a += u * np.pi
    elif motion == 3:
      r *= 0.5 + u
    else:
      alpha = u
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    pts = (shape @ rot.T) * r + c
    layer = canvas.copy()
    cv2.fillPoly(layer, [np.round(pts * 16).astype(np.int32)],
                 color.tolist(), lineType=cv2.LINE_AA, shift=4)
    frames.append(np.round(canvas * (1 - alpha) + layer * alpha).astype(
        np.uint8))
    if with_masks:
      mask = np.zeros((size, size), np.uint8)
      if alpha >= 0.5:
        cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 1,
                     shift=4)
      masks.append(mask.astype(bool))
  return (np.stack(frames), np.stack(masks)) if with_masks else np.stack(
      frames)


def split_of(index: int, classes=CLASSES) -> str:
  """Every fifth round of the classes is test: balanced splits."""
  return 'test1' if (index // len(classes)) % 5 == 4 else 'train1'


def render_hard(index: int, seed: int = 0, size: int = 64,
                num_frames: int = 16):
  """Event-order video `index` (data/synthetic_hard.py): (frames, label)."""
  label = label_of(index, synthetic_hard.CLASSES)
  return synthetic_hard.render_order(np.random.default_rng([seed, index]),
                                     synthetic_hard.CLASSES[label], size,
                                     num_frames), label


def render_far(index: int, seed: int = 0, size: int = 64,
               num_frames: int = 16):
  """Long-reach video `index` (data/synthetic_hard.py, FAR_*): two markers
  >= FAR_GAP segments apart; (frames, label)."""
  label = label_of(index, synthetic_hard.FAR_CLASSES)
  return synthetic_hard.render_order(
      np.random.default_rng([seed, index]),
      synthetic_hard.FAR_CLASSES[label], size, num_frames,
      gap=synthetic_hard.FAR_GAP), label


def task(name: str):
  """(classes, render) of a synthetic dataset name."""
  if name == 'synthetic_hard':
    return synthetic_hard.CLASSES, render_hard
  if name == 'synthetic_far':
    return synthetic_hard.FAR_CLASSES, render_far
  return CLASSES, render


@functools.lru_cache(maxsize=4096)
def rendered(name: str, index: int, seed: int, size: int, num_frames: int):
  """`task(name)`'s video `index`, rendered once per process (read-only):
  epochs, seeds and the runs of one `ablate` share it. 4096 videos of
  16 64-px frames are 0.8 GB; larger frames take more."""
  frames, label = task(name)[1](index, seed, size, num_frames)
  frames.flags.writeable = False
  return frames, label


class SyntheticSource:
  """Random-access source of decoded synthetic videos for one split.

  Records look like prepared ones, with frames already decoded:
  {'frames': uint8 [F, H, W, 3], 'label', 'video', 'num_frames'}.
  """

  def __init__(self, split: str = 'train1', num_videos: int = 600,
               seed: int = 0, size: int = 64, num_frames: int = 16,
               name: str = 'synthetic'):
    if split not in SPLITS:
      raise ValueError(f'synthetic split {split!r}; valid: {list(SPLITS)}')
    classes, _ = task(name)
    self.name = name
    self.ids = [i for i in range(num_videos)
                if split_of(i, classes) == split]
    self.seed, self.size, self.num_frames = seed, size, num_frames
    self.classes = list(classes)

  def __len__(self):
    return len(self.ids)

  def __getitem__(self, i):
    idx = self.ids[i]
    frames, label = rendered(self.name, idx, self.seed, self.size,
                             self.num_frames)
    return {'frames': frames, 'label': label,
            'video': video_name(idx, self.classes),
            'num_frames': len(frames)}


def record(path: str, short_side: int = 0, fps: float = 0.0,
           as_jpeg: bool = True, *, name: str = 'synthetic', seed: int = 0,
           size: int = 64, num_frames: int = 16) -> dict:
  """Video `int(path)` of task `name` as `video.read_video` returns a decoded
  file (frames resized to `short_side` if larger): how `prepare` stores
  the generated layouts (data/layouts.py)."""
  del fps  # every rendered frame is kept
  frames, _ = task(name)[1](int(path), seed, size, num_frames)
  frames = [video.resize_short(f, short_side) if short_side and
            min(f.shape[:2]) > short_side else f for f in frames]
  return {'frames': [video.encode_jpeg(f) for f in frames] if as_jpeg
          else np.stack(frames), 'fps': 25.0, 'height': size, 'width': size,
          'num_frames': num_frames, 'truncated': ''}
