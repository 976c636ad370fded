"""Exported models: one file that runs with `jax` and `numpy` alone.

`export_model(model_dir, path)` writes a zip archive holding
- `function.bin`: the model as a serialized `jax.export.Exported`
  (StableHLO, the weights embedded as constants): uint8 clips
  `[N, T, S, S, C]` at the model's crop size in, float32 video scores
  `[N, classes]` out (normalisation and `task.scores` inside), for a
  symbolic batch N (`batch='dynamic'`) or a fixed one;
- `metadata.json`: class names, T, crop size, channels, normalisation,
  variant, backbone, platforms, batch, `kind`, `format` and the versions
  that wrote it;
- with `format='iree'`, `iree.vmfb`: the model compiled by IREE for the
  CPU that exported it (`metadata.json`'s `iree` names that target).

`streaming=True` (kind 'stream') exports an online model's one-frame step
instead (streaming/): `(uint8 frames [N, S, S, C], [buffers]) -> (scores
[N, classes], [buffers])`, the buffers a flat list whose shapes are the
function's `in_avals[1:]` (zeros to start a video); `Streamer(FILE)` runs
it.

`ExportedPredictor` (what `mstsm_jax.load(FILE)` returns) runs it. A file
that is not such an archive, or one written in another format version, is a
one-line `UsageError`.
"""
from __future__ import annotations

import json
import pathlib
import zipfile

import jax
import jax.numpy as jnp
import numpy as np

from mstsm_jax.errors import UsageError
from mstsm_jax.models import task

FORMAT_VERSION = 1
FUNCTION, METADATA, IREE_MODULE = ('function.bin', 'metadata.json',
                                   'iree.vmfb')


def export_model(model_dir, path, batch='dynamic', platforms=('cpu',),
                 checkpoint_step: str = '', streaming: bool = False,
                 fmt: str = 'xla') -> dict:
  """Writes the model directory's model (or, with `streaming`, its
  one-frame step) to `path`; returns its metadata. `fmt='iree'` also
  compiles it with IREE for this CPU and stores that module (fixed batch
  only; runtimes.py)."""
  from jax import export

  import mstsm_jax
  from mstsm_jax.inference import load
  from mstsm_jax.inference import runtimes
  if fmt not in runtimes.RUNTIMES:
    raise UsageError(f'--format={fmt}',
                     f'valid: {", ".join(runtimes.RUNTIMES)}')
  if fmt == 'iree':
    runtimes.check('iree')
    if batch == 'dynamic':
      raise UsageError('--format=iree needs a fixed batch (IREE compiles '
                       'static shapes)', 'add --batch=N (e.g. --batch=1)')
  predictor = load(model_dir, checkpoint_step)
  cfg = predictor.config
  t, s, c = cfg.model.num_segments, cfg.data.crop_size, predictor.channels
  if batch == 'dynamic':
    n, = export.symbolic_shape('batch')
  elif str(batch).isdigit() and int(batch) > 0:
    n = int(batch)
  else:
    raise UsageError(f'--batch={batch}', 'use dynamic or a positive number')
  if streaming:
    from mstsm_jax.streaming import step_function
    fn, buffers = step_function(predictor.model, predictor.variables, cfg, n)
    exported = export.export(jax.jit(fn), platforms=tuple(platforms))(
        jax.ShapeDtypeStruct((n, s, s, c), jnp.uint8), buffers)
    io = {'input': f'uint8 [N, {s}, {s}, {c}] frames, {len(buffers)} '
                   'buffers (zeros to start)',
          'output': f'float32 [N, {cfg.model.num_classes}] frame scores, '
                    'the new buffers'}
  else:
    exported = export_clips(predictor, n, platforms)
    io = {'input': f'uint8 [N, {t}, {s}, {s}, {c}]',
          'output': f'float32 [N, {cfg.model.num_classes}] video scores'}
  mean, std = task.norm_stats(cfg.data)
  meta = {'kind': 'stream' if streaming else 'clips',
          'resize_short': cfg.data.resize_short,
          'format_version': FORMAT_VERSION, 'classes': predictor.classes,
          'num_segments': t, 'crop_size': s, 'channels': c,
          'modality': cfg.data.modality, 'mean': list(np.atleast_1d(mean)),
          'std': list(np.atleast_1d(std)), 'variant': cfg.variant,
          'backbone': cfg.model.backbone, 'tfdem_fuse': cfg.model.tfdem_fuse,
          'batch': 'dynamic' if batch == 'dynamic' else int(batch),
          'platforms': list(platforms), 'jax': jax.__version__,
          'mstsm_jax': mstsm_jax.__version__, 'format': fmt, **io}
  module = None
  if fmt == 'iree':
    module = runtimes.compile_iree(exported.mlir_module())
    meta['iree'] = runtimes.iree_target()
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f'.{path.name}.tmp')
  with zipfile.ZipFile(tmp, 'w') as z:
    z.writestr(METADATA, json.dumps(meta, indent=1))
    z.writestr(FUNCTION, bytes(exported.serialize()))
    if module is not None:
      z.writestr(IREE_MODULE, module)
  tmp.replace(path)
  return meta


