"""Online recognition: one frame per jitted call, with explicit buffers.

  streamer = mstsm_jax.Streamer('runs/online')  # an *_online model
  for frame in frames:                  # uint8 [H, W, 3], any size
    scores = streamer.step(frame)       # [classes]: this frame's scores
  streamer.reset()                      # a new video: empty the buffers

A causal model (`tsm_online`, `mstsm_online`, `mstsm_tfdem_online`, or TSN)
is run frame by frame as TSM's online demo runs it: every shifted block keeps
the channels that later frames take from this one (one frame deep for the
one-unit shift, two for MSTSM's two-unit pair, `ops/shift.causal_step`) and
TFDEM keeps F_{t-1}. The buffers are the model's 'stream' variable
collection, passed in and out as a flat list of arrays, so a step is a pure
function `(frames, buffers) -> (scores, buffers)` that jits and exports
(`export --streaming`).

A frame's scores are `task.scores` of that frame's logits (main head, or the
fused softmaxes with `tfdem_fuse`). Over the first T frames after `reset`
they are the offline model's per-frame scores (`MSTSMNet.frame_logits`) and
their mean is `Predictor`'s clip score. `smoothed` averages the last K, which
with K = T is the clip score of the last T processed frames.
"""
from __future__ import annotations

import collections
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from mstsm_jax import cpu
from mstsm_jax.data import video
from mstsm_jax.data.pipeline import test_protocol, view_size
from mstsm_jax.errors import UsageError
import mstsm_jax.inference.archive as archive
import mstsm_jax.inference.predictor as predictor_kinds
import mstsm_jax.inference.runtimes as runtimes
from mstsm_jax.inference.views import center_view
from mstsm_jax.models import task
from mstsm_jax.models.mstsm import DTYPES


def step_function(model, variables, config, streams=1):
  """The pure step of `model` and the abstract buffers for `streams` (an
  int or a symbolic dimension).

  Returns (fn, buffer shapes): `fn(frames, buffers)` takes frames
  `[N, S, S, C]` at the crop size, uint8 or float in 0..255 (normalised
  inside), and the flat list of buffers, and returns (scores
  `[N, classes]`, new buffers).
  """
  if not model.streamable:
    raise UsageError(
        f'variant {config.get("variant", "?")} looks at future frames and '
        'cannot stream', 'train an online variant (--config=...:tsm_online, '
        'mstsm_online or mstsm_tfdem_online)')
  s, c = view_size(config.data), task.in_channels(config.data)
  mean, std = task.norm_stats(config.data)
  dtype = DTYPES[config.model.dtype]
  frame_shape = jax.ShapeDtypeStruct((streams, s, s, c), jnp.uint8)
  empty = jax.eval_shape(
      lambda f: model.apply(variables, task.normalize(f, mean, std, dtype),
                            method=model.step, mutable=['stream'])[1],
      frame_shape)['stream']
  leaves, treedef = jax.tree.flatten(empty)

  def fn(frames, buffers):
    x = task.normalize(frames, mean, std, dtype)
    (logits, aux), new = model.apply(
        {**variables, 'stream': jax.tree.unflatten(treedef, list(buffers))},
        x, method=model.step, mutable=['stream'])
    return (task.scores(logits, aux, fuse=config.model.tfdem_fuse),
            jax.tree.leaves(new['stream']))

  return fn, leaves


def flat_step(run):
  """An exported step `run(frames, *buffers) -> [scores, *buffers]` (a
  runtime's flat call) as `(frames, buffers) -> (scores, buffers)`."""
  def fn(frames, buffers):
    out = run(frames, *buffers)
    return out[0], list(out[1:])
  return fn


def zeros(shapes, streams: int = 1) -> list[np.ndarray]:
  """Zero buffers for abstract `shapes` (symbolic dimensions -> `streams`)."""
  return [np.zeros([d if isinstance(d, int) else streams for d in a.shape],
                   a.dtype) for a in shapes]


