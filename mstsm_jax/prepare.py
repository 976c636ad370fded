r"""Builds a prepared dataset from the official archives or your own videos.

  python -m mstsm_jax.prepare --dataset=ucf101 --manual_dir=~/ucf \
      --data_dir=~/tfds [--workers=16] [--json]

Datasets: every layout registered in data/layouts.py (`--help` lists them
with what --manual_dir holds): ucf101, hmdb51, ssv2 (labels/*.json +
20bn-something-something-v2/), kinetics400|600|700 (annotations/*.csv,
videos found by name anywhere under --manual_dir), custom (class folders
or "path label" lists), synthetic and synthetic_hard (generated).

Decodes with PyAV in parallel workers, stores JPEG frames (short side <=
256) in a tfds array_record dataset with every official split, and reports
counts per split and class and every file that failed (empty,
undecodable, zero frames), was listed twice (stored once), was missing
(per class, with its own limit `--max_missing`: deleted uploads are normal
for Kinetics) or was present but unlisted. Something-Something V2's test
set has no labels: it is stored as the split 'unlabelled' (predict only),
never given labels.

Past one machine: run `--shard=i/N` for i = 0..N-1 (e.g. a SLURM array,
each on its own host, same flags otherwise), then the same command with
`--merge_shards=N` writes the dataset from the shards, record for record
what one machine would have written (README "Data").
A class without training videos (an empty class folder, a list whose
indices skip one) stops the build unless `--empty_classes=keep|drop`.
Re-running with the same inputs reuses a finished build or shard; other
inputs need `--overwrite`, and a merge refuses shards built from other
inputs. The exit code is 1 when more than `--max_failures` videos failed,
2 for bad input.
"""
from __future__ import annotations

import collections
import hashlib
import math
import os
import shutil

from absl import flags

from mstsm_jax import cli, cpu, files
from mstsm_jax.console import LOG
from mstsm_jax.data import builder, layouts
from mstsm_jax.data.layouts import plural

# Flags that define every build (a layout adds its own options): a finished
# build is reused only for the same.
BUILD_FLAGS = ('manual_dir', 'short_side', 'fps', 'flow', 'empty_classes')
OVERWRITE = 'pass --overwrite to rebuild it, or another --data_dir'


def define_flags(fv):
  def_ = dict(flag_values=fv)
  readers = layouts.REGISTRY.values()
  helps = collections.defaultdict(list)  # help -> layouts, in order
  for r in readers:
    helps[r.help].append(r.name)
  flags.DEFINE_enum('dataset', None, layouts.names(), 'which dataset: '
                    + '; '.join(f'{"|".join(n)}: {h}'
                                for h, n in helps.items()), **def_)
  flags.DEFINE_string('manual_dir', '', 'where the archives are extracted',
                      **def_)
  flags.DEFINE_string('data_dir', None, 'output tfds data dir', **def_)
  flags.DEFINE_integer('workers', cpu.cores(), 'decoding processes '
                       '(default: the CPUs this process may use)',
                       **def_)
  flags.DEFINE_integer('short_side', 256, 'store frames with this short '
                       'side (0 = original size)', **def_)
  flags.DEFINE_float('fps', 0.0, 'store this many frames per second '
                     '(0 = all)', **def_)
  flags.DEFINE_float('max_failures', None, 'failed videos allowed: a '
                     'fraction of the listed videos if < 1, else a count '
                     '(default: the dataset\'s, ' + ', '.join(sorted({
                         str(r.max_failures) for r in readers})) + ')',
                     **def_)
  flags.DEFINE_float('max_missing', -1, 'listed videos absent from disk '
                     'allowed, as --max_failures; -1 = the dataset\'s (' +
                     ', '.join(f'{r.name} {r.max_missing}' for r in readers
                               if r.max_missing is not None)
                     + ': deleted uploads are normal; else --max_failures)',
                     **def_)
  flags.DEFINE_bool('overwrite', False, 'rebuild even if prepared', **def_)
  flags.DEFINE_enum('flow', '', ['', 'tvl1', 'farneback'], 'also store '
                    'optical flow of every frame pair (TV-L1 as TSN, or '
                    'Farneback)', **def_)
  for o in layouts.options().values():  # each layout's own flags
    define = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer,
              float: flags.DEFINE_float}.get(type(o.default),
                                             flags.DEFINE_string)
    define(o.name, o.default, o.help, **def_)
  flags.DEFINE_enum('empty_classes', 'error', list(layouts.POLICIES),
                    'a class without training videos: stop (error), keep '
                    'it, or drop it and renumber the rest', **def_)
  flags.DEFINE_string('shard', '', 'i/N: decode only shard i (0-based) of N '
                      'into <data_dir>/<name>_shards/ (one task of a batch '
                      'array job); then --merge_shards=N', **def_)
  flags.DEFINE_integer('merge_shards', 0, 'write the dataset from the N '
                       'shards built with --shard (no decoding)', **def_)
  flags.mark_flags_as_required(['dataset', 'data_dir'], **def_)
  cli.define_json(fv)


