"""Command-line plumbing shared by the `python -m mstsm_jax.<job>` entries.

Flags are absl's; `--config=configs/X.py[:variant]` is ml_collections'
config file flag, so every field is overridable as `--config.a.b=value`
(type-checked, and a misspelled key fails). With `--json` the last stdout line
is one JSON object; progress bars and logs go to stderr.
"""
from __future__ import annotations

import json
import os
import sys
import traceback

from absl import app, flags, logging
from ml_collections import config_flags

FLAGS = flags.FLAGS


def define_config(required: bool = True):
  config_flags.DEFINE_config_file(
      'config', None, 'config file, e.g. configs/ucf101.py:mstsm_tfdem',
      lock_config=True)
  if required:
    flags.mark_flag_as_required('config')


def define_json():
  flags.DEFINE_bool('json', False, 'end stdout with one JSON object')


def emit_json(obj) -> None:
  if FLAGS.json:
    print(json.dumps(obj), flush=True)


def run(main) -> None:
  """`app.run(main)`, turning bad input into a one-line error and exit 2.

  Set MSTSM_TRACEBACK=1 for the full traceback.
  """
  def wrapped(argv):
    logging.set_verbosity(logging.WARNING)  # orbax/jax INFO lines are noise
    try:
      return main(argv)
    except (ValueError, FileNotFoundError, KeyError) as e:
      if os.environ.get('MSTSM_TRACEBACK'):
        traceback.print_exc()
      print(f'error: {e}', file=sys.stderr)
      sys.exit(2)
  app.run(wrapped)
