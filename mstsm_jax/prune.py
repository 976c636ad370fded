"""Similar-kernel pruning of a model directory (paper §3.5, Figures 7-8).

  python -m mstsm_jax.prune --checkpoint=DIR --output=DIR [--r_out=8]
      [--r_in=0] [--json]

The backbone declares its pruning rules (`Backbone.prune`); the ResNets':
conv1 of every bottleneck loses the C_out / R_out kernels nearest its
geometric-median kernel; `--r_in` also averages conv1's most similar
in-place input channels (`mstsm_jax.models.pruning`). Writes a smaller
dense model directory with its channel_spec.json; fine-tune it with
`train --config.init_from=OUTPUT`. OUTPUT must not already hold a model.
"""
from __future__ import annotations

import pathlib
import shutil

import jax
from absl import flags

from mstsm_jax import cli, modeldir
from mstsm_jax.console import LOG
from mstsm_jax.models import backbones, cost, pruning
from mstsm_jax.models.mstsm import build_model


def define_flags(fv):
  flags.DEFINE_string('checkpoint', None, 'model directory to prune',
                      flag_values=fv)
  flags.DEFINE_string('output', None, 'pruned model directory to write',
                      flag_values=fv)
  flags.DEFINE_integer('r_out', 8, 'drop C_out / r_out conv1 kernels '
                       '(0 = none)', flag_values=fv)
  flags.DEFINE_integer('r_in', 0, 'average C / r_in conv1 inputs into one '
                       '(0 = none)', flag_values=fv)
  flags.mark_flags_as_required(['checkpoint', 'output'], flag_values=fv)
  cli.define_json(fv)


def main(fv, argv):
  del argv
  src, out = fv['checkpoint'].value, fv['output'].value
  r_out, r_in = fv['r_out'].value, fv['r_in'].value
  pruning.check_ratios(r_out, r_in)
  modeldir.check_new_model_dir(out, src)
  config, channels, variables, step = modeldir.load_variables(src)
  spec = backbones.get(config.model.backbone)
  if spec.prune is None:
    raise cli.UsageError(f'{src} is a {spec.name} model, which declares no '
                         'pruning rules (Backbone.prune)',
                         f'prune a {" or ".join(backbones.prunable())} model')
  model = build_model(config.model, channels)
  channels = model.channels
  pruned, new_channels, _ = spec.prune(jax.device_get(variables), model,
                                       r_out, r_in)
  if new_channels == channels:  # a copy written as a pruned model
    raise cli.UsageError(
        f'--r_out={r_out} --r_in={r_in} removes nothing from {src}: no '
        'block has a kernel to drop or inputs to average at these ratios',
        'pass a smaller --r_out or --r_in (the default is --r_out=8)')
  before = cost.of_config(config, channels)
  after = cost.of_config(config, new_channels)
  print(f'{"stage":<8} {"params before":>14} {"after":>12} '
        f'{"GMACs before":>13} {"after":>8}', file=LOG)
  for st in before['stages']:
    pb, mb = before['stages'][st]
    pa, ma = after['stages'][st]
    print(f'{st:<8} {pb:>14,} {pa:>12,} {mb / 1e9:>13.3f} {ma / 1e9:>8.3f}',
          file=LOG)
  print(f'{"total":<8} {before["params"]:>14,} {after["params"]:>12,} '
        f'{before["macs_per_frame"] / 1e9:>13.3f} '
        f'{after["macs_per_frame"] / 1e9:>8.3f}  (GMACs per frame at '
        f'{before["image_size"]}x{before["image_size"]})', file=LOG)
  modeldir.write_model(out, config, pruned, new_channels, step)
  classes = pathlib.Path(src) / 'classes.json'
  if classes.is_file():
    shutil.copy(classes, pathlib.Path(out) / 'classes.json')
  print(f'wrote {out} (R_out={r_out}, R_in={r_in}); fine-tune with '
        f'--config.init_from={out}', file=LOG)
  cli.emit_json(fv, {
      'params_before': before['params'], 'params_after': after['params'],
      'gflops_before': round(before['macs_per_frame'] / 1e9, 4),
      'gflops_after': round(after['macs_per_frame'] / 1e9, 4),
      'stages': {st: {'params_before': before['stages'][st][0],
                      'params_after': after['stages'][st][0]}
                 for st in before['stages']},
      'output': out})


if __name__ == '__main__':
  cli.main_entry(define_flags, main, __doc__)
