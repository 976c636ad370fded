"""Late fusion of saved per-video scores (paper §4.4.1: RGB : flow = 1 : 1.5).

Inputs are `evaluate`'s scores.npz files (video names, labels, scores). The
videos must match (order may differ). Each stream's scores are turned into
softmax probabilities and summed with the weights. `--search` picks the
flow weight on one half of the videos (every other video, by name) and
reports it on the other half.
"""
from __future__ import annotations

import sys
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
      classes = loaded['classes'] if 'classes' in loaded.files else None
    except ValueError as e:  # an object array: pickled
      raise UsageError(f'{path}: holds pickled (object) arrays; expected '
                       f'{FORMAT}', HINT) from e
  if not is_scores(s):
    have = ', '.join(f'{k} {list(v.shape)} {v.dtype}' for k, v in s.items())
    raise UsageError(f'{path}: holds {have or "no such arrays"}; expected '
                     f'{FORMAT}', HINT)
  bad = ~np.isfinite(s['scores']).all(axis=1)
  if n := int(bad.sum()):  # argmax would call a NaN row class 0
    raise UsageError(f'{path}: {n} video{"s" * (n > 1)} '
                     f'with NaN or inf scores, e.g. '
                     f'{s["videos"][bad.argmax()]}',
                     'evaluate the model again (its weights or that run '
                     'diverged)')
  dup = [v for v, c in zip(*np.unique(s['videos'], return_counts=True))
         if c > 1]
  if dup:
    raise UsageError(f'{path}: video {dup[0]} is in it twice'
                     + (f' ({len(dup)} such videos)' if len(dup) > 1 else ''),
                     HINT)
  if classes is not None and (classes.shape != (s['scores'].shape[1],)
                              or classes.dtype.kind not in 'US'):
    raise UsageError(f'{path}: classes {list(classes.shape)} '
                     f'{classes.dtype} for {s["scores"].shape[1]} score '
                     'columns', HINT)
  s['classes'] = None if classes is None else [  # bytes (kind S) as text
      str(c) for c in classes.astype(str)]
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
  named = next((s['classes'] for s in streams if s['classes']), None)
  out = []
  for path, s in zip(paths, streams):
    if s['scores'].shape[1] != classes:
      raise UsageError(f'{path}: scores [N, {s["scores"].shape[1]}]; '
                       f'expected [N, {classes}] as in {paths[0]}',
                       'fuse models of the same classes, evaluated on the '
                       'same split')
    if named and s['classes'] and s['classes'] != named:
      i = next(i for i, (a, b) in enumerate(zip(s['classes'], named))
               if a != b)
      raise UsageError(f'{path}: its classes differ from the other scores\''
                       f' (column {i} is {s["classes"][i]!r} here, '
                       f'{named[i]!r} there)', 'fuse models trained on the '
                       'same classes, in the same order')
    if named and not s['classes']:
      print(f'warning: {path} names no classes (an older evaluate): its '
            'columns are taken to be the other files\' classes',
            file=sys.stderr)
    pos = {str(v): i for i, v in enumerate(s['videos'])}
    missing = [v for v in names if v not in pos]
    extra = sorted(set(pos) - set(names))
    if missing or extra:
      raise UsageError(f'{path}: videos differ from {paths[0]} ('
                       + '; '.join(f'{len(v)} {what}, e.g. {v[0]}'
                                   for v, what in (
                                       (missing, 'missing'),
                                       (extra, f'not in {paths[0]}'))
                                   if v) + ')',
                       'evaluate both on the same split')
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
