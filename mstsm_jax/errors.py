"""The one exception type for bad input.

A `UsageError` is what the user can fix: the jobs print it as one line
(`error: ...`) plus a `hint: ...` line and exit with code 2, no traceback.
Library callers catch it like any ValueError.
"""
from __future__ import annotations

import re


class UsageError(ValueError):
  """Bad input: `message` names the file (and line) or flag, `hint` the fix."""

  def __init__(self, message: str, hint: str = ''):
    super().__init__(message)
    self.message, self.hint = message, hint

  def __str__(self):
    return self.message + (f' ({self.hint})' if self.hint else '')


def one_line(e: BaseException, limit: int = 160) -> str:
  """'Type: the first line of its text' (cut at `limit`, terminal colour
  codes dropped): a library's exception, many lines long (orbax,
  tensorstore, torch.load), as part of one line of a message."""
  text = re.sub(r'\x1b\[[0-9;]*m', '', str(e))
  first = next((ln.strip() for ln in text.splitlines() if ln.strip()), '')
  return f'{type(e).__name__}: {first[:limit]}'
