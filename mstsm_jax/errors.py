"""The one exception type for bad input.

A `UsageError` is what the user can fix: the jobs print it as one line
(`error: ...`) plus a `hint: ...` line and exit with code 2, no traceback.
Library callers catch it like any ValueError.
"""
from __future__ import annotations


class UsageError(ValueError):
  """Bad input: `message` names the file (and line) or flag, `hint` the fix."""

  def __init__(self, message: str, hint: str = ''):
    super().__init__(message)
    self.message, self.hint = message, hint

  def __str__(self):
    return self.message + (f' ({self.hint})' if self.hint else '')
