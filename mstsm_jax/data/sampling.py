"""TSN sparse sampling (paper §3.1 eq. 1; SPEC §1).

A video of n frames is cut into T equal segments. Train: one random frame
per segment; test: the middle frame of each (or, for N temporal views, N
evenly spaced offsets inside each segment). Fewer than T frames repeat
frames in order, never crash.
"""
from __future__ import annotations

import numpy as np


def train_indices(n: int, t: int, rng: np.random.Generator) -> np.ndarray:
  """`[T]` frame indices: a random frame in each of T equal segments."""
  if n < t:
    return np.floor(np.arange(t) * n / t).astype(np.int64)
  edges = np.floor(np.arange(t + 1) * n / t).astype(np.int64)
  return edges[:-1] + rng.integers(0, edges[1:] - edges[:-1])


def test_indices(n: int, t: int, views: int = 1) -> np.ndarray:
  """`[views, T]` indices: view j takes offset (j + 0.5) / views of each
  segment; views=1 is the middle frame."""
  seg = n / t
  offs = (np.arange(views)[:, None] + 0.5) / views + np.arange(t)[None]
  return np.minimum(np.floor(offs * seg).astype(np.int64), n - 1)