class Streamer:
  """Runs an online model one frame at a time: from a model directory or
  from a file written by `export --streaming`.

  `step(frame)` takes uint8 `[H, W, C]` at any size (cropped on the host
  as `Predictor` crops clips) and returns that frame's scores `[classes]`;
  `smoothed(k)` is the mean of the last k; `probabilities(scores)` as
  `Predictor`'s; `reset()` empties the buffers for a new video.
  """

  def __init__(self, path, checkpoint_step: str = '',
               history: int | None = None,
               runtime: str = 'auto', predictor=None):
    """`history`: the steps kept for `smoothed` (default: 64, or T if
    longer). `predictor`: the model directory's `Predictor`, already
    loaded from `path` (the demo page serves both), instead of loading it
    again."""
    if history is not None and (isinstance(history, bool) or not isinstance(
        history, (int, np.integer)) or history < 1):
      raise UsageError(f'Streamer(history={history!r}): the number of '
                       'steps kept for smoothing is a whole number >= 1',
                       'pass e.g. history=64')
    path = pathlib.Path(path)
    if path.is_file():
      self.meta, exported = archive.read(path)
      if self.meta['kind'] != 'stream':
        raise UsageError(f'{path} is a clip model, not a streaming one',
                         'export it with python -m mstsm_jax.export '
                         '--streaming')
      if self.meta['batch'] not in ('dynamic', 1):
        raise UsageError(
            f'{path} steps {self.meta["batch"]} streams at once; Streamer '
            'and stream run one',
            'export it with --streaming --batch=1 (or dynamic) for them; '
            f'a {self.meta["batch"]}-stream file runs in your own loop '
            '(README, "Online recognition")')
      run = runtimes.callable_for(
          exported, runtime, archive.stored_module(path, self.meta, runtime))
      self._fn, shapes = flat_step(run), exported.in_avals[1:]
      self.classes = self.meta['classes']
      data = predictor_kinds.file_config(self.meta).data
      self.fuse, self.num_segments = (self.meta['tfdem_fuse'],
                                      self.meta['num_segments'])
      self.channels = self.meta['channels']
    else:
      predictor = predictor or predictor_kinds.load(path, checkpoint_step,
                                                    runtime=runtime)
      cfg = predictor.config
      fn, shapes = step_function(predictor.model, predictor.variables, cfg)
      self._fn = cpu.jit(fn)
      self.classes = predictor.classes
      data = cfg.data
      self.fuse, self.num_segments = (cfg.model.tfdem_fuse,
                                      cfg.model.num_segments)
      self.channels = predictor.channels
    self._shapes = shapes
    # The test-time centre view of one frame, as a predictor's of a clip.
    self._crop = lambda f: center_view(
        f[None, None], data.resize_short, data.crop_size,
        test_protocol(data)[1])[0, 0]
    self.history = collections.deque(
        maxlen=int(history or max(64, self.num_segments)))
    self.reset()

  def reset(self) -> None:
    """Empties the buffers and the score history (a new video)."""
    self.buffers = zeros(self._shapes)
    self.history.clear()

  def new_state(self) -> dict:
    """A fresh stream's {'buffers', 'history'}: one Streamer (one compiled
    step) serves several streams in turn (the demo page's browser tabs) by
    assigning them to `buffers` and `history` before `step`."""
    return {'buffers': zeros(self._shapes),
            'history': collections.deque(maxlen=self.history.maxlen)}

  def step(self, frame) -> np.ndarray:
    """uint8 `[H, W, C]` (C the model's channels: RGB, no alpha) -> this
    frame's scores `[classes]`. An RGBA frame is refused with the fix
    (frame[..., :3]) rather than guessed at."""
    frame = np.asarray(frame)
    c = self.channels
    if frame.dtype != np.uint8 or frame.ndim != 3:
      raise UsageError(f'a frame must be uint8 [H, W, {c}], got '
                       f'{frame.dtype} {list(frame.shape)}',
                       'pass one decoded RGB frame')
    if frame.shape[-1] != c:
      raise UsageError(
          f'a frame must have {c} channels, got {list(frame.shape)}',
          'drop the alpha channel: frame[..., :3]' if frame.shape[-1] == 4
          and c == 3 else f'pass [H, W, {c}] frames')
    if min(frame.shape[:2]) < 1:
      raise UsageError(f'an empty frame ({frame.shape[0]}x'
                       f'{frame.shape[1]} pixels)',
                       'pass a decoded frame of at least 1x1 pixels')
    scores, self.buffers = self._fn(self._crop(frame)[None], self.buffers)
    out = np.asarray(scores)[0]
    self.history.append(out)
    return out

  def smoothed(self, k: int) -> np.ndarray:
    """Mean scores of the last `k` frames (`k` = T: the clip score of the
    last T frames; fewer at the start of a video). `k` is at most the
    `history` the Streamer keeps."""
    if not 1 <= k <= self.history.maxlen:
      raise UsageError(f'smoothing over {k} steps; this Streamer keeps the '
                       f'last {self.history.maxlen}',
                       'make it with Streamer(..., history=K) for K >= k, '
                       'or smooth over fewer steps (k >= 1)')
    if not self.history:
      raise UsageError('no frame has been stepped since the start or the '
                       'last reset()', 'call step(frame) first')
    return np.mean(list(self.history)[-k:], axis=0)

  def probabilities(self, scores) -> np.ndarray:
    return np.asarray(task.probabilities(scores, fuse=self.fuse))

  def ranked(self, k: int, n: int = 1) -> list[tuple[str, float]]:
    """The `n` most probable (class, probability) of the mean scores of
    the last `k` frames (`stream --smooth=k`'s label is the first)."""
    p = self.probabilities(self.smoothed(k))
    return [(self.classes[i], float(p[i])) for i in np.argsort(-p, kind='stable')[:n]]


