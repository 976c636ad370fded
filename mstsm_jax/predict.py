"""Top-5 predictions for video files with the test-time pipeline.

  python -m mstsm_jax.predict --checkpoint=DIR video1.avi [video2.mp4 ...]
      [--views=1x1] [--json]

Each video is decoded (PyAV), sampled and cropped exactly as `evaluate`
does (middle frame of each of T segments; CLIPSxCROPS views averaged) and
classified; the top-5 class names are printed with their probabilities.
With --json, one JSON object per video on stdout. A video with fewer frames
than segments is predicted with a warning (frames repeat); a video that
cannot be read is reported and skipped; exit code 1 when none could be read.

`--timeline` scores sliding windows (`--window_s`, every `--stride_s`) of a
long video instead, each sampled and cropped as a whole video is (timed by
the frames' presentation times; the last window ends at the video's end; a
window or stride shorter than a frame is one frame, said), and writes
<video>.timeline.json (start, end, label, probability, all class
probabilities per window) and <video>.timeline.png into `--output_dir`
(videos of the same name get numbered names, said in a note; existing files
are replaced only with `--overwrite`).
"""
from __future__ import annotations

import collections
import json
import pathlib

from absl import flags

from mstsm_jax import cli, cpu, files, inference
from mstsm_jax.console import LOG
from mstsm_jax.data import video
from mstsm_jax.evaluation.evaluator import parse_views
from mstsm_jax.inference import report
from mstsm_jax.inference.timelines import check_window


def define_flags(fv):
  flags.DEFINE_string('checkpoint', None, 'model directory, or a file from '
                      'export', flag_values=fv)
  cli.define_runtime(fv)
  flags.DEFINE_string('views', '1x1', 'CLIPSxCROPS test views (unset: the '
                      "model's own, 1x1 or Nx1 for data.test_sampling="
                      'twice/dense)', flag_values=fv)
  flags.DEFINE_bool('timeline', False, 'score sliding windows over each '
                    'video (long videos)', flag_values=fv)
  flags.DEFINE_float('window_s', 4.0, '--timeline: window length, seconds',
                     flag_values=fv)
  flags.DEFINE_float('stride_s', 1.0, '--timeline: window step, seconds',
                     flag_values=fv)
  flags.DEFINE_string('output_dir', '.', '--timeline: where the JSON and '
                      'PNG go', flag_values=fv)
  flags.DEFINE_bool('overwrite', False, '--timeline: replace existing '
                    'JSON and PNG files', flag_values=fv)
  flags.mark_flag_as_required('checkpoint', flag_values=fv)
  cli.define_json(fv)


def main(fv, argv):
  cpu.keep_host_memory()  # before jax starts (a no-op after)
  paths = argv[1:]
  if not paths:
    raise cli.UsageError('no video given',
                         'put one or more video files after the flags')
  cli.only_with(fv, ('window_s', 'stride_s', 'output_dir', 'overwrite'),
                'timeline')
  folder = next((p for p in paths if pathlib.Path(p).is_dir()), None)
  if folder:  # a mistake in the command, not a video that failed
    raise cli.UsageError(f'{folder} is a folder, not a video file',
                         f'give video files (e.g. {folder.rstrip("/")}/*.mp4; '
                         f'{video.FRAME_FOLDERS})')
  # Unasked, the model's own (pipeline.own_views: 1x1, or one view of each
  # temporal clip of data.test_sampling='twice' / 'dense').
  views = parse_views(fv['views'].value) if fv['views'].present else None
  outputs = None
  if fv['timeline'].value:
    check_window(fv['window_s'].value, fv['stride_s'].value)
    outputs = timeline_outputs(fv, paths)
  predictor = inference.load(fv['checkpoint'].value,
                             runtime=fv['runtime'].value)
  if outputs is not None:
    return timelines(fv, predictor, paths, views, outputs)
  read = 0
  for path in paths:
    try:
      result, warnings = report.top5(predictor, path, views)
    except video.VideoError as e:
      print(report.cannot_read(path, e), file=LOG)
      if fv['json'].value:
        print(json.dumps({'video': path, 'error': e.reason}), flush=True)
      continue
    read += 1
    for note in warnings:
      print(f'{path}: warning: {note}', file=LOG)
    if fv['json'].value:
      print(json.dumps(result), flush=True)
    else:
      print(path)
      for r in result['top5']:
        print(f'  {100 * r["probability"]:6.2f}%  {r["class"]}')
  if not read:
    none_read(paths)
    return 1
  return 0


def none_read(paths) -> None:
  """The closing lines when no video could be read (exit 1)."""
  what = (paths[0] if len(paths) == 1 else
          f'none of the {len(paths)} videos')
  print(f'error: {what} could be read' if len(paths) > 1 else
        f'error: {what} could not be read', file=LOG)
  print('hint: give video files PyAV can decode (the reasons are above)',
        file=LOG)


def timeline_outputs(fv, paths) -> list[tuple]:
  """(JSON path, PNG path) per video, in order, in `--output_dir`, checked before any
  work (files.check_outputs): videos of the same file name (in different
  folders, or given twice) get numbered names, and that is said."""
  out_dir = files.check_writable(fv['output_dir'].value, 'output folder')
  named = collections.Counter(pathlib.Path(p).stem for p in paths)
  used, out, flat = set(), [], {}
  for i, path in enumerate(paths):
    stem = base = pathlib.Path(path).stem
    k = 1
    while stem in used:
      k += 1
      stem = f'{base}-{k}'
    used.add(stem)
    if named[base] > 1:
      print(f'note: {named[base]} videos are named {base} (the same file '
            f'given twice counts twice), so their timelines are numbered: '
            f'video {i + 1}, {path}, is written as {stem}.timeline.json and '
            '.png', file=LOG)
    out.append((out_dir / f'{stem}.timeline.json',
                out_dir / f'{stem}.timeline.png'))
    flat[f'the timeline of video {i + 1} ({path})'] = out[-1][0]
    flat[f'the plot of video {i + 1} ({path})'] = out[-1][1]
  files.check_outputs(flat, [*paths, fv['checkpoint'].value],
                      fv['overwrite'].value)
  return out


def timelines(fv, predictor, paths, views, outputs) -> int:
  """predict --timeline: a JSON timeline and a PNG per readable video."""
  read = 0
  for path, (out_json, out_png) in zip(paths, outputs):
    try:
      res = inference.timeline(path, predictor, fv['window_s'].value,
                               fv['stride_s'].value, views)
    except video.VideoError as e:
      print(report.cannot_read(path, e), file=LOG)
      continue
    read += 1
    for note in res['warnings']:
      print(f'{path}: warning: {note}', file=LOG)
    files.write_json(out_json, res)
    res['files'] = [str(out_json), inference.plot_timeline(res, out_png)]
    for r in res['timeline']:
      print(f'{path} {r["start"]:8.2f}-{r["end"]:<8.2f} '
            f'{100 * r["probability"]:6.2f}%  {r["label"]}', file=LOG)
    print(f'  wrote {", ".join(res["files"])}', file=LOG)
    if fv['json'].value:
      print(json.dumps({k: v for k, v in res.items() if k != 'classes'}),
            flush=True)
  if not read:
    none_read(paths)
    return 1
  return 0


if __name__ == '__main__':
  cli.main_entry(define_flags, main, __doc__)
