r"""Builds a prepared dataset from the official archives or your own videos.

  python -m mstsm_jax.prepare --dataset=ucf101 --manual_dir=~/ucf \
      --data_dir=~/tfds [--workers=16] [--json]

Datasets: ucf101, hmdb51, ssv2 (labels/*.json + 20bn-something-something-
v2/), kinetics400|600|700 (annotations/*.csv, videos found by name anywhere
under --manual_dir), custom (class folders or "path label" lists),
synthetic.

Decodes with PyAV in parallel workers, stores JPEG frames (short side <=
256) in a tfds array_record dataset with every official split, and reports
counts per split and class and every file that failed (empty,
undecodable, zero frames, listed twice), was missing (per class, with its
own limit `--max_missing`: deleted uploads are normal for Kinetics) or was
present but unlisted. Something-Something V2's test set has no labels: it
is stored as the split 'unlabelled' (predict only), never given labels.

Past one machine: run `--shard=i/N` for i = 0..N-1 (e.g. a SLURM array,
each on its own host, same flags otherwise), then the same command with
`--merge_shards=N` writes the dataset from the shards, record for record
what one machine would have written (README "Data").
A class without training videos (an empty class folder, a list whose
indices skip one) stops the build unless `--empty_classes=keep|drop`.
Re-running with the same inputs reuses a finished build; other inputs need
`--overwrite`. The exit code is 1 when more than `--max_failures` videos
failed, 2 for bad input.
"""
from __future__ import annotations

import collections
import os
import pathlib
import shutil

from absl import flags

from mstsm_jax import cli
from mstsm_jax.console import LOG

# Inputs that define a build: a finished build is reused only for the same.
BUILD_ARGS = ('manual_dir', 'train_list', 'test_list', 'classes_file',
              'test_fraction', 'short_side', 'fps', 'flow', 'empty_classes',
              'num_videos', 'seed', 'rawframes', 'filename_tmpl')


def define_flags(fv):
  def_ = dict(flag_values=fv)
  flags.DEFINE_enum('dataset', None, ['ucf101', 'hmdb51', 'ssv2',
                                      'kinetics400', 'kinetics600',
                                      'kinetics700', 'custom', 'synthetic'],
                    'which dataset', **def_)
  flags.DEFINE_string('manual_dir', '', 'where the archives are extracted',
                      **def_)
  flags.DEFINE_string('data_dir', None, 'output tfds data dir', **def_)
  flags.DEFINE_integer('workers', os.cpu_count() or 1, 'decoding processes',
                       **def_)
  flags.DEFINE_integer('short_side', 256, 'store frames with this short '
                       'side (0 = original size)', **def_)
  flags.DEFINE_float('fps', 0.0, 'store this many frames per second '
                     '(0 = all)', **def_)
  flags.DEFINE_float('max_failures', 0.01, 'failed videos allowed: a '
                     'fraction of the listed videos if < 1, else a count',
                     **def_)
  flags.DEFINE_float('max_missing', -1, 'listed videos absent from disk '
                     'allowed, as --max_failures; -1 = 0.1 for Kinetics '
                     '(deleted uploads are normal), else --max_failures',
                     **def_)
  flags.DEFINE_bool('overwrite', False, 'rebuild even if prepared', **def_)
  flags.DEFINE_enum('flow', '', ['', 'tvl1', 'farneback'], 'also store '
                    'optical flow of every frame pair (TV-L1 as TSN, or '
                    'Farneback)', **def_)
  flags.DEFINE_string('train_list', '', 'custom: "path label" train list',
                      **def_)
  flags.DEFINE_string('test_list', '', 'custom: "path label" test list',
                      **def_)
  flags.DEFINE_string('classes_file', '', 'custom: class names, one per '
                      'line', **def_)
  flags.DEFINE_bool('rawframes', False, 'custom: the lists are TSM / '
                    'MMAction2 rawframe lists "frame_dir num_frames label" '
                    'over folders of extracted JPEG frames', **def_)
  flags.DEFINE_string('filename_tmpl', 'img_{:05d}.jpg', '--rawframes: '
                      'frame file names (TSM Kinetics img_{:05d}.jpg, '
                      'SSv2 {:06d}.jpg)', **def_)
  flags.DEFINE_float('test_fraction', 0.2, 'custom without lists: test '
                     'share', **def_)
  flags.DEFINE_enum('empty_classes', 'error', ['error', 'keep', 'drop'],
                    'a class without training videos: stop (error), keep '
                    'it, or drop it and renumber the rest', **def_)
  flags.DEFINE_string('shard', '', 'i/N: decode only shard i (0-based) of N '
                      'into <data_dir>/<name>_shards/ (one task of a batch '
                      'array job); then --merge_shards=N', **def_)
  flags.DEFINE_integer('merge_shards', 0, 'write the dataset from the N '
                       'shards built with --shard (no decoding)', **def_)
  flags.DEFINE_integer('num_videos', 600, 'synthetic: videos to generate',
                       **def_)
  flags.DEFINE_integer('seed', 0, 'synthetic: generator seed', **def_)
  flags.mark_flags_as_required(['dataset', 'data_dir'], **def_)
  cli.define_json(fv)


