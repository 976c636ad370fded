"""Optical flow for the two-stream setting (paper §4.4.1, SPEC §7).

Flow is computed between consecutive stored frames with OpenCV (TV-L1 from
the contrib build, as TSN; or Farneback), clipped to [-bound, bound] (20 px)
and stored as 8-bit grayscale JPEG x / y images, value 128 = no motion
(the TSN convention). The flow network takes, per segment, a stack of 5
consecutive (x, y) pairs: 10 input channels.
"""
from __future__ import annotations

import cv2
import numpy as np

from mstsm_jax.data.video import decode_jpeg

METHODS = ('tvl1', 'farneback')
BOUND = 20.0


def compute_flow(prev_rgb: np.ndarray, next_rgb: np.ndarray,
                 method: str = 'tvl1') -> np.ndarray:
  """`[H, W, 3]` uint8 frames -> float32 `[H, W, 2]` flow (dx, dy) in
  pixels: where each pixel of `prev` moves in `next`."""
  a = cv2.cvtColor(prev_rgb, cv2.COLOR_RGB2GRAY)
  b = cv2.cvtColor(next_rgb, cv2.COLOR_RGB2GRAY)
  if method == 'tvl1':
    return cv2.optflow.DualTVL1OpticalFlow_create().calc(a, b, None)
  if method == 'farneback':
    return cv2.calcOpticalFlowFarneback(a, b, None, pyr_scale=0.5, levels=3,
                                        winsize=15, iterations=3, poly_n=5,
                                        poly_sigma=1.2, flags=0)
  raise ValueError(f'flow method {method!r}; valid: {", ".join(METHODS)}')


def quantize(flow: np.ndarray, bound: float = BOUND) -> np.ndarray:
  """float flow -> uint8 with 128 at zero, clipped to [-bound, bound]."""
  q = np.round((np.clip(flow, -bound, bound) + bound) * 255 / (2 * bound))
  return q.astype(np.uint8)


def dequantize(q: np.ndarray, bound: float = BOUND) -> np.ndarray:
  return q.astype(np.float32) * (2 * bound) / 255 - bound


def encode_pair(flow: np.ndarray, quality: int = 95) -> tuple[bytes, bytes]:
  """(x JPEG, y JPEG) of one flow field."""
  q = quantize(flow)
  out = []
  for c in range(2):
    ok, buf = cv2.imencode('.jpg', q[..., c],
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
      raise ValueError('JPEG encoding of flow failed')
    out.append(buf.tobytes())
  return out[0], out[1]


def decode_gray(data: bytes) -> np.ndarray:
  img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
  if img is None:
    raise ValueError('corrupt flow JPEG')
  return img


def video_flow(frames, method: str) -> tuple[list[bytes], list[bytes]]:
  """Flow of every consecutive pair of JPEG (or uint8) frames."""
  rgb = [f if isinstance(f, np.ndarray) else decode_jpeg(f) for f in frames]
  xs, ys = [], []
  for a, b in zip(rgb[:-1], rgb[1:]):
    x, y = encode_pair(compute_flow(a, b, method))
    xs.append(x)
    ys.append(y)
  return xs, ys


def flip_flow(stack: np.ndarray) -> np.ndarray:
  """Horizontal flip of uint8 flow `[..., H, W, 2k]` (x, y interleaved):
  mirror the images and negate x (255 - x around the 128 zero)."""
  out = stack[..., ::-1, :].copy()
  out[..., 0::2] = 255 - out[..., 0::2]
  return out
