"""Test-time views: what every predictor kind does to uint8 pixels before
its runtime runs the model, so a model directory, an exported file and
every runtime see the same input.

- `center_view`: uint8 clips of any size -> the uint8 centre view at the
  crop size, as evaluate's 1x1 view (short side to `resize_short`, centre
  crop `crop_size`, antialiased, rounded back to uint8 as the host pipeline's
  frames are).
- `read_video_views`: a video file -> evaluate's exact test-time views.
- `short_video_note`: the one warning for a video shorter than T frames.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from mstsm_jax import cpu
from mstsm_jax.data import pipeline, video
from mstsm_jax.errors import UsageError


def center_view(clips, resize_short: int, crop_size: int):
  """uint8 `[N, T, H, W, C]` -> uint8 `[N, T, crop, crop, C]`: the centre
  square that is `crop_size` at a short side of `resize_short`, resized to
  `crop_size` (antialiased, rounded), as evaluate's 1x1 view.

  One compiled program per shape for every predictor kind: its rounding
  back to uint8 lands on exact .5 ties, which any other float arithmetic
  (the resize fused into a model's program, other XLA flags) can round
  the other way, so a model directory and its export would see views a
  level apart."""
  return _center_view_program()(clips, resize_short=resize_short,
                                crop_size=crop_size)


@functools.cache
def _center_view_program():
  """Made at first use, not at import: `cpu.jit` asks jax for its backend,
  which starts jax, after which `predict` and `bench` can no longer keep
  host memory (cpu.keep_host_memory)."""
  return cpu.jit(_center_view, static_argnames=('resize_short', 'crop_size'))


def _center_view(clips, resize_short: int, crop_size: int):
  n, t, h, w, c = clips.shape
  side = min(h, w, max(1, round(crop_size * min(h, w) / resize_short)))
  y, x = (h - side) // 2, (w - side) // 2
  crop = clips[:, :, y:y + side, x:x + side]
  if side == crop_size:
    return crop
  out = jax.image.resize(crop.astype(jnp.float32),
                         (n, t, crop_size, crop_size, c), 'linear',
                         antialias=True)
  return jnp.clip(jnp.round(out), 0, 255).astype(jnp.uint8)


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


def read_video_views(path: str, config, views=(1, 1),
                     warnings: list | None = None) -> tuple[np.ndarray, int]:
  """A video file -> (uint8 views `[V, T, S, S, 3]` exactly as evaluate
  samples and crops them, the number of decoded frames). Raises
  `video.VideoError` when the file cannot be read; a truncated one keeps
  its decoded frames, and frames of another size than the first are
  resized to it: given `warnings`, appends 'truncated (...)' and
  'mixed sizes (...)' to it."""
  if config.data.modality != 'rgb':
    raise UsageError('predict decodes RGB videos; a flow model needs '
                     'prepared flow', 'use evaluate on a prepared dataset')
  rec = video.read_video(path, config.data.resize_short, as_jpeg=False)
  if warnings is not None:
    warnings.extend(video_notes(rec))
  rec['label'] = 0
  tf = pipeline.ClipTransform(config.data, config.model.num_segments,
                              train=False, views=views)
  out = tf((0, rec))
  if not out['valid']:
    raise video.VideoError(path, 'undecodable')
  return out['clips'], rec['num_frames']
