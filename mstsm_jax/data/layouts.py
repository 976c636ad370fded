r"""Reading the official UCF-101 / HMDB51 / Something-Something V2 /
Kinetics layouts and custom video lists.

Each reader returns a `Layout`: the classes, one `Entry` per video with its
role in every split (0 unused, 1 train, 2 test; HMDB51's own convention; 3
unlabelled, predict-only: SSv2's test set), and the `problems` found in the
lists (missing, listed twice, unlisted).
A missing split file, an unknown class, or a list line that could be read
two ways is a UsageError naming the file (and line) and the fix.
`apply_class_policy` then refuses (or, on request, keeps or drops) classes
without training videos, so none disappears or appears silently.

Quirks handled: CRLF line endings; UCF-101's `HandstandPushups` class whose
files are `v_HandStandPushups_*` (paths are matched case-insensitively);
HMDB51's trailing spaces and names with `( ) & ! '`; HMDB51 extracted
directly or under `hmdb51_org/`.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import zlib

from mstsm_jax.errors import UsageError

VIDEO_EXTS = ('.avi', '.mp4', '.mkv', '.webm', '.mov', '.mpg', '.mpeg',
              '.m4v', '.flv', '.wmv')


@dataclasses.dataclass
class Entry:
  path: str  # absolute path on disk ('' if missing)
  name: str  # stable id: path relative to the videos root, '/' separated
  label: int
  class_name: str
  roles: list[int]  # per split: 0 unused, 1 train, 2 test
  listed_frames: int = 0  # rawframe lists: the count the list gives


@dataclasses.dataclass
class Layout:
  classes: list[str]
  entries: list[Entry]
  num_splits: int
  problems: list[dict]  # {'file': ..., 'reason': ...}
  # Where each class came from, for messages: class -> 'file:line' or path.
  origin: dict = dataclasses.field(default_factory=dict)
  lists: str = ''  # the list files that define the classes, if any
  empty_classes: list[str] = dataclasses.field(default_factory=list)
  dropped_classes: list[str] = dataclasses.field(default_factory=list)
  filename_tmpl: str = ''  # entries are frame folders with these names

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
  raise UsageError(f'{name}/ not found under {manual_dir}', hint)


def require(path: pathlib.Path, hint: str) -> pathlib.Path:
  if not path.is_file():
    raise UsageError(f'missing split file {path}', hint)
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
      raise UsageError(f'{ind}:{no}: expected "{len(classes) + 1} '
                       f'ClassName", got {text!r}',
                       'use the official classInd.txt')
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
          raise UsageError(f'{path}:{no}: class of {rel!r} is not in {ind}',
                           'use the official split files')
        label = by_lower[cls]
        if lab and lab.strip() != str(label + 1):
          raise UsageError(f'{path}:{no}: label {lab.strip()} does not '
                           f'match {classes[label]} = {label + 1} in {ind}',
                           'use the official split files')
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
    raise UsageError(f'no *{suffix} files in {lists}', hint)
  listed: dict[str, Entry] = {}
  problems = []
  for label, cls in enumerate(classes):
    for k in range(3):
      path = require(lists / f'{cls}_test_split{k + 1}.txt', hint)
      seen = set()
      for no, text in read_lines(path):
        name, _, role = text.rpartition(' ')
        if role not in ('0', '1', '2') or not name:
          raise UsageError(f'{path}:{no}: expected "<video>.avi <0|1|2>", '
                           f'got {text!r}', 'use the official split files')
        add_listed(listed, seen, problems, f'{path}:{no}',
                   f'{cls}/{name.strip()}', label, cls, k, int(role), 3)
  videos = {k: v for k, v in scan_videos(root).items()
            if not k.startswith('testtrainmulti_7030_splits/')}
  return finish(classes, listed, videos, root, problems, 3)


def first_file(manual_dir: pathlib.Path, names, hint: str) -> pathlib.Path:
  """The first of `names` (relative paths) under manual_dir."""
  for name in names:
    if (manual_dir / name).is_file():
      return manual_dir / name
  raise UsageError(f'none of {", ".join(names)} under {manual_dir}', hint)


def read_json(path: pathlib.Path):
  import json
  try:
    return json.loads(path.read_text(encoding='utf-8'))
  except ValueError as e:
    raise UsageError(f'{path} is not valid JSON ({e})',
                     'download the annotations again') from e


def ssv2(manual_dir: str | os.PathLike) -> Layout:
  """Something-Something V2: labels/{labels,train,validation,test}.json
  (or the older something-something-v2-*.json names) and
  20bn-something-something-v2/<id>.webm. Train is train1, validation is
  test1; the test set has no labels and is stored as 'unlabelled'."""
  manual_dir = pathlib.Path(manual_dir)
  hint = ('extract the labels archive (labels/*.json) and the videos '
          f'(20bn-something-something-v2/) into {manual_dir}')

  def annotation(kind):
    return first_file(manual_dir, (f'labels/{kind}.json',
                                   f'something-something-v2-{kind}.json',
                                   f'labels/something-something-v2-{kind}'
                                   '.json'), hint)

  labels_file = annotation('labels')
  index = read_json(labels_file)
  classes = [''] * len(index)
  for template, i in index.items():
    if not str(i).isdigit() or int(i) >= len(classes) or classes[int(i)]:
      raise UsageError(f'{labels_file}: index {i!r} of {template!r} is not '
                       f'one of 0..{len(classes) - 1} (or is repeated)',
                       'use the official labels.json')
    classes[int(i)] = template
  root = find_dir(manual_dir, '20bn-something-something-v2', hint)
  listed: dict[str, Entry] = {}
  problems = []
  for kind, role in (('train', 1), ('validation', 2), ('test', 3)):
    path = annotation(kind)
    seen = set()
    for n, item in enumerate(read_json(path)):
      vid = str(item.get('id', '')) if isinstance(item, dict) else ''
      if not vid:
        raise UsageError(f'{path}: entry {n} has no "id"',
                         'use the official annotation files')
      label, name = -1, ''
      if role != 3:
        template = str(item.get('template', ''))
        name = template.replace('[', '').replace(']', '')
        if name not in index:
          raise UsageError(
              f'{path}: entry {n} (id {vid}): template {template!r} is not '
              f'in {labels_file}', 'use the labels.json of the same release')
        label = int(index[name])
      add_listed(listed, seen, problems, f'{path} entry {n}', f'{vid}.webm',
                 label, name, 0, role, 1)
  layout = finish(classes, listed, scan_videos(root), root, problems, 1)
  layout.lists = str(labels_file.parent)
  return layout


KINETICS_COLUMNS = ('label', 'youtube_id', 'time_start', 'time_end')


def kinetics(manual_dir: str | os.PathLike) -> Layout:
  """Kinetics-400/600/700: annotations/{train,val,test}.csv (columns
  label,youtube_id,time_start,time_end,split[,is_cc]) and videos named
  <youtube_id>_<time_start:06d>_<time_end:06d>.<ext> anywhere under
  manual_dir (train/<label>/, train/ flat, MMAction2's videos_train/ or
  resized folders): a file is found by its name. Train is train1, val is
  test1; test rows without a label are stored as 'unlabelled'. Missing
  videos (deleted uploads) are reported per class, apart from corrupt
  ones."""
  import csv
  manual_dir = pathlib.Path(manual_dir)
  hint = f'extract the annotations (annotations/*.csv) into {manual_dir}'
  rows = []
  for kind, role in (('train', 1), ('val', 2), ('test', 2)):
    path = manual_dir / 'annotations' / f'{kind}.csv'
    if kind != 'test':
      require(path, hint)
    elif not path.is_file():
      continue
    with open(path, encoding='utf-8', newline='') as f:
      reader = csv.DictReader(f)
      missing = [c for c in KINETICS_COLUMNS
                 if c not in (reader.fieldnames or [])]
      if missing:
        raise UsageError(f'{path}:1: no column {", ".join(missing)} in '
                         f'{reader.fieldnames}',
                         'the header is label,youtube_id,time_start,'
                         'time_end,split')
      for row in reader:
        rows.append((path, reader.line_num, row, role, kind))
  classes = sorted({r['label'].strip() for _, _, r, role, _ in rows
                    if role == 1})
  index = {c: i for i, c in enumerate(classes)}
  videos = {}
  for key, p in scan_videos(manual_dir).items():
    videos.setdefault(pathlib.PurePosixPath(key).stem, p)
  listed: dict[str, Entry] = {}
  problems, seen = [], set()
  for path, no, r, role, kind in rows:
    try:
      stem = (f'{r["youtube_id"].strip()}_{int(r["time_start"]):06d}_'
              f'{int(r["time_end"]):06d}')
    except (TypeError, ValueError) as e:
      raise UsageError(f'{path}:{no}: time_start/time_end '
                       f'{r["time_start"]!r}, {r["time_end"]!r} are not '
                       'whole seconds', 'use the official CSV') from e
    label = (r.get('label') or '').strip()
    if kind == 'test' and not label:
      role, cls = 3, -1
    elif label not in index:
      raise UsageError(f'{path}:{no}: class {label!r} has no training '
                       'videos in train.csv', 'use the CSVs of one release')
    else:
      cls = index[label]
    add_listed(listed, seen, problems, f'{path}:{no}', stem, cls,
               label if cls >= 0 else '', 0, role, 1)
  entries = []
  for key, e in listed.items():
    p = videos.pop(key, None)
    e.path = str(p) if p else ''
    if p:
      e.name = p.relative_to(manual_dir).as_posix()
    else:
      problems.append({'file': e.name, 'reason': 'missing',
                       'class': e.class_name})
    entries.append(e)
  layout = Layout(classes, entries, 1, problems)
  layout.lists = str(manual_dir / 'annotations')
  return layout


INDEX = re.compile(r'[+-]?\d+')
NUMBER = re.compile(r'[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?')


def parse_list(path: pathlib.Path, rawframes: bool = False):
  """Video list lines "relative/path.mp4 label" (label a class index or a
  class name; absent: the first folder is the class). A path with spaces
  needs a tab before the label. Returns [(line, path, label, kind,
  num_frames)] with kind 'index' | 'name' | 'folder'; a line that could be
  read two ways is a UsageError. `rawframes`: TSM / MMAction2 frame lists,
  "frame_dir num_frames label"."""
  rows = []
  for no, text in read_lines(path):
    fields = ([f.strip() for f in text.split('\t') if f.strip()]
              if '\t' in text else text.split())
    frames = 0
    if rawframes:
      if len(fields) != 3 or not fields[1].isdigit():
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
    kind = 'folder' if not lab else 'name'
    if NUMBER.fullmatch(lab):
      if not INDEX.fullmatch(lab) or int(lab) < 0:
        raise UsageError(f'{path}:{no}: label {lab!r} is not a class index '
                         '(0, 1, ...)', 'labels are 0-based class indices '
                         'or class names')
      kind = 'index'
    rows.append((no, rel, lab, kind, frames))
  return rows


def scan_frame_folders(root: pathlib.Path, filename_tmpl: str
                       ) -> dict[str, pathlib.Path]:
  """Lower-cased relative folder -> folder, for every folder holding a file
  named like `filename_tmpl`."""
  from mstsm_jax.data.video import frame_pattern
  try:
    pattern = frame_pattern(filename_tmpl)
  except ValueError as e:
    raise UsageError(str(e), 'TSM writes img_{:05d}.jpg, SSv2 frames '
                     '{:06d}.jpg') from e
  found = {}
  for dirpath, _, files in os.walk(root):
    if any(pattern.match(f) for f in files):
      p = pathlib.Path(dirpath)
      found[p.relative_to(root).as_posix().lower()] = p
  return found


def custom(manual_dir: str | os.PathLike, train_list: str = '',
           test_list: str = '', classes_file: str = '',
           test_fraction: float = 0.2, filename_tmpl: str = '') -> Layout:
  """Your videos: a folder per class, or TSM-style list files.

  With `train_list`/`test_list` ("relative/path.mp4 label", paths relative
  to manual_dir; the labels of all lines are class indices, or all class
  names, or absent: then the first folder is the class) those define split
  1. Without lists every folder of manual_dir is a class (an empty one
  too) and a stable hash of a video's name puts `test_fraction` of each
  class in test1. `classes_file`: one class name per line (index order);
  otherwise the sorted class folders or names, or `class_000`... for
  indices. `filename_tmpl` (with lists only): the lists are rawframe lists
  ("frame_dir num_frames label") over folders of frames named so.
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
  if filename_tmpl:
    if not (train_list or test_list):
      raise UsageError('--rawframes needs --train_list/--test_list',
                       'pass the "frame_dir num_frames label" lists')
    layout = _from_lists(root, scan_frame_folders(root, filename_tmpl),
                         train_list, test_list, classes, classes_file, True)
    layout.filename_tmpl = filename_tmpl
    return layout
  videos = scan_videos(root)
  if train_list or test_list:
    return _from_lists(root, videos, train_list, test_list, classes,
                       classes_file)
  folders = sorted(p.name for p in root.iterdir()
                   if p.is_dir() and not p.name.startswith('.'))
  classes = classes or folders
  index = {c.lower(): i for i, c in enumerate(classes)}
  listed: dict[str, Entry] = {}
  for key, p in sorted(videos.items()):
    cls = key.split('/')[0]
    if '/' not in key or cls not in index:
      continue  # left in `videos`: reported as unlisted
    rel = p.relative_to(root).as_posix()
    test = zlib.crc32(rel.encode()) % 1000 < test_fraction * 1000
    listed[key] = Entry('', rel, index[cls], classes[index[cls]],
                        [2 if test else 1])
  layout = finish(classes, listed, videos, root, [], 1)
  layout.origin = {c: f'{root / c}/' for c in classes}
  return layout


