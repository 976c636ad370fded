"""Late fusion of saved per-video scores (paper §4.4.1: RGB : flow = 1 : 1.5).

  python -m mstsm_jax.fuse --scores RGB.npz FLOW.npz [--weights 1,1.5]
      [--search] [--json]

Inputs are `evaluate`'s scores.npz files (video names, labels, scores). The
videos must match (order may differ). Each stream's scores are turned into
softmax probabilities and summed with the weights. `--search` picks the
flow weight on one half of the videos (every other video, by name) and
reports it on the other half.
"""
from __future__ import annotations

import sys

import numpy as np
from absl import flags

from mstsm_jax.metrics import classification_metrics

LOG = sys.stderr
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
      raise ValueError(f'{path}: videos differ from {paths[0]} '
                       f'({len(missing)} of {len(names)} missing, e.g. '
                       f'{missing[:2]}); evaluate both on the same split')
    order = np.array([pos[v] for v in names])
    if not np.array_equal(s['labels'][order], labels):
      raise ValueError(f'{path}: labels differ from {paths[0]}')
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


def main(argv):
  from mstsm_jax import cli
  FLAGS = flags.FLAGS
  paths = FLAGS.scores + argv[1:]  # `--scores A.npz B.npz` and repeated
  names, labels, scores = load_scores(paths)
  weights = [float(w) for w in FLAGS.weights.split(',')]
  if len(weights) != len(scores):
    raise ValueError(f'--weights={FLAGS.weights} has {len(weights)} values '
                     f'for {len(scores)} score files')
  out = {'videos': len(names), 'streams': {}}
  for p, s in zip(paths, scores):
    out['streams'][p] = summary(s, labels)
  out['fused'] = summary(fuse(scores, weights), labels)
  out['weights'] = weights
  if FLAGS.search:
    if len(scores) != 2:
      raise ValueError('--search takes exactly two streams (RGB, flow)')
    w, held = search(scores, labels, np.array(names))
    out['search'] = {'flow_weight': w, 'held_out': held}
  for name, r in [*out['streams'].items(), (f'fused {FLAGS.weights}',
                                            out['fused'])]:
    print(f'{name:<40} top-1 {100 * r["top1"]:6.2f}%  top-5 '
          f'{100 * r["top5"]:6.2f}%  mean class '
          f'{100 * r["mean_class_acc"]:6.2f}%', file=LOG)
  if FLAGS.search:
    print(f'searched 1:{out["search"]["flow_weight"]:g} on half the videos; '
          f'other half top-1 {100 * out["search"]["held_out"]["top1"]:.2f}%',
          file=LOG)
  cli.emit_json(out)


if __name__ == '__main__':
  from mstsm_jax import cli
  flags.DEFINE_multi_string('scores', None, 'scores.npz files (RGB, flow)')
  flags.DEFINE_string('weights', '1,1.5', 'one weight per stream')
  flags.DEFINE_bool('search', False, 'scan the flow weight on half the '
                    'videos, report on the other half')
  flags.mark_flag_as_required('scores')
  cli.define_json()
  cli.run(main)