def iree_module(path, meta: dict):
  """(target, bytes) of the IREE module stored by `--format=iree`, or
  None."""
  if 'iree' not in meta:
    return None
  with zipfile.ZipFile(path) as z:
    return meta['iree'], z.read(IREE_MODULE)


def export_clips(predictor, batch, platforms=('cpu',)):
  """`jax.export` of a Predictor's scores on uint8 clips at its crop size
  (normalisation inside), for `batch` (an int or a symbolic dimension)."""
  from jax import export
  cfg = predictor.config
  t, s, c = cfg.model.num_segments, cfg.data.crop_size, predictor.channels
  variables = predictor.variables
  mean, std = task.norm_stats(cfg.data)

  def scores(clips):
    return predictor.forward(variables, task.normalize(clips, mean, std))

  return export.export(jax.jit(scores), platforms=tuple(platforms))(
      jax.ShapeDtypeStruct((batch, t, s, s, c), jnp.uint8))


def read(path) -> tuple[dict, object]:
  """(metadata, deserialized Exported) of an exported file."""
  from jax import export
  try:
    with zipfile.ZipFile(path) as z:
      meta = json.loads(z.read(METADATA))
      blob = z.read(FUNCTION)
  except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
    raise UsageError(f'{path} is not an exported mstsm_jax model ({e})',
                     'export one with python -m mstsm_jax.export') from e
  if meta.get('format_version') != FORMAT_VERSION:
    raise UsageError(
        f'{path} has export format {meta.get("format_version")!r}, this '
        f'version reads {FORMAT_VERSION} (written by mstsm_jax '
        f'{meta.get("mstsm_jax")}, jax {meta.get("jax")})',
        're-export it with this version')
  try:
    fn = export.deserialize(bytearray(blob))
  except Exception as e:  # pylint: disable=broad-except
    first = (str(e).strip().splitlines() or [''])[0][:160]
    raise UsageError(f'{path}: the exported function does not load with jax '
                     f'{jax.__version__} ({type(e).__name__}: {first})',
                     f'it was written with jax {meta.get("jax")}; re-export '
                     'it with this version') from e
  return meta, fn


class ExportedPredictor:
  """Runs an exported file: uint8 clips `[N, T, S, S, C]` at the crop size
  -> video scores `[N, classes]`; `probabilities` as `Predictor`'s.
  `runtime`: 'xla' or 'iree' (inference/runtimes.py)."""

  def __init__(self, path, runtime: str = 'xla'):
    from mstsm_jax.inference.runtimes import callable_for
    self.path = str(path)
    self.meta, self.exported = read(path)
    if self.meta.get('kind', 'clips') != 'clips':
      raise UsageError(f'{path} holds a streaming step, not a clip model',
                       'run it with mstsm_jax.streaming.Streamer or '
                       'python -m mstsm_jax.stream')
    self.classes = self.meta['classes']
    self.runtime = runtime
    self._call = callable_for(self.exported, runtime,
                              iree_module(path, self.meta))

  def __call__(self, clips) -> np.ndarray:
    m = self.meta
    clips = np.asarray(clips)
    want = (m['num_segments'], m['crop_size'], m['crop_size'],
            m['channels'])
    if clips.dtype != np.uint8 or clips.ndim != 5 or clips.shape[1:] != want:
      raise UsageError(f'{self.path} takes {m["input"]}, got '
                       f'{clips.dtype} {list(clips.shape)}',
                       'sample and crop clips as evaluate does')
    if m['batch'] == 'dynamic':
      return np.asarray(self._call(clips))
    from mstsm_jax.inference import in_batches
    return in_batches(self._call, clips, m['batch'], len(self.classes))

  def probabilities(self, clips) -> np.ndarray:
    return np.asarray(task.probabilities(self(clips),
                                         fuse=self.meta['tfdem_fuse']))

  @property
  def config(self):
    """The config fields the file's metadata fixes (T, sizes, modality,
    normalisation, fusion), for sampling and cropping videos for it."""
    from mstsm_jax.configs import base_config
    m = self.meta
    c = base_config('custom', len(self.classes), m['variant'])
    c.model.num_segments, c.model.tfdem_fuse = (m['num_segments'],
                                                m['tfdem_fuse'])
    c.data.crop_size, c.data.modality = m['crop_size'], m['modality']
    c.data.resize_short = m.get('resize_short',
                                round(m['crop_size'] * 256 / 224))
    if m['modality'] == 'rgb':
      c.data.mean, c.data.std = tuple(m['mean']), tuple(m['std'])
    return c

  def prepared(self, clips) -> np.ndarray:
    """Test-time views as this file takes them: uint8, unchanged."""
    return clips