def _from_lists(root, videos, train_list, test_list, classes,
                classes_file, rawframes: bool = False) -> Layout:
  rows = []
  for role, lst in ((1, train_list), (2, test_list)):
    if lst:
      path = pathlib.Path(lst)
      require(path, 'pass an existing list file')
      rows += [(role, path, *r) for r in parse_list(path, rawframes)]
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
  listed: dict[str, Entry] = {}
  problems = []
  origin = {}
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
    add_listed(listed, seen, problems, f'{path}:{no}', rel, label,
               classes[label], 0, role, 1)
    if frames and rel.lower() in listed:
      listed[rel.lower()].listed_frames = frames
  layout = finish(classes, listed, videos, root, problems, 1)
  layout.origin = origin
  layout.lists = ', '.join(str(x) for x in (train_list, test_list) if x)
  return layout


POLICIES = ('error', 'keep', 'drop')


def apply_class_policy(layout: Layout, policy: str = 'error',
                       classes_file: str = '') -> Layout:
  """Classes with no training video in split 1 (an empty class folder, a
  label that skips indices, a class only in the test list): 'error' raises
  a UsageError naming them; 'keep' keeps them (named in the report);
  'drop' removes them and renumbers the rest (their test videos are
  reported as dropped)."""
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
    layout.empty_classes = empty
    return layout
  drop = set(empty)
  keep = [c for c in layout.classes if c not in drop]
  new = {c: i for i, c in enumerate(keep)}
  entries = []
  for e in layout.entries:
    if e.class_name in drop:
      layout.problems.append({'file': e.path or e.name,
                              'reason': 'class dropped'})
      continue
    e.label = new[e.class_name]
    entries.append(e)
  layout.classes, layout.entries = keep, entries
  layout.dropped_classes = empty
  return layout
