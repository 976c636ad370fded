"""Top-5 predictions for video files with the test-time pipeline.

  python -m mstsm_jax.predict --checkpoint=DIR video1.avi [video2.mp4 ...]
      [--views=1x1] [--json]

Each video is decoded (PyAV), sampled as at test time (middle frame of each
of T segments; CLIPSxCROPS views averaged), normalised and classified; the
top-5 class names are printed with their probabilities. With --json, one
JSON object per video on stdout.
"""
from __future__ import annotations

import json
import sys

import numpy as np
from absl import flags

from mstsm_jax import inference
from mstsm_jax.data import pipeline, video
from mstsm_jax.evaluate import parse_views

LOG = sys.stderr


def clip_views(path: str, predictor, views=(1, 1)) -> np.ndarray:
  """A video file -> normalised float32 views `[V, T, S, S, 3]`."""
  cfg = predictor.config
  if cfg.data.modality != 'rgb':
    raise ValueError('predict decodes RGB videos; a flow model needs '
                     'prepared flow (use evaluate)')
  rec = video.read_video(path, cfg.data.resize_short, as_jpeg=False)
  rec['label'] = 0
  tf = pipeline.ClipTransform(cfg.data, cfg.model.num_segments, train=False,
                              views=views)
  out = tf((0, rec))
  if not out['valid']:
    raise video.VideoError(path, 'undecodable')
  mean, std = pipeline.norm_stats(cfg.data)
  return ((out['clips'].astype(np.float32) - np.float32(mean) * 255)
          / (np.float32(std) * 255))


def main(argv):
  paths = argv[1:]
  if not paths:
    raise ValueError('give one or more video files after the flags')
  FLAGS = flags.FLAGS
  predictor = inference.load(FLAGS.checkpoint)
  views = parse_views(FLAGS.views)
  for path in paths:
    try:
      x = clip_views(path, predictor, views)
    except video.VideoError as e:
      print(f'{path}: cannot read ({e.reason}{": " + e.detail if e.detail else ""})',
            file=LOG)
      if FLAGS.json:
        print(json.dumps({'video': path, 'error': e.reason}))
      continue
    logits = predictor(x).mean(0)
    if predictor.config.model.tfdem_fuse:
      prob = logits / logits.sum()
    else:
      prob = np.exp(logits - logits.max())
      prob /= prob.sum()
    top = np.argsort(-prob)[:5]
    result = {'video': path, 'top5': [
        {'class': predictor.classes[i], 'index': int(i),
         'probability': round(float(prob[i]), 6)} for i in top]}
    if FLAGS.json:
      print(json.dumps(result), flush=True)
    else:
      print(path)
      for r in result['top5']:
        print(f'  {100 * r["probability"]:6.2f}%  {r["class"]}')


if __name__ == '__main__':
  from mstsm_jax import cli
  flags.DEFINE_string('checkpoint', None, 'model directory')
  flags.DEFINE_string('views', '1x1', 'CLIPSxCROPS test views')
  flags.mark_flag_as_required('checkpoint')
  cli.define_json()
  cli.run(main)
