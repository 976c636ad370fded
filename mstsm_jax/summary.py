"""Parameters and multiply-adds per stage, without allocating weights.

  python -m mstsm_jax.summary --config=configs/ucf101.py:mstsm_tfdem [--json]

Parameters are what torch's `sum(p.numel() for p in model.parameters())`
counts; GFLOPs are multiply-adds of the convolutions and dense layers (the
TSM and MSTSM papers' convention), counted from shapes under
`jax.eval_shape` (`mstsm_jax.models.cost`).
"""
from __future__ import annotations

from mstsm_jax import cli
from mstsm_jax.models import cost


def define_flags(fv):
  cli.define_config(fv)
  cli.define_json(fv)


def main(fv, argv):
  del argv
  config = fv['config'].value
  res = cost.of_config(config)
  print(cost.format_table(res, f'{config.variant}: {config.model.backbone}, '
                               f'{config.model.num_classes} classes'))
  cli.emit_json(fv, cost.to_json(res))


if __name__ == '__main__':
  cli.main_entry(define_flags, main, __doc__)
