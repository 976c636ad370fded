"""Decoding videos to stored JPEG frames (PyAV) and back (OpenCV).

Stored frames are resized once so the short side is at most `short_side`
(SPEC §1 trains from 256); the training pipeline then decodes only the T
sampled JPEGs of a clip.
"""
from __future__ import annotations

import os
import re

import av
import cv2
import numpy as np

from mstsm_jax.data import transforms


# Where a folder of extracted frames is read (a video path that is a
# folder is refused with it).
FRAME_FOLDERS = ('a folder of extracted frames is read by prepare '
                 '--dataset=custom --rawframes')


class VideoError(Exception):
  """A video that cannot be used; `reason` is one of the report's reasons."""

  def __init__(self, path: str, reason: str, detail: str = ''):
    super().__init__(f'{path}: {reason}{": " + detail if detail else ""}')
    self.path, self.reason, self.detail = path, reason, detail


def stored_frame(img: np.ndarray, short_side: int) -> np.ndarray:
  """A frame as it is stored and read for the model: short side brought
  down to `short_side` (`resize_short`), never up; 0 keeps every size.
  `read_video`, `read_frame_folder` and the predictors' centre view
  (inference/views.py) all store a frame through this one rule."""
  if short_side and min(img.shape[:2]) > short_side:
    return resize_short(img, short_side)
  return img


def resize_short(img: np.ndarray, short_side: int) -> np.ndarray:
  """Resizes `[H, W, 3]` so min(H, W) == short_side (INTER_AREA down,
  INTER_LINEAR up)."""
  h, w = img.shape[:2]
  if not short_side or min(h, w) == short_side:
    return img
  s = short_side / min(h, w)
  size = (max(1, round(w * s)), max(1, round(h * s)))
  return transforms.resize(img, size, cv2.INTER_AREA if s < 1
                           else cv2.INTER_LINEAR)


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
  ok, buf = cv2.imencode('.jpg', rgb[..., ::-1],
                         [cv2.IMWRITE_JPEG_QUALITY, quality])
  if not ok:
    raise ValueError('JPEG encoding failed')
  return buf.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray:
  """JPEG bytes -> `[H, W, 3]` uint8 RGB; raises ValueError if corrupt
  or empty (OpenCV asserts on an empty buffer rather than failing)."""
  if not data:
    raise ValueError('empty JPEG frame (0 bytes)')
  img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
  if img is None:
    raise ValueError('corrupt JPEG frame')
  return img[..., ::-1]


def frame_pattern(filename_tmpl: str):
  """'img_{:05d}.jpg' (TSM) or 'img_{:05}.jpg' (MMAction2) -> a regex whose
  group 1 is the frame number."""
  head, brace, rest = filename_tmpl.partition('{')
  _, close, tail = rest.partition('}')
  if not brace or not close:
    raise ValueError(f'--filename_tmpl={filename_tmpl}: no {{}} field for '
                     'the frame number (e.g. img_{:05d}.jpg)')
  return re.compile(re.escape(head) + r'(\d+)' + re.escape(tail) + '$')


def frame_files(folder: str, pattern) -> list[str]:
  """The frame files of `folder` matching `pattern`, in frame order; two
  files of one frame number (img_1.jpg beside img_00001.jpg) are the
  folder's failure, not two frames."""
  found = {}
  for name in sorted(os.listdir(folder)):
    m = pattern.match(name)
    if m:
      n = int(m.group(1))
      if n in found:
        raise VideoError(folder, 'undecodable', f'two files of frame {n}: '
                         f'{found[n]} and {name}')
      found[n] = name
  return [os.path.join(folder, found[n]) for n in sorted(found)]


def read_frame_folder(folder: str, filename_tmpl: str, short_side: int = 256,
                      quality: int = 90, as_jpeg: bool = True) -> dict:
  """Extracted frames (TSM / MMAction2 rawframes) as `read_video` returns a
  video. A JPEG whose short side is at most `short_side` is stored as its
  own bytes (copied, not re-encoded); a larger one is resized. Every frame
  is decoded once, so a corrupt one is found here. Frames of another size
  than the first are resized to the first's stored size (a clip needs one
  size) and counted in 'mixed_sizes' ('' when all agree), for the caller
  to report."""
  if not os.path.isdir(folder):
    raise VideoError(folder, 'missing')
  files = frame_files(folder, frame_pattern(filename_tmpl))
  if not files:
    raise VideoError(folder, 'zero frames',
                     f'no file matches {filename_tmpl}')
  frames, size, stored, odd = [], None, None, []
  for path in files:
    with open(path, 'rb') as f:
      data = f.read()
    try:
      rgb = decode_jpeg(data)
    except ValueError as e:
      raise VideoError(folder, 'undecodable',
                       f'{os.path.basename(path)}: {e}') from e
    size = size or rgb.shape[:2]
    kept = stored_frame(rgb, short_side)
    keep, rgb = kept is rgb, kept
    stored = stored or rgb.shape[:2]
    if rgb.shape[:2] != stored:
      rgb, keep = fit_size(rgb, stored, odd, os.path.basename(path)), False
    frames.append((data if keep else encode_jpeg(rgb, quality))
                  if as_jpeg else rgb)
  return {'frames': frames if as_jpeg else np.stack(frames), 'fps': 0.0,
          'height': size[0], 'width': size[1], 'num_frames': len(frames),
          'mixed_sizes': mixed_sizes(odd, len(files), stored)}


def fit_size(rgb: np.ndarray, stored: tuple, odd: list,
             name: str) -> np.ndarray:
  """`rgb` resized to the first frame's stored (H, W) (a clip needs one
  size), its name and size appended to `odd` for `mixed_sizes`."""
  odd.append(f'{name} {rgb.shape[1]}x{rgb.shape[0]}')
  return transforms.resize(rgb, stored[::-1], cv2.INTER_AREA)