def check_flags(fv, reader: layouts.Reader) -> None:
  """Every flag value prepare cannot use, refused in one line before any
  work (the one place to swap for a typed-flag validator)."""
  def refuse(flag, valid):
    raise cli.UsageError(f'--{flag}={fv[flag].value}', f'valid: {valid}')

  def finite(flag):
    return fv[flag].value is not None and math.isfinite(fv[flag].value)

  for flag in ('short_side', 'merge_shards'):
    if fv[flag].value < 0:
      refuse(flag, '0 or more' + (' (0 = original size)'
                                  if flag == 'short_side' else ''))
  if fv['workers'].value < 1:
    refuse('workers', '1 or more')
  if not finite('fps') or fv['fps'].value < 0:
    refuse('fps', '0 (all frames) or a positive frame rate')
  if fv['max_failures'].value is not None and (
      not finite('max_failures') or fv['max_failures'].value < 0):
    refuse('max_failures', 'a fraction (< 1) or a count, 0 or more')
  if not finite('max_missing') or (fv['max_missing'].value < 0 and
                                   fv['max_missing'].value != -1):
    refuse('max_missing', "a fraction (< 1) or a count, 0 or more; -1 = "
           "the dataset's")
  for name in layouts.options():
    if fv[name].present and name not in {o.name for o in reader.options}:
      raise cli.UsageError(
          f'--{name} is an option of {", ".join(layouts.users(name))}, not '
          f'of --dataset={reader.name}', f'drop --{name}')
  if fv['shard'].value and fv['merge_shards'].value:
    raise cli.UsageError('--shard with --merge_shards', 'build the shards '
                         'first (--shard=i/N), then merge in another run')
  if reader.generated and (fv['shard'].value or fv['merge_shards'].value):
    raise cli.UsageError(f'--shard/--merge_shards: {reader.name} is '
                         'generated, not decoded', 'build it in one run')
  if fv['shard'].value:
    parse_shard(fv['shard'].value)
  if not reader.generated and not fv['manual_dir'].value:
    raise cli.UsageError(f'--manual_dir is required for {reader.name}',
                         'pass the folder the archives were extracted to')
  if reader.check:
    reader.check(build_inputs(fv, reader))


def build_inputs(fv, reader: layouts.Reader) -> dict:
  """The flags that define this build (its layout's options included)."""
  names = [f for f in BUILD_FLAGS if not (reader.generated and
                                          f == 'manual_dir')]
  return {k: fv[k].value for k in names + [o.name for o in reader.options]}


