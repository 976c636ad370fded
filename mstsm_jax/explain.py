"""Grad-CAM of a video: where each of the T frames drove the prediction.

  python -m mstsm_jax.explain --checkpoint=DIR --video=FILE --output=cam.png \
      [--class=NAME] [--layer=layer4] [--json]

The video is sampled and cropped as `evaluate`'s 1x1 view; the map of each
frame (inference/gradcam.py) is for `--class` (default: the predicted class)
at the output of backbone stage `--layer` (default: the last, layer4 or
EfficientNet's features_8; earlier stages give finer maps). Writes one PNG
with the T frames, their maps overlaid and a colour bar; `--json` prints the
class, its probability and each frame's peak (row, column) on stdout. A
video shorter than T frames, or truncated, is explained with the warning
`predict` gives; an existing PNG is replaced only with `--overwrite`.
"""
from __future__ import annotations

import os
import pathlib

import numpy as np
from absl import flags

from mstsm_jax import cli, files, inference
from mstsm_jax.console import LOG
from mstsm_jax.data import video
from mstsm_jax.inference import gradcam
from mstsm_jax.models import task


def define_flags(fv):
  flags.DEFINE_string('checkpoint', None, 'model directory', flag_values=fv)
  flags.DEFINE_string('video', None, 'video file', flag_values=fv)
  flags.DEFINE_string('output', None, 'PNG to write', flag_values=fv)
  flags.DEFINE_string('class', '', 'class name to explain (default: the '
                      'predicted one)', flag_values=fv)
  flags.DEFINE_string('layer', '', 'backbone stage (default: the last)',
                      flag_values=fv)
  flags.DEFINE_bool('overwrite', False, 'replace an existing --output',
                    flag_values=fv)
  flags.mark_flags_as_required(['checkpoint', 'video', 'output'],
                               flag_values=fv)
  cli.define_json(fv)


def main(fv, argv):
  del argv
  out, path = fv['output'].value, fv['video'].value
  if not out.lower().endswith('.png'):
    raise cli.UsageError(f'--output={out}', 'name a .png file')
  files.check_writable(os.path.dirname(os.path.abspath(out)),
                       'output folder')
  files.check_outputs({'--output': out}, [path, fv['checkpoint'].value],
                      fv['overwrite'].value)
  if pathlib.Path(fv['checkpoint'].value).is_file():
    raise cli.UsageError(f'{fv["checkpoint"].value} is an exported file; '
                         'Grad-CAM needs the weights',
                         'pass the model directory it was exported from')
  predictor = inference.load(fv['checkpoint'].value)
  cfg, classes = predictor.config, list(predictor.classes)
  target = None
  if fv['class'].value:
    if fv['class'].value not in classes:
      raise cli.UsageError(
          f'--class={fv["class"].value} is not a class of this model',
          f'one of {", ".join(classes[:8])}{", ..." * (len(classes) > 8)}')
    target = classes.index(fv['class'].value)
  notes = []
  try:
    views, frames = inference.read_video_views(path, cfg, warnings=notes)
  except video.VideoError as e:
    raise cli.UsageError(f'cannot read {path}: {e.reason}',
                         'give a video file PyAV can decode') from e
  short = inference.short_video_note(frames, cfg.model.num_segments)
  for note in ([short] if short else []) + notes:
    print(f'{path}: warning: {note}', file=LOG)
  clip = views[0]  # [T, S, S, 3] uint8
  x = task.normalize(clip, *task.norm_stats(cfg.data))
  try:
    maps, k, logits = gradcam.grad_cam(predictor.model, predictor.variables,
                                       x, fv['layer'].value, target)
  except ValueError as e:
    raise cli.UsageError(f'--layer={fv["layer"].value}: {e}',
                         'choose a backbone stage') from e
  probs = np.asarray(task.probabilities(logits))
  layer = fv['layer'].value or gradcam.last_stage(predictor.model)
  title = (f'{pathlib.Path(path).name}: Grad-CAM of {classes[k]} '
           f'(p={probs[k]:.2f}) at {layer}')
  gradcam.plot(clip, maps, out, title)
  peaks = [list(np.unravel_index(int(m.argmax()), m.shape)) for m in maps]
  print(f'wrote {out}: {title}', file=LOG)
  cli.emit_json(fv, {'video': path, 'output': out, 'class': classes[k],
                     'class_index': k, 'probability': float(probs[k]),
                     'predicted': classes[int(probs.argmax())],
                     'layer': layer, 'frames': len(maps),
                     'peaks': [[int(a) for a in p] for p in peaks],
                     **({'warning': short} if short else {}),
                     **({'truncated': notes[0]} if notes else {})})
  return 0


if __name__ == '__main__':
  cli.main_entry(define_flags, main, __doc__)
