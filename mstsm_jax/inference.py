"""Inference API: `load(model_dir)` -> a jitted, batched `Predictor`.

  predictor = mstsm_jax.inference.load('runs/ucf101')   # or convert/prune
  logits = predictor(clips)   # float32 [N, T, H, W, 3] normalised -> [N, C]

Any model directory works (a training workdir, convert or prune output): the
config and, for pruned models, the channel spec are restored from it.
"""
from __future__ import annotations

import json
import pathlib

import jax
import numpy as np

from mstsm_jax import checkpoint
from mstsm_jax.models.mstsm import build_model


class Predictor:
  """Jitted main-path logits for normalised clips, in fixed-size batches
  (the last one padded) so one compiled program serves every call."""

  def __init__(self, config, variables, channels=None, batch_size: int = 8,
               classes=None):
    self.config, self.batch_size = config, batch_size
    self.model = build_model(config.model, channels)
    self.variables = jax.device_put(variables)
    self.classes = classes or [f'class_{i}' for i in
                               range(config.model.num_classes)]
    fuse = config.model.tfdem_fuse

    def forward(v, x):
      logits, aux = self.model.apply(v, x, train=False)
      if fuse and aux is not None:
        return jax.nn.softmax(logits) + jax.nn.softmax(aux)
      return logits
    self._forward = jax.jit(forward)

  def __call__(self, clips: np.ndarray) -> np.ndarray:
    clips = np.asarray(clips, np.float32)
    t = self.config.model.num_segments
    if clips.ndim != 5 or clips.shape[1] != t or clips.shape[-1] != 3:
      raise ValueError(f'clips must be [N, {t}, H, W, 3], got {clips.shape}')
    if clips.shape[2] % 32 or clips.shape[3] % 32:
      raise ValueError(f'H and W must be multiples of 32, got '
                       f'{clips.shape[2:4]}')
    out = []
    for i in range(0, len(clips), self.batch_size):
      chunk = clips[i:i + self.batch_size]
      n = len(chunk)
      if n < self.batch_size:
        chunk = np.concatenate([chunk, np.zeros((self.batch_size - n,
                                                 *chunk.shape[1:]),
                                                np.float32)])
      out.append(np.asarray(self._forward(self.variables, chunk))[:n])
    return np.concatenate(out) if out else np.zeros(
        (0, self.config.model.num_classes), np.float32)


def load(path, checkpoint_step: str = '', batch_size: int = 8) -> Predictor:
  """A Predictor for the model directory `path` (latest checkpoint)."""
  config, channels, variables, _ = checkpoint.load_variables(
      path, checkpoint_step)
  names = pathlib.Path(path) / 'classes.json'
  classes = json.loads(names.read_text()) if names.is_file() else None
  return Predictor(config, variables, channels, batch_size, classes)
