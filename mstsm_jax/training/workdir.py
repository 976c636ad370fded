"""A run directory that is never silently clobbered.

- `lock(workdir)`: one live run per workdir. An advisory `flock` on
  `WORKDIR/.lock`, taken by process 0 and shared with every process of a
  multi-host run; the kernel drops it when the holder dies (even `kill -9`),
  so a crashed run never leaves it stuck.
- `check_resume(workdir, config)`: a restart must use the saved config;
  only the fields in `RESUMABLE` (how long to train, how often to log and
  save, evaluation, input workers, where the data lives) may change.
"""
from __future__ import annotations

import datetime
import fcntl
import json
import os
import pathlib
import socket

from mstsm_jax.errors import UsageError
from mstsm_jax.files import differences, fields_differ

# Config fields a resumed run may change: they do not change what the saved
# parameters and optimizer state mean.
RESUMABLE = ('init_from', 'init_partial', 'train.max_steps', 'train.epochs',
             'train.log_every_steps', 'train.checkpoint_every_steps',
             'train.keep_checkpoints', 'train.eval_every_epochs',
             'data.workers', 'data.prefetch', 'data.data_dir', 'eval.')


class Lock:
  """The held lock of a workdir; `release()` (or process exit) frees it."""

  def __init__(self, fd: int | None, path: pathlib.Path):
    self.fd, self.path = fd, path

  def release(self) -> None:
    if self.fd is not None:
      # A run refused before its first file leaves no lock file behind
      # (removed while still held: a run starting now makes its own).
      if os.listdir(self.path.parent) == [self.path.name]:
        self.path.unlink(missing_ok=True)
      fcntl.flock(self.fd, fcntl.LOCK_UN)
      os.close(self.fd)
      self.fd = None


def _try_lock(path: pathlib.Path) -> tuple[int | None, str]:
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    holder = os.pread(fd, 4096, 0).decode(errors='replace').strip()
    os.close(fd)
    return None, holder or 'another process'
  info = (f'pid {os.getpid()} on {socket.gethostname()}, started '
          f'{datetime.datetime.now().isoformat(timespec="seconds")}')
  os.ftruncate(fd, 0)
  os.pwrite(fd, info.encode(), 0)
  return fd, ''


def lock(workdir) -> Lock:
  """Takes the workdir's lock for this run, or raises UsageError.

  Multi-host: process 0 takes it and every process learns the outcome, so
  all of a refused run stop together.
  """
  import jax
  workdir = pathlib.Path(workdir).absolute()
  path = workdir / '.lock'
  fd, holder = (None, '')
  if jax.process_index() == 0:
    fd, holder = _try_lock(path)
  ok = fd is not None
  if jax.process_count() > 1:
    import numpy as np
    from jax.experimental import multihost_utils
    ok = bool(multihost_utils.broadcast_one_to_all(np.int32(ok)))
  if not ok:
    raise UsageError(
        f'{workdir} is in use by a live run ({holder or "on process 0"})',
        'wait for it to finish, stop it, or pass another --workdir')
  return Lock(fd, path)


def config_differences(saved: dict, config) -> list[str]:
  """'field: saved -> now' for every field that may not change on resume."""
  return differences(saved, config, RESUMABLE)


def check_resume(workdir, config) -> bool:
  """True when `workdir` holds a saved config (a restart); raises
  UsageError naming the fields that differ from it."""
  path = pathlib.Path(workdir) / 'config.json'
  if config.get('init_from') and pathlib.Path(
      config.init_from).resolve() == pathlib.Path(workdir).resolve():
    raise UsageError(f'--config.init_from={config.init_from} is the '
                     '--workdir itself', 'init_from names the model a new '
                     'run starts from: pass another model directory (a '
                     'run in --workdir resumes without it)')
  if not path.is_file():
    return False
  steps = [p for p in (pathlib.Path(workdir) / 'checkpoints').glob('*')
           if p.name.isdigit()]
  if steps and not any((p / 'data_iter').is_dir() for p in steps):
    raise UsageError(  # a run's checkpoints hold its data iterator too
        f'{workdir} is a model directory (weights only, as convert and '
        'prune write them), not a training run to resume',
        f'train into a new --workdir with --config.init_from={workdir}')
  try:
    saved = json.loads(path.read_text())
  except ValueError as e:
    raise UsageError(f'{path} is not valid JSON ({e})',
                     'restore it from a backup or use a new --workdir') from e
  diffs = config_differences(saved, config)
  if diffs:
    raise UsageError(
        f'{workdir} holds a run with another config '
        f'({fields_differ(diffs)})',
        'resume with the same config (only how long to train, logging, '
        'checkpointing, evaluation and data location may change) or pass a '
        'new --workdir')
  return True
