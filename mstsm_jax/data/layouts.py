"""Reading the official UCF-101 / HMDB51 layouts and custom video lists.

Each reader returns a `Layout`: the classes, one `Entry` per video with its
role in every split (0 unused, 1 train, 2 test; HMDB51's own convention),
and the `problems` found in the lists (missing, listed twice, unlisted).
A missing split file or an unknown class is a ValueError naming the file
(and line) and the fix.

Quirks handled: CRLF line endings; UCF-101's `HandstandPushups` class whose
files are `v_HandStandPushups_*` (paths are matched case-insensitively);
HMDB51's trailing spaces and names with `( ) & ! '`; HMDB51 extracted
directly or under `hmdb51_org/`.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import zlib

VIDEO_EXTS = ('.avi', '.mp4', '.mkv', '.webm', '.mov', '.mpg', '.mpeg',
              '.m4v', '.flv', '.wmv')


@dataclasses.dataclass
class Entry:
  path: str  # absolute path on disk ('' if missing)
  name: str  # stable id: path relative to the videos root, '/' separated
  label: int
  class_name: str
  roles: list[int]  # per split: 0 unused, 1 train, 2 test


@dataclasses.dataclass
class Layout:
  classes: list[str]
  entries: list[Entry]
  num_splits: int
  problems: list[dict]  # {'file': ..., 'reason': ...}

  def split_names(self) -> list[str]:
    return [f'{r}{k + 1}' for k in range(self.num_splits)
            for r in ('train', 'test')]

  def split_members(self) -> dict[str, list[int]]:
    """Split name -> positions in `entries` (train k: role 1, test k: 2)."""
    out = {}
    for k in range(self.num_splits):
      for role, r in ((1, 'train'), (2, 'test')):
        out[f'{r}{k + 1}'] = [i for i, e in enumerate(self.entries)
                              if e.roles[k] == role]
    return out


def read_lines(path: pathlib.Path) -> list[tuple[int, str]]:
  """(line number, stripped text) of non-empty lines; CRLF-safe."""
  with open(path, encoding='utf-8', errors='replace', newline=None) as f:
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


def add_listed(listed: dict, seen: set, problems: list, where: str, rel: str,
               label: int, class_name: str, split: int, role: int,
               num_splits: int) -> None:
  """Records `rel` with `role` in `split`, or reports it as listed twice
  when `seen` (the names of the list being read) already holds it."""
  key = rel.lower()
  if key in seen:
    problems.append({'file': f'{where} {rel}', 'reason': 'listed twice'})
    return
  seen.add(key)
  listed.setdefault(key, Entry('', rel, label, class_name,
                               [0] * num_splits)).roles[split] = role


def find_dir(manual_dir: pathlib.Path, name: str, hint: str) -> pathlib.Path:
  for cand in (manual_dir / name, *manual_dir.glob(f'*/{name}')):
    if cand.is_dir():
      return cand
  raise FileNotFoundError(f'{name}/ not found under {manual_dir}; {hint}')


def require(path: pathlib.Path, hint: str) -> pathlib.Path:
  if not path.is_file():
    raise FileNotFoundError(f'missing split file {path}; {hint}')
  return path


def finish(classes, listed: dict[str, Entry], videos, root, problems,
           num_splits) -> Layout:
  """Resolves listed names to files and reports missing/unlisted ones."""
  entries = []
  for key, e in listed.items():
    p = videos.pop(key, None)
    if p is None:
      problems.append({'file': str(root / e.name), 'reason': 'missing'})
    e.path = str(p) if p else ''
    entries.append(e)
  for p in sorted(videos.values()):
    problems.append({'file': str(p), 'reason': 'unlisted'})
  return Layout(classes, entries, num_splits, problems)


def ucf101(manual_dir: str | os.PathLike) -> Layout:
  """UCF101/<Class>/v_*.avi + ucfTrainTestlist/{classInd,train,test}list."""
  manual_dir = pathlib.Path(manual_dir)
  hint = ('download UCF101TrainTestSplits-RecognitionTask.zip and extract it '
          f'into {manual_dir}')
  lists = find_dir(manual_dir, 'ucfTrainTestlist', hint)
  root = find_dir(manual_dir, 'UCF101',
                  f'extract UCF101.rar into {manual_dir}')
  ind = require(lists / 'classInd.txt', hint)
  classes = []
  for no, text in read_lines(ind):
    idx, _, name = text.partition(' ')
    if not idx.isdigit() or int(idx) != len(classes) + 1 or not name:
      raise ValueError(f'{ind}:{no}: expected "{len(classes) + 1} ClassName",'
                       f' got {text!r}')
    classes.append(name.strip())
  by_lower = {c.lower(): i for i, c in enumerate(classes)}
  listed: dict[str, Entry] = {}
  problems = []
  for k in range(3):
    for role, kind in ((1, 'train'), (2, 'test')):
      path = require(lists / f'{kind}list0{k + 1}.txt', hint)
      seen = set()
      for no, text in read_lines(path):
        rel, _, lab = text.partition(' ')
        cls = rel.split('/')[0].lower()
        if '/' not in rel or cls not in by_lower:
          raise ValueError(f'{path}:{no}: class of {rel!r} is not in {ind}')
        label = by_lower[cls]
        if lab and lab.strip() != str(label + 1):
          raise ValueError(f'{path}:{no}: label {lab.strip()} does not match '
                           f'{classes[label]} = {label + 1} in {ind}')
        add_listed(listed, seen, problems, f'{path}:{no}', rel, label,
                   classes[label], k, role, 3)
  return finish(classes, listed, scan_videos(root), root, problems, 3)


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
    raise FileNotFoundError(f'no *{suffix} files in {lists}; {hint}')
  listed: dict[str, Entry] = {}
  problems = []
  for label, cls in enumerate(classes):
    for k in range(3):
      path = require(lists / f'{cls}_test_split{k + 1}.txt', hint)
      seen = set()
      for no, text in read_lines(path):
        name, _, role = text.rpartition(' ')
        if role not in ('0', '1', '2') or not name:
          raise ValueError(f'{path}:{no}: expected "<video>.avi <0|1|2>", '
                           f'got {text!r}')
        add_listed(listed, seen, problems, f'{path}:{no}',
                   f'{cls}/{name.strip()}', label, cls, k, int(role), 3)
  videos = {k: v for k, v in scan_videos(root).items()
            if not k.startswith('testtrainmulti_7030_splits/')}
  return finish(classes, listed, videos, root, problems, 3)


def parse_list(path: pathlib.Path):
  """TSM-style "relative/path.mp4 label" lines; label an index or a name."""
  rows = []
  for no, text in read_lines(path):
    rel, _, lab = text.rpartition(' ')
    if not rel:
      rel, lab = text, ''
    rows.append((no, rel.strip(), lab.strip()))
  return rows


def custom(manual_dir: str | os.PathLike, train_list: str = '',
           test_list: str = '', classes_file: str = '',
           test_fraction: float = 0.2) -> Layout:
  """Your videos: a folder per class, or TSM-style list files.

  With `train_list`/`test_list` ("relative/path.mp4 label", paths relative
  to manual_dir, label an index or a class name; without a label the first
  folder is the class) those define split 1. Without lists every video under
  a class folder is used and a stable hash of its name puts `test_fraction`
  of each class in test1. `classes_file`: one class name per line (index
  order); otherwise the sorted class folders or names found in the lists.
  """
  root = pathlib.Path(manual_dir)
  if not root.is_dir():
    raise FileNotFoundError(f'manual_dir {root} does not exist')
  classes = ([t for _, t in read_lines(pathlib.Path(classes_file))]
             if classes_file else None)
  videos = scan_videos(root)
  listed: dict[str, Entry] = {}
  problems = []
  if train_list or test_list:
    rows = []
    for role, lst in ((1, train_list), (2, test_list)):
      if lst:
        path = pathlib.Path(lst)
        if not path.is_file():
          raise FileNotFoundError(f'missing split file {path}')
        rows += [(role, path, *r) for r in parse_list(path)]
    if classes is None:
      names = {lab if lab and not lab.isdigit() else rel.split('/')[0]
               for _, _, _, rel, lab in rows}
      if all(lab.isdigit() for *_, lab in rows):
        n = max(int(lab) for *_, lab in rows) + 1
        names = {f'class_{i:03d}' for i in range(n)}
      classes = sorted(names)
    seen = set()  # one split: a video in both lists is listed twice
    for role, path, no, rel, lab in rows:
      if lab.isdigit():
        label = int(lab)
        if label >= len(classes):
          raise ValueError(f'{path}:{no}: label {label} >= {len(classes)} '
                           'classes; pass --classes_file')
      else:
        name = lab or rel.split('/')[0]
        if name not in classes:
          raise ValueError(f'{path}:{no}: class {name!r} is not one of '
                           f'{len(classes)} classes')
        label = classes.index(name)
      add_listed(listed, seen, problems, f'{path}:{no}', rel, label,
                 classes[label], 0, role, 1)
    return finish(classes, listed, videos, root, problems, 1)
  folders = sorted({k.split('/')[0] for k in videos if '/' in k})
  by_lower = {c.lower(): c for c in sorted(p.name for p in root.iterdir()
                                           if p.is_dir())}
  classes = classes or [by_lower[f] for f in folders]
  index = {c.lower(): i for i, c in enumerate(classes)}
  for key, p in sorted(videos.items()):
    cls = key.split('/')[0]
    if '/' not in key or cls not in index:
      continue  # left in `videos`: reported as unlisted
    rel = p.relative_to(root).as_posix()
    test = zlib.crc32(rel.encode()) % 1000 < test_fraction * 1000
    listed[key] = Entry('', rel, index[cls], classes[index[cls]],
                        [2 if test else 1])
  return finish(classes, listed, videos, root, problems, 1)
