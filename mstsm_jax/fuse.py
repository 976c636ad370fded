"""Late fusion of saved per-video scores (paper §4.4.1: RGB : flow = 1 : 1.5).

  python -m mstsm_jax.fuse --scores RGB.npz FLOW.npz [--weights 1,1.5]
      [--search] [--json]

Inputs are `evaluate`'s scores.npz files; each stream's scores become
softmax probabilities summed with the weights (`mstsm_jax.evaluation.
fusion`). `--search` picks the flow weight on half of the videos and
reports it on the other half.
"""
from __future__ import annotations

import os

import numpy as np
from absl import flags

from mstsm_jax import cli
from mstsm_jax.console import LOG
from mstsm_jax.evaluation.fusion import fuse, load_scores, search, summary


def define_flags(fv):
  flags.DEFINE_multi_string('scores', None, 'scores.npz files (RGB, flow)',
                            flag_values=fv)
  flags.DEFINE_string('weights', '1,1.5', 'one weight per stream',
                      flag_values=fv)
  flags.DEFINE_bool('search', False, 'scan the flow weight on half the '
                    'videos, report on the other half', flag_values=fv)
  flags.mark_flag_as_required('scores', flag_values=fv)
  cli.define_json(fv)


def check_flags(fv, paths: list) -> list[float]:
  """The weights; every flag checked before any file is read."""
  real = [os.path.realpath(p) for p in paths]
  twice = [p for p, r in zip(paths, real) if real.count(r) > 1]
  if twice:
    raise cli.UsageError(f'--scores: {twice[0]} given twice (it would count '
                         'twice)', 'give each stream once; weigh a stream '
                         'with --weights')
  arg = fv['weights'].value  # finite numbers >= 0: cli.FLAG_RULES
  weights = [float(w) for w in arg.split(',')]
  if not any(weights):
    raise cli.UsageError(f'--weights={arg}: expected comma-separated '
                         'finite numbers >= 0, not all 0', 'e.g. '
                         '--weights=1,1.5')
  if len(weights) != len(paths):
    raise cli.UsageError(f'--weights={arg} has {len(weights)} values '
                         f'for {len(paths)} score files',
                         'give one weight per --scores file')
  if fv['search'].value and len(paths) != 2:
    raise cli.UsageError(f'--search takes exactly two --scores files, got '
                         f'{len(paths)}', 'give the RGB and the flow scores')
  return weights


def main(fv, argv):
  paths = fv['scores'].value + argv[1:]  # `--scores A.npz B.npz`, repeated
  weights = check_flags(fv, paths)
  names, labels, scores = load_scores(paths)
  arg = fv['weights'].value
  out = {'videos': len(names), 'streams': {}}
  for p, s in zip(paths, scores):
    out['streams'][p] = summary(s, labels)
  out['fused'] = summary(fuse(scores, weights), labels)
  out['weights'] = weights
  if fv['search'].value:
    w, held = search(scores, labels, np.array(names))
    out['search'] = {'flow_weight': w, 'held_out': held}
  for name, r in [*out['streams'].items(), (f'fused {arg}',
                                            out['fused'])]:
    print(f'{name:<40} top-1 {100 * r["top1"]:6.2f}%  top-5 '
          f'{100 * r["top5"]:6.2f}%  mean class '
          f'{100 * r["mean_class_acc"]:6.2f}%', file=LOG)
  if fv['search'].value:
    print(f'searched 1:{out["search"]["flow_weight"]:g} on half the videos; '
          f'other half top-1 {100 * out["search"]["held_out"]["top1"]:.2f}%',
          file=LOG)
  cli.emit_json(fv, out)


if __name__ == '__main__':
  cli.main_entry(define_flags, main, __doc__)
