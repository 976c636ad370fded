"""What every layout reader builds and shares: the frozen `Layout` of
`Entry`s, the `Listing` a reader fills while it reads its lists, the file
helpers (CRLF- and BOM-safe lines, case-insensitive video scans), the class
policy, and the `Reader` / `Option` a layout registers (layouts/__init__).
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
from typing import Callable

from mstsm_jax.errors import UsageError

VIDEO_EXTS = ('.avi', '.mp4', '.mkv', '.webm', '.mov', '.mpg', '.mpeg',
              '.m4v', '.flv', '.wmv', '.3gp', '.mts', '.m2ts', '.ts', '.vob',
              '.ogv', '.asf', '.divx')
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
  """(line number, stripped text) of non-empty lines; CRLF- and BOM-safe.
  A line that is not UTF-8 is refused, naming it: decoded with
  replacement characters, `Café` and `Cafè` in a Latin-1 list would
  become one class."""
  raw = pathlib.Path(path).read_bytes().removeprefix(b'\xef\xbb\xbf')
  out = []
  for i, line in enumerate(re.split(rb'\r\n|\r|\n', raw)):
    try:
      text = line.decode('utf-8').strip()
    except UnicodeDecodeError as e:
      raise UsageError(f'{path}:{i + 1}: not UTF-8 text (byte '
                       f'{line[e.start]:#04x} at column {e.start + 1})',
                       f'save it as UTF-8 (e.g. iconv -f latin1 -t utf-8 '
                       f'{path})') from None
    if text:
      out.append((i + 1, text))
  return out


def read_class_names(path: pathlib.Path,
                     numbered: bool = False) -> list[str]:
  """A classes file's names, one per line, in index order (`numbered`:
  when every line starts with a number, as UCF-101's classInd.txt "1
  ApplyEyeMakeup", the numbers are dropped and must count up from 0 or 1
  in file order: names listed out of order would be other classes' names);
  a name given twice (case aside: class folders match case-insensitively)
  is refused, naming both lines, as two classes with one name could not be
  told apart."""
  seen, names = {}, []
  lines = read_lines(path)
  split = [(no, *(re.split(r'\s+', text, maxsplit=1) + [''])[:2])
           for no, text in lines]
  looks = [is_index(i) and bool(r.strip()) for _, i, r in split]
  if numbered and any(looks) and not all(looks):
    a, b = split[looks.index(True)][0], split[looks.index(False)][0]
    raise UsageError(f'{path}:{a}: starts with a class number but line {b} '
                     'does not: is the number part of the name?',
                     'number every line (as classInd.txt) or none')
  if numbered and lines and all(looks):
    first = int(split[0][1])
    for k, (no, idx, rest) in enumerate(split):
      if first not in (0, 1) or int(idx) != first + k:
        raise UsageError(
            f'{path}:{no}: class number {idx}, but it is line {k + 1} of '
            'the names', 'number the classes 1, 2, ... (or 0, 1, ...) in '
            'file order, with no gaps, or drop the numbers')
    lines = [(no, rest.strip()) for no, _, rest in split]
  for no, name in lines:
    if name.lower() in seen:
      raise UsageError(f'{path}:{no}: class {name!r} is already on line '
                       f'{seen[name.lower()]}',
                       'list each class once, in index order')
    seen[name.lower()] = no
    names.append(name)
  return names


def scan_videos(root: pathlib.Path,
                fold_case: bool = True) -> dict[str, pathlib.Path]:
  """Relative path -> file, lower-cased for case-insensitive matching
  (UCF-101's lists and folders disagree in case); `fold_case=False` for
  names whose case is meaning (YouTube ids)."""
  found = {}
  for dirpath, _, files in os.walk(root, followlinks=True):
    for fn in files:
      if fn.lower().endswith(VIDEO_EXTS):
        p = pathlib.Path(dirpath) / fn
        rel = p.relative_to(root).as_posix()
        key = rel.lower() if fold_case else rel
        if key in found:  # one would hide the other
          raise UsageError(
              f'{found[key]} and {p} differ only in case, which this '
              'dataset does not tell apart (its lists and folders disagree '
              'in case)', 'rename or remove one of the two')
        found[key] = p
  return found


class Listing:
  """A reader's listed videos while it reads its lists (the Layout is built
  once, at the end): name -> label and role per split. A name seen again in
  the same `seen` scope (one list file, or all lists of a custom dataset) is
  reported as listed twice; a name given two labels anywhere, or two
  roles in one split by two files (train and test), is a UsageError
  naming both."""

  def __init__(self, num_splits: int, fold_case: bool = True):
    self.num_splits, self.rows, self.problems = num_splits, {}, []
    self.fold_case = fold_case  # as scan_videos

  def add(self, seen: set, where: str, rel: str, label: int,
          class_name: str, split: int, role: int,
          frames: int | None = None) -> None:
    key = rel.lower() if self.fold_case else rel
    first = self.rows.get(key)
    if (role != 3 and first is not None and first['labelled'] and
        first['label'] != label):  # unlabelled test lists carry none
      raise UsageError(
          f'{where}: {rel} is labelled {class_name!r} here but '
          f'{first["class_name"]!r} in {first["labelled"]}; a video has '
          'one label', 'correct the label on one of the two lines')
    if key in seen:
      other = first['roles'][split] if first else role
      if other and other != role:  # train in one list, test in another
        raise UsageError(
            f'{where}: {rel} is also listed in {first["where"][split]} '
            f'({ROLES[other]} there, {ROLES[role]} here); a video belongs '
            'to one side of a split', 'remove it from one of the two lists')
      self.problems.append({'file': f'{where} {rel}',
                            'reason': 'listed twice'})
      return
    seen.add(key)
    row = self.rows.setdefault(key, {
        'name': rel, 'label': label, 'class_name': class_name,
        'roles': [0] * self.num_splits, 'where': [''] * self.num_splits,
        'frames': frames, 'labelled': where if role != 3 else ''})
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
             found_names: bool = False, **fields) -> Layout:
    """Resolves listed names to files (popping them from `videos`) and
    reports missing and unlisted ones. With `found_names` (lists that name
    a video, not its path: Kinetics) a found video is named by its path
    under `root`, and a missing one by its listed name alone."""
    entries, problems = [], list(self.problems)
    for key, row in self.rows.items():
      p = videos.pop(key, None)
      if p is not None and found_names:
        row = {**row, 'name': p.relative_to(root).as_posix()}
      if p is None and found_names:
        problems.append({'file': row['name'], 'reason': 'missing',
                         **({'class': row['class_name']}
                            if row['class_name'] else {})})
      elif p is None and (root / row['name']).is_dir():
        # A listed frame folder that is there but holds no frame file: a
        # failed video (--max_failures), not a deleted one (--max_missing).
        tmpl = fields.get('filename_tmpl')
        problems.append({'file': str(root / row['name']),
                         'reason': 'zero frames',
                         'detail': 'the folder holds no frame file' + (
                             f' named like {tmpl} (--filename_tmpl)'
                             if tmpl else '')})
      elif p is None:  # per class where the row has one (missing_per_class)
        problems.append({'file': str(root / row['name']),
                         'reason': 'missing',
                         **({'class': row['class_name']}
                            if row['class_name'] else {})})
      entries.append(self.entry(row, p))
    for p in sorted(videos.values()):
      problems.append({'file': str(p), 'reason': 'unlisted'})
    return Layout(classes, entries, self.num_splits, problems, **fields)


def find_dir(manual_dir: pathlib.Path, name: str, hint: str) -> pathlib.Path:
  for cand in (manual_dir / name, *manual_dir.glob(f'*/{name}')):
    if cand.is_dir():
      return cand
  raise UsageError(f'{name}/ not found under {manual_dir}', hint)


def require(path: pathlib.Path, hint: str,
            what: str = 'split file') -> pathlib.Path:
  if not path.is_file():
    raise UsageError(f'missing {what} {path}', hint)
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
  # Refuses flag combinations before any work: check({flag: value}) with
  # the build's flags (manual_dir, short_side, fps, ...) and its options.
  check: Callable[[dict], None] | None = None

  def __post_init__(self):
    if not re.fullmatch(r'[a-z][a-z0-9_]*', self.name):
      raise ValueError(f'layout name {self.name!r}: use lower case, digits '
                       'and _ (it names a tfds dataset)')
    object.__setattr__(self, 'options', tuple(self.options))
    object.__setattr__(self, 'builder_name',
                       self.builder_name or f'{self.name}_frames')