def annotate(frame: np.ndarray, label: str, probability: float) -> np.ndarray:
  """A copy of uint8 `[H, W, 3]` with 'label 0.93' drawn on a dark band
  at the top (OpenCV), sized to the frame."""
  import cv2
  out = np.ascontiguousarray(frame).copy()
  h, w = out.shape[:2]
  text = f'{label} {probability:.2f}'
  font = cv2.FONT_HERSHEY_SIMPLEX
  (tw, _), _ = cv2.getTextSize(text, font, 1.0, 1)
  scale = min(max(0.3, min(h, w) / 400), (w - 8) / tw)  # fits the width
  thick = max(1, round(scale * 2))
  (_, th), base = cv2.getTextSize(text, font, scale, thick)
  band = th + base + 6
  out[:band] = (out[:band] * 0.35).astype(np.uint8)
  cv2.putText(out, text, (4, band - base - 2), font, scale,
              (255, 255, 255), thick, cv2.LINE_AA)
  return out


class Mp4Writer:
  """H.264 MP4 (yuv420p, so any player opens it) written frame by frame;
  odd widths or heights lose their last column or row."""

  def __init__(self, path, fps: float):
    import fractions

    import av
    self._av, self.path = av, str(path)
    self._out = av.open(self.path, 'w')
    self._stream = self._out.add_stream(
        'libx264', rate=fractions.Fraction(fps).limit_denominator(1001))
    self._stream.pix_fmt = 'yuv420p'
    self._size = self._first = None
    self._odd = []  # the resized frames, as video.fit_size records them
    self._written = 0

  def trimmed(self) -> str:
    """'' or the note for an odd width or height cut to even (H.264's
    yuv420p needs even sizes)."""
    if self._first is None or tuple(self._size) == tuple(self._first):
      return ''
    (h, w), (eh, ew) = self._first, self._size
    return (f'{w}x{h} frames written as {ew}x{eh} (H.264 needs even '
            'sizes: the last column or row left out)')

  def mixed_sizes(self) -> str:
    """'' or `video.mixed_sizes`' note for the frames resized so far."""
    return video.mixed_sizes(self._odd, self._written, self._first)

  def write(self, frame: np.ndarray) -> None:
    """Appends `frame` uint8 `[H, W, 3]`; one of another size than the
    first (a stream whose resolution changes) is resized to the first's
    (`video.fit_size`, as decoding does) and said by `mixed_sizes` (a
    video file has one size)."""
    if self._size is None:
      h, w = frame.shape[:2]
      self._size = (h - h % 2, w - w % 2)
      self._stream.height, self._stream.width = self._size
      self._first = frame.shape[:2]
    h, w = self._size
    self._written += 1
    if frame.shape[:2] != self._first:
      frame = video.fit_size(frame, self._first, self._odd,
                             f'frame {self._written}')
    f = self._av.VideoFrame.from_ndarray(
        np.ascontiguousarray(frame[:h, :w]), 'rgb24')
    self._out.mux(self._stream.encode(f))

  def close(self) -> None:
    if self._size is not None:
      self._out.mux(self._stream.encode())
    self._out.close()
