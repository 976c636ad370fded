"""Exporting a model directory to one file (archive.py) that runs with
`jax` and `numpy` alone.

`export_model(model_dir, path)` writes the model as a serialized
`jax.export.Exported`: uint8 test-time views `[N, T, S, S, C]` at the
model's crop size in, float32 video scores `[N, classes]` out
(normalisation and `task.scores` inside), for a symbolic batch N
(`batch='dynamic'`) or a fixed one. `mstsm_jax.load(FILE)` does the
centre view of clips of any size first, as a model directory does
(predictor.py), so both give the same scores.

`streaming=True` (kind 'stream') exports an online model's one-frame step
instead (streaming.py): `(uint8 frames [N, S, S, C], [buffers]) -> (scores
[N, classes], [buffers])`, the buffers a flat list whose shapes are the
function's `in_avals[1:]` (zeros to start a video); `Streamer(FILE)` runs
it.

`fmt` names a runtime (runtimes.RUNTIMES); one that compiles at export
(iree) also stores its module for this CPU.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import export

import mstsm_jax
from mstsm_jax.errors import UsageError
import mstsm_jax.inference.archive as archive
import mstsm_jax.inference.predictor as predictor_kinds
import mstsm_jax.inference.runtimes as runtimes
import mstsm_jax.inference.streaming as online
from mstsm_jax.models import task


def check_export_flags(batch, fmt: str):
  """The batch as an int or 'dynamic', after refusing a bad `--batch` or
  `--format` in one line (before the model loads)."""
  if fmt not in runtimes.RUNTIMES:
    raise UsageError(f'--format={fmt}',
                     f'valid: {", ".join(runtimes.RUNTIMES)}')
  rt = runtimes.check(fmt)
  if batch != 'dynamic':
    if not str(batch).isdigit() or int(batch) < 1:
      raise UsageError(f'--batch={batch}',
                       'use dynamic or a positive whole number')
    batch = int(batch)
  if rt.static and batch == 'dynamic':
    raise UsageError(f'--format={fmt} needs a fixed batch ({fmt} compiles '
                     'static shapes)', 'add --batch=N (e.g. --batch=1)')
  return batch


def export_model(model_dir, path, batch='dynamic', platforms=('cpu',),
                 checkpoint_step: str = '', streaming: bool = False,
                 fmt: str = 'xla') -> dict:
  """Writes the model directory's model (or, with `streaming`, its
  one-frame step) to `path`, atomically; returns its metadata. A runtime
  `fmt` that compiles at export (iree) also stores its module for this CPU
  (fixed batch only; runtimes.py)."""
  batch = check_export_flags(batch, fmt)
  predictor = predictor_kinds.load(model_dir, checkpoint_step)
  cfg = predictor.config
  t, s, c = cfg.model.num_segments, cfg.data.crop_size, predictor.channels
  n = export.symbolic_shape('batch')[0] if batch == 'dynamic' else batch
  shown = 'N' if batch == 'dynamic' else batch
  if streaming:
    fn, buffers = online.step_function(predictor.model, predictor.variables,
                                       cfg, n)
    exported = export.export(jax.jit(fn), platforms=tuple(platforms))(
        jax.ShapeDtypeStruct((n, s, s, c), jnp.uint8), buffers)
    io = {'input': f'uint8 [{shown}, {s}, {s}, {c}] frames, {len(buffers)} '
                   'buffers (zeros to start)',
          'output': f'float32 [{shown}, {cfg.model.num_classes}] frame '
                    'scores, the new buffers'}
  else:
    exported = export_clips(predictor, n, platforms)
    io = {'input': f'uint8 [{shown}, {t}, {s}, {s}, {c}]',
          'output': f'float32 [{shown}, {cfg.model.num_classes}] video '
                    'scores'}
  mean, std = task.norm_stats(cfg.data)
  meta = {'kind': 'stream' if streaming else 'clips',
          'resize_short': cfg.data.resize_short,
          'format_version': archive.FORMAT_VERSION,
          'classes': predictor.classes,
          'num_segments': t, 'crop_size': s, 'channels': c,
          'modality': cfg.data.modality, 'mean': list(np.atleast_1d(mean)),
          'std': list(np.atleast_1d(std)), 'variant': cfg.variant,
          'backbone': cfg.model.backbone, 'tfdem_fuse': cfg.model.tfdem_fuse,
          'batch': batch, 'platforms': list(platforms),
          'jax': jax.__version__, 'mstsm_jax': mstsm_jax.__version__,
          'format': fmt, **io}
  rt, modules = runtimes.RUNTIMES[fmt], {}
  if rt.compile is not None:
    meta[fmt], modules[rt.module_file] = rt.compile(exported)
  archive.write(path, meta, exported, modules)
  return meta


def export_clips(predictor, batch, platforms=('cpu',)):
  """`jax.export` of a Predictor's scores on uint8 views at its crop size
  (normalisation inside), for `batch` (an int or a symbolic dimension)."""
  cfg = predictor.config
  t, s, c = cfg.model.num_segments, cfg.data.crop_size, predictor.channels
  variables = predictor.variables
  mean, std = task.norm_stats(cfg.data)

  def scores(views):
    return predictor.forward(variables, task.normalize(views, mean, std))

  return export.export(jax.jit(scores), platforms=tuple(platforms))(
      jax.ShapeDtypeStruct((batch, t, s, s, c), jnp.uint8))
