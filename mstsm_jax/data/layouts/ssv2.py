"""Something-Something V2: labels/*.json and 20bn-something-something-v2/."""
from __future__ import annotations

import json
import os
import pathlib

from mstsm_jax.data.layouts.base import (Layout, Listing, Reader, find_dir,
                                         first_file, is_index, read_json,
                                         scan_videos)
from mstsm_jax.errors import UsageError


def parse_labels(path: pathlib.Path) -> list[str]:
  """labels.json, {"Template": "index"}: the classes in index order."""
  index = read_json(path)
  if not isinstance(index, dict) or not index:
    raise UsageError(f'{path}: expected an object {{"template": "index", '
                     f'...}}, got {type(index).__name__} '
                     f'{json.dumps(index)[:60]}',
                     'use the official labels.json')
  classes = [None] * len(index)
  for template, i in index.items():
    i = str(i)
    if not is_index(i) or int(i) >= len(classes) or \
        classes[int(i)] is not None:
      raise UsageError(f'{path}: index {i!r} of {template!r} is not '
                       f'one of 0..{len(classes) - 1} (or is repeated)',
                       'use the official labels.json')
    classes[int(i)] = template
  return classes


def parse_entries(path: pathlib.Path, classes,
                       labelled: bool) -> list[tuple[int, str, int]]:
  """train/validation/test.json: [(entry number, id, label)]; the class of
  an entry is its template without brackets (label -1 when unlabelled)."""
  items = read_json(path)
  if not isinstance(items, list):
    raise UsageError(f'{path}: expected a list of entries, got '
                     f'{type(items).__name__}',
                     'use the official annotation files')
  index = {c: i for i, c in enumerate(classes)}
  rows = []
  for n, item in enumerate(items):
    vid = item.get('id', '') if isinstance(item, dict) else ''
    if not isinstance(vid, (str, int)) or isinstance(vid, bool) or \
        not str(vid).strip():
      raise UsageError(f'{path}: entry {n} has no "id"'
                       + ('' if isinstance(item, dict) else
                          f' (it is {json.dumps(item)[:40]})'),
                       'use the official annotation files')
    label = -1
    if labelled:
      template = item.get('template', '')
      name = str(template).replace('[', '').replace(']', '')
      if not isinstance(template, str) or name not in index:
        raise UsageError(
            f'{path}: entry {n} (id {vid}): template {template!r} is not '
            'in labels.json', 'use the labels.json of the same release')
      label = index[name]
    rows.append((n, str(vid).strip(), label))
  return rows


def read(manual_dir: str | os.PathLike) -> Layout:
  """Something-Something V2: labels/{labels,train,validation,test}.json
  (or the older something-something-v2-*.json names) and
  20bn-something-something-v2/<id>.webm. Train is train1, validation is
  test1; the test set has no labels and is stored as 'unlabelled'. An id
  in two of the files is a UsageError naming both."""
  manual_dir = pathlib.Path(manual_dir)
  hint = ('extract the labels archive (labels/*.json) and the videos '
          f'(20bn-something-something-v2/) into {manual_dir}')

  def annotation(kind):
    return first_file(manual_dir, (f'labels/{kind}.json',
                                   f'something-something-v2-{kind}.json',
                                   f'labels/something-something-v2-{kind}'
                                   '.json'), hint)

  labels_file = annotation('labels')
  classes = parse_labels(labels_file)
  root = find_dir(manual_dir, '20bn-something-something-v2', hint)
  listing = Listing(1)
  for kind, role in (('train', 1), ('validation', 2), ('test', 3)):
    path = annotation(kind)
    seen = set()
    for n, vid, label in parse_entries(path, classes, role != 3):
      listing.add(seen, f'{path} entry {n}', f'{vid}.webm', label,
                  classes[label] if label >= 0 else '', 0, role)
  return listing.layout(classes, scan_videos(root), root,
                        lists=str(labels_file.parent))


READER = Reader('ssv2', read, 'labels/*.json + 20bn-something-something-v2/',
                splits=('train1', 'test1', 'unlabelled'))
