"""Your own videos: a folder per class, or "path label" lists (TSM /
MMAction2 style, also rawframe lists over folders of extracted frames)."""
from __future__ import annotations

import collections
import os
import pathlib
import re
import zlib

from mstsm_jax.data import video
from mstsm_jax.data.layouts.base import (VIDEO_EXTS, Layout, Listing, Option,
                                         Reader, is_index, read_class_names,
                                         read_lines, require, scan_videos)
from mstsm_jax.errors import UsageError

INDEX = re.compile(r'[+-]?\d+', re.ASCII)
NUMBER = re.compile(r'[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?', re.ASCII)
MAX_CLASSES = 100_000


def parse_list(path: pathlib.Path, rawframes: bool = False):
  """Video list lines "relative/path.mp4 label" (label a class index or a
  class name; absent: the first folder is the class). A path with spaces
  needs a tab before the label. Returns [(line, path, label, kind,
  num_frames)] with kind 'index' | 'name' | 'folder'; a line that could be
  read two ways is a UsageError. `rawframes`: TSM / MMAction2 frame lists,
  "frame_dir num_frames label" (num_frames None for video lists)."""
  rows = []
  for no, text in read_lines(path):
    fields = ([f.strip() for f in text.split('\t') if f.strip()]
              if '\t' in text else text.split())
    frames = None
    if rawframes:
      if len(fields) != 3 or not is_index(fields[1]):
        raise UsageError(
            f'{path}:{no}: {text!r} is not "frame_dir num_frames label"',
            'a rawframe list (TSM, MMAction2) has three fields (separate '
            'them with tabs if the folder name has spaces); video lists '
            'are read without --rawframes')
      frames = int(fields.pop(1))
      fields[0] = fields[0].rstrip('/')
    elif len(fields) > 2:
      raise UsageError(
          f'{path}:{no}: {len(fields)} fields in {text!r}; a list line is '
          '"relative/path label"',
          'separate the label with a tab if the path has spaces; for TSM '
          'frame lists ("dir num_frames label") pass --rawframes')
    rel, lab = (fields + [''])[:2]
    if '\t' not in text and lab.lower().endswith(VIDEO_EXTS):
      raise UsageError(f'{path}:{no}: {text!r} reads as the path {rel!r} '
                       f'with the label {lab!r}, or as one path with a space',
                       'put a tab between the path and its label (a path '
                       'with spaces needs one)')
    if not rel:
      raise UsageError(f'{path}:{no}: {text!r} names no video',
                       'a list line is "relative/path label"')
    kind = 'folder' if not lab else 'name'
    if NUMBER.fullmatch(lab):
      if not INDEX.fullmatch(lab) or not 0 <= int(lab) < MAX_CLASSES:
        raise UsageError(f'{path}:{no}: label {lab!r} is not a class index '
                         f'(0, 1, ... below {MAX_CLASSES})',
                         'labels are 0-based class indices or class names')
      kind = 'index'
    rows.append((no, rel, lab, kind, frames))
  return rows


def scan_frame_folders(root: pathlib.Path, filename_tmpl: str
                       ) -> dict[str, pathlib.Path]:
  """Lower-cased relative folder -> folder, for every folder holding a file
  named like `filename_tmpl`; a template no file under `root` matches is a
  UsageError naming it and a frame file that is there."""
  hint = 'TSM writes img_{:05d}.jpg, SSv2 frames {:06d}.jpg'
  try:
    pattern = video.frame_pattern(filename_tmpl)
  except ValueError as e:
    raise UsageError(str(e), hint) from e
  found, example = {}, ''
  for dirpath, _, files in os.walk(root):
    if any(pattern.match(f) for f in files):
      p = pathlib.Path(dirpath)
      found[p.relative_to(root).as_posix().lower()] = p
    example = example or next((f for f in sorted(files) if f.lower().endswith(
        ('.jpg', '.jpeg', '.png'))), '')
  if not found:
    raise UsageError(
        f'--filename_tmpl={filename_tmpl} matches no frame file under '
        f'{root}' + (f' (there are files like {example})' if example else
                     ' (it holds no .jpg or .png file)'),
        'pass the template of your frame names, e.g. --filename_tmpl='
        + (re.sub(r'\d+', lambda m: f'{{:0{len(m.group())}d}}', example, 1)
           if example else 'img_{:05d}.jpg'))
  return found


