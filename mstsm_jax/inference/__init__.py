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

from mstsm_jax import cpu
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


def in_batches(fn, clips: np.ndarray, batch: int,
               num_classes: int) -> np.ndarray:
  """`fn` over `clips` in batches of exactly `batch` (the last one padded
  with zeros and cut back), so one compiled program serves every call."""
  out = []
  for i in range(0, len(clips), batch):
    chunk = clips[i:i + batch]
    n = len(chunk)
    if n < batch:
      chunk = np.concatenate([chunk, np.zeros((batch - n, *chunk.shape[1:]),
                                              chunk.dtype)])
    out.append(np.asarray(fn(chunk))[:n])
  return np.concatenate(out) if out else np.zeros((0, num_classes),
                                                  np.float32)


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
    self._forward = cpu.jit(self._scores)

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
    return in_batches(lambda x: self._forward(self.variables, x), clips,
                      self.batch_size, self.config.model.num_classes)

  def prepared(self, clips) -> np.ndarray:
    """uint8 test-time views at the crop size (`read_video_views`) as this
    predictor takes them: normalised floats (uint8 would be cropped
    again)."""
    return np.asarray(task.normalize(clips, *task.norm_stats(
        self.config.data)))

  def probabilities(self, clips) -> np.ndarray:
    """Class probabilities `[N, classes]` (`task.probabilities`)."""
    return np.asarray(task.probabilities(
        self(clips), fuse=self.config.model.tfdem_fuse))


def load(path, checkpoint_step: str = '', batch_size: int = 8,
         runtime: str = 'xla'):
  """A Predictor for the model directory `path` (latest checkpoint), or an
  `ExportedPredictor` for a file written by `python -m mstsm_jax.export`,
  run by `runtime` ('xla' | 'iree', inference/runtimes.py)."""
  if pathlib.Path(path).is_file():
    from mstsm_jax.inference.export import ExportedPredictor
    return ExportedPredictor(path, runtime)
  if runtime != 'xla':
    from mstsm_jax.inference.runtimes import check
    check(runtime)
    what = 'a model directory' if pathlib.Path(path).is_dir() else 'not found'
    raise UsageError(f'--runtime={runtime} runs exported files; {path} is '
                     f'{what}',
                     'export it first: python -m mstsm_jax.export --batch=1 '
                     '...')
  from mstsm_jax import modeldir
  config, channels, variables, _ = modeldir.load_variables(
      path, checkpoint_step)
  names = pathlib.Path(path) / 'classes.json'
  classes = json.loads(names.read_text()) if names.is_file() else None
  return Predictor(config, variables, channels, batch_size, classes)


def read_video_views(path: str, config, views=(1, 1),
                     warnings: list | None = None) -> tuple[np.ndarray, int]:
  """A video file -> (uint8 views `[V, T, S, S, 3]` exactly as evaluate
  samples and crops them, the number of decoded frames). Raises
  `video.VideoError` when the file cannot be read; a truncated one keeps
  its decoded frames and, given `warnings`, appends why to it."""
  from mstsm_jax.data import pipeline, video
  if config.data.modality != 'rgb':
    raise UsageError('predict decodes RGB videos; a flow model needs '
                     'prepared flow', 'use evaluate on a prepared dataset')
  rec = video.read_video(path, config.data.resize_short, as_jpeg=False)
  if rec['truncated'] and warnings is not None:
    warnings.append(f'truncated ({rec["truncated"]})')
  rec['label'] = 0
  tf = pipeline.ClipTransform(config.data, config.model.num_segments,
                              train=False, views=views)
  out = tf((0, rec))
  if not out['valid']:
    raise video.VideoError(path, 'undecodable')
  return out['clips'], rec['num_frames']


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
  """Class probabilities of sliding windows over a long video: each window
  is sampled (T segments) and cropped as `evaluate` does a whole video.

  Returns {'video', 'fps', 'frames', 'window_s', 'stride_s', 'timeline':
  [{'start', 'end' (seconds), 'label', 'probability', 'probabilities'}]}.
  """
  from mstsm_jax.data import pipeline, video
  cfg = predictor.config
  if cfg.data.modality != 'rgb':
    raise UsageError('a timeline decodes RGB video; this is a flow model',
                     'use an RGB model')
  if window_s <= 0 or stride_s <= 0:
    raise UsageError(f'--window_s={window_s} --stride_s={stride_s}',
                     'both must be positive')
  rec = video.read_video(path, cfg.data.resize_short, as_jpeg=False)
  fps, frames = rec['fps'], rec['frames']
  tf = pipeline.ClipTransform(cfg.data, cfg.model.num_segments, train=False,
                              views=views)
  windows = timeline_windows(len(frames), fps, window_s, stride_s)
  clips = np.stack([tf((0, {'frames': frames[a:b], 'label': 0}))['clips']
                    for a, b in windows])  # [W, V, T, S, S, 3]
  x = predictor.prepared(clips.reshape(-1, *clips.shape[2:]))
  scores = predictor(x).reshape(len(windows), clips.shape[1], -1).mean(1)
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


__all__ = ['Predictor', 'center_view', 'load', 'read_video_views',
           'timeline', 'plot_timeline']
