"""The exported file: a zip archive that runs with `jax` and `numpy` alone,
or an ONNX file (onnx_file.py) with the same metadata.

- `function.bin`: the model as a serialized `jax.export.Exported`
  (StableHLO, the weights embedded as constants);
- `metadata.json`: class names, T, crop size, channels, normalisation,
  variant, backbone, platforms, batch, `kind` ('clips' or 'stream'),
  `format` and the versions that wrote it;
- for a runtime that compiles at export (`export --format=iree`), its module
  (`runtimes.Runtime.module_file`), and the target it was compiled for under
  the metadata key of the runtime's name.

`write` is atomic (nothing, or the whole file; a full disk is one line).
`read` reads either kind and checks the metadata against the function, so a
file whose metadata was altered (2 classes for a 10-score function, another T or crop size) is
one line naming the file and the mismatch, never a wrong result later.
"""
from __future__ import annotations

import hashlib
import json
import sys
import zipfile

import jax
import numpy as np
from jax import export

from mstsm_jax import files
from mstsm_jax.errors import UsageError, one_line
import mstsm_jax.inference.onnx_file as onnx_file
import mstsm_jax.inference.runtimes as runtimes

# 2 adds the contract digest (`SEAL`), required from then on; 1 is read
# as before (files exported before the digest cannot be checked by it).
FORMAT_VERSION = 2
READS = (1, 2)
V2_KEYS = ('test_sampling', 'test_crops')  # written from format 2 on
FUNCTION, METADATA = 'function.bin', 'metadata.json'
KEYS = ('kind', 'classes', 'num_segments', 'crop_size', 'channels', 'batch',
        'tfdem_fuse', 'modality', 'mean', 'std', 'variant', 'input')


SEAL = 'contract_sha256'


def contract_digest(meta: dict) -> str:
  """The digest of everything in `meta` that decides the scores (sizes,
  sampling, normalisation, fusion, the class count, ...): all of it but
  the class names, which a user may rename, and the runtime modules'
  targets (a cache's key, not the model's). `check` refuses a file whose
  metadata no longer matches it: an edited `tfdem_fuse` gave
  "probabilities" of 20."""
  kept = {k: v for k, v in meta.items()
          if k not in ('classes', SEAL, *runtimes.MODULE_KEYS)}
  kept['num_classes'] = len(meta.get('classes') or ())
  return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()
                        ).hexdigest()


def sealed(meta: dict) -> dict:
  """`meta` with its `contract_digest`, as export writes it."""
  return {**meta, SEAL: contract_digest(meta)}


def write(path, meta: dict, exported, modules: dict | None = None) -> None:
  """The archive at `path`, whole or not at all; `modules`: {file name:
  bytes} of compiled runtime modules."""
  with files.atomic_path(path, 'the exported file') as tmp:
    with zipfile.ZipFile(tmp, 'w') as z:
      z.writestr(METADATA, json.dumps(meta, indent=1))
      z.writestr(FUNCTION, bytes(exported.serialize()))
      for name, blob in (modules or {}).items():
        z.writestr(name, blob)


def read(path) -> tuple[dict, object]:
  """(metadata, program) of an exported file, checked against each other:
  the program a deserialized `jax.export.Exported` (zip archive) or an
  `onnx_file.OnnxProgram`."""
  if zipfile.is_zipfile(path):
    meta, program = _read_zip(path)
  else:
    meta, program = onnx_file.read(path)
    check_version(path, meta)
  check(path, meta, program)
  return meta, program


def _read_zip(path) -> tuple[dict, object]:
  try:
    with zipfile.ZipFile(path) as z:
      meta = json.loads(z.read(METADATA))
      blob = z.read(FUNCTION)
  except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
    raise UsageError(f'{path} is not an exported mstsm_jax model ({e})',
                     'export one with python -m mstsm_jax.export') from e
  check_version(path, meta)
  try:
    fn = export.deserialize(bytearray(blob))
  except Exception as e:  # pylint: disable=broad-except
    raise UsageError(f'{path}: the exported function does not load with jax '
                     f'{jax.__version__} ({one_line(e)})',
                     f'it was written with jax {meta.get("jax")}; re-export '
                     'it with this version') from e
  return meta, fn


