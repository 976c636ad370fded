"""Grad-CAM of a video: where each of the T frames drove the prediction.

  python -m mstsm_jax.explain --checkpoint=DIR --video=FILE --output=cam.png \
      [--class=NAME] [--layer=layer4] [--json]

The video is sampled and cropped as `evaluate`'s 1x1 view; the map of each
frame (inference/gradcam.py) is for `--class` (default: the predicted class)
at the output of backbone stage `--layer` (default: the last, layer4 or
EfficientNet's features_8; earlier stages give finer maps). Writes one PNG
with the T frames, their maps overlaid and a colour bar; `--json` prints the
class, its probability and each frame's peak (row, column; null for an
all-zero or flat map, said) on stdout. A video shorter than T frames, truncated,
or whose frame size changes, is explained with the warning `predict`
gives; an existing PNG is replaced only with `--overwrite`.
"""
from __future__ import annotations

import os

import numpy as np
from absl import flags

from mstsm_jax import cli, files, inference
from mstsm_jax.console import LOG
from mstsm_jax.data import video
from mstsm_jax.inference import gradcam
from mstsm_jax.inference.views import NOTE_KINDS


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
    raise cli.UsageError(f'--output={out}: explain writes a PNG image',
                         'name a .png file')
  files.check_writable(os.path.dirname(os.path.abspath(out)),
                       'output folder')
  files.check_outputs({'--output': out}, [path, fv['checkpoint'].value],
                      fv['overwrite'].value)
  gradcam.check_explainable(fv['checkpoint'].value)
  predictor = inference.load(fv['checkpoint'].value)
  try:
    res = gradcam.explain_video(predictor, path, fv['class'].value,
                                fv['layer'].value)
  except video.VideoError as e:
    raise cli.UsageError(f'cannot read {path}: {e.reason}',
                         'give a video file PyAV can decode') from e
  for note in res['warnings']:
    print(f'{path}: warning: {note}', file=LOG)
  maps, title = res['maps'], res['title']
  gradcam.plot(res['clip'], maps, out, title)
  # An all-zero map (no positive evidence at the layer) or a flat one (a
  # 1x1 stage output) has no peak.
  empty = sum(m.max() <= 0 for m in maps)
  flat = sum(0 < m.max() == m.min() for m in maps)
  peaks = [[int(a) for a in np.unravel_index(int(m.argmax()), m.shape)]
           if m.max() > m.min() else None for m in maps]
  if empty:
    print(f'{path}: warning: {empty} of {len(maps)} frames have an empty '
          f'map (no positive evidence for {res["class"]} at '
          f'{res["layer"]}); their peaks are null', file=LOG)
  if flat:
    print(f'{path}: warning: {flat} of {len(maps)} frames have a flat map '
          '(one value everywhere); their peaks are null', file=LOG)
  print(f'wrote {out}: {title}', file=LOG)
  cli.emit_json(fv, {'video': path, 'output': out,
                     **{k: res[k] for k in ('class', 'class_index',
                                            'probability', 'predicted',
                                            'layer')},
                     'frames': len(maps),
                     'peaks': peaks,
                     **{k: res[k] for k in ('warning', *NOTE_KINDS)
                        if res[k]}})
  return 0


if __name__ == '__main__':
  cli.main_entry(define_flags, main, __doc__)
