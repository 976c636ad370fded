"""Files a job writes: whole or not at all, never over what it reads.

The base layer's file rules, one owner each:
- `write_text` / `write_json`: atomic (temp file + rename), so a crash or a
  full disk leaves the old file or nothing, never half a file.
- `check_writable`: proves an output folder is writable before long work;
  `remove_created` takes away the folders it made when the job then fails,
  so a refused job leaves nothing behind.
"""
from __future__ import annotations

import json
import os
import pathlib
import stat
import tempfile

from mstsm_jax.errors import UsageError


def _umask() -> int:
  """The process umask, read without changing it where Linux says it
  (os.umask can only be read by setting it, which races other threads'
  file creation: orbax's, grain's)."""
  try:
    with open('/proc/self/status', encoding='ascii') as f:
      for line in f:
        if line.startswith('Umask:'):
          return int(line.split()[1], 8)
  except (OSError, ValueError):
    pass
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


def _temp_beside(path: pathlib.Path) -> tuple[int, str]:
  """(fd, name) of a new hidden file beside `path`, with `path`'s suffix
  (writers that pick a format by it) and the mode `path` would get
  written in place (its own if it exists, else 0o666 less the umask):
  mkstemp's 0o600 would hide a shared run's files from its group."""
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.',
                             suffix=path.suffix)
  try:
    mode = path.stat().st_mode & 0o7777
  except OSError:
    mode = 0o666 & ~_umask()
  os.fchmod(fd, mode)
  return fd, tmp


def write_text(path, text: str) -> None:
  """Atomically replaces `path` with `text`: a crash or a full disk leaves
  the old file or nothing (the temporary file is removed), never half."""
  path = pathlib.Path(path)
  fd, tmp = _temp_beside(path)
  try:
    with os.fdopen(fd, 'w') as f:
      f.write(text)
    os.replace(tmp, path)
  except BaseException:
    pathlib.Path(tmp).unlink(missing_ok=True)
    raise


def write_json(path, obj) -> None:
  """Atomically replaces `path` with `obj` as JSON (a str is written as
  is)."""
  write_text(path, obj if isinstance(obj, str) else json.dumps(obj, indent=1))


# The folders check_writable made in this job: (outermost new one, the
# folder asked for). cli.invoke empties it per job.
created: list[tuple[pathlib.Path, pathlib.Path]] = []


def check_writable(directory, what: str = 'workdir') -> pathlib.Path:
  """Creates `directory` if needed and proves it is writable, or raises a
  one-line UsageError (before any long work starts)."""
  d = pathlib.Path(directory).absolute()
  file = next((p for p in (d, *d.parents) if p.is_file()), None)
  if file:  # mkdir's "File exists" reads as a permission problem
    raise UsageError(f'{what} {d}: {file} is a file, not a folder',
                     f'choose another {what}')
  missing = [p for p in (d, *d.parents) if not p.exists()]
  try:
    d.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=d):
      pass
  except OSError as e:
    raise UsageError(f'{what} {d} is not writable ({e.strerror})',
                     f'choose another {what} or fix its permissions') from e
  finally:
    if missing and missing[-1].exists():
      created.append((missing[-1], d))
  return d


def remove_created() -> None:
  """Removes the folders check_writable made in this job that are still
  empty, innermost first: a job that stops with an error leaves no empty
  output folder behind. A folder holding anything is kept."""
  while created:
    top, d = created.pop()
    for folder in (d, *d.parents):
      try:
        folder.rmdir()
      except OSError:
        break
      if folder == top:
        break