def mixed_sizes(odd: list, total: int, stored: tuple) -> str:
  """'' or the note for the frames `fit_size` resized."""
  if not odd:
    return ''
  return (f'{len(odd)} of {total} frames differ in size from the first '
          f'({stored[1]}x{stored[0]}), e.g. {odd[0]}; resized to it')


def iter_frames(path: str, fps: float = 0.0, times: list | None = None,
                notes: list | None = None):
  """Yields (source fps / kept step, uint8 RGB `[H, W, 3]`) of every frame
  (or `fps` frames per second) as it decodes, for streaming. Given `times`,
  appends each yielded frame's presentation time (seconds; None when the
  container gives none); given `notes`, appends that 25 fps is assumed
  when the stream declares no frame rate.

  Raises VideoError('missing' | 'a folder' | 'empty' | 'undecodable' |
  'zero frames') before the first frame, and VideoError('truncated') when decoding stops
  after some frames: with an error, or quietly before the frame count the
  container declares (FFmpeg ends a cut AVI without one).
  """
  if not os.path.exists(path):
    raise VideoError(path, 'missing')
  if os.path.isdir(path):
    raise VideoError(path, 'a folder', f'not a video file; {FRAME_FOLDERS}')
  if os.path.getsize(path) == 0:
    raise VideoError(path, 'empty', 'file has 0 bytes')
  count = decoded = declared = 0
  try:
    with av.open(path) as container:
      if not container.streams.video:
        raise VideoError(path, 'undecodable', 'no video stream')
      stream = container.streams.video[0]
      stream.thread_type = 'AUTO'
      src_fps = float(stream.average_rate or 0)
      if not src_fps and notes is not None:
        notes.append('no frame rate declared (25 fps assumed)')
      src_fps = src_fps or 25.0
      keep_every = src_fps / fps if fps and fps < src_fps else 1.0
      next_keep = 0.0
      declared = stream.frames  # 0 when the container does not say
      for i, frame in enumerate(container.decode(stream)):
        decoded = i + 1
        if i + 1e-6 < next_keep:
          continue
        next_keep += keep_every
        count += 1
        if times is not None:
          times.append(frame.time)
        yield src_fps / keep_every, frame.to_ndarray(format='rgb24')
  except VideoError:
    raise
  except (av.FFmpegError, ValueError, OSError) as e:
    raise VideoError(path, 'truncated' if count else 'undecodable',
                     str(e)[:200]) from e
  if not count:
    raise VideoError(path, 'zero frames', 'no frame could be decoded')
  if decoded < declared:
    raise VideoError(path, 'truncated', f'{decoded} of the {declared} frames '
                     'the container declares')


def read_video(path: str, short_side: int = 256, fps: float = 0.0,
               quality: int = 90, as_jpeg: bool = True) -> dict:
  """Decodes every frame (or `fps` frames per second) to JPEG bytes
  (`as_jpeg=False`: one uint8 `[F, H, W, 3]` array).

  Returns {'frames': [bytes], 'fps', 'height', 'width', 'num_frames',
  'times', 'truncated', 'mixed_sizes', 'timing'}, with the first frame's
  original height/width, the stored frame rate and the frames' times
  (`frame_times`).
  A truncated tail keeps the frames that decoded (common in the wild) and
  says why and how many were kept in 'truncated' ('' for a whole video);
  frames of another size than the first (a stream whose resolution
  changes) are resized to the first's stored size and counted in
  'mixed_sizes'; 'timing' says what the times had to assume: each '' or
  a note for the caller to report.
  Raises VideoError('missing' | 'empty' | 'undecodable' | 'zero frames').
  """
  frames, size, stored, odd, rate, truncated = [], None, None, [], 25.0, ''
  times, notes = [], []
  try:
    for rate, rgb in iter_frames(path, fps, times, notes):
      size = size or rgb.shape[:2]
      rgb = stored_frame(rgb, short_side)
      stored = stored or rgb.shape[:2]
      if rgb.shape[:2] != stored:
        rgb = fit_size(rgb, stored, odd, f'frame {len(frames) + 1}')
      frames.append(encode_jpeg(rgb, quality) if as_jpeg else rgb)
  except VideoError as e:
    if e.reason != 'truncated':
      raise
    n = len(frames)
    truncated = (f'{e.detail or "decoding stopped early"}; kept the {n} '
                 f'frame{"s" * (n != 1)} that decoded')
  times = frame_times(times, rate, notes)
  return {'frames': frames if as_jpeg else np.stack(frames),
          'fps': rate, 'height': size[0], 'width': size[1],
          'num_frames': len(frames), 'times': times, 'truncated': truncated,
          'mixed_sizes': mixed_sizes(odd, len(frames), stored),
          'timing': '; '.join(notes)}


def frame_times(pts: list, fps: float, notes: list) -> np.ndarray:
  """float64 `[F + 1]` seconds: when each of F frames starts (from its
  presentation time `pts`, the first at 0, so variable-frame-rate video
  is timed right), then when the last one ends (after the interval before
  it). Frame number / `fps` when a time is missing or times do not
  increase (a concatenated stream starts again at 0), appending why to
  `notes`."""
  n = len(pts)
  t = np.array([np.nan if p is None else p for p in pts], np.float64)
  if n > 1 and not (np.diff(t) > 0).all():
    what = 'missing' if np.isnan(t).any() else 'not increasing'
    notes.append(f'presentation times {what} (times are frame number / '
                 f'{fps:g} fps)')
    return np.arange(n + 1) / fps
  t = t - t[0] if n > 1 else np.zeros(1)
  return np.append(t, t[-1] + (t[-1] - t[-2] if n > 1 else 1 / fps))
