r"""Train and evaluate one model.

  python -m mstsm_jax.train --config=configs/ucf101.py:mstsm_tfdem \
      --workdir=runs/ucf101 [--config.a=b] [--distributed] [--json]

Data parallel over every device of every host. Restarting with the same
workdir resumes from the latest checkpoint (model, optimizer, RNG and input
iterator); the config must be the saved one (only how long to train,
logging, checkpointing, evaluation and data location may change). A second
live run on the same workdir is refused. SIGTERM saves and exits cleanly.
The loop is `mstsm_jax.training.trainer.train_and_evaluate`.
"""
from __future__ import annotations

import os

import jax
from absl import flags

from mstsm_jax import cli
from mstsm_jax.console import LOG
from mstsm_jax.evaluation.evaluator import format_result
from mstsm_jax.training.trainer import train_and_evaluate


def define_flags(fv):
  cli.define_config(fv)
  cli.define_json(fv)
  flags.DEFINE_string('workdir', None, 'run directory (resumes if present)',
                      flag_values=fv)
  flags.DEFINE_bool('distributed', False, 'call jax.distributed.initialize()'
                    ' (multi-host: SLURM, TPU VM)', flag_values=fv)
  flags.mark_flag_as_required('workdir', flag_values=fv)


def main(fv, argv):
  del argv
  if fv['distributed'].value:
    # SLURM / TPU / Kubernetes are detected; elsewhere set
    # JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID.
    env = os.environ
    jax.distributed.initialize(
        num_processes=int(env['JAX_NUM_PROCESSES'])
        if 'JAX_NUM_PROCESSES' in env else None,
        process_id=int(env['JAX_PROCESS_ID'])
        if 'JAX_PROCESS_ID' in env else None)
  config = fv['config'].value
  res = train_and_evaluate(config, fv['workdir'].value)
  if res.get('preempted'):
    cli.emit_json(fv, res)
    return 0
  print(f'final ({config.variant}, {res["steps"]} steps, '
        f'{res["seconds"]:.0f}s): {format_result(res)}', file=LOG)
  for f in res.get('files', []):
    print(f'  wrote {f}', file=LOG)
  cli.emit_json(fv, {k: res[k] for k in ('top1', 'top5', 'mean_class_acc',
                                         'steps', 'seconds', 'skipped',
                                         'skipped_train', 'workdir')})
  return 0


if __name__ == '__main__':
  cli.main_entry(define_flags, main, __doc__)
