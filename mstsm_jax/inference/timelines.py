"""Timelines of long videos: class probabilities of sliding windows, each
sampled (T segments) and cropped as `evaluate` does a whole video, and
their plot (predict --timeline)."""
from __future__ import annotations

import math
import pathlib

import numpy as np

from mstsm_jax.data import pipeline, video
from mstsm_jax.errors import UsageError
from mstsm_jax.models import task


def check_window(window_s: float, stride_s: float) -> None:
  """Refuses a window or stride that is not a positive finite number."""
  for flag, v in (('window_s', window_s), ('stride_s', stride_s)):
    if not (math.isfinite(v) and v > 0):
      raise UsageError(f'--{flag}={v}', 'a positive number of seconds')


def timeline_windows(num_frames: int, fps: float, window_s: float,
                     stride_s: float) -> list[tuple[int, int]]:
  """[start, end) frame ranges of sliding windows over a video; one window
  of the whole video when it is shorter than `window_s`."""
  win = max(1, int(window_s * fps + 0.5))
  step = max(1, int(stride_s * fps + 0.5))
  if num_frames <= win:
    return [(0, num_frames)]
  return [(a, a + win) for a in range(0, num_frames - win + 1, step)]


def timeline(path: str, predictor, window_s: float, stride_s: float,
             views=(1, 1)) -> dict:
  """Class probabilities of sliding windows over a long video (any
  predictor kind).

  Returns {'video', 'fps', 'frames', 'window_s', 'stride_s', 'timeline':
  [{'start', 'end' (seconds), 'label', 'probability', 'probabilities'}]}.
  """
  cfg = predictor.config
  if cfg.data.modality != 'rgb':
    raise UsageError('a timeline decodes RGB video; this is a flow model',
                     'use an RGB model')
  check_window(window_s, stride_s)
  rec = video.read_video(path, cfg.data.resize_short, as_jpeg=False)
  fps, frames = rec['fps'], rec['frames']
  tf = pipeline.ClipTransform(cfg.data, cfg.model.num_segments, train=False,
                              views=views)
  windows = timeline_windows(len(frames), fps, window_s, stride_s)
  clips = np.stack([tf((0, {'frames': frames[a:b], 'label': 0}))['clips']
                    for a, b in windows])  # [W, V, T, S, S, 3]
  scores = predictor.scores_views(clips.reshape(-1, *clips.shape[2:]))
  scores = scores.reshape(len(windows), clips.shape[1], -1).mean(1)
  probs = np.asarray(task.probabilities(scores, fuse=cfg.model.tfdem_fuse))
  rows = [{'start': round(a / fps, 3), 'end': round(b / fps, 3),
           'label': predictor.classes[int(p.argmax())],
           'probability': round(float(p.max()), 6),
           'probabilities': [round(float(v), 6) for v in p]}
          for (a, b), p in zip(windows, probs)]
  return {'video': path, 'fps': fps, 'frames': len(frames),
          'truncated': rec['truncated'],
          'window_s': window_s, 'stride_s': stride_s,
          'classes': list(predictor.classes), 'timeline': rows}


def plot_timeline(result: dict, path, top: int = 5) -> str:
  """PNG: the probabilities over time of the `top` classes with the
  highest peak."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  rows = result['timeline']
  probs = np.array([r['probabilities'] for r in rows])
  centers = [(r['start'] + r['end']) / 2 for r in rows]
  best = np.argsort(-probs.max(0))[:top]
  fig, ax = plt.subplots(figsize=(9, 3.4))
  for k in best:
    ax.plot(centers, probs[:, k], 'o-' if len(rows) < 30 else '-',
            label=result['classes'][k])
  ax.set_xlabel('window centre (s)')
  ax.set_ylabel('probability')
  ax.set_ylim(0, 1)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7, loc='upper right')
  ax.set_title(f'{pathlib.Path(result["video"]).name}: windows of '
               f'{result["window_s"]:g} s every {result["stride_s"]:g} s')
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return str(path)