def read_layout(fv, reader: layouts.Reader) -> layouts.Layout:
  """The dataset's layout with the class policy applied; a layout with no
  video on disk is a UsageError (before any decoding)."""
  manual_dir = fv['manual_dir'].value
  opts = {o.name: fv[o.name].value for o in reader.options}
  layout = layouts.apply_class_policy(reader.read(manual_dir, **opts),
                                      fv['empty_classes'].value,
                                      opts.get('classes_file', ''))
  undeclared = set(layout.split_members()) - set(reader.splits)
  if undeclared:  # a reader's bug, not the user's
    raise ValueError(f'layout {reader.name} wrote splits {sorted(undeclared)}'
                     f' it does not declare ({", ".join(reader.splits)})')
  if not layout.entries:
    raise cli.UsageError(f'--dataset={reader.name}: the layout lists no '
                         f'video ({layout.lists or manual_dir})',
                         'check the lists, or the folders under '
                         '--manual_dir')
  empty = [s for s, members in layout.split_members().items()
           if s.startswith('train') and not members]
  if empty:
    raise cli.UsageError(
        f'--dataset={reader.name}: split {empty[0]} has no training video '
        f'({layout.lists or manual_dir})',
        'check the training list (an empty file, or every line commented '
        'out?)')
  if not any(e.path for e in layout.entries):
    first = next((p['file'] for p in layout.problems
                  if p['reason'] == 'missing'), '')
    raise cli.UsageError(
        f'--dataset={reader.name}: none of the '
        f'{plural(len(layout.entries), "listed video")} is under '
        f'--manual_dir={manual_dir} (e.g. {first})',
        'pass the folder the videos were extracted to (list paths are '
        'relative to it)')
  return layout


def reuse(path, inputs: dict, what: str, hint: str = OVERWRITE) -> bool:
  """True when `path` holds a finished build from `inputs`, False when it
  holds none; a build from other inputs is a UsageError naming the fields
  that differ (`files.check_same_inputs`)."""
  if not (path / 'dataset_info.json').is_file():
    return False
  record = path / builder.INPUTS
  if not record.is_file():  # built before the record: its metadata
    meta = dict(builder.tfds.builder_from_directory(str(path)).info.metadata)
    files.write_json(record, {k: v for k, v in meta.get(
        'build_args', {}).items() if k in inputs})
  return files.check_same_inputs(record, inputs, what, hint)


def report(fv, meta: dict, source) -> dict:
  """The JSON report; also prints the human-readable tables to stderr."""
  dataset, classes = fv['dataset'].value, meta['classes']
  missing = [r for r in meta['failed'] if r['reason'] == 'missing']
  out = {'dataset': dataset,
         'data_dir': str(builder.dataset_dir(fv['data_dir'].value, dataset)),
         'num_classes': len(classes), 'videos': len(source),
         'splits': {k: len(v) for k, v in meta['splits'].items()},
         'failed': [r for r in meta['failed']
                    if r['reason'] not in ('missing', 'listed twice')],
         'missing': missing,
         'missing_per_class': dict(collections.Counter(
             r['class'] for r in missing if r.get('class'))),
         'listed_twice': [r for r in meta['failed']
                          if r['reason'] == 'listed twice'],
         'unlisted': meta['unlisted'],
         'warnings': meta.get('warnings', []),
         'dropped': meta.get('dropped', []),
         'empty_classes': meta.get('empty_classes', []),
         'dropped_classes': meta.get('dropped_classes', [])}
  per_class_table(out, meta, source)
  problem_lists(out, meta)
  return out


def per_class_table(out: dict, meta: dict, source) -> None:
  """Prints the splits and per-class counts; adds 'per_class' and
  'classes_without_training_videos' to `out`."""
  classes, labels = meta['classes'], meta['labels']
  print(f'{out["dataset"]}: {plural(len(source), "video")}, '
        f'{plural(len(classes), "class", "classes")} -> {out["data_dir"]}',
        file=LOG)
  for name, members in meta['splits'].items():
    print(f'  {name:<8} {len(members):>7} video{"s" * (len(members) != 1)}',
          file=LOG)
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
  # Per training split: a class trained in split 2 but not in split 1 is
  # one split 1's model never sees.
  lacking = {c: [s for s in per_class if s.startswith('train')
                 and not per_class[s][c]] for c in classes}
  untrained = [c for c in classes if lacking[c]]
  out['classes_without_training_videos'] = untrained
  splits = sum(s.startswith('train') for s in per_class)
  for title, names in (('kept without training videos (--empty_classes='
                        'keep)', out['empty_classes']),
                       ('dropped (--empty_classes=drop)',
                        out['dropped_classes']),
                       ('without a decodable training video',
                        [c + (f' ({", ".join(lacking[c])})' if splits > 1
                              else '') for c in untrained
                         if c not in out['empty_classes']])):
    if names:
      print(f'  classes {title}: {", ".join(names)}', file=LOG)


