"""UCF-101: UCF101/<Class>/v_*.avi and ucfTrainTestlist/ (classInd.txt,
{train,test}list0{1,2,3}.txt); three splits."""
from __future__ import annotations

import os
import pathlib

from mstsm_jax.data.layouts.base import (Layout, Listing, Reader, find_dir,
                                         is_index, read_lines, require,
                                         scan_videos)
from mstsm_jax.errors import UsageError


def parse_class_index(path: pathlib.Path) -> list[str]:
  """UCF-101's classInd.txt: "1 ApplyEyeMakeup" lines, numbered 1..N."""
  classes = []
  for no, text in read_lines(path):
    idx, _, name = text.partition(' ')
    if not is_index(idx) or int(idx) != len(classes) + 1 or not name:
      raise UsageError(f'{path}:{no}: expected "{len(classes) + 1} '
                       f'ClassName", got {text!r}',
                       'use the official classInd.txt')
    classes.append(name.strip())
  if not classes:
    raise UsageError(f'{path} lists no class', 'use the official classInd.txt')
  return classes


def parse_split(path: pathlib.Path, classes, ind) -> list[tuple]:
  """A UCF-101 train/test list: [(line, 'Class/v_...avi', label)]; the
  label column (train lists) must agree with the folder's class."""
  by_lower = {c.lower(): i for i, c in enumerate(classes)}
  rows = []
  for no, text in read_lines(path):
    rel, _, lab = text.partition(' ')
    cls = rel.split('/')[0].lower()
    if '/' not in rel or cls not in by_lower:
      raise UsageError(f'{path}:{no}: class of {rel!r} is not in {ind}',
                       'use the official split files')
    label = by_lower[cls]
    if lab and lab.strip() != str(label + 1):
      raise UsageError(f'{path}:{no}: label {lab.strip()!r} does not '
                       f'match {classes[label]} = {label + 1} in {ind}',
                       'use the official split files')
    rows.append((no, rel, label))
  return rows


def read(manual_dir: str | os.PathLike) -> Layout:
  """UCF101/<Class>/v_*.avi + ucfTrainTestlist/{classInd,train,test}list."""
  manual_dir = pathlib.Path(manual_dir)
  hint = ('download UCF101TrainTestSplits-RecognitionTask.zip and extract it '
          f'into {manual_dir}')
  lists = find_dir(manual_dir, 'ucfTrainTestlist', hint)
  root = find_dir(manual_dir, 'UCF101',
                  f'extract UCF101.rar into {manual_dir}')
  ind = require(lists / 'classInd.txt', hint)
  classes = parse_class_index(ind)
  listing = Listing(3)
  for k in range(3):
    for role, kind in ((1, 'train'), (2, 'test')):
      path = require(lists / f'{kind}list0{k + 1}.txt', hint)
      seen = set()
      for no, rel, label in parse_split(path, classes, ind):
        listing.add(seen, f'{path}:{no}', rel, label, classes[label], k,
                    role)
  return listing.layout(classes, scan_videos(root), root)


SPLITS = tuple(f'{r}{k}' for k in (1, 2, 3) for r in ('train', 'test'))
READER = Reader('ucf101', read, 'UCF101/ + ucfTrainTestlist/', splits=SPLITS)
