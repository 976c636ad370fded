"""What `predict` reports for one video file, shared with the demo page
(`python -m mstsm_jax.demo`), so the page and the command line give the
same top-5, the same one line for a video that cannot be read, and the
same description of the model.

- `top5`: predict's result for one video (views averaged, probabilities).
- `cannot_read`: the one line for a `video.VideoError`.
- `model_card`: variant, backbone, parameters, classes and provenance of a
  model directory's or an exported file's predictor or streamer.
"""
from __future__ import annotations

import pathlib

import jax
import numpy as np

from mstsm_jax.data import video
from mstsm_jax.inference.views import (note_fields, read_video_views,
                                       short_video_note)
from mstsm_jax.models import task


def cannot_read(path, e: video.VideoError) -> str:
  """'PATH: cannot read (reason: detail)', as predict prints it."""
  return (f'{path}: cannot read ({e.reason}'
          f'{": " + e.detail if e.detail else ""})')


def top5(predictor, path: str, views=None, k: int = 5):
  """A video file's top-`k` classes, as `predict --json` prints them.

  Returns (result {'video', 'frames', 'top5': [{'class', 'index',
  'probability'}], and 'warning' / 'truncated' / 'mixed_sizes' when they
  apply}, the warning lines predict prints for it). Raises
  `video.VideoError` when the file cannot be read.
  """
  cfg = predictor.config
  notes = []
  clips, frames = read_video_views(path, cfg, views, notes)
  t = cfg.model.num_segments
  short = short_video_note(frames, t)
  prob = np.asarray(task.probabilities(
      predictor.scores_views(clips).mean(0), fuse=cfg.model.tfdem_fuse))
  top = np.argsort(-prob)[:k]
  result = {'video': path, 'frames': int(frames), 'top5': [
      {'class': predictor.classes[i], 'index': int(i),
       'probability': round(float(prob[i]), 6)} for i in top]}
  if short:
    result['warning'] = f'{frames} frames < {t} segments'
  result.update({k: v for k, v in note_fields(notes).items() if v})
  return result, [short] * bool(short) + notes


def model_card(path, runner) -> dict:
  """What a model is and where it came from, for a `Predictor`,
  `ExportedPredictor` or `Streamer` (`runner`) loaded from `path`.

  Returns {'variant', 'backbone', 'parameters' (an int, or None for an
  exported file, which holds a compiled function), 'online', 'classes',
  'source': [lines: the path, the checkpoint step or the export's
  versions, config.init_from]}.
  """
  path = pathlib.Path(path)
  meta = getattr(runner, 'meta', None)
  if meta is not None:  # an exported file
    return {'variant': meta['variant'], 'backbone': meta['backbone'],
            'parameters': None, 'online': meta['kind'] == 'stream',
            'classes': list(meta['classes']),
            'source': [f'exported file {path.resolve()}',
                       f"kind {meta['kind']}, batch {meta['batch']}, "
                       f"platforms {', '.join(meta['platforms'])}, format "
                       f"{meta['format']}",
                       f"written by mstsm_jax {meta['mstsm_jax']} with jax "
                       f"{meta['jax']}"]}
  cfg = runner.config
  params = sum(int(np.size(a)) for a in
               jax.tree.leaves(runner.variables['params']))
  return {'variant': cfg.variant, 'backbone': cfg.model.backbone,
          'parameters': params, 'online': runner.model.streamable,
          'classes': list(runner.classes),
          'source': [f'model directory {path.resolve()}',
                     f'checkpoint step {runner.step}, trained on '
                     f'{cfg.data.dataset}',
                     'config.init_from: ' + (cfg.init_from or
                                             '(empty: no starting weights)')]}
