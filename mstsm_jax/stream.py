"""Online recognition of a video file, one frame per step
(inference/streaming.py).

  python -m mstsm_jax.stream --checkpoint=DIR|FILE --video=FILE \
      [--every=1] [--smooth=K] [--output=annotated.mp4] [--json]

An online model (`*_online` variants; a model directory or a file from
`export --streaming`) sees every `--every`-th frame as it decodes, with its
shift buffers carried from step to step; the label at each step is the
arg-max of the mean scores of the last `--smooth` steps (default T, the
clip length the model was trained on: that mean is the clip score of the
last T steps). `--every` should match the frame spacing the model was
trained with (video length / T at training time) when known.

Writes `--output` (H.264 MP4: every frame with the current label and
probability drawn on it) and, beside it, the timeline as JSON (frame, time,
label, probability per step); neither may be the input video, and existing
files are replaced only with `--overwrite`. Reports frames/s of the model
steps and the per-step latency p50 / p90 in ms (compilation excluded);
`--json` prints all of it as one line on stdout.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import time

import numpy as np
from absl import flags

from mstsm_jax import cli, files
from mstsm_jax.console import LOG
from mstsm_jax.data import video
from mstsm_jax.inference.streaming import Mp4Writer, Streamer, annotate


def define_flags(fv):
  flags.DEFINE_string('checkpoint', None, 'online model directory, or a '
                      'file from export --streaming', flag_values=fv)
  flags.DEFINE_string('video', None, 'video file to stream', flag_values=fv)
  flags.DEFINE_integer('every', 1, 'step on every N-th decoded frame',
                       lower_bound=1, flag_values=fv)
  flags.DEFINE_integer('smooth', 0, 'label from the mean scores of the last '
                       'K steps (0 = T)', lower_bound=0, flag_values=fv)
  flags.DEFINE_string('output', '', 'annotated MP4 to write (its timeline '
                      'goes to the same name with .json)', flag_values=fv)
  cli.define_runtime(fv)
  flags.DEFINE_bool('overwrite', False, 'replace an existing --output and '
                    'its JSON', flag_values=fv)
  flags.mark_flags_as_required(['checkpoint', 'video'], flag_values=fv)
  cli.define_json(fv)


def check_output(fv) -> None:
  """--output must be a new .mp4 (and its .json timeline) in a writable
  folder, never the video or model it reads."""
  out = fv['output'].value
  cli.only_with(fv, ('overwrite',), 'output')
  if not out:
    return
  if not out.lower().endswith('.mp4'):
    raise cli.UsageError(f'--output={out}: the annotated video is an MP4 '
                         'file', 'name an .mp4 file')
  files.check_writable(os.path.dirname(os.path.abspath(out)),
                       'output folder')
  files.check_outputs(
      {'--output': out, 'its timeline': os.path.splitext(out)[0] + '.json'},
      [fv['video'].value, fv['checkpoint'].value], fv['overwrite'].value)


def open_frames(path, pts: list):
  """(fps, every decoded frame as an iterator), or one line when the file
  does not decode at all; each frame's presentation time is appended to
  `pts` as it decodes."""
  notes = []
  frames = video.iter_frames(path, times=pts, notes=notes)
  try:
    fps, first = next(frames)
  except video.VideoError as e:
    raise cli.UsageError(f'cannot read {path}: {e.reason}'
                         f'{" (" + e.detail + ")" if e.detail else ""}',
                         'give a video file PyAV can decode') from e
  for note in notes:  # the times in the timeline rest on it
    print(f'{path}: warning: {note}', file=LOG)

  def decoded():
    yield first
    yield from (f for _, f in frames)
  return fps, decoded()


def stream_frames(streamer, frames, fps, every: int, k: int, writer,
                  path) -> dict:
  """Every `every`-th frame through `streamer`, labelled by the mean of its
  last `k` scores; each frame annotated into `writer`. A video that stops
  decoding keeps the frames before it and says so. A row's 'time' is
  frame number / `fps` (`timed` puts the presentation times in)."""
  rows, latency, label, prob, n, truncated = [], [], '', 0.0, 0, ''
  try:
    for n, frame in enumerate(frames):
      if n % every == 0:
        t0 = time.perf_counter()
        streamer.step(frame)
        latency.append(time.perf_counter() - t0)
        (label, prob), = streamer.ranked(k)
        rows.append({'frame': n, 'time': round(n / fps, 3), 'label': label,
                     'probability': round(prob, 6)})
      if writer:
        writer.write(annotate(frame, label, prob))
      if n and n % 500 == 0:
        print(f'{n} frames, {len(rows) / sum(latency):.1f} steps/s',
              file=LOG)
  except video.VideoError as e:
    truncated = f'{e.reason} after frame {n}: {e.detail}'
    print(f'{path}: warning: decoding stopped ({truncated}); streamed the '
          f'{n + 1} frames before it', file=LOG)
  finally:
    if writer:
      writer.close()
  ms = np.array(latency) * 1000
  return {'frames': n + 1, 'steps': len(rows),
          'frames_per_s': round(len(rows) / float(np.sum(latency)), 2),
          'latency_ms_p50': round(float(np.percentile(ms, 50)), 3),
          'latency_ms_p90': round(float(np.percentile(ms, 90)), 3),
          'truncated': truncated, 'timeline': rows, 'last': (label, prob)}


def timed(rows: list, pts: list, fps: float) -> str:
  """Sets each timeline row's 'time' to its frame's start as `predict
  --timeline` times it (`video.frame_times`: presentation times, so a
  variable-frame-rate video is timed right); returns what that had to
  assume ('' or a note)."""
  notes = []
  times = video.frame_times(pts, fps, notes)
  for row in rows:
    row['time'] = round(float(times[row['frame']]), 3)
  return '; '.join(notes)


def main(fv, argv):
  del argv
  path, out = fv['video'].value, fv['output'].value
  check_output(fv)
  pts = []
  fps, frames = open_frames(path, pts)
  first = next(frames)
  streamer = Streamer(fv['checkpoint'].value, runtime=fv['runtime'].value,
                      history=fv['smooth'].value or None)
  every = fv['every'].value
  k = fv['smooth'].value or streamer.num_segments
  streamer.step(first)  # compiles; not timed
  streamer.reset()
  t_start = time.perf_counter()
  with contextlib.ExitStack() as stack:  # the MP4 whole or not at all
    writer = (Mp4Writer(stack.enter_context(files.atomic_path(
        out, '--output')), fps) if out else None)
    res = stream_frames(streamer, itertools.chain([first], frames), fps,
                        every, k, writer, path)
  mixed = writer.mixed_sizes() if writer else ''
  if writer and writer.trimmed():
    print(f'note: {out}: {writer.trimmed()}', file=LOG)
  if mixed:  # predict's wording (video.mixed_sizes)
    print(f'{path}: warning: mixed sizes ({mixed}) in {out}', file=LOG)
  label, prob = res.pop('last')
  timing = timed(res['timeline'], pts[:res['frames']], fps)
  if timing:
    print(f'{path}: warning: {timing}', file=LOG)
  if res['steps'] < k:
    asked = (f'--smooth={k}' if fv['smooth'].value else
             f'T = {k}, the clip the model was trained on')
    print(f'{path}: warning: {res["steps"]} of {res["frames"]} frames '
          f'stepped (--every={every}), fewer than {asked}: the label is '
          'the mean of fewer steps', file=LOG)
  result = {'video': path, 'checkpoint': fv['checkpoint'].value, 'fps': fps,
            'every': every, 'smooth': k, **res,
            **({'mixed_sizes': f'mixed sizes ({mixed})'} if mixed else {}),
            **({'timing': timing} if timing else {}),
            'wall_s': round(time.perf_counter() - t_start, 3),
            'classes': list(streamer.classes)}
  if out:
    result['output'] = out
    result['timeline_json'] = os.path.splitext(out)[0] + '.json'
    files.write_json(result['timeline_json'], result)
  print(f'{path}: {result["frames"]} frames, {result["steps"]} steps at '
        f'{result["frames_per_s"]} steps/s, latency p50 '
        f'{result["latency_ms_p50"]} ms p90 {result["latency_ms_p90"]} ms; '
        f'last: {label} {prob:.2f}' + (f'; wrote {out}' if out else ''),
        file=LOG)
  cli.emit_json(fv, result)
  return 0


if __name__ == '__main__':
  cli.main_entry(define_flags, main, __doc__)
