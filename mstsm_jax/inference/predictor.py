"""One predictor contract for every kind: `load(path)` -> a Predictor.

  predictor = mstsm_jax.load('runs/ucf101')   # or 'model.mstsm' (export)
  scores = predictor(clips)      # uint8 [N, T, H, W, C], any H, W -> [N, K]
  probs = predictor.probabilities(clips)
  scores = predictor.scores_normalized(x)  # normalised floats (directory)
  scores = predictor.scores_views(views)   # uint8 test-time views at the
                                           # crop size (read_video_views)

The same call gives the same scores (float tolerance) on a model directory
(`Predictor`), an exported file with a symbolic or a fixed batch, and every
runtime (`ExportedPredictor`, runtimes.py): uint8 clips of any size get the
test-time centre view (views.center_view, shared), then the kind's model.
Normalised floats take the one explicit path `scores_normalized` (a model
directory; an exported file holds pixels -> scores and refuses it in one
line). Any other dtype (float or int64 raw pixels, ...) is refused in one
line naming the dtype and the two accepted inputs.
"""
from __future__ import annotations

import functools
import pathlib
import sys

import jax
import numpy as np

from mstsm_jax import cpu, modeldir
from mstsm_jax.configs import base_config
from mstsm_jax.data.pipeline import test_protocol, view_size
from mstsm_jax.errors import UsageError
import mstsm_jax.inference.archive as archive
import mstsm_jax.inference.runtimes as runtimes
from mstsm_jax.inference.views import center_view, in_batches
from mstsm_jax.models import task
from mstsm_jax.models.mstsm import DTYPES, build_model

ACCEPTED = ('predictor(clips) takes uint8 pixels [N, T, H, W, C] of any size '
            '(cast 0-255 pixels with .astype(np.uint8)); '
            'predictor.scores_normalized(x) takes normalised floats')


class Contract:
  """The calls every predictor kind shares; a kind gives `config`,
  `classes`, `channels`, `batch_size`, `fuse`, `name` and
  `_views(uint8 [B, T, S, S, C])` -> scores `[B, K]` for fixed-size
  batches; clips of any size reach it through `view`."""

  def _check(self, clips, what: str, dtype_ok, want: str, size=None):
    t, c = self.config.model.num_segments, self.channels
    if not dtype_ok(clips.dtype):
      raise UsageError(f'{what} got {clips.dtype} {list(clips.shape)}; it '
                       f'takes {want}', ACCEPTED)
    hw = tuple(clips.shape[2:4]) if clips.ndim == 5 else ()
    if clips.ndim != 5 or clips.shape[1] != t or clips.shape[-1] != c or (
        min(hw) < 1 or (size and hw != (size, size))):
      s = f'{size}, {size}' if size else 'H, W'
      raise UsageError(f'{what} takes [N, {t}, {s}, {c}] '
                       f'({self.name}), got {list(clips.shape)}',
                       'N clips of T frames, channels last' +
                       (', RGB (drop an alpha channel: x[..., :3])'
                        if clips.ndim == 5 and clips.shape[-1] == 4 else ''))

  def _batched(self, fn, x) -> np.ndarray:
    return in_batches(fn, x, self.batch_size, len(self.classes))

  def __call__(self, clips) -> np.ndarray:
    """Video scores `[N, classes]` of uint8 clips `[N, T, H, W, C]` of any
    size, each seen through the test-time centre view."""
    clips = np.asarray(clips)
    self._check(clips, 'predictor(clips)', lambda d: d == np.uint8,
                'uint8 pixels')
    return self._batched(lambda x: self._views(self.view(x)), clips)

  def scores_views(self, views) -> np.ndarray:
    """Video scores of uint8 test-time views `[N, T, S, S, C]` at the crop
    size, already cropped (`read_video_views`): no further view."""
    views = np.asarray(views)
    self._check(views, 'scores_views', lambda d: d == np.uint8,
                'uint8 views at the crop size', view_size(self.config.data))
    return self._batched(self._views, views)

  def probabilities(self, clips) -> np.ndarray:
    """Class probabilities `[N, classes]` (`task.probabilities`)."""
    return np.asarray(task.probabilities(self(clips), fuse=self.fuse))

  def view(self, clips) -> np.ndarray:
    """The uint8 centre views `[N, T, S, S, C]` that `__call__` scores
    (the same for every kind: `center_view`)."""
    cfg = self.config.data
    return center_view(clips, cfg.resize_short, cfg.crop_size,
                       test_protocol(cfg)[1])


class Predictor(Contract):
  """A model directory's model, jitted, in fixed-size batches (the last one
  padded), so one compiled program serves every call of a given clip size:
  video scores (`task.scores`: main logits, or the fused softmax with
  `tfdem_fuse`)."""

  def __init__(self, config, variables, channels=None, batch_size: int = 8,
               classes=None, name: str = 'a model directory',
               step: int | None = None):
    self.config, self.batch_size, self.name = config, batch_size, name
    self.step = step  # the checkpoint's training step, when loaded from one
    self.model = build_model(config.model, channels)
    self.variables = jax.device_put(variables)
    self.classes = classes or [f'class_{i}' for i in
                               range(config.model.num_classes)]
    self.channels = task.in_channels(config.data)
    self.fuse = config.model.tfdem_fuse
    # forward(variables, x): normalised clips -> video scores (pure).
    self.forward, views, normalized = _programs(
        self.model, config.model.dtype, self.fuse,
        *task.norm_stats(config.data))
    self._views = lambda x: views(self.variables, x)
    self._normalized = lambda x: normalized(self.variables, x)

  def scores_normalized(self, x) -> np.ndarray:
    """Video scores of normalised float clips `[N, T, H, W, C]` (any H, W;
    `task.normalize` of the pixels): the one path for floats."""
    x = np.asarray(x)
    self._check(x, 'scores_normalized(x)',
                lambda d: np.issubdtype(d, np.floating),
                'normalised floats (task.normalize of uint8 pixels)')
    return self._batched(self._normalized, x.astype(np.float32))


