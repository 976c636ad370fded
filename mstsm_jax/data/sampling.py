"""TSN sparse sampling (paper §3.1 eq. 1; SPEC §1), ours and TSM's.

A video of n frames is cut into T equal segments. Train: one random frame
per segment; test: the middle frame of each (or, for N temporal views, N
evenly spaced offsets inside each segment). Fewer than T frames repeat
frames in order, never crash.

`rule` picks TSM's own reading (`ops/dataset.py`, 0-based here):
- train 'tsm' (`_sample_indices`): segments of n // T frames, so the last
  n % T frames are never drawn; n < T gives frame 0 T times.
- train 'dense' (I3D dense sampling): T frames 64 // T apart from a random
  start in [0, n - 64), wrapping around.
- test 'tsm' (`_get_test_indices`): int(tick / 2 + tick * x), tick = n / T;
  'twice': those and int(tick * x) (2 views); 'dense': the dense clip from
  10 starts evenly spaced over [0, n - 64] (10 views).
"""
from __future__ import annotations

import numpy as np

TRAIN_RULES = ('edges', 'tsm', 'dense')
TEST_RULES = ('spread', 'tsm', 'twice', 'dense')
TEST_VIEWS = {'tsm': 1, 'twice': 2, 'dense': 10}  # temporal views they take


def train_indices(n: int, t: int, rng: np.random.Generator,
                  rule: str = 'edges') -> np.ndarray:
  """`[T]` frame indices: a random frame in each of T segments."""
  if rule == 'tsm':
    seg = n // t
    if seg == 0:
      return np.zeros(t, np.int64)
    return np.arange(t) * seg + rng.integers(0, seg, t)
  if rule == 'dense':
    return dense_clip(n, t, 0 if n <= 64 else rng.integers(0, n - 64))
  if n < t:
    return np.floor(np.arange(t) * n / t).astype(np.int64)
  edges = np.floor(np.arange(t + 1) * n / t).astype(np.int64)
  return edges[:-1] + rng.integers(0, edges[1:] - edges[:-1])


def dense_clip(n: int, t: int, start: int) -> np.ndarray:
  """`[T]`: T frames 64 // T apart from `start`, modulo n."""
  return (np.arange(t) * (64 // t) + start) % n


def test_indices(n: int, t: int, views: int = 1,
                 rule: str = 'spread') -> np.ndarray:
  """`[views, T]` indices ('spread': view j takes offset (j + 0.5) / views
  of each segment; views=1 is the middle frame). TSM's rules take
  `TEST_VIEWS[rule]` views whatever `views` says."""
  if rule == 'dense':
    starts = np.linspace(0, max(1, n - 63) - 1, num=10, dtype=int)
    return np.stack([dense_clip(n, t, s) for s in starts])
  if rule in ('tsm', 'twice'):
    tick = n / float(t)
    offs = [[int(tick / 2.0 + tick * x) for x in range(t)]]
    if rule == 'twice':
      offs.append([int(tick * x) for x in range(t)])
    return np.minimum(np.array(offs, np.int64), n - 1)
  seg = n / t
  offs = (np.arange(views)[:, None] + 0.5) / views + np.arange(t)[None]
  return np.minimum(np.floor(offs * seg).astype(np.int64), n - 1)
