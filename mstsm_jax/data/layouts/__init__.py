r"""Dataset layouts: how each dataset lists its videos, as one registry.

A layout is one module here with one `Reader` (base.py): its name, its
`read(manual_dir, **options) -> Layout`, its own `prepare` flags as
`Option`s, its failure and missing limits, split names and tfds builder
name. `REGISTRY` holds them; `prepare`'s --dataset choices and help, its
layout flags and the builder names all come from it, so a new layout, from
inside the package or outside it, is one `register(Reader(...))` call.

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

import os

from mstsm_jax.data.layouts import (custom, generated, hmdb51, kinetics, ssv2,
                                    ucf101)
from mstsm_jax.data.layouts.base import (POLICIES, Entry, Layout, Listing,
                                         Option, Reader, apply_class_policy,
                                         is_index, plural,
                                         read_class_names, read_lines,
                                         scan_videos)
from mstsm_jax.errors import UsageError

__all__ = ['POLICIES', 'Entry', 'Layout', 'Listing', 'Option', 'Reader',
           'REGISTRY', 'apply_class_policy', 'get', 'is_index', 'names',
           'options', 'plural', 'read', 'read_class_names', 'read_lines',
           'register',
           'scan_videos', 'users']

REGISTRY: dict[str, Reader] = {}  # --dataset name -> its Reader


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
    raise UsageError(f'dataset {name!r} is not a registered layout',
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


for _reader in (ucf101.READER, hmdb51.READER, ssv2.READER, *kinetics.READERS,
                custom.READER, *generated.READERS):
  register(_reader)