def problem_lists(out: dict, meta: dict) -> None:
  """Prints every video the build did not store as listed, by reason."""
  if 'unlabelled' in meta['splits']:
    n = len(meta['splits']['unlabelled'])
    print(f'  unlabelled: {plural(n, "video")} stored without labels '
          '(predict only; not in any train or test split)', file=LOG)
  if out['missing_per_class']:
    print('  missing per class: ' + ', '.join(
        f'{c} {n}' for c, n in sorted(out['missing_per_class'].items(),
                                      key=lambda x: -x[1])), file=LOG)
  warned = collections.defaultdict(list)
  for w in out['warnings']:
    warned[w['reason']].append(w)
  for title, rows in (('failed', out['failed']), ('missing', out['missing']),
                      ('listed twice, stored once', out['listed_twice']),
                      ('frame count differs from the list',
                       warned['frame count']),
                      ('truncated, the decoded frames kept',
                       warned['truncated']),
                      ('frames of mixed sizes, resized to the first',
                       warned['mixed sizes']),
                      ('present but unlisted', meta['unlisted']),
                      ('in a dropped class', out['dropped'])):
    if rows or title in ('failed', 'missing', 'present but unlisted'):
      print(f'  {title}: {len(rows)}', file=LOG)
    for r in rows:
      print(f'    {r["reason"]:<12} {r["file"]}'
            + (f' ({r["detail"]})' if r.get('detail') else ''), file=LOG)




def parse_shard(text: str) -> tuple[int, int]:
  """'i/N' -> (i, N), 0 <= i < N."""
  i, _, n = text.partition('/')
  if not (layouts.is_index(i) and layouts.is_index(n)
          and 0 <= int(i) < int(n)):
    raise cli.UsageError(f'--shard={text}', 'write i/N with 0 <= i < N, '
                         'e.g. --shard=$SLURM_ARRAY_TASK_ID/16')
  return int(i), int(n)


def build(fv, data_dir, layout, inputs, **extra):
  """Decodes (or, with shard_dir=, merges) `layout` into a tfds dataset
  under `data_dir`, then records its inputs; returns the builder."""
  b = builder.make_builder(fv['dataset'].value, str(data_dir), layout=layout,
                           short_side=fv['short_side'].value,
                           fps=fv['fps'].value, workers=fv['workers'].value,
                           flow=fv['flow'].value, build_args=inputs, **extra)
  b.download_and_prepare(download_config=builder.tfds.download.
                         DownloadConfig(manual_dir=fv['manual_dir'].value,
                                        try_download_gcs=False))
  files.write_json(os.path.join(b.data_dir, builder.INPUTS), inputs)
  return b


def listing(layout: layouts.Layout) -> str:
  """A digest of what the layout lists: each video's name, size on disk
  (or missing), label and splits, and the frame counts rawframe lists
  give. A video added, removed or replaced, or a list line changed, is a
  changed input of the build."""
  h = hashlib.sha256()
  for e in layout.entries:
    size = os.path.getsize(e.path) if e.path and os.path.isfile(e.path) \
        else (-2 if e.path else -1)
    h.update(repr((e.name, size, e.label, e.class_name, e.roles,
                   e.listed_frames)).encode())
  h.update(repr(layout.classes).encode())
  return h.hexdigest()[:16]