def read_layout(fv):
  from mstsm_jax.data import layouts
  v = {k: fv[k].value for k in ('dataset', 'manual_dir', 'train_list',
                                 'test_list', 'classes_file')}
  if v['dataset'] == 'ucf101':
    layout = layouts.ucf101(v['manual_dir'])
  elif v['dataset'] == 'hmdb51':
    layout = layouts.hmdb51(v['manual_dir'])
  elif v['dataset'] == 'ssv2':
    layout = layouts.ssv2(v['manual_dir'])
  elif v['dataset'].startswith('kinetics'):
    layout = layouts.kinetics(v['manual_dir'])
  else:
    rawframes = fv['rawframes'].value
    if rawframes and v['dataset'] != 'custom':
      raise cli.UsageError(f'--rawframes with --dataset={v["dataset"]}',
                           'frame folders come as --dataset=custom lists')
    if rawframes and fv['fps'].value:
      raise cli.UsageError(f'--fps={fv["fps"].value} with --rawframes',
                           'frame folders have no frame rate; drop --fps')
    layout = layouts.custom(v['manual_dir'], v['train_list'], v['test_list'],
                            v['classes_file'], fv['test_fraction'].value,
                            fv['filename_tmpl'].value if rawframes else '')
  return layouts.apply_class_policy(layout, fv['empty_classes'].value,
                                    v['classes_file'])


def report(fv, meta: dict, source) -> dict:
  """The JSON report; also prints the human-readable tables to stderr."""
  from mstsm_jax.data import builder
  dataset, classes, labels = fv['dataset'].value, meta['classes'], \
      meta['labels']
  missing = [r for r in meta['failed'] if r['reason'] == 'missing']
  out = {'dataset': dataset,
         'data_dir': str(builder.dataset_dir(fv['data_dir'].value, dataset)),
         'num_classes': len(classes), 'videos': len(source),
         'splits': {k: len(v) for k, v in meta['splits'].items()},
         'failed': [r for r in meta['failed'] if r['reason'] != 'missing'],
         'missing': missing,
         'missing_per_class': dict(collections.Counter(
             r['class'] for r in missing if r.get('class'))),
         'unlisted': meta['unlisted'],
         'warnings': meta.get('warnings', []),
         'dropped': meta.get('dropped', []),
         'empty_classes': meta.get('empty_classes', []),
         'dropped_classes': meta.get('dropped_classes', [])}
  print(f'{dataset}: {len(source)} videos, {len(classes)} classes -> '
        f'{out["data_dir"]}', file=LOG)
  for name, members in meta['splits'].items():
    print(f'  {name:<8} {len(members):>7} videos', file=LOG)
  per_class = {}
  for name, members in meta['splits'].items():
    if name == 'unlabelled':  # predict-only (SSv2's test set)
      continue
    c = collections.Counter(labels[i] for i in members)
    per_class[name] = {cls: c[k] for k, cls in enumerate(classes)}
  out['per_class'] = per_class
  print('  per class (' + ', '.join(per_class) + '):', file=LOG)
  for cls in classes:
    row = ' '.join(f'{per_class[s][cls]:>6}' for s in per_class)
    print(f'    {cls:<32} {row}', file=LOG)
  untrained = [c for c in classes if not any(
      per_class[s][c] for s in per_class if s.startswith('train'))]
  out['classes_without_training_videos'] = untrained
  for title, names in (('kept without training videos (--empty_classes='
                        'keep)', out['empty_classes']),
                       ('dropped (--empty_classes=drop)',
                        out['dropped_classes']),
                       ('without a decodable training video',
                        [c for c in untrained
                         if c not in out['empty_classes']])):
    if names:
      print(f'  classes {title}: {", ".join(names)}', file=LOG)
  if 'unlabelled' in meta['splits']:
    print(f'  unlabelled: {len(meta["splits"]["unlabelled"])} videos stored '
          'without labels (predict only; not in any train or test split)',
          file=LOG)
  if out['missing_per_class']:
    print('  missing per class: ' + ', '.join(
        f'{c} {n}' for c, n in sorted(out['missing_per_class'].items(),
                                      key=lambda x: -x[1])), file=LOG)
  for title, rows in (('failed', out['failed']), ('missing', missing),
                      ('frame count differs from the list',
                       [w for w in out['warnings']
                        if w['reason'] == 'frame count']),
                      ('truncated, the decoded frames kept',
                       [w for w in out['warnings']
                        if w['reason'] == 'truncated']),
                      ('present but unlisted', meta['unlisted']),
                      ('in a dropped class', out['dropped'])):
    if rows or title in ('failed', 'missing', 'present but unlisted'):
      print(f'  {title}: {len(rows)}', file=LOG)
    for r in rows:
      print(f'    {r["reason"]:<12} {r["file"]}'
            + (f' ({r["detail"]})' if r.get('detail') else ''), file=LOG)
  return out