def hash_split(names: list[str], test_fraction: float) -> dict[str, int]:
  """name -> role (1 train, 2 test) of one class: a stable hash of the name
  puts about `test_fraction` in test, and a class of two or more videos
  keeps at least one on each side (the one whose hash is nearest)."""
  h = {n: zlib.crc32(n.encode()) % 1000 for n in names}
  roles = {n: 2 if h[n] < test_fraction * 1000 else 1 for n in names}
  if len(names) >= 2 and test_fraction > 0:
    if all(r == 2 for r in roles.values()):
      roles[max(names, key=lambda n: (h[n], n))] = 1
    elif all(r == 1 for r in roles.values()):
      roles[min(names, key=lambda n: (h[n], n))] = 2
  return roles


def read(manual_dir: str | os.PathLike, train_list: str = '',
           test_list: str = '', classes_file: str = '',
           test_fraction: float = 0.2, rawframes: bool = False,
           filename_tmpl: str = 'img_{:05d}.jpg') -> Layout:
  """Your videos: a folder per class, or TSM-style list files.

  With `train_list`/`test_list` ("relative/path.mp4 label", paths relative
  to manual_dir; the labels of all lines are class indices, or all class
  names, or absent: then the first folder is the class) those define split
  1. Without lists every folder of manual_dir is a class (an empty one
  too) and a stable hash of a video's name puts `test_fraction` of each
  class in test1 (`hash_split`). `classes_file`: one class name per line
  (index order); otherwise the sorted class folders or names, or
  `class_000`... for indices. `rawframes` (with lists only): the lists are
  rawframe lists ("frame_dir num_frames label") over folders of frames
  named `filename_tmpl`.
  """
  root = pathlib.Path(manual_dir)
  if not root.is_dir():
    raise UsageError(f'manual_dir {root} does not exist',
                     'pass the folder that holds your videos')
  classes = None
  if classes_file:
    classes = read_class_names(require(
        pathlib.Path(classes_file), 'pass a file with one class name per '
        'line', 'classes file'))
  if rawframes:
    if not (train_list or test_list):
      raise UsageError('--rawframes needs --train_list/--test_list',
                       'pass the "frame_dir num_frames label" lists')
    return _from_lists(root, scan_frame_folders(root, filename_tmpl),
                       train_list, test_list, classes, classes_file,
                       filename_tmpl)
  videos = scan_videos(root)
  if train_list or test_list:
    return _from_lists(root, videos, train_list, test_list, classes,
                       classes_file)
  folders = sorted(p.name for p in root.iterdir()
                   if p.is_dir() and not p.name.startswith('.'))
  cases = collections.Counter(f.lower() for f in folders)
  twin = next((f for f in folders if cases[f.lower()] > 1), None)
  if twin:  # their videos would go to one class, or none
    raise UsageError(f'{root}: class folders '
                     + ' and '.join(f'{f}/' for f in folders
                                    if f.lower() == twin.lower())
                     + ' differ only in case', 'merge them into one folder')
  classes = classes or folders
  index = {c.lower(): i for i, c in enumerate(classes)}
  members = {}  # class index -> relative names
  for key, p in sorted(videos.items()):
    cls = key.split('/')[0]
    if '/' in key and cls in index:  # else: left in `videos`, unlisted
      members.setdefault(index[cls], []).append(
          (key, p.relative_to(root).as_posix()))
  listing, seen = Listing(1), set()
  for label, names in sorted(members.items()):
    roles = hash_split([rel for _, rel in names], test_fraction)
    for key, rel in names:
      listing.add(seen, str(root), rel, label, classes[label], 0, roles[rel])
  return listing.layout(classes, videos, root,
                        origin={c: f'{root / c}/' for c in classes})


def under(root: pathlib.Path, rel: str, where: str) -> str:
  """A list's path as the scan names it: relative to `root`, without
  './' (an absolute path or './x' was reported missing and unlisted)."""
  p = pathlib.Path(os.path.normpath(rel))
  if p.is_absolute():
    try:
      p = p.relative_to(root.absolute())
    except ValueError:
      raise UsageError(f'{where}: {rel} is not under --manual_dir={root}',
                       'list paths relative to --manual_dir') from None
  return p.as_posix()