def flatten(obj, prefix: str = '') -> dict:
  """{'model.r_two': 0.0625, ...}: a nested dict (or ConfigDict) as dotted
  keys with JSON-normalised values."""
  if not isinstance(obj, dict):
    obj = json.loads(obj.to_json_best_effort())
  out = {}
  for k, v in obj.items():
    if isinstance(v, dict):
      out.update(flatten(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = json.loads(json.dumps(v))
  return out


def ignored(key: str, ignore) -> bool:
  """Whether the dotted `key` is in `ignore`: exact keys, or prefixes
  ending in '.'."""
  return any(key == r or (r.endswith('.') and key.startswith(r))
             for r in ignore)


def differences(saved, now, ignore=()) -> list[str]:
  """'field: saved -> now' for every field of two records (nested dicts or
  ConfigDicts) that differs, skipping `ignore` (exact keys, or prefixes
  ending in '.'). A field the saved record lacks (written by an older
  version) counts only when it is switched on now: off (False, 0, '', [])
  is what the older version did."""
  a, b = flatten(saved), flatten(now)
  out = []
  for key in sorted(set(a) | set(b)):
    if ignored(key, ignore):
      continue
    if key not in a and not b[key]:
      continue
    if a.get(key, '<absent>') != b.get(key, '<absent>'):
      out.append(f'{key}: {a.get(key, "<absent>")!r} -> '
                 f'{b.get(key, "<absent>")!r}')
  return out


def check_same_inputs(record, inputs, what: str, hint: str,
                      ignore=()) -> bool:
  """The one "inputs changed" check for every result a job reuses.

  `record` is the JSON file a finished result keeps of the inputs that made
  it (write it with `write_json(record, inputs)` once the result is
  complete). Returns False when there is no record (build the result), True
  when the record equals `inputs` (reuse it), and raises a one-line
  UsageError naming the fields that differ otherwise: `what` names the
  result, `hint` the way out (usually --overwrite or another folder).
  """
  record = pathlib.Path(record)
  if not record.is_file():
    return False
  try:
    saved = json.loads(record.read_text())
  except ValueError as e:
    raise UsageError(f'{record} is not valid JSON ({e})', hint) from e
  diffs = differences(saved, inputs, ignore)
  if diffs:
    raise UsageError(f'{what} was made from other inputs '
                     f'({fields_differ(diffs)})', hint)
  return True


def fields_differ(diffs: list[str]) -> str:
  """`differences` for an error line: '1 field differs: a' or 'N fields
  differ: a; b; ...' (the first six, then how many more)."""
  shown = '; '.join(diffs[:6]) + (f'; and {len(diffs) - 6} more'
                                   if len(diffs) > 6 else '')
  verb = 'fields differ' if len(diffs) > 1 else 'field differs'
  return f'{len(diffs)} {verb}: {shown}'


def _identity(path) -> str:
  """What makes two paths one file: the real path, or for an existing
  file its device and inode (a hard link to an input is that input)."""
  try:
    st = os.stat(path)
  except OSError:
    return os.path.realpath(path)
  return (os.path.realpath(path) if stat.S_ISDIR(st.st_mode) else
          f'inode {st.st_dev}:{st.st_ino}')


def check_outputs(outputs: dict, inputs=(), overwrite: bool = False
                  ) -> dict[str, pathlib.Path]:
  """The one output-path guard of every job, before any work starts.

  `outputs`: {what it is (a flag, e.g. '--output'): path}; `inputs`: the
  files the job reads. Refuses, in one line: an output that is one of the
  inputs, or an existing file inside an input folder (a model directory's
  config.json: never, even with `--overwrite`), two outputs that are the
  same file, an output that is a folder, and an output over an existing
  file unless `overwrite`. Returns the outputs as absolute paths.
  """
  for what, v in outputs.items():
    if str(v).endswith(('/', os.sep)):
      raise UsageError(f'{what}={v} ends in "/", a folder\'s name; this is '
                       'a file', 'drop the trailing /')
  out = {k: pathlib.Path(os.path.abspath(v)) for k, v in outputs.items()}
  read = {_identity(p): os.path.abspath(p) for p in inputs}
  seen = {}
  for what, p in out.items():
    name = f'{what}={p}' if what.startswith('--') else f'{what} ({p})'
    real = _identity(p)
    inside = next((read[r] for r in read if os.path.isdir(r) and
                   os.path.realpath(p).startswith(r + os.sep) and
                   p.exists()), None)
    if real in read or inside:
      raise UsageError(f'{name} is a file this job reads '
                       f'({read.get(real) or inside})',
                       f'write {what} to another file')
    if real in seen:
      raise UsageError(f'{seen[real]} and {what} are the same file ({p})',
                       'give each output its own name')
    seen[real] = what
    if p.is_dir():
      raise UsageError(f'{name} is a folder', 'name a file')
    if p.exists() and not overwrite:
      raise UsageError(f'{name} exists', 'pass --overwrite to replace it, '
                       'or choose another name')
  return out


class atomic_path:  # pylint: disable=invalid-name
  """`with atomic_path(path) as tmp:` writes `tmp` beside `path`; on success
  it replaces `path`, on any failure it is removed, so a crash, a full disk
  or a file-size limit leaves the old file or nothing, never half a file.
  Disk errors (OSError) become one line naming `path`."""

  def __init__(self, path, what: str = 'output'):
    self.path, self.what = pathlib.Path(path), what
    self.tmp = None

  def __enter__(self) -> pathlib.Path:
    fd, tmp = _temp_beside(self.path)
    os.close(fd)
    self.tmp = pathlib.Path(tmp)
    return self.tmp

  def __exit__(self, kind, error, tb) -> bool:
    if kind is None:
      try:
        os.replace(self.tmp, self.path)
        return False
      except OSError as e:
        error = e
    self.tmp.unlink(missing_ok=True)
    if isinstance(error, OSError):
      raise UsageError(
          f'could not write {self.what} {self.path} '
          f'({error.strerror or error}); nothing was written',
          'free disk space, raise the file-size limit (ulimit -f) or write '
          'elsewhere') from error
    return False
