"""Test-time views: what every predictor kind does to uint8 pixels before
its runtime runs the model, so a model directory, an exported file and
every runtime see the same input.

- `center_view`: uint8 clips of any size -> the uint8 centre view at the
  crop size, evaluate's 1x1 view, by the host functions evaluate uses.
- `read_video_views`: a video file -> evaluate's exact test-time views.
- `short_video_note`: the one warning for a video shorter than T frames.
"""
from __future__ import annotations

import numpy as np

from mstsm_jax.data import pipeline, transforms, video
from mstsm_jax.errors import UsageError


def center_view(clips, resize_short: int, crop_size: int,
                mode: str = 'resize') -> np.ndarray:
  """uint8 `[N, T, H, W, C]` -> uint8 `[N, T, S, S, C]` (S =
  `transforms.test_size`): evaluate's 1x1 view, made by the functions
  that make it for `evaluate` and `predict`: each frame stored as they
  store it (`video.stored_frame`: short side down to `resize_short`), then
  the centre test box of data.test_crops=`mode`
  (`transforms.test_clips`). Host OpenCV, the same arithmetic for every
  predictor kind and runtime, so a video gives the same scores through
  `predict`, `predictor(clips)` and `Streamer`."""
  clips = np.asarray(clips)
  if clips.dtype != np.uint8 or clips.ndim != 5 or 0 in clips.shape[1:]:
    raise UsageError(f'center_view takes uint8 clips [N, T, H, W, C], got '
                     f'{clips.dtype} {list(clips.shape)}',
                     'cast 0-255 pixels with .astype(np.uint8)')
  if mode not in transforms.TEST_CROPS:
    raise UsageError(f'center_view mode={mode!r}',
                     f'valid: {", ".join(transforms.TEST_CROPS)} '
                     '(data.test_crops)')
  n, t, _, _, c = clips.shape
  size = transforms.test_size(resize_short, crop_size, mode)
  out = np.empty((n, t, size, size, c), np.uint8)
  for i, clip in enumerate(clips):
    out[i] = transforms.test_clips(
        np.stack([video.stored_frame(f, resize_short) for f in clip]),
        resize_short=resize_short, crop_size=crop_size, mode=mode)[0]
  return out


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


def short_video_note(frames: int, num_segments: int) -> str:
  """'' or the warning for a video of fewer frames than segments (predict,
  explain and the timeline say the same)."""
  if frames >= num_segments:
    return ''
  return (f'{frames} frame{"s" if frames != 1 else ""} for {num_segments} '
          'segments; frames repeat, the temporal model sees little or no '
          'motion')


NOTE_KINDS = ('truncated', 'mixed_sizes')


def video_notes(rec: dict) -> list[str]:
  """`video.read_video`'s notes that apply, as predict words them:
  'truncated (...)', 'mixed sizes (...)'."""
  return [f'{k.replace("_", " ")} ({rec[k]})' for k in NOTE_KINDS if rec[k]]


def note_fields(notes: list[str]) -> dict[str, str]:
  """`read_video_views`' warnings by kind, as `--json` results carry
  them: {'truncated': '' or its note, 'mixed_sizes': ...}."""
  return {k: next((n for n in notes if n.startswith(k.replace('_', ' '))),
                  '') for k in NOTE_KINDS}


def seen_fraction(h: int, w: int, config, crops: int = 1) -> float:
  """The share of an `h x w` frame's long side that its `crops` test
  crops (data.test_crops) cover together."""
  boxes = transforms.test_boxes(
      h, w, resize_short=config.data.resize_short,
      crop_size=config.data.crop_size, crops=crops,
      mode=pipeline.test_protocol(config.data)[1])
  axis, long = (1, w) if w > h else (0, h)
  covered = np.zeros(long, bool)
  for box in boxes:
    covered[box[axis]:box[axis] + box[2]] = True
  return covered.mean()


def read_video_views(path: str, config, views=None,
                     warnings: list | None = None) -> tuple[np.ndarray, int]:
  """A video file -> (uint8 views `[V, T, S, S, 3]` exactly as evaluate
  samples and crops them (`views` (clips, crops); None: the model's own,
  `pipeline.own_views`), the
  number of decoded frames). Raises
  `video.VideoError` when the file cannot be read; a truncated one keeps
  its decoded frames, and frames of another size than the first are
  resized to it: given `warnings`, appends 'truncated (...)' and
  'mixed sizes (...)' to it."""
  if config.data.modality != 'rgb':
    raise UsageError('predict decodes RGB videos; a flow model needs '
                     'prepared flow', 'use evaluate on a prepared dataset')
  views = views or pipeline.own_views(config.data)
  rec = video.read_video(path, config.data.resize_short, as_jpeg=False)
  if warnings is not None:
    warnings.extend(video_notes(rec))
    h, w = rec['height'], rec['width']
    seen = seen_fraction(h, w, config, views[1])
    if seen < 1 / 3:  # what the protocol's crops drop
      crops = 'test view sees' if views[1] == 1 else (
          f'{views[1]} test crops see')
      warnings.append(f'a {w}x{h} frame: the {crops} {seen:.0%} of its '
                      f'{"width" if w > h else "height"}')
  rec['label'] = 0
  tf = pipeline.ClipTransform(config.data, config.model.num_segments,
                              train=False, views=views)
  out = tf((0, rec))
  if not out['valid']:
    raise video.VideoError(path, 'undecodable')
  return out['clips'], rec['num_frames']