def parse_shard(text: str) -> tuple[int, int]:
  """'i/N' -> (i, N), 0 <= i < N."""
  i, _, n = text.partition('/')
  if not (i.isdigit() and n.isdigit() and 0 <= int(i) < int(n)):
    raise cli.UsageError(f'--shard={text}', 'write i/N with 0 <= i < N, '
                         'e.g. --shard=$SLURM_ARRAY_TASK_ID/16')
  return int(i), int(n)


def build(fv, dataset, data_dir, layout, args, overwrite=False, **extra):
  """Decodes (or, with shard_dir=, merges) `layout` into a tfds dataset
  under `data_dir`; returns the builder."""
  from mstsm_jax.data import builder
  b = builder.make_builder(dataset, str(data_dir), layout=layout,
                           short_side=fv['short_side'].value,
                           fps=fv['fps'].value, workers=fv['workers'].value,
                           flow=fv['flow'].value, build_args=args, **extra)
  if overwrite and pathlib.Path(b.data_dir).exists():
    shutil.rmtree(b.data_dir)
  b.download_and_prepare(download_config=builder.tfds.download.
                         DownloadConfig(manual_dir=fv['manual_dir'].value,
                                        try_download_gcs=False))
  return b


def build_shard(fv, dataset, data_dir, args) -> int:
  """One shard of a distributed build; reports what it decoded."""
  from mstsm_jax.data import builder
  k, n = parse_shard(fv['shard'].value)
  b = build(fv, dataset, builder.shard_dir(data_dir, dataset) / f'{k}-of-{n}',
            read_layout(fv), args, fv['overwrite'].value, shard=(k, n))
  meta = dict(b.info.metadata)
  failed = meta.get('decode_failed', {})
  print(f'shard {k}/{n}: {len(meta["videos"])} videos decoded, '
        f'{len(failed)} failed -> {b.data_dir}; when all {n} are built: '
        f'prepare ... --merge_shards={n}', file=LOG)
  cli.emit_json(fv, {'shard': [k, n], 'videos': len(meta['videos']),
                     'failed': list(failed.values()),
                     'data_dir': str(b.data_dir)})
  return 0


def main(fv, argv):
  del argv
  from mstsm_jax.data import builder, synthetic
  dataset, data_dir = fv['dataset'].value, fv['data_dir'].value
  manual_dir = fv['manual_dir'].value
  if dataset != 'synthetic' and not manual_dir:
    raise cli.UsageError(f'--manual_dir is required for {dataset}',
                         'pass the folder the archives were extracted to')
  args = {k: fv[k].value for k in BUILD_ARGS}
  if (fv['shard'].value or fv['merge_shards'].value) and \
      dataset == 'synthetic':
    raise cli.UsageError('--shard/--merge_shards: synthetic is generated, '
                         'not decoded', 'build it in one run')
  if fv['shard'].value:
    return build_shard(fv, dataset, data_dir, args)
  out_dir = builder.dataset_dir(data_dir, dataset)
  if fv['overwrite'].value and out_dir.exists():
    shutil.rmtree(out_dir)
  if (out_dir / 'dataset_info.json').is_file():
    _, meta = builder.open_prepared(data_dir, dataset)
    before = meta.get('build_args', {})
    diff = [f'--{k}={before.get(k)!r} -> {args[k]!r}' for k in BUILD_ARGS
            if k in before and before[k] != args[k]]
    if diff:
      raise cli.UsageError(f'{out_dir} was prepared from other inputs: '
                           + ', '.join(diff),
                           'pass --overwrite to rebuild it, or another '
                           '--data_dir')
    print(f'{out_dir} is already prepared (--overwrite rebuilds)', file=LOG)
  elif dataset == 'synthetic':
    synthetic.build(data_dir, fv['num_videos'].value, fv['seed'].value,
                    build_args=args)
  else:
    layout = read_layout(fv)  # bad lists stop here, before any decoding
    merge = fv['merge_shards'].value
    shards = dict(shard_dir=str(builder.shard_dir(data_dir, dataset)),
                  num_shards=merge) if merge else {}
    if merge:  # every shard is there before anything is written
      builder.shard_paths(shards['shard_dir'], builder.NAMES[dataset], merge)
    build(fv, dataset, data_dir, layout, args, **shards)
  source, meta = builder.open_prepared(data_dir, dataset)
  out = report(fv, meta, source)
  cli.emit_json(fv, out)
  listed = meta.get('listed', len(source))
  max_missing = fv['max_missing'].value
  if max_missing < 0:
    max_missing = 0.1 if dataset.startswith('kinetics') else \
        fv['max_failures'].value
  code = 0
  for rows, flag, limit, what in (
      (out['failed'], 'max_failures', fv['max_failures'].value,
       'failed (corrupt or unreadable)'),
      (out['missing'], 'max_missing', max_missing, 'are missing')):
    allowed = limit * listed if limit < 1 else limit
    if len(rows) > allowed:
      print(f'error: {len(rows)} videos {what}, more than --{flag}='
            f'{limit}; the dataset was written without them', file=LOG)
      code = 1
  return code


if __name__ == '__main__':
  cli.main_entry(define_flags, main, __doc__)
