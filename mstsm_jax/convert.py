r"""PyTorch checkpoints -> a model directory (orbax), with numeric parity.

  python -m mstsm_jax.convert --input=TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth \
      --config=configs/ucf101.py:mstsm_tfdem --output=ckpt/tsm_k400 \
      [--classes_file=classInd.txt] [--allow_partial] [--strict] [--json]

Any backbone that declares a converter name map (`Backbone.converter`):
built in, torchvision, official TSM and MMAction2 ResNet-50/101 files and
torchvision's efficientnet_b0 (`--config.model.backbone=efficientnet_b0`);
the format is detected (`--format`). MSTSM's extra conv1 inputs start at
zero, TFDEM starts fresh, a classifier of another class count is
re-initialised. Any other tensor that would stay at its init, go unused or
not fit stops the conversion (exit 2) with a summary of what the file looks
like; `--allow_partial` converts anyway. `mstsm_jax.models.pytorch` does the work.
"""
from __future__ import annotations

import pathlib

import jax
from absl import flags

from mstsm_jax import cli, modeldir
from mstsm_jax.console import LOG
from mstsm_jax.data.layouts import read_class_names
from mstsm_jax.models import fit, pytorch


def define_flags(fv):
  cli.define_config(fv)
  cli.define_json(fv)
  flags.DEFINE_string('input', None, 'PyTorch .pth file', flag_values=fv)
  flags.DEFINE_enum('format', 'auto', pytorch.formats(),
                    'checkpoint key format', flag_values=fv)
  flags.DEFINE_string('output', None, 'model directory to write (new)',
                      flag_values=fv)
  flags.DEFINE_string('classes_file', '', 'class names (one per line, or '
                      'classInd.txt) for predict', flag_values=fv)
  flags.DEFINE_bool('allow_partial', False, 'convert even when backbone '
                    'tensors stay at init or checkpoint tensors go unused',
                    flag_values=fv)
  flags.DEFINE_bool('strict', False, 'also refuse a re-initialised or '
                    'missing classifier (only TFDEM may be new)',
                    flag_values=fv)
  flags.mark_flags_as_required(['input', 'output'], flag_values=fv)


def class_names(path: str, num_classes: int) -> list[str]:
  names = read_class_names(pathlib.Path(path), numbered=True)
  if len(names) != num_classes:
    raise cli.UsageError(f'{path} has {len(names)} classes, the model '
                         f'{num_classes}',
                         'pass the class list of the config\'s dataset')
  return names


def main(fv, argv):
  del argv
  config = fv['config'].value
  out = fv['output'].value
  modeldir.check_new_model_dir(out)
  names = (class_names(fv['classes_file'].value, config.model.num_classes)
           if fv['classes_file'].value else None)
  variables, report, fmt = pytorch.convert(
      fv['input'].value, config, fv['format'].value, fv['strict'].value,
      fv['allow_partial'].value)
  print(f'{fv["input"].value}: {fmt} checkpoint -> {config.variant} '
        f'({config.model.num_classes} classes)', file=LOG)
  for line in fit.merge_report_lines(report):
    print(f'  {line}', file=LOG)
  if report['problems']:
    print('  --allow_partial: converted although '
          + '; '.join(report['problems']), file=LOG)
  modeldir.write_model(out, config, jax.device_get(variables))
  if names:
    modeldir.write_classes(out, names)
  print(f'wrote {out}', file=LOG)
  cli.emit_json(fv, {'format': fmt, 'output': out, **report})


if __name__ == '__main__':
  cli.main_entry(define_flags, main, __doc__)
