"""Evaluation: multi-view video accuracy, confusion matrix, saved scores.

  python -m mstsm_jax.evaluate --workdir=DIR [--checkpoint=latest|best|STEP]
      [--views=1x1|10x3] [--split=N] [--data_dir=DIR] [--json]

Views are `CLIPSxCROPS`: CLIPS temporal clips (offsets inside each segment)
x CROPS spatial crops (1 center or 3 along the long side); a video's score is
the mean of its views' scores (TSM's test protocol). The latest checkpoint's
report goes to DIR/eval/test<split>_<views>/ (where `train` writes its final
one); any other checkpoint's to DIR/eval/test<split>_<views>_step<N>/:
metrics.json, per_class.csv, confusion.csv and confusion.png, scores.npz
(video names, labels, scores) for late fusion, tfdem_maps.png.
"""
from __future__ import annotations

import time

from absl import flags

from mstsm_jax import cli, modeldir
from mstsm_jax.console import LOG
from mstsm_jax.data import pipeline
from mstsm_jax.evaluation import evaluator
from mstsm_jax.files import check_writable
from mstsm_jax.training import sharding, steps


def define_flags(fv):
  flags.DEFINE_string('workdir', None, 'model directory (training workdir)',
                      flag_values=fv)
  flags.DEFINE_string('checkpoint', '', 'latest (default), best or a step',
                      flag_values=fv)
  flags.DEFINE_string('views', '', 'CLIPSxCROPS, default config.eval.views',
                      flag_values=fv)
  flags.DEFINE_integer('split', 0, 'official split (default: the trained)',
                       flag_values=fv)
  flags.DEFINE_string('data_dir', '', 'override config.data.data_dir',
                      flag_values=fv)
  flags.mark_flag_as_required('workdir', flag_values=fv)
  cli.define_json(fv)


def run_config(fv):
  """The run's saved config with this evaluation's split and data."""
  config = modeldir.read_config(fv['workdir'].value)
  if fv['split'].value:
    config.data.split = fv['split'].value
  if fv['data_dir'].value:
    config.data.data_dir = fv['data_dir'].value
  return config


def main(fv, argv):
  del argv
  workdir = fv['workdir'].value
  config = run_config(fv)
  views = evaluator.parse_views(fv['views'].value or config.eval.views)
  split = pipeline.open_split(config.data, train=False)
  modeldir.check_same_classes(
      workdir, config.model.num_classes, split.classes,
      config.data.data_dir or config.data.dataset)
  _, channels, variables, step = modeldir.load_variables(
      workdir, fv['checkpoint'].value)
  out_dir = evaluator.report_dir(
      workdir, config, views,
      None if step == modeldir.resolve_step(workdir, 'latest') else step)
  check_writable(out_dir, 'evaluation folder')
  run = steps.setup(config, sharding.make_mesh(), channels=channels)
  t0 = time.time()
  res = evaluator.full_report(run.eval_step, run.model,
                              run.replicate(variables), split, config,
                              run.mesh, views, out_dir)
  res.update(step=step, views=f'{views[0]}x{views[1]}',
             split=config.data.split, seconds=round(time.time() - t0, 1),
             report_dir=str(out_dir))
  print(f'{out_dir.name} @ step {step}: {evaluator.format_result(res)}',
        file=LOG)
  for f in res.get('files', []):
    print(f'  wrote {f}', file=LOG)
  cli.emit_json(fv, res)


if __name__ == '__main__':
  cli.main_entry(define_flags, main, __doc__)
