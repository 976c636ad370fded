"""Inference: one predictor contract for a model directory, an exported
file and every runtime (predictor.py), test-time views (views.py),
timelines of long videos (timelines.py), exporting (export.py, archive.py,
runtimes.py), online recognition (streaming.py) and Grad-CAM (gradcam.py).

  predictor = mstsm_jax.load('runs/ucf101')   # a model directory or a file
  scores = predictor(clips)    # uint8 [N, T, H, W, C], any H, W -> [N, C]
  probs = predictor.probabilities(clips)
"""
from __future__ import annotations

from mstsm_jax.inference.predictor import (ExportedPredictor, Predictor,
                                           load)
from mstsm_jax.inference.streaming import Streamer
from mstsm_jax.inference.timelines import plot_timeline, timeline
from mstsm_jax.inference.views import (center_view, in_batches,
                                       read_video_views, short_video_note)

__all__ = ['ExportedPredictor', 'Predictor', 'Streamer', 'center_view',
           'in_batches', 'load', 'plot_timeline', 'read_video_views',
           'short_video_note', 'timeline']