@functools.lru_cache(maxsize=8)
def _programs(model, dtype: str, fuse: bool, mean, std):
  """`forward` (normalised clips `[N, T, H, W, C]` -> video scores
  `[N, classes]`; pure: jit or export it) and the jitted programs of uint8
  views and of normalised clips, made once per model (flax modules compare
  by their fields): every `load` of a model in a process shares its
  compilations instead of tracing the model again."""
  def forward(variables, x):
    logits, aux = model.apply(variables, x.astype(DTYPES[dtype]),
                              train=False)
    return task.scores(logits, aux, fuse=fuse)
  views = cpu.jit(lambda v, x: forward(v, task.normalize(x, mean, std)))
  return forward, views, cpu.jit(forward)


class ExportedPredictor(Contract):
  """Runs an exported file (archive.py) with `runtime` (runtimes.py): the
  same contract as `Predictor`. The file's function takes the uint8 views
  at the crop size; the centre view is done here first, as a model
  directory does it."""

  def __init__(self, path, runtime: str = 'auto', batch_size: int = 8):
    self.path = self.name = str(path)
    self.meta, self.exported = archive.read(path)
    if self.meta['kind'] != 'clips':
      raise UsageError(f'{path} holds a streaming step, not a clip model',
                       'run it with mstsm_jax.Streamer or '
                       'python -m mstsm_jax.stream')
    self.classes = self.meta['classes']
    self.runtime = runtime
    self.fuse = self.meta['tfdem_fuse']
    self.channels = self.meta['channels']
    fixed = self.meta['batch'] != 'dynamic'
    self.batch_size = self.meta['batch'] if fixed else batch_size
    self.config = file_config(self.meta)
    run = runtimes.callable_for(
        self.exported, runtime, archive.stored_module(path, self.meta,
                                                      runtime))
    self._views = lambda x: run(x)[0]

  def scores_normalized(self, x) -> np.ndarray:
    del x
    raise UsageError(f'{self.path} is an exported file: it takes pixels, '
                     'not normalised floats',
                     'pass uint8 clips to predictor(clips) (any size) or '
                     'uint8 views at the crop size to '
                     'predictor.scores_views(views); normalised floats need '
                     'the model directory: mstsm_jax.load(DIR)')


def file_config(meta: dict):
  """The config fields an exported file's metadata fixes (T, sizes,
  test-time sampling and crops, modality, normalisation, fusion), for
  sampling and cropping videos for it as for its model directory. A file
  from before the test-time fields were written was run with 'spread' and
  'resize', which its defaults keep."""
  c = base_config('custom', len(meta['classes']), meta['variant'])
  c.model.num_segments, c.model.tfdem_fuse = (meta['num_segments'],
                                              meta['tfdem_fuse'])
  c.data.crop_size, c.data.modality = meta['crop_size'], meta['modality']
  c.data.resize_short = meta.get('resize_short',
                                 round(meta['crop_size'] * 256 / 224))
  c.data.test_sampling, c.data.test_crops = test_protocol(meta)
  if meta['modality'] == 'rgb':
    c.data.mean, c.data.std = tuple(meta['mean']), tuple(meta['std'])
  return c


def load(path, checkpoint_step: str = '', batch_size: int = 8,
         runtime: str = 'auto'):
  """A `Predictor` for the model directory `path` (latest checkpoint, or
  `checkpoint_step`), or an `ExportedPredictor` for a file written by
  `python -m mstsm_jax.export`, run by `runtime` (runtimes.RUNTIMES)."""
  if pathlib.Path(path).is_file():
    return ExportedPredictor(path, runtime, batch_size)
  if runtime not in ('auto', 'xla'):
    runtimes.check(runtime)
    what = 'a model directory' if pathlib.Path(path).is_dir() else 'not found'
    fmt = runtimes.RUNTIMES[runtime].reads
    how = ('--format=onnx --output=model.onnx' if fmt == 'onnx' else
           '--batch=1 --output=model.mstsm')
    raise UsageError(f'--runtime={runtime} runs exported files; {path} is '
                     f'{what}', f'export it first: python -m '
                     f'mstsm_jax.export --checkpoint={path} {how}')
  config, channels, variables, step = modeldir.load_variables(
      path, checkpoint_step)
  classes = modeldir.read_classes(path, config.model.num_classes)
  if classes is None:
    print(f'note: {path} has no classes.json; the classes are named class_0 '
          f'.. class_{config.model.num_classes - 1} (convert '
          '--classes_file names them)', file=sys.stderr)
  return Predictor(config, variables, channels, batch_size, classes,
                   step=step)