def check_version(path, meta) -> None:
  version = meta.get('format_version') if isinstance(meta, dict) else None
  if type(version) is not int or version not in READS:  # not True == 1
    raise UsageError(
        f'{path} has export format {version!r}, this version reads '
        f'{" and ".join(map(str, READS))} (written by mstsm_jax '
        f'{meta.get("mstsm_jax") if isinstance(meta, dict) else "?"}, jax '
        f'{meta.get("jax") if isinstance(meta, dict) else "?"})',
        're-export it with this version')


def expected_input(meta: dict) -> tuple:
  """The first input's shape the metadata describes: (N, T, S, S, C) for
  clips, (N, S, S, C) for a streaming step; N an int or 'N'."""
  s, c = meta['crop_size'], meta['channels']
  n = 'N' if meta['batch'] == 'dynamic' else meta['batch']
  if meta['kind'] == 'stream':
    return (n, s, s, c)
  return (n, meta['num_segments'], s, s, c)


def shown(shape) -> str:
  return '[' + ', '.join(map(str, shape)) + ']'


def check(path, meta: dict, fn) -> None:
  """Refuses a file whose metadata does not describe its function."""
  hint = ('the metadata was altered or the file is damaged; re-export it '
          'with python -m mstsm_jax.export')
  missing = [k for k in KEYS if k not in meta]
  if missing:
    raise UsageError(f'{path}: metadata.json lacks {", ".join(missing)}',
                     hint)
  if meta['kind'] not in ('clips', 'stream'):
    raise UsageError(f'{path}: metadata kind {meta["kind"]!r} is neither '
                     'clips nor stream', hint)
  try:
    want = expected_input(meta)
  except (TypeError, KeyError) as e:
    raise UsageError(f'{path}: metadata.json is malformed ({e})', hint) from e
  got = fn.in_avals[0]
  shape = tuple(d if isinstance(d, int) else 'N' for d in got.shape)
  dtype = np.dtype(got.dtype).name
  if shape != want or dtype != 'uint8':
    raise UsageError(
        f'{path}: the metadata describes uint8 {shown(want)} inputs (batch, '
        f'T, crop size, channels), the function takes {dtype} '
        f'{shown(shape)}', hint)
  scores = fn.out_avals[0].shape[-1]
  if not isinstance(meta['classes'], list) or len(meta['classes']) != scores:
    n = len(meta['classes']) if isinstance(meta['classes'], list) else '?'
    raise UsageError(f'{path}: the metadata lists {n} classes, the function '
                     f'gives {scores} scores', hint)
  # Format 1 predates the digest and the test-time fields: a file that
  # says 1 but holds either was edited (to pass without its digest).
  if (meta.get(SEAL) != contract_digest(meta) if meta['format_version'] >= 2
      else any(k in meta for k in (SEAL, *V2_KEYS))):
    raise UsageError(f'{path}: the metadata was edited after export (its '
                     'sizes, sampling, normalisation or fusion no longer '
                     'match the digest written with it)',
                     'only the class names may be renamed; re-export it '
                     'with python -m mstsm_jax.export')
  if meta['format_version'] == 1:  # nothing to check it against
    print(f'warning: {path} is of export format 1, which carries no digest: '
          'an edit to its metadata cannot be detected; re-export it from '
          'its model directory to have it checked', file=sys.stderr)
  names = meta['classes']
  if not all(isinstance(c, str) for c in names) or len(set(names)) != len(
      names):
    twice = next((c for c in names if names.count(c) > 1), None)
    raise UsageError(f'{path}: the metadata names '
                     + (f'class {twice!r} twice' if twice is not None else
                        'classes that are not all strings'), hint)


def stored_module(path, meta: dict, runtime: str):
  """(target, bytes) of the module `export --format=RUNTIME` stored, or
  None."""
  rt = runtimes.RUNTIMES.get(runtime)
  if rt is None or not rt.module_file or runtime not in meta:
    return None
  with zipfile.ZipFile(path) as z:
    return meta[runtime], z.read(rt.module_file)
