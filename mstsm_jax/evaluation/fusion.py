"""Late fusion of saved per-video scores (paper §4.4.1: RGB : flow = 1 : 1.5).

Inputs are `evaluate`'s scores.npz files (video names, labels, scores). The
videos must match (order may differ). Each stream's scores are turned into
softmax probabilities and summed with the weights. `--search` picks the
flow weight on one half of the videos (every other video, by name) and
reports it on the other half.
"""
from __future__ import annotations

import zipfile

import numpy as np

from mstsm_jax.errors import UsageError
from mstsm_jax.evaluation.metrics import classification_metrics

KEYS = ('top1', 'top5', 'mean_class_acc')
FORMAT = ("evaluate's scores.npz: videos [N] (names), labels [N] "
          '(integers 0..classes-1), scores [N, classes] (numbers)')
HINT = ('give scores.npz files that python -m mstsm_jax.evaluate writes '
        '(WORKDIR/eval/test<split>_<views>/scores.npz)')


def read_scores(path) -> dict:
  """`path`'s videos, labels and scores as `evaluate` writes them;
  anything else is refused in one line naming the file."""
  try:
    loaded = np.load(path, allow_pickle=False)
  except OSError as e:
    raise UsageError(f'{path}: {e.strerror or e}', HINT) from e
  except (ValueError, EOFError, zipfile.BadZipFile):
    loaded = None  # neither .npy nor .npz: numpy then refuses pickle
  if not isinstance(loaded, np.lib.npyio.NpzFile):
    raise UsageError(f'{path}: not an .npz archive; expected {FORMAT}', HINT)
  with loaded:
    try:
      s = {k: loaded[k] for k in ('videos', 'labels', 'scores')
           if k in loaded.files}
    except ValueError as e:  # an object array: pickled
      raise UsageError(f'{path}: holds pickled (object) arrays; expected '
                       f'{FORMAT}', HINT) from e
  if not is_scores(s):
    have = ', '.join(f'{k} {list(v.shape)} {v.dtype}' for k, v in s.items())
    raise UsageError(f'{path}: holds {have or "no such arrays"}; expected '
                     f'{FORMAT}', HINT)
  return s


def is_scores(s: dict) -> bool:
  """`s` has FORMAT's arrays, shapes and kinds, for one video or more,
  each label a column of scores."""
  if len(s) != 3 or s['videos'].ndim != 1 or not len(s['videos']):
    return False
  n = len(s['videos'])
  return (s['videos'].dtype.kind in 'US' and s['labels'].shape == (n,)
          and s['labels'].dtype.kind in 'iu' and s['scores'].ndim == 2
          and s['scores'].shape[0] == n and s['scores'].dtype.kind in 'fiu'
          and 0 <= s['labels'].min() <= s['labels'].max()
          < s['scores'].shape[1])


def load_scores(paths):
  """Streams aligned on the first file's video order: (names, labels,
  [scores per stream]); files that do not fit each other are refused."""
  streams = [read_scores(p) for p in paths]
  names = [str(v) for v in streams[0]['videos']]
  labels = streams[0]['labels']
  classes = streams[0]['scores'].shape[1]
  out = []
  for path, s in zip(paths, streams):
    if s['scores'].shape[1] != classes:
      raise UsageError(f'{path}: scores [N, {s["scores"].shape[1]}]; '
                       f'expected [N, {classes}] as in {paths[0]}',
                       'fuse models of the same classes, evaluated on the '
                       'same split')
    pos = {str(v): i for i, v in enumerate(s['videos'])}
    missing = [v for v in names if v not in pos]
    if missing or len(pos) != len(names):
      raise UsageError(f'{path}: videos differ from {paths[0]} '
                       f'({len(missing)} of {len(names)} missing, e.g. '
                       f'{missing[:2]})', 'evaluate both on the same split')
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
