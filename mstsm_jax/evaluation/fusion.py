"""Late fusion of saved per-video scores (paper §4.4.1: RGB : flow = 1 : 1.5).

Inputs are `evaluate`'s scores.npz files (video names, labels, scores). The
videos must match (order may differ). Each stream's scores are turned into
softmax probabilities and summed with the weights. `--search` picks the
flow weight on one half of the videos (every other video, by name) and
reports it on the other half.
"""
from __future__ import annotations

import numpy as np

from mstsm_jax.errors import UsageError
from mstsm_jax.evaluation.metrics import classification_metrics

KEYS = ('top1', 'top5', 'mean_class_acc')


def load_scores(paths):
  """Streams aligned on the first file's video order: (names, labels,
  [scores per stream])."""
  streams = [np.load(p, allow_pickle=False) for p in paths]
  names = [str(v) for v in streams[0]['videos']]
  labels = streams[0]['labels']
  out = []
  for path, s in zip(paths, streams):
    pos = {str(v): i for i, v in enumerate(s['videos'])}
    missing = [v for v in names if v not in pos]
    if missing or len(pos) != len(names):
      raise UsageError(f'{path}: videos differ from {paths[0]} '
                       f'({len(missing)} of {len(names)} missing, e.g. '
                       f'{missing[:2]}); evaluate both on the same split')
    order = np.array([pos[v] for v in names])
    if not np.array_equal(s['labels'][order], labels):
      raise UsageError(f'{path}: labels differ from {paths[0]}',
                       'evaluate both on the same split')
    out.append(s['scores'][order])
  return names, labels, out


def softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def fuse(scores, weights) -> np.ndarray:
  """sum_k w_k softmax(scores_k)."""
  return sum(w * softmax(s) for w, s in zip(weights, scores))


def summary(scores, labels) -> dict:
  r = classification_metrics(scores, labels, scores.shape[-1])
  return {k: r[k] for k in KEYS}


def search(scores, labels, names, grid=np.arange(0.0, 3.01, 0.25)):
  """Flow weight (RGB weight 1) chosen on half A, reported on half B."""
  order = np.argsort(names)
  a, b = order[0::2], order[1::2]
  best = max(grid, key=lambda w: summary(
      fuse([s[a] for s in scores], (1.0, w)), labels[a])['top1'])
  return float(best), summary(fuse([s[b] for s in scores], (1.0, best)),
                              labels[b])