def build_shard(fv, reader, inputs, layout) -> int:
  """One shard of a distributed build (or the same shard again, reused
  when built from the same inputs); reports what it decoded."""
  k, n = parse_shard(fv['shard'].value)
  root = builder.shard_dir(fv['data_dir'].value, reader.name) / f'{k}-of-{n}'
  path = root / reader.builder_name / builder.VERSION
  if fv['overwrite'].value and path.exists():
    shutil.rmtree(path)
  if reuse(path, inputs, f'shard {k}/{n} ({path})'):
    print(f'shard {k}/{n} is already built from these inputs (--overwrite '
          'rebuilds)', file=LOG)
  else:
    present = [i for i, e in enumerate(layout.entries) if e.path]
    if not any(i % n == k for i in present):
      raise cli.UsageError(f'--shard={k}/{n}: shard {k} has no video to '
                           f'decode ({plural(len(present), "video")} in all)',
                           f'use at most {len(present)} shards')
    build(fv, root, layout, inputs, shard=(k, n))
  meta = dict(builder.tfds.builder_from_directory(str(path)).info.metadata)
  failed = meta.get('decode_failed', {})
  print(f'shard {k}/{n}: {plural(len(meta["videos"]), "video")} decoded, '
        f'{len(failed)} failed -> {path}; when all {n} are built: '
        f'prepare ... --merge_shards={n}', file=LOG)
  cli.emit_json(fv, {'shard': [k, n], 'videos': len(meta['videos']),
                     'failed': list(failed.values()), 'data_dir': str(path)})
  return 0


def merge_shards(fv, reader, inputs) -> dict:
  """The builder arguments that write the dataset from its shards, once
  every shard is built from the same inputs as this command."""
  n = fv['merge_shards'].value
  shard_root = builder.shard_dir(fv['data_dir'].value, reader.name)
  for k, path in enumerate(builder.shard_paths(shard_root,
                                               reader.builder_name, n)):
    reuse(path, inputs, f'shard {k} of {n} ({path})',
          f'rebuild it: prepare --shard={k}/{n} --overwrite with the flags '
          'of this merge, or merge with the flags it was built with')
  return dict(shard_dir=str(shard_root), num_shards=n)


def limits(fv, reader, out: dict, listed: int) -> int:
  """1 when more videos failed or are missing than allowed, else 0."""
  max_failures = fv['max_failures'].value
  if max_failures is None:
    max_failures = reader.max_failures
  max_missing = fv['max_missing'].value
  if max_missing == -1:
    max_missing = max_failures if reader.max_missing is None \
        else reader.max_missing
  code = 0
  for rows, flag, limit, what in (
      (out['failed'], 'max_failures', max_failures,
       'failed (corrupt or unreadable)'),
      (out['missing'], 'max_missing', max_missing,
       'is missing' if len(out['missing']) == 1 else 'are missing')):
    allowed = limit * listed if limit < 1 else limit
    if len(rows) > allowed:
      print(f'error: {plural(len(rows), "video")} {what}, more than --{flag}='
            f'{limit:g}; the dataset was written without them', file=LOG)
      code = 1
  return code


def main(fv, argv):
  del argv
  reader = layouts.get(fv['dataset'].value)
  check_flags(fv, reader)
  # The lists are read first (bad lists stop here, before decoding): what
  # they name is an input of the build as much as the flags are.
  layout = read_layout(fv, reader)
  inputs = {**build_inputs(fv, reader), 'listing': listing(layout)}
  if fv['shard'].value:
    return build_shard(fv, reader, inputs, layout)
  data_dir = fv['data_dir'].value
  out_dir = builder.dataset_dir(data_dir, reader.name)
  if fv['overwrite'].value and out_dir.exists():
    shutil.rmtree(out_dir)
  if reuse(out_dir, inputs, str(out_dir)):
    print(f'{out_dir} is already prepared (--overwrite rebuilds)', file=LOG)
  else:
    shards = merge_shards(fv, reader, inputs) if fv['merge_shards'].value \
        else {}
    build(fv, data_dir, layout, inputs, **shards)
  source, meta = builder.open_prepared(data_dir, reader.name)
  out = report(fv, meta, source)
  cli.emit_json(fv, out)
  return limits(fv, reader, out, meta.get('listed', len(source)))


if __name__ == '__main__':
  cli.main_entry(define_flags, main, __doc__)
