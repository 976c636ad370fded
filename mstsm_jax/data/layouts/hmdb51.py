"""HMDB51: <class>/<video>.avi (or hmdb51_org/...) and
testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt; three splits."""
from __future__ import annotations

import os
import pathlib

from mstsm_jax.data.layouts import ucf101
from mstsm_jax.data.layouts.base import (Layout, Listing, Reader, find_dir,
                                         read_lines, require, scan_videos)
from mstsm_jax.errors import UsageError


def parse_split(path: pathlib.Path) -> list[tuple[int, str, int]]:
  """An HMDB51 split file: [(line, video name, role 0|1|2)]."""
  rows = []
  for no, text in read_lines(path):
    name, _, role = text.rpartition(' ')
    if role not in ('0', '1', '2') or not name.strip():
      raise UsageError(f'{path}:{no}: expected "<video>.avi <0|1|2>", '
                       f'got {text!r}', 'use the official split files')
    rows.append((no, name.strip(), int(role)))
  return rows


def read(manual_dir: str | os.PathLike) -> Layout:
  """<class>/<video>.avi (or hmdb51_org/...) + testTrainMulti_7030_splits."""
  manual_dir = pathlib.Path(manual_dir)
  hint = ('download test_train_splits.rar and extract it into '
          f'{manual_dir}')
  lists = find_dir(manual_dir, 'testTrainMulti_7030_splits', hint)
  root = manual_dir / 'hmdb51_org' if (manual_dir / 'hmdb51_org').is_dir() \
      else manual_dir
  suffix = '_test_split1.txt'
  classes = sorted(p.name[:-len(suffix)] for p in lists.glob(f'*{suffix}'))
  if not classes:
    raise UsageError(f'no *{suffix} files in {lists}', hint)
  listing = Listing(3)
  for label, cls in enumerate(classes):
    for k in range(3):
      path = require(lists / f'{cls}_test_split{k + 1}.txt', hint)
      seen = set()
      for no, name, role in parse_split(path):
        listing.add(seen, f'{path}:{no}', f'{cls}/{name}', label, cls, k,
                    role)
  videos = {k: v for k, v in scan_videos(root).items()
            if not k.startswith('testtrainmulti_7030_splits/')}
  return listing.layout(classes, videos, root)


READER = Reader('hmdb51', read, '<class>/*.avi (or hmdb51_org/) + '
                'testTrainMulti_7030_splits/', splits=ucf101.SPLITS)
