"""Inference API: `load(model_dir)` -> a jitted, batched `Predictor`.

  predictor = mstsm_jax.load('runs/ucf101')     # any model directory
  scores = predictor(clips)    # uint8 [N, T, H, W, C], any H, W -> [N, C]
  probs = predictor.probabilities(clips)

Any model directory works (a training workdir, convert or prune output): the
config and, for pruned models, the channel spec are restored from it. uint8
clips of any size are resized and centre-cropped on the device as
`evaluate`'s 1x1 view does (short side to `data.resize_short`, centre crop
`data.crop_size`) and normalised there; float clips are taken as already
normalised, at any size. `read_video_views` decodes a file into the exact
test-time views of `evaluate`.
"""
from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from mstsm_jax.errors import UsageError
from mstsm_jax.models import task
from mstsm_jax.models.mstsm import DTYPES, build_model


def center_view(clips, resize_short: int, crop_size: int):
  """uint8 `[N, T, H, W, C]` -> float32 `[N, T, crop, crop, C]`: the
  centre square that is `crop_size` at a short side of `resize_short`,
  resized to `crop_size` (antialiased), as evaluate's 1x1 view."""
  n, t, h, w, c = clips.shape
  side = min(h, w, max(1, round(crop_size * min(h, w) / resize_short)))
  y, x = (h - side) // 2, (w - side) // 2
  crop = clips[:, :, y:y + side, x:x + side].astype(jnp.float32)
  if side == crop_size:
    return crop
  return jax.image.resize(crop, (n, t, crop_size, crop_size, c), 'linear',
                          antialias=True)


class Predictor:
  """Jitted video scores (`task.scores`: main logits, or the fused softmax
  with `tfdem_fuse`) in fixed-size batches (the last one padded), so one
  compiled program serves every call of a given clip size."""

  def __init__(self, config, variables, channels=None, batch_size: int = 8,
               classes=None):
    self.config, self.batch_size = config, batch_size
    self.model = build_model(config.model, channels)
    self.variables = jax.device_put(variables)
    self.classes = classes or [f'class_{i}' for i in
                               range(config.model.num_classes)]
    self.channels = task.in_channels(config.data)
    self._forward = jax.jit(self._scores)

  def _scores(self, variables, clips):
    cfg = self.config
    if clips.dtype == jnp.uint8:
      clips = task.normalize(
          center_view(clips, cfg.data.resize_short, cfg.data.crop_size),
          *task.norm_stats(cfg.data))
    return self.forward(variables, clips)

  def forward(self, variables, x):
    """Normalised clips `[N, T, H, W, C]` -> video scores `[N, classes]`
    (pure: jit or export it)."""
    cfg = self.config
    logits, aux = self.model.apply(variables,
                                   x.astype(DTYPES[cfg.model.dtype]),
                                   train=False)
    return task.scores(logits, aux, fuse=cfg.model.tfdem_fuse)

  def __call__(self, clips) -> np.ndarray:
    """Video scores `[N, classes]` for uint8 or normalised float clips."""
    clips = np.asarray(clips)
    if clips.dtype != np.uint8:
      clips = clips.astype(np.float32)
    t = self.config.model.num_segments
    if clips.ndim != 5 or clips.shape[1] != t or (
        clips.shape[-1] != self.channels):
      raise UsageError(f'clips must be [N, {t}, H, W, {self.channels}], got '
                       f'{clips.shape}', 'uint8 frames or normalised floats')
    out = []
    for i in range(0, len(clips), self.batch_size):
      chunk = clips[i:i + self.batch_size]
      n = len(chunk)
      if n < self.batch_size:
        chunk = np.concatenate([chunk, np.zeros(
            (self.batch_size - n, *chunk.shape[1:]), chunk.dtype)])
      out.append(np.asarray(self._forward(self.variables, chunk))[:n])
    return np.concatenate(out) if out else np.zeros(
        (0, self.config.model.num_classes), np.float32)

  def probabilities(self, clips) -> np.ndarray:
    """Class probabilities `[N, classes]` (`task.probabilities`)."""
    return np.asarray(task.probabilities(
        self(clips), fuse=self.config.model.tfdem_fuse))


def load(path, checkpoint_step: str = '', batch_size: int = 8):
  """A Predictor for the model directory `path` (latest checkpoint), or an
  `ExportedPredictor` for a file written by `python -m mstsm_jax.export`."""
  if pathlib.Path(path).is_file():
    from mstsm_jax.inference.export import ExportedPredictor
    return ExportedPredictor(path)
  from mstsm_jax.training import checkpoint
  config, channels, variables, _ = checkpoint.load_variables(
      path, checkpoint_step)
  names = pathlib.Path(path) / 'classes.json'
  classes = json.loads(names.read_text()) if names.is_file() else None
  return Predictor(config, variables, channels, batch_size, classes)


def read_video_views(path: str, config, views=(1, 1)) -> tuple[np.ndarray,
                                                                int]:
  """A video file -> (uint8 views `[V, T, S, S, 3]` exactly as evaluate
  samples and crops them, the number of decoded frames). Raises
  `video.VideoError` when the file cannot be read."""
  from mstsm_jax.data import pipeline, video
  if config.data.modality != 'rgb':
    raise UsageError('predict decodes RGB videos; a flow model needs '
                     'prepared flow', 'use evaluate on a prepared dataset')
  rec = video.read_video(path, config.data.resize_short, as_jpeg=False)
  rec['label'] = 0
  tf = pipeline.ClipTransform(config.data, config.model.num_segments,
                              train=False, views=views)
  out = tf((0, rec))
  if not out['valid']:
    raise video.VideoError(path, 'undecodable')
  return out['clips'], rec['num_frames']


__all__ = ['Predictor', 'center_view', 'load', 'read_video_views']
