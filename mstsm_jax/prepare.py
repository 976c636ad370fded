"""Builds a prepared dataset from the official archives or your own videos.

  python -m mstsm_jax.prepare --dataset=ucf101 --manual_dir=~/ucf \
      --data_dir=~/tfds [--workers=16] [--json]

Decodes with PyAV in parallel workers, stores JPEG frames (short side <=
256) in a tfds array_record dataset with every official split, and reports
counts per split and class and every file that failed (missing, empty,
undecodable, zero frames, listed twice) or was present but unlisted.
Re-running reuses a finished build; `--overwrite` rebuilds. The exit code is
1 when more than `--max_failures` videos failed.
"""
from __future__ import annotations

import collections
import os
import shutil
import sys

from absl import flags

from mstsm_jax import cli
from mstsm_jax.data import builder, layouts, synthetic

flags.DEFINE_enum('dataset', None, ['ucf101', 'hmdb51', 'custom',
                                    'synthetic'], 'which dataset')
flags.DEFINE_string('manual_dir', '', 'where the archives are extracted')
flags.DEFINE_string('data_dir', None, 'output tfds data dir')
flags.DEFINE_integer('workers', os.cpu_count() or 1, 'decoding processes')
flags.DEFINE_integer('short_side', 256, 'store frames with this short side '
                     '(0 = original size)')
flags.DEFINE_float('fps', 0.0, 'store this many frames per second (0 = all)')
flags.DEFINE_float('max_failures', 0.01, 'failed videos allowed: a fraction '
                   'of the listed videos if < 1, else a count')
flags.DEFINE_bool('overwrite', False, 'rebuild even if prepared')
flags.DEFINE_enum('flow', '', ['', 'tvl1', 'farneback'], 'also store optical '
                  'flow of every frame pair (TV-L1 as TSN, or Farneback)')
flags.DEFINE_string('train_list', '', 'custom: "path label" train list')
flags.DEFINE_string('test_list', '', 'custom: "path label" test list')
flags.DEFINE_string('classes_file', '', 'custom: class names, one per line')
flags.DEFINE_float('test_fraction', 0.2, 'custom without lists: test share')
flags.DEFINE_integer('num_videos', 600, 'synthetic: videos to generate')
flags.DEFINE_integer('seed', 0, 'synthetic: generator seed')
FLAGS = flags.FLAGS


def read_layout():
  if FLAGS.dataset == 'ucf101':
    return layouts.ucf101(FLAGS.manual_dir)
  if FLAGS.dataset == 'hmdb51':
    return layouts.hmdb51(FLAGS.manual_dir)
  return layouts.custom(FLAGS.manual_dir, FLAGS.train_list, FLAGS.test_list,
                        FLAGS.classes_file, FLAGS.test_fraction)


def report(meta: dict, source) -> dict:
  """The JSON report; also prints the human-readable tables to stderr."""
  classes = meta['classes']
  labels = meta['labels']
  out = {'dataset': FLAGS.dataset,
         'data_dir': str(builder.dataset_dir(FLAGS.data_dir, FLAGS.dataset)),
         'num_classes': len(classes), 'videos': len(source),
         'splits': {k: len(v) for k, v in meta['splits'].items()},
         'failed': meta['failed'], 'unlisted': meta['unlisted']}
  err = sys.stderr
  print(f'{FLAGS.dataset}: {len(source)} videos, {len(classes)} classes -> '
        f'{out["data_dir"]}', file=err)
  for name, members in meta['splits'].items():
    print(f'  {name:<8} {len(members):>7} videos', file=err)
  per_class = {}
  for name, members in meta['splits'].items():
    c = collections.Counter(labels[i] for i in members)
    per_class[name] = {cls: c[k] for k, cls in enumerate(classes)}
  out['per_class'] = per_class
  print('  per class (' + ', '.join(meta['splits']) + '):', file=err)
  for cls in classes:
    row = ' '.join(f'{per_class[s][cls]:>6}' for s in meta['splits'])
    print(f'    {cls:<32} {row}', file=err)
  for title, rows in (('failed', meta['failed']),
                      ('present but unlisted', meta['unlisted'])):
    print(f'  {title}: {len(rows)}', file=err)
    for r in rows:
      print(f'    {r["reason"]:<12} {r["file"]}'
            + (f' ({r["detail"]})' if r.get('detail') else ''), file=err)
  return out


def main(argv):
  del argv
  if not FLAGS.dataset or not FLAGS.data_dir:
    raise ValueError('--dataset and --data_dir are required')
  if FLAGS.dataset != 'synthetic' and not FLAGS.manual_dir:
    raise ValueError(f'--manual_dir is required for {FLAGS.dataset}: the '
                     'folder the archives were extracted to')
  out_dir = builder.dataset_dir(FLAGS.data_dir, FLAGS.dataset)
  if FLAGS.overwrite and out_dir.exists():
    shutil.rmtree(out_dir)
  if (out_dir / 'dataset_info.json').is_file():
    print(f'{out_dir} is already prepared (--overwrite rebuilds)',
          file=sys.stderr)
  elif FLAGS.dataset == 'synthetic':
    synthetic.build(FLAGS.data_dir, FLAGS.num_videos, FLAGS.seed)
  else:
    layout = read_layout()
    b = builder.make_builder(FLAGS.dataset, FLAGS.data_dir, layout=layout,
                             short_side=FLAGS.short_side, fps=FLAGS.fps,
                             workers=FLAGS.workers, flow=FLAGS.flow)
    b.download_and_prepare(download_config=builder.tfds.download.
                           DownloadConfig(manual_dir=FLAGS.manual_dir,
                                                        try_download_gcs=False))
  source, meta = builder.open_prepared(FLAGS.data_dir, FLAGS.dataset)
  out = report(meta, source)
  limit = FLAGS.max_failures
  allowed = limit * meta.get('listed', len(source)) if limit < 1 else limit
  cli.emit_json(out)
  if len(meta['failed']) > allowed:
    print(f'error: {len(meta["failed"])} videos failed, more than '
          f'--max_failures={limit}; the dataset was written without them',
          file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  cli.define_json()
  cli.run(main)
