r"""Dataset layouts: how each dataset lists its videos, as one registry.

A layout is one `Reader` (name, `read(manual_dir, **options) -> Layout`, its
own `prepare` flags as `Option`s, failure and missing limits, split names,
its tfds builder name), registered with `register`. `prepare`'s --dataset
choices and help, its layout flags and the builder names all come from
`REGISTRY`, so a new layout (from inside the package or outside it) is one
`register(Reader(...))` call.

`read` returns a `Layout` (frozen: built once, never changed): the classes,
one `Entry` per video with its role in every split (0 unused, 1 train, 2
test; HMDB51's own convention; 3 unlabelled, predict-only: SSv2's test set),
and the `problems` found in the lists (missing, listed twice, unlisted).
A missing split file, an unknown class, a malformed line or row, or a video
listed on both sides of a split is a UsageError naming the file (and line)
and the fix. `apply_class_policy` then refuses (or, on request, keeps or
drops) classes without training videos, returning a new Layout, so none
disappears or appears silently.

Quirks handled: CRLF line endings and UTF-8 byte-order marks; UCF-101's
`HandstandPushups` class whose files are `v_HandStandPushups_*` (paths are
matched case-insensitively); HMDB51's trailing spaces and names with
`( ) & ! '`; HMDB51 extracted directly or under `hmdb51_org/`.
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import json
import os
import pathlib
import re
import zlib
from typing import Callable

from mstsm_jax.data import synthetic, video
from mstsm_jax.errors import UsageError

VIDEO_EXTS = ('.avi', '.mp4', '.mkv', '.webm', '.mov', '.mpg', '.mpeg',
              '.m4v', '.flv', '.wmv')
ROLES = {1: 'train', 2: 'test', 3: 'unlabelled'}


@dataclasses.dataclass(frozen=True)
class Entry:
  path: str  # absolute path on disk ('' if missing)
  name: str  # stable id: path relative to the videos root, '/' separated
  label: int
  class_name: str
  roles: tuple[int, ...]  # per split: 0 unused, 1 train, 2 test, 3 unlabelled
  listed_frames: int | None = None  # rawframe lists: the count the list gives


@dataclasses.dataclass(frozen=True)
class Layout:
  classes: tuple[str, ...]
  entries: tuple[Entry, ...]
  num_splits: int
  problems: tuple[dict, ...]  # {'file': ..., 'reason': ...}
  # Where each class came from, for messages: class -> 'file:line' or path.
  origin: dict = dataclasses.field(default_factory=dict)
  lists: str = ''  # the list files that define the classes, if any
  empty_classes: tuple[str, ...] = ()
  dropped_classes: tuple[str, ...] = ()
  filename_tmpl: str = ''  # entries are frame folders with these names
  # Generated layouts: (entry path, short_side, as_jpeg=) -> record, a
  # picklable module-level callable; None: entries are files on disk.
  decoder: Callable | None = None

  def __post_init__(self):
    for key in ('classes', 'entries', 'problems', 'empty_classes',
                'dropped_classes'):
      object.__setattr__(self, key, tuple(getattr(self, key)))

  def split_names(self) -> list[str]:
    return [f'{r}{k + 1}' for k in range(self.num_splits)
            for r in ('train', 'test')]

  def split_members(self) -> dict[str, list[int]]:
    """Split name -> positions in `entries` (train k: role 1, test k: 2;
    'unlabelled': role 3, when there is any)."""
    out = {}
    for k in range(self.num_splits):
      for role, r in ((1, 'train'), (2, 'test')):
        out[f'{r}{k + 1}'] = [i for i, e in enumerate(self.entries)
                              if e.roles[k] == role]
    unlabelled = [i for i, e in enumerate(self.entries) if 3 in e.roles]
    if unlabelled:
      out['unlabelled'] = unlabelled
    return out


def plural(n: int, word: str, words: str = '') -> str:
  """'1 video', '2 videos' ('1 class', '2 classes' with `words`)."""
  return f'{n} {word if n == 1 else words or word + "s"}'


def is_index(text: str) -> bool:
  """ASCII digits only ('²'.isdigit() is True, but int('²') fails)."""
  return text.isascii() and text.isdigit()


def read_lines(path: pathlib.Path) -> list[tuple[int, str]]:
  """(line number, stripped text) of non-empty lines; CRLF- and BOM-safe."""
  with open(path, encoding='utf-8-sig', errors='replace', newline=None) as f:
    return [(i + 1, ln.strip()) for i, ln in enumerate(f) if ln.strip()]


def scan_videos(root: pathlib.Path) -> dict[str, pathlib.Path]:
  """Lower-cased relative path -> file, for case-insensitive matching."""
  found = {}
  for dirpath, _, files in os.walk(root):
    for fn in files:
      if fn.lower().endswith(VIDEO_EXTS):
        p = pathlib.Path(dirpath) / fn
        found[p.relative_to(root).as_posix().lower()] = p
  return found


class Listing:
  """A reader's listed videos while it reads its lists (the Layout is built
  once, at the end): name -> label and role per split. A name seen again in
  the same `seen` scope (one list file, or all lists of a custom dataset) is
  reported as listed twice; a name given two roles in one split by two
  files (train and test) is a UsageError naming both."""

  def __init__(self, num_splits: int):
    self.num_splits, self.rows, self.problems = num_splits, {}, []

  def add(self, seen: set, where: str, rel: str, label: int,
          class_name: str, split: int, role: int,
          frames: int | None = None) -> None:
    key = rel.lower()
    if key in seen:
      self.problems.append({'file': f'{where} {rel}',
                            'reason': 'listed twice'})
      return
    seen.add(key)
    row = self.rows.setdefault(key, {
        'name': rel, 'label': label, 'class_name': class_name,
        'roles': [0] * self.num_splits, 'where': [''] * self.num_splits,
        'frames': frames})
    if row['roles'][split] and row['roles'][split] != role:
      raise UsageError(
          f'{where}: {rel} is also listed in {row["where"][split]} '
          f'({ROLES[row["roles"][split]]} there, {ROLES[role]} here); a '
          'video belongs to one side of a split',
          'remove it from one of the two files')
    row['roles'][split], row['where'][split] = role, where

  def entry(self, row: dict, path) -> Entry:
    return Entry(str(path) if path else '', row['name'], row['label'],
                 row['class_name'], tuple(row['roles']), row['frames'])

  def layout(self, classes, videos: dict, root: pathlib.Path,
             **fields) -> Layout:
    """Resolves listed names to files (popping them from `videos`) and
    reports missing and unlisted ones."""
    entries, problems = [], list(self.problems)
    for key, row in self.rows.items():
      p = videos.pop(key, None)
      if p is None:
        problems.append({'file': str(root / row['name']),
                         'reason': 'missing'})
      entries.append(self.entry(row, p))
    for p in sorted(videos.values()):
      problems.append({'file': str(p), 'reason': 'unlisted'})
    return Layout(classes, entries, self.num_splits, problems, **fields)


def find_dir(manual_dir: pathlib.Path, name: str, hint: str) -> pathlib.Path:
  for cand in (manual_dir / name, *manual_dir.glob(f'*/{name}')):
    if cand.is_dir():
      return cand
  raise UsageError(f'{name}/ not found under {manual_dir}', hint)


def require(path: pathlib.Path, hint: str) -> pathlib.Path:
  if not path.is_file():
    raise UsageError(f'missing split file {path}', hint)
  return path


def first_file(manual_dir: pathlib.Path, names, hint: str) -> pathlib.Path:
  """The first of `names` (relative paths) under manual_dir."""
  for name in names:
    if (manual_dir / name).is_file():
      return manual_dir / name
  raise UsageError(f'none of {", ".join(names)} under {manual_dir}', hint)


def read_json(path: pathlib.Path):
  try:
    return json.loads(path.read_text(encoding='utf-8-sig'))
  except (ValueError, RecursionError) as e:  # UnicodeDecodeError too
    raise UsageError(f'{path} is not valid JSON ({str(e)[:100]})',
                     'download the annotations again') from e


# UCF-101 ---------------------------------------------------------------

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


def parse_ucf_split(path: pathlib.Path, classes, ind) -> list[tuple]:
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


def ucf101(manual_dir: str | os.PathLike) -> Layout:
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
      for no, rel, label in parse_ucf_split(path, classes, ind):
        listing.add(seen, f'{path}:{no}', rel, label, classes[label], k,
                    role)
  return listing.layout(classes, scan_videos(root), root)


# HMDB51 ----------------------------------------------------------------

def parse_hmdb_split(path: pathlib.Path) -> list[tuple[int, str, int]]:
  """An HMDB51 split file: [(line, video name, role 0|1|2)]."""
  rows = []
  for no, text in read_lines(path):
    name, _, role = text.rpartition(' ')
    if role not in ('0', '1', '2') or not name.strip():
      raise UsageError(f'{path}:{no}: expected "<video>.avi <0|1|2>", '
                       f'got {text!r}', 'use the official split files')
    rows.append((no, name.strip(), int(role)))
  return rows


def hmdb51(manual_dir: str | os.PathLike) -> Layout:
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
      for no, name, role in parse_hmdb_split(path):
        listing.add(seen, f'{path}:{no}', f'{cls}/{name}', label, cls, k,
                    role)
  videos = {k: v for k, v in scan_videos(root).items()
            if not k.startswith('testtrainmulti_7030_splits/')}
  return listing.layout(classes, videos, root)


# Something-Something V2 ------------------------------------------------

def parse_ssv2_labels(path: pathlib.Path) -> list[str]:
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


def parse_ssv2_entries(path: pathlib.Path, classes,
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


def ssv2(manual_dir: str | os.PathLike) -> Layout:
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
  classes = parse_ssv2_labels(labels_file)
  root = find_dir(manual_dir, '20bn-something-something-v2', hint)
  listing = Listing(1)
  for kind, role in (('train', 1), ('validation', 2), ('test', 3)):
    path = annotation(kind)
    seen = set()
    for n, vid, label in parse_ssv2_entries(path, classes, role != 3):
      listing.add(seen, f'{path} entry {n}', f'{vid}.webm', label,
                  classes[label] if label >= 0 else '', 0, role)
  return listing.layout(classes, scan_videos(root), root,
                        lists=str(labels_file.parent))


# Kinetics ----------------------------------------------------------------

KINETICS_COLUMNS = ('label', 'youtube_id', 'time_start', 'time_end')


def parse_kinetics_csv(path: pathlib.Path) -> list[tuple[int, str, str]]:
  """A Kinetics CSV (label,youtube_id,time_start,time_end,split[,is_cc];
  UTF-8, with or without a byte-order mark): [(line, label, video stem
  <youtube_id>_<time_start:06d>_<time_end:06d>)]."""
  rows = []
  try:
    with open(path, encoding='utf-8-sig', newline='') as f:
      reader = csv.DictReader(f)
      header = reader.fieldnames or []
      missing = [c for c in KINETICS_COLUMNS if c not in header]
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
        rows.append((no, row['label'].strip(),
                     f'{yt}_{int(start):06d}_{int(end):06d}'))
  except (csv.Error, UnicodeDecodeError) as e:
    raise UsageError(f'{path} is not a readable CSV ({str(e)[:80]})',
                     'save it as UTF-8 CSV') from e
  return rows


def kinetics(manual_dir: str | os.PathLike) -> Layout:
  """Kinetics-400/600/700: annotations/{train,val,test}.csv (columns
  label,youtube_id,time_start,time_end,split[,is_cc]) and videos named
  <youtube_id>_<time_start:06d>_<time_end:06d>.<ext> anywhere under
  manual_dir (train/<label>/, train/ flat, MMAction2's videos_train/ or
  resized folders): a file is found by its name. Train is train1, val is
  test1; test rows without a label are stored as 'unlabelled'. Missing
  videos (deleted uploads) are reported per class, apart from corrupt
  ones."""
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
             for no, label, stem in parse_kinetics_csv(path)]
  classes = sorted({label for _, _, label, _, role, _ in rows if role == 1})
  index = {c: i for i, c in enumerate(classes)}
  listing, seen = Listing(1), set()
  for path, no, label, stem, role, kind in rows:
    if kind == 'test' and not label:
      role, cls = 3, -1
    elif label not in index:
      raise UsageError(f'{path}:{no}: class {label!r} has no training '
                       'videos in train.csv', 'use the CSVs of one release')
    else:
      cls = index[label]
    listing.add(seen, f'{path}:{no}', stem, cls, label if cls >= 0 else '',
                0, role)
  videos = {}
  for key, p in scan_videos(manual_dir).items():
    videos.setdefault(pathlib.PurePosixPath(key).stem, p)
  entries, problems = [], list(listing.problems)
  for key, row in listing.rows.items():
    p = videos.pop(key, None)
    if p:
      row = {**row, 'name': p.relative_to(manual_dir).as_posix()}
    else:
      problems.append({'file': row['name'], 'reason': 'missing',
                       'class': row['class_name']})
    entries.append(listing.entry(row, p))
  return Layout(classes, entries, 1, problems,
                lists=str(manual_dir / 'annotations'))


# Your own videos -----------------------------------------------------------

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
            'a rawframe list (TSM, MMAction2) has three fields; video lists '
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


def custom(manual_dir: str | os.PathLike, train_list: str = '',
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
    require(pathlib.Path(classes_file), 'pass a file with one class name '
            'per line')
    classes = [t for _, t in read_lines(pathlib.Path(classes_file))]
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


def _from_lists(root, videos, train_list, test_list, classes,
                classes_file, filename_tmpl: str = '') -> Layout:
  rows = []
  for role, lst in ((1, train_list), (2, test_list)):
    if lst:
      path = pathlib.Path(lst)
      require(path, 'pass an existing list file')
      rows += [(role, path, *r) for r in parse_list(path,
                                                    bool(filename_tmpl))]
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


# Generated ---------------------------------------------------------------

def generated(task: str, num_videos: int = 600, seed: int = 0,
              size: int = 64, num_frames: int = 16) -> Layout:
  """The synthetic videos of `task` (data/synthetic.py) as a layout: entry
  paths are video indices, rendered by `synthetic.record`."""
  if num_videos < 1:
    raise UsageError(f'--num_videos={num_videos}', 'generate at least 1')
  if seed < 0:
    raise UsageError(f'--seed={seed}', 'valid: 0 or more')
  classes, _ = synthetic.task(task)
  entries = []
  for i in range(num_videos):
    label = synthetic.label_of(i, classes)
    role = 1 if synthetic.split_of(i, classes) == 'train1' else 2
    entries.append(Entry(str(i), synthetic.video_name(i, classes), label,
                         classes[label], (role,)))
  return Layout(classes, entries, 1, (), decoder=functools.partial(
      synthetic.record, name=task, seed=seed, size=size,
      num_frames=num_frames))


POLICIES = ('error', 'keep', 'drop')


def apply_class_policy(layout: Layout, policy: str = 'error',
                       classes_file: str = '') -> Layout:
  """Classes with no training video in split 1 (an empty class folder, a
  label that skips indices, a class only in the test list): 'error' raises
  a UsageError naming them; 'keep' keeps them (named in the report);
  'drop' removes them and renumbers the rest (their test videos are
  reported as dropped). Returns a new Layout; `layout` is not changed."""
  if policy not in POLICIES:
    raise UsageError(f'--empty_classes={policy}',
                     f'valid: {", ".join(POLICIES)}')
  trained = {e.label for e in layout.entries if 1 in e.roles}
  if not trained:
    return layout  # no training split given (a test-only list)
  empty = [c for i, c in enumerate(layout.classes) if i not in trained]
  if not empty:
    return layout
  if policy == 'error':
    # Name the line that made the class: its own (a test-only class, a
    # folder) or, for a skipped index, the first line with a higher one.
    first = layout.classes.index(empty[0])
    where = next((layout.origin[c] for c in layout.classes[first:]
                  if c in layout.origin), layout.lists)
    fixes = ['give every class training videos' if layout.lists else
             'add videos']
    if layout.lists and not classes_file and empty[0].startswith('class_'):
      fixes.append('number classes 0..N-1 without gaps or pass '
                   '--classes_file to name them')
    raise UsageError(
        f'{where}: {len(empty)} of {len(layout.classes)} classes have no '
        f'training videos: {", ".join(empty[:8])}'
        + (' ...' if len(empty) > 8 else ''),
        '; '.join(fixes) + ', or pass --empty_classes=keep (or drop) to '
        'accept them')
  if policy == 'keep':
    return dataclasses.replace(layout, empty_classes=empty)
  drop = set(empty)
  keep = [c for c in layout.classes if c not in drop]
  new = {c: i for i, c in enumerate(keep)}
  entries, problems = [], list(layout.problems)
  for e in layout.entries:
    if e.class_name in drop:
      problems.append({'file': e.path or e.name, 'reason': 'class dropped'})
    else:
      entries.append(dataclasses.replace(e, label=new[e.class_name]))
  return dataclasses.replace(layout, classes=keep, entries=entries,
                             problems=problems, dropped_classes=empty)


# The registry --------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Option:
  """A `prepare` flag a layout reads; its type is the default's (bool, int,
  float or str). Layouts that share a flag share the Option."""
  name: str
  default: object
  help: str


@dataclasses.dataclass(frozen=True)
class Reader:
  """One dataset layout: `read(manual_dir, **{option: value}) -> Layout`
  and the defaults `prepare` uses for it."""
  name: str  # --dataset=<name>; lower case, digits, '_'
  read: Callable[..., Layout]
  help: str  # what --manual_dir holds, for --help
  options: tuple[Option, ...] = ()
  max_failures: float = 0.01  # default --max_failures (fraction or count)
  max_missing: float | None = None  # default --max_missing; None: as failures
  splits: tuple[str, ...] = ('train1', 'test1')  # the splits it can write
  builder_name: str = ''  # the tfds dataset's name; '' = <name>_frames
  generated: bool = False  # rendered, not read from --manual_dir

  def __post_init__(self):
    if not re.fullmatch(r'[a-z][a-z0-9_]*', self.name):
      raise ValueError(f'layout name {self.name!r}: use lower case, digits '
                       'and _ (it names a tfds dataset)')
    object.__setattr__(self, 'options', tuple(self.options))
    object.__setattr__(self, 'builder_name',
                       self.builder_name or f'{self.name}_frames')


REGISTRY: dict[str, Reader] = {}


def register(reader: Reader) -> Reader:
  """Adds `reader` (a Reader, from inside the package or outside it);
  another layout of the same name, or an option of the same name with
  another default, is a ValueError."""
  old = REGISTRY.get(reader.name)
  if old is not None and old != reader:
    raise ValueError(f'a layout named {reader.name!r} is already registered')
  for o in reader.options:
    other = options().get(o.name)
    if other is not None and other.default != o.default:
      raise ValueError(f'option --{o.name} of {reader.name!r} has default '
                       f'{o.default!r}, registered with {other.default!r}')
  REGISTRY[reader.name] = reader
  return reader


def get(name: str) -> Reader:
  if name not in REGISTRY:
    raise UsageError(f'--dataset={name} is not a registered layout',
                     f'registered: {", ".join(REGISTRY)}')
  return REGISTRY[name]


def names() -> list[str]:
  return list(REGISTRY)


def options() -> dict[str, Option]:
  """Every layout option by flag name (each once)."""
  out = {}
  for r in REGISTRY.values():
    for o in r.options:
      out.setdefault(o.name, o)
  return out


def users(option: str) -> list[str]:
  """The layouts that read `option`."""
  return [r.name for r in REGISTRY.values()
          if any(o.name == option for o in r.options)]


def read(name: str, manual_dir: str | os.PathLike = '', **opts) -> Layout:
  """The layout of dataset `name`, read with its options."""
  return get(name).read(manual_dir, **opts)


UCF_SPLITS = tuple(f'{r}{k}' for k in (1, 2, 3) for r in ('train', 'test'))
LISTS = (
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
GENERATOR = (Option('num_videos', 600, 'synthetic: videos to generate'),
             Option('seed', 0, 'synthetic: generator seed'))


def _generated(task):
  def read_generated(manual_dir, num_videos=600, seed=0):
    del manual_dir
    return generated(task, num_videos, seed)
  return read_generated


for _reader in (
    Reader('ucf101', ucf101, 'UCF101/ + ucfTrainTestlist/',
           splits=UCF_SPLITS),
    Reader('hmdb51', hmdb51, '<class>/*.avi (or hmdb51_org/) + '
           'testTrainMulti_7030_splits/', splits=UCF_SPLITS),
    Reader('ssv2', ssv2, 'labels/*.json + '
           '20bn-something-something-v2/',
           splits=('train1', 'test1', 'unlabelled')),
    *(Reader(f'kinetics{n}', kinetics, 'annotations/*.csv, '
             'videos found by name anywhere under --manual_dir',
             max_missing=0.1,  # deleted uploads are normal
             splits=('train1', 'test1', 'unlabelled'))
      for n in (400, 600, 700)),
    Reader('custom', custom, 'class folders, or "path label" lists '
           '(--train_list, --test_list; --rawframes for frame folders)',
           options=LISTS),
    Reader('synthetic', _generated('synthetic'), 'generated motions (no '
           '--manual_dir)', options=GENERATOR,
           builder_name='synthetic_motions', generated=True),
    Reader('synthetic_hard', _generated('synthetic_hard'), 'generated '
           'event orders (no --manual_dir)', options=GENERATOR,
           builder_name='synthetic_hard_events', generated=True),
):
  register(_reader)
