"""`LOG`: where progress and human-readable reports go (stderr).

A proxy that looks `sys.stderr` up on every write, so a module that binds
`LOG` at import keeps writing to the current stderr when a caller (a test,
a notebook) swaps it. stdout is for results (`--json`).
"""
import sys


class _Stderr:

  def write(self, text):
    return sys.stderr.write(text)

  def flush(self):
    sys.stderr.flush()

  def __getattr__(self, name):
    return getattr(sys.stderr, name)


LOG = _Stderr()
