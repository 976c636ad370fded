"""Kinetics-400/600/700: annotations/*.csv, videos found by name."""
from __future__ import annotations

import collections
import csv
import os
import pathlib

from mstsm_jax.data.layouts.base import (Layout, Listing, Reader, is_index,
                                         plural, require, scan_videos)
from mstsm_jax.errors import UsageError

COLUMNS = ('label', 'youtube_id', 'time_start', 'time_end')


def parse_csv(path: pathlib.Path, unlabelled: bool = False
              ) -> list[tuple[int, str, str]]:
  """A Kinetics CSV (label,youtube_id,time_start,time_end,split[,is_cc];
  UTF-8, with or without a byte-order mark): [(line, label, video stem
  <youtube_id>_<time_start:06d>_<time_end:06d>)]. `unlabelled`: the label
  column may be absent (Kinetics-600/700's test.csv), every label ''."""
  rows = []
  try:
    with open(path, encoding='utf-8-sig', newline='') as f:
      reader = csv.DictReader(f)
      header = reader.fieldnames or []
      missing = [c for c in COLUMNS if c not in header
                 and not (unlabelled and c == 'label')]
      if missing:
        raise UsageError(f'{path}:1: no column {", ".join(missing)} in '
                         f'{header}', 'the header is label,youtube_id,'
                         'time_start,time_end,split')
      for row in reader:
        no = reader.line_num
        if None in row or any(row.get(c) is None for c in header):
          n = len(header) - sum(row.get(c) is None for c in header) + len(
              row.get(None) or [])
          raise UsageError(f'{path}:{no}: {plural(n, "field")} where the '
                           f'header has {len(header)} '
                           f'({",".join(header)})',
                           'use the official CSV (a missing value is an '
                           'empty field between commas)')
        yt = row['youtube_id'].strip()
        start, end = row['time_start'].strip(), row['time_end'].strip()
        if not yt or not (is_index(start) and is_index(end)):
          raise UsageError(f'{path}:{no}: youtube_id {yt!r}, time_start '
                           f'{start!r}, time_end {end!r}: expected an id '
                           'and whole seconds', 'use the official CSV')
        rows.append((no, (row.get('label') or '').strip(),
                     f'{yt}_{int(start):06d}_{int(end):06d}'))
  except (csv.Error, UnicodeDecodeError) as e:
    raise UsageError(f'{path} is not a readable CSV ({str(e)[:80]})',
                     'save it as UTF-8 CSV') from e
  return rows


def read(manual_dir: str | os.PathLike) -> Layout:
  """Kinetics-400/600/700: annotations/{train,val,test}.csv (columns
  label,youtube_id,time_start,time_end,split[,is_cc]) and videos named
  <youtube_id>_<time_start:06d>_<time_end:06d>.<ext> anywhere under
  manual_dir (train/<label>/, train/ flat, MMAction2's videos_train/ or
  resized folders): a file is found by its name, its case kept (YouTube
  ids differ by case); a listed name found in two places is one line
  (which copy is the video is not guessed); video files no row names are
  reported as unlisted. Train is train1, val is test1; labelled test rows
  are test2 (train2 is train again); test rows without a label are stored
  as 'unlabelled'. Missing videos (deleted uploads) are reported per
  class, apart from corrupt ones."""
  manual_dir = pathlib.Path(manual_dir)
  hint = f'extract the annotations (annotations/*.csv) into {manual_dir}'
  rows = []
  for kind, role in (('train', 1), ('val', 2), ('test', 2)):
    path = manual_dir / 'annotations' / f'{kind}.csv'
    if kind != 'test':
      require(path, hint)
    elif not path.is_file():
      continue
    rows += [(path, no, label, stem, role, kind)
             for no, label, stem in parse_csv(path, kind == 'test')]
  classes = sorted({label for _, _, label, _, role, _ in rows if role == 1})
  index = {c: i for i, c in enumerate(classes)}
  # Labelled test rows (Kinetics-400's test labels were released) are
  # split 2's test, train being train2 too: val alone stays test1.
  two = any(kind == 'test' and label for _, _, label, _, _, kind in rows)
  listing = Listing(2 if two else 1, fold_case=False)  # ids: a-Z differ
  # Split 1; split 2's training rows; its test rows (a test row that is
  # a training video is then two roles in split 2: one line).
  seen = (set(), set(), set())
  for path, no, label, stem, role, kind in rows:
    if kind == 'test' and not label:
      role, cls = 3, -1
    elif label not in index:
      raise UsageError(f'{path}:{no}: class {label!r} has no training '
                       'videos in train.csv', 'use the CSVs of one release')
    else:
      cls = index[label]
    where, name = f'{path}:{no}', label if cls >= 0 else ''
    if kind == 'test' and cls >= 0:
      listing.add(seen[2], where, stem, cls, name, 1, 2)
      continue
    listing.add(seen[0], where, stem, cls, name, 0, role)
    if two and kind == 'train':
      listing.add(seen[1], where, stem, cls, name, 1, 1)
  copies = collections.defaultdict(list)
  for key, p in sorted(scan_videos(manual_dir, fold_case=False).items()):
    copies[pathlib.PurePosixPath(key).stem].append(p)
  twice = [(s, ps) for s, ps in copies.items()
           if len(ps) > 1 and s in listing.rows]
  if twice:  # which copy is the video is not ours to guess
    stem, ps = twice[0]
    raise UsageError(
        f'{plural(len(twice), "listed video")} found more than once under '
        f'{manual_dir}, e.g. {stem}: '
        + ' and '.join(p.relative_to(manual_dir).as_posix() for p in ps),
        'keep one copy of each video under --manual_dir (move the other '
        'folder, e.g. a resized copy, out of it)')
  return listing.layout(classes, {s: ps[0] for s, ps in copies.items()},
                        manual_dir, found_names=True,
                        lists=str(manual_dir / 'annotations'))


READERS = tuple(
    Reader(f'kinetics{n}', read, 'annotations/*.csv, videos found by name '
           'anywhere under --manual_dir',
           max_missing=0.1,  # deleted uploads are normal
           splits=('train1', 'test1', 'train2', 'test2', 'unlabelled'))
    for n in (400, 600, 700))