def _from_lists(root, videos, train_list, test_list, classes,
                classes_file, filename_tmpl: str = '') -> Layout:
  rows = []
  for role, lst in ((1, train_list), (2, test_list)):
    if lst:
      path = pathlib.Path(lst)
      require(path, 'pass an existing list file')
      rows += [(role, path, no, under(root, rel, f'{path}:{no}'), *rest)
               for no, rel, *rest in parse_list(path, bool(filename_tmpl))]
  kinds = {}
  for role, path, no, rel, lab, kind, _ in rows:
    kinds.setdefault('index' if kind == 'index' else 'name',
                     (path, no, lab))
  if len(kinds) > 1:
    (p1, n1, l1), (p2, n2, l2) = kinds['index'], kinds['name']
    raise UsageError(
        f'{p2}:{n2}: label {l2 or "(none: the folder)"!r} is a class name '
        f'but {p1}:{n1} uses the index {l1}; a list uses class indices or '
        'class names, not both',
        'write every label the same way')
  if classes is None:
    if 'index' in kinds:
      n = max(int(lab) for *_, lab, _, _ in rows) + 1
      classes = [f'class_{i:03d}' for i in range(n)]
    else:
      classes = sorted({lab or rel.split('/')[0]
                        for _, _, _, rel, lab, _, _ in rows})
      first = {}
      for _, path, no, rel, lab, _, _ in rows:
        name = lab or rel.split('/')[0]
        prev = first.setdefault(name.lower(), (name, f'{path}:{no}'))
        if prev[0] != name:  # one class, or two no folder tells apart
          raise UsageError(f'{path}:{no}: class {name!r}, but {prev[1]} '
                           f'writes it {prev[0]!r}: two classes no folder '
                           'tells apart, or one', 'write each class name '
                           'the same way on every line')
  listing, origin = Listing(1), {}
  seen = set()  # one split: a video in both lists is listed twice
  for role, path, no, rel, lab, kind, frames in rows:
    if kind == 'index':
      label = int(lab)
      if label >= len(classes):
        raise UsageError(f'{path}:{no}: label {label} is not an index into '
                         f'the {len(classes)} classes of {classes_file}',
                         'labels are 0-based indices into that file')
    else:
      name = lab or rel.split('/')[0]
      if name not in classes:
        raise UsageError(f'{path}:{no}: class {name!r} is not one of the '
                         f'{len(classes)} classes of {classes_file}',
                         'add it to that file or fix the label')
      label = classes.index(name)
    origin.setdefault(classes[label], f'{path}:{no}')
    listing.add(seen, f'{path}:{no}', rel, label, classes[label], 0, role,
                frames)
  return listing.layout(
      classes, videos, root, origin=origin, filename_tmpl=filename_tmpl,
      lists=', '.join(str(x) for x in (train_list, test_list) if x))


OPTIONS = (
    Option('train_list', '', 'custom: "path label" train list'),
    Option('test_list', '', 'custom: "path label" test list'),
    Option('classes_file', '', 'custom: class names, one per line'),
    Option('test_fraction', 0.2, 'custom without lists: test share'),
    Option('rawframes', False, 'custom: the lists are TSM / MMAction2 '
           'rawframe lists "frame_dir num_frames label" over folders of '
           'extracted JPEG frames'),
    Option('filename_tmpl', 'img_{:05d}.jpg', '--rawframes: frame file '
           'names (TSM Kinetics img_{:05d}.jpg, SSv2 {:06d}.jpg)'),
)


def check(flags: dict) -> None:
  """Refuses what no custom build can use, before any work."""
  if not 0 <= flags['test_fraction'] < 1:
    raise UsageError(f'--test_fraction={flags["test_fraction"]}',
                     'valid: a share from 0 up to (not including) 1')
  if flags['rawframes'] and flags['fps']:
    raise UsageError(f'--fps={flags["fps"]} with --rawframes',
                     'frame folders have no frame rate; drop --fps')


READER = Reader('custom', read, 'class folders, or "path label" lists '
                '(--train_list, --test_list; --rawframes for frame folders)',
                options=OPTIONS, check=check)
