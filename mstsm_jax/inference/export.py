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
instead (streaming.py): `(uint8 frames [N, S, S, C], *buffers) -> (scores
[N, classes], *buffers)`, the buffers' shapes being the function's
`in_avals[1:]` (zeros to start a video); `Streamer(FILE)` runs
it.

`fmt` is 'xla' (the zip archive of StableHLO), 'iree' (the archive with
the IREE module compiled for this CPU stored too) or 'onnx' (one `.onnx`
file, onnx_file.py: the same functions and metadata, for ONNX Runtime,
OpenVINO and TensorRT).
"""
from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from jax import export

import mstsm_jax
from mstsm_jax.data.pipeline import test_protocol, view_size
from mstsm_jax.errors import UsageError
import mstsm_jax.inference.archive as archive
import mstsm_jax.inference.onnx_file as onnx_file
import mstsm_jax.inference.predictor as predictor_kinds
import mstsm_jax.inference.runtimes as runtimes
import mstsm_jax.inference.streaming as online
from mstsm_jax.models import task


FORMATS = ('xla', 'iree', 'onnx')


def check_export_flags(batch, fmt: str):
  """The batch as an int or 'dynamic', after refusing a bad `--batch` or
  `--format` in one line (before the model loads)."""
  if fmt not in FORMATS:
    raise UsageError(f'--format={fmt}', f'valid: {", ".join(FORMATS)}')
  static = fmt != 'onnx' and runtimes.check(fmt).static
  if fmt == 'onnx':
    onnx_file.check_installed()
  if batch != 'dynamic':
    if not str(batch).isdigit() or int(batch) < 1:
      raise UsageError(f'--batch={batch}',
                       'use dynamic or a positive whole number')
    batch = int(batch)
  if static and batch == 'dynamic':
    raise UsageError(f'--format={fmt} needs a fixed batch ({fmt} compiles '
                     'static shapes)', 'add --batch=N (e.g. --batch=1)')
  return batch


def export_model(model_dir, path, batch='dynamic', platforms=('cpu',),
                 checkpoint_step: str = '', streaming: bool = False,
                 fmt: str = 'xla') -> dict:
  """Writes the model directory's model (or, with `streaming`, its
  one-frame step) to `path`, atomically, in format `fmt`; returns its
  metadata. 'iree' also stores the module compiled for this CPU (fixed
  batch only; runtimes.py)."""
  batch = check_export_flags(batch, fmt)
  if fmt == 'onnx' and tuple(platforms) != ('cpu',):
    raise UsageError(f'--platforms={",".join(platforms)} with --format=onnx',
                     'an ONNX file names no platform (its runtime picks '
                     'the device): drop --platforms')
  if pathlib.Path(model_dir).is_file():
    raise UsageError(f'--checkpoint={model_dir} is a file, not a model '
                     'directory; export reads a model directory',
                     'give the run directory (train --workdir=...); an '
                     'exported file is not exported again')
  predictor = predictor_kinds.load(model_dir, checkpoint_step)
  cfg = predictor.config
  t, s, c = cfg.model.num_segments, view_size(cfg.data), predictor.channels
  n = export.symbolic_shape('N')[0] if batch == 'dynamic' else batch
  shown = 'N' if batch == 'dynamic' else batch
  k = cfg.model.num_classes
  if streaming:
    fn, inputs = stream_function(predictor, n)
    io = {'input': f'uint8 [{shown}, {s}, {s}, {c}] frames, '
                   f'{len(inputs) - 1} buffers (zeros to start)',
          'output': f'float32 [{shown}, {k}] frame scores, the new buffers'}
  else:
    fn = clip_function(predictor)
    inputs = [jax.ShapeDtypeStruct((n, t, s, s, c), jnp.uint8)]
    io = {'input': f'uint8 [{shown}, {t}, {s}, {s}, {c}]',
          'output': f'float32 [{shown}, {k}] video scores'}
  mean, std = task.norm_stats(cfg.data)
  test_sampling, test_crops = test_protocol(cfg.data)
  meta = {'kind': 'stream' if streaming else 'clips',
          'resize_short': cfg.data.resize_short,
          'test_sampling': test_sampling, 'test_crops': test_crops,
          'format_version': archive.FORMAT_VERSION,
          'classes': predictor.classes,
          'num_segments': t, 'crop_size': s, 'channels': c,
          'modality': cfg.data.modality, 'mean': list(np.atleast_1d(mean)),
          'std': list(np.atleast_1d(std)), 'variant': cfg.variant,
          'backbone': cfg.model.backbone, 'tfdem_fuse': cfg.model.tfdem_fuse,
          'batch': batch, 'platforms': list(platforms),
          'jax': jax.__version__, 'mstsm_jax': mstsm_jax.__version__,
          'format': fmt, **io}
  if fmt == 'onnx':
    meta = archive.sealed(meta)
    onnx_file.write(path, meta, onnx_file.convert(
        fn, inputs, *io_names(len(inputs), streaming), name=cfg.variant))
    return meta
  exported = export.export(jax.jit(fn), platforms=tuple(platforms))(*inputs)
  rt, modules = runtimes.RUNTIMES[fmt], {}
  if rt.compile is not None:
    meta[fmt], modules[rt.module_file] = rt.compile(exported)
  meta = archive.sealed(meta)
  archive.write(path, meta, exported, modules)
  return meta


def io_names(num_inputs: int, streaming: bool):
  """(input names, output names) of an exported ONNX function: 'clips' ->
  'scores', or 'frames', 'buffer_i' -> 'scores', 'new_buffer_i'."""
  if not streaming:
    return ['clips'], ['scores']
  k = range(num_inputs - 1)
  return (['frames', *[f'buffer_{i}' for i in k]],
          ['scores', *[f'new_buffer_{i}' for i in k]])


def clip_function(predictor):
  """uint8 views `[N, T, S, S, C]` at the crop size -> video scores
  `[N, classes]`: a Predictor's scores with the normalisation inside (pure:
  export it)."""
  variables = predictor.variables
  mean, std = task.norm_stats(predictor.config.data)

  def scores(views):
    return predictor.forward(variables, task.normalize(views, mean, std))
  return scores


def stream_function(predictor, streams):
  """(fn, abstract inputs) of an online model's one-frame step with flat
  arguments, as exported files hold it: `fn(frames, *buffers) -> (scores,
  *new buffers)`, frames uint8 `[streams, S, S, C]`."""
  cfg = predictor.config
  step, buffers = online.step_function(predictor.model, predictor.variables,
                                       cfg, streams)
  s, c = view_size(cfg.data), predictor.channels

  def fn(frames, *flat):
    scores, new = step(frames, list(flat))
    return (scores, *new)
  return fn, [jax.ShapeDtypeStruct((streams, s, s, c), jnp.uint8), *buffers]


def export_clips(predictor, batch, platforms=('cpu',)):
  """`jax.export` of `clip_function(predictor)` for `batch` (an int or a
  symbolic dimension)."""
  cfg = predictor.config
  t, s, c = cfg.model.num_segments, view_size(cfg.data), predictor.channels
  return export.export(jax.jit(clip_function(predictor)),
                       platforms=tuple(platforms))(
                           jax.ShapeDtypeStruct((batch, t, s, s, c),
                                                jnp.uint8))
