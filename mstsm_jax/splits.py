r"""Train and evaluate the three official splits; the paper's averaged table.

  python -m mstsm_jax.splits --config=configs/ucf101.py:mstsm_tfdem \
      --workdir=runs/ucf101 [--splits=1,2,3] [--config.x=y] [--json]

Each split trains in WORKDIR/split<k> (resumable like any run); every
split is checked (its lists in the dataset, a split workdir's saved config)
before the first one trains. The table gives top-1 / top-5 / mean class
accuracy per split and mean +- std (the paper reports the 3-split average:
UCF-101 96.25%, HMDB51 72.83%). SIGTERM stops the job once the running
split has saved its checkpoint (exit 0 as `train`, JSON
{'preempted': true}); the same command resumes it.
"""
from __future__ import annotations

import copy
import pathlib

import numpy as np
from absl import flags

from mstsm_jax import cli, files
from mstsm_jax.console import LOG
from mstsm_jax.training import trainer

KEYS = ('top1', 'top5', 'mean_class_acc')


def table(rows: dict[int, dict]) -> str:
  lines = [f'{"split":<8}' + ''.join(f'{k:>16}' for k in KEYS)]
  for k, r in rows.items():
    lines.append(f'{k:<8}' + ''.join(f'{100 * r[m]:>15.2f}%' for m in KEYS))
  if len(rows) > 1:
    cells = []
    for m in KEYS:
      v = 100 * np.array([r[m] for r in rows.values()])
      cells.append(f'{v.mean():>8.2f} +- {v.std(ddof=1):.2f}')
    lines.append(f'{"mean":<8}' + ''.join(f'{c:>16}' for c in cells))
  return '\n'.join(lines)


def define_flags(fv):
  cli.define_config(fv)
  cli.define_json(fv)
  flags.DEFINE_string('workdir', None, 'parent of the per-split workdirs',
                      flag_values=fv)
  flags.DEFINE_string('splits', '1,2,3', 'comma-separated splits',
                      flag_values=fv)
  flags.mark_flag_as_required('workdir', flag_values=fv)


def split_runs(fv) -> dict:
  """{split: (config, workdir)}, each run checked as `train_and_evaluate`
  checks it (`trainer.plan`: a split the dataset lacks, a split workdir
  that holds a run of another config, ...) before the first split
  trains."""
  out = {}
  for k in [int(s) for s in fv['splits'].value.split(',')]:
    config = copy.deepcopy(fv['config'].value)
    config.data.split = k
    workdir = pathlib.Path(fv['workdir'].value) / f'split{k}'
    trainer.plan(config, workdir)
    out[k] = config, workdir
  return out


def main(fv, argv):
  del argv
  rows = {}
  for k, (config, workdir) in split_runs(fv).items():
    print(f'=== split {k} ===', file=LOG)
    rows[k] = trainer.train_and_evaluate(config, workdir)
    if rows[k].get('preempted'):  # as train: the split saved its state
      print(f'split {k}: stopped (SIGTERM or Ctrl-C), its checkpoint '
            'saved; the same command resumes it', file=LOG)
      files.remove_created()  # the later splits' workdirs, made by plan
      cli.emit_json(fv, {'preempted': True})
      return 0
  print(table(rows), file=LOG)
  out = {f'split{k}': {m: r[m] for m in KEYS} for k, r in rows.items()}
  out['mean'] = {m: float(np.mean([r[m] for r in rows.values()]))
                 for m in KEYS}
  cli.emit_json(fv, out)


if __name__ == '__main__':
  cli.main_entry(define_flags, main, __doc__)
