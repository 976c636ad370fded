"""Timelines of long videos: class probabilities of sliding windows, each
sampled (T segments) and cropped as `evaluate` does a whole video, and
their plot (predict --timeline)."""
from __future__ import annotations

import math
import pathlib

import numpy as np

from mstsm_jax.data import pipeline, video
from mstsm_jax.errors import UsageError
from mstsm_jax.inference.views import short_video_note, video_notes
from mstsm_jax.models import task


def check_window(window_s: float, stride_s: float) -> None:
  """Refuses a window or stride that is not a positive finite number."""
  for flag, v in (('window_s', window_s), ('stride_s', stride_s)):
    if not (math.isfinite(v) and v > 0):
      raise UsageError(f'--{flag}={v}', 'a positive number of seconds')


def used_window(window_s: float, stride_s: float, fps: float) -> tuple:
  """(window, stride, note): each at least one frame (1 / `fps` s), and ''
  or the note saying that a shorter one was lengthened to it."""
  frame = 1 / fps
  window, stride = max(window_s, frame), max(stride_s, frame)
  short = [f'--{k}={v:g}' for k, v in (('window_s', window_s),
                                         ('stride_s', stride_s))
           if v < frame]
  if not short:
    return window, stride, ''
  return window, stride, (
      f'{" and ".join(short)} shorter than a frame at {fps:g} fps; used '
      f'windows of {window:g} s every {stride:g} s')


def timeline_windows(times: np.ndarray, window_s: float,
                     stride_s: float) -> list[tuple[int, int]]:
  """[start, end) frame ranges of windows `window_s` long every `stride_s`
  over frames starting at `times` (seconds `[F + 1]`, the last the video's
  end, as `video.frame_times`), each the frames that start in it (at
  least one), and a last one ending at the video's end, so every frame is
  in a window; one window of the whole video when it is shorter than
  `window_s`."""
  f, end, eps = len(times) - 1, times[-1], 1e-6
  if end <= window_s + eps:
    return [(0, f)]
  n = int((end - window_s) / stride_s + eps)
  starts = np.append(np.arange(n + 1) * stride_s, end - window_s)
  a = np.minimum(np.searchsorted(times[:-1], starts - eps), f - 1)
  b = np.maximum(np.searchsorted(times[:-1], starts + window_s - eps), a + 1)
  return list(dict.fromkeys(zip(a.tolist(), b.tolist())))  # no repeats


def timeline(path: str, predictor, window_s: float, stride_s: float,
             views=None) -> dict:
  """Class probabilities of sliding windows over a long video (any
  predictor kind), timed by the frames' presentation times; `views` as
  `read_video_views`.

  Returns {'video', 'fps', 'frames', 'truncated', 'window_s', 'stride_s'
  (those used), 'classes', 'warnings' (lines to print), 'timeline':
  [{'start', 'end' (seconds), 'label', 'probability', 'probabilities'}]}.
  """
  cfg = predictor.config
  if cfg.data.modality != 'rgb':
    raise UsageError('a timeline decodes RGB video; this is a flow model',
                     'use an RGB model')
  check_window(window_s, stride_s)
  rec = video.read_video(path, cfg.data.resize_short, as_jpeg=False)
  fps, frames, times = rec['fps'], rec['frames'], rec['times']
  window_s, stride_s, clamped = used_window(window_s, stride_s, fps)
  tf = pipeline.ClipTransform(cfg.data, cfg.model.num_segments, train=False,
                              views=views)
  windows = timeline_windows(times, window_s, stride_s)
  clips = np.stack([tf((0, {'frames': frames[a:b], 'label': 0}))['clips']
                    for a, b in windows])  # [W, V, T, S, S, 3]
  scores = predictor.scores_views(clips.reshape(-1, *clips.shape[2:]))
  scores = scores.reshape(len(windows), clips.shape[1], -1).mean(1)
  probs = np.asarray(task.probabilities(scores, fuse=cfg.model.tfdem_fuse))
  rows = [{'start': round(float(times[a]), 3),
           'end': round(float(times[b]), 3),
           'label': predictor.classes[int(p.argmax())],
           'probability': round(float(p.max()), 6),
           'probabilities': [round(float(v), 6) for v in p]}
          for (a, b), p in zip(windows, probs)]
  short = short_video_note(min(b - a for a, b in windows),
                           cfg.model.num_segments)
  if short and len(windows) > 1:
    short = f'the shortest window has {short}'
  notes = [short, clamped, rec['timing'], *video_notes(rec)]
  return {'video': path, 'fps': fps, 'frames': len(frames),
          'truncated': rec['truncated'],
          'window_s': window_s, 'stride_s': stride_s,
          'classes': list(predictor.classes), 'timeline': rows,
          'warnings': [n for n in notes if n]}


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
