"""Generated UCF-like JPEG videos: an input-pipeline workload without a
dataset on disk (`bench --what=data,e2e` by default).

Each video is `frames` 320x240 JPEG frames cut from one blurred noise
texture at a moving offset, so JPEG sizes and decode cost are those of real
footage rather than of flat colour.
"""
from __future__ import annotations

import numpy as np

from mstsm_jax.data import pipeline, video

CLASSES = 10


def blur(img: np.ndarray) -> np.ndarray:
  import cv2
  return cv2.GaussianBlur(img, (5, 5), 1.5)


class JpegVideos:
  """A random-access source of `n` videos {'frames': [JPEG bytes], 'label'}
  of `frames` frames of `size` (H, W)."""

  def __init__(self, n=32, frames=90, size=(240, 320), seed=0):
    rng = np.random.default_rng(seed)
    h, w = size
    base = blur(rng.integers(0, 256, (h + 64, w + 64, 3), np.uint8))
    self.videos = []
    for i in range(n):
      jpgs = [video.encode_jpeg(np.ascontiguousarray(
          base[(i + t) % 64:(i + t) % 64 + h, t % 64:t % 64 + w]))
              for t in range(frames)]
      self.videos.append({'frames': jpgs, 'label': i % CLASSES})

  def __len__(self):
    return len(self.videos)

  def __getitem__(self, i):
    return self.videos[i]


def split(n: int = 32, frames: int = 90) -> pipeline.Split:
  """A training `pipeline.Split` over `JpegVideos(n, frames)`."""
  src = JpegVideos(n, frames)
  return pipeline.Split(src, [str(i) for i in range(CLASSES)],
                        [str(i) for i in range(len(src))],
                        np.arange(len(src)) % CLASSES)
