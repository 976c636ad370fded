"""Multi-view video evaluation: scores, metrics and the result files.

Views are `CLIPSxCROPS`: CLIPS temporal clips (offsets inside each segment)
x CROPS spatial crops (1 center or 3 along the long side); a video's score is
the mean of its views' logits (TSM's test protocol). Writes into
DIR/eval/<split>_<views>/: metrics.json, per_class.csv, confusion.csv and
confusion.png (class names on the axes), scores.npz (video names, labels,
scores) for late fusion.
"""
from __future__ import annotations

import pathlib

import jax
import numpy as np
import tqdm
from jax.experimental import multihost_utils

from mstsm_jax.console import LOG
from mstsm_jax.data import pipeline
from mstsm_jax.evaluation import metrics, visualize
from mstsm_jax.training import sharding
from mstsm_jax.files import write_json


def parse_views(views: str) -> tuple[int, int]:
  clips, _, crops = views.partition('x')
  if not (clips.isdigit() and crops in ('1', '3') and int(clips) > 0):
    raise ValueError(f'views={views!r}: expected CLIPSxCROPS with CROPS 1 '
                     'or 3, e.g. 1x1 or 10x3')
  return int(clips), int(crops)


def predict_split(eval_fn, variables, split, config, mesh, views=(1, 1),
                  max_videos: int = 0, progress: bool = True) -> dict:
  """Scores every video of `split`: {'scores', 'labels', 'videos'}."""
  batch = config.eval.batch_size
  n_dev = mesh.devices.size
  batch = max(n_dev, batch // n_dev * n_dev)
  per_host = batch // jax.process_count()
  ds = pipeline.eval_dataset(split, config.data, config.model.num_segments,
                             per_host, views, jax.process_index(),
                             jax.process_count(), max_videos)
  n = min(len(split.source), max_videos or len(split.source))
  scores = np.zeros((n, config.model.num_classes), np.float32)
  skipped = 0
  with tqdm.tqdm(total=-(-n // jax.process_count()), unit='video',
                 file=LOG, desc='eval', leave=False,
                 disable=not progress or jax.process_index() > 0) as bar:
    for b in ds:
      out = np.asarray(eval_fn(variables, sharding.put_batch(b, mesh)))
      idx, ok = b['index'], b['valid']
      if jax.process_count() > 1:  # rows of `out` come in process order
        idx, ok = multihost_utils.process_allgather((idx, ok), tiled=True)
      real = idx >= 0
      scores[idx[real]] = out[real]
      skipped += int((~ok & real).sum())
      bar.update(int((b['index'] >= 0).sum()))
  return {'scores': scores, 'labels': split.labels[:n],
          'videos': split.videos[:n], 'skipped': skipped}


def write_maps(model, variables, split, config, out_dir) -> list[str]:
  """The TFDEM feature-difference PNG for the split's first video."""
  if jax.process_index() or not model.tfdem:
    return []
  clip = visualize.first_clip(split, config.data, config.model.num_segments)
  if clip is None:
    return []
  path = visualize.tfdem_maps(model, variables, clip, config,
                              pathlib.Path(out_dir) / 'tfdem_maps.png',
                              f'{split.videos[0]}: TFDEM feature '
                              'differences')
  return [path] if path else []


def summarize(pred: dict, classes, out_dir=None) -> dict:
  """Metrics of predicted scores; writes the files when `out_dir` is set."""
  res = metrics.classification_metrics(pred['scores'], pred['labels'],
                                       len(classes))
  summary = {k: res[k] for k in ('top1', 'top5', 'mean_class_acc',
                                 'videos')}
  summary['skipped'] = pred.get('skipped', 0)
  if out_dir is not None and jax.process_index() == 0:
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = metrics.write_confusion(out / 'confusion', res['confusion'],
                                    classes)
    with open(out / 'per_class.csv', 'w') as f:
      f.write('class,accuracy,videos\n')
      for name, acc, sup in zip(classes, res['per_class'],
                                res['confusion'].sum(1)):
        f.write(f'"{name}",{acc:.6f},{sup}\n')
    np.savez(out / 'scores.npz', videos=np.asarray(pred['videos']),
             labels=pred['labels'], scores=pred['scores'],
             classes=np.asarray(classes))
    summary['files'] = files + [str(out / 'per_class.csv'),
                                str(out / 'scores.npz')]
    write_json(out / 'metrics.json', summary)
  return summary


def report_dir(workdir, config, views, step: int | None = None
               ) -> pathlib.Path:
  """WORKDIR/eval/test<split>_<views>[_step<N>]: the final checkpoint's
  report has no step in its name; any other checkpoint's (`step`) has."""
  name = f'test{config.data.split}_{views[0]}x{views[1]}'
  return pathlib.Path(workdir) / 'eval' / (
      name if step is None else f'{name}_step{step}')


def full_report(eval_fn, model, variables, split, config, mesh, views,
                out_dir) -> dict:
  """Scores `split` with `views` and writes every result file (metrics,
  confusion, per-class, scores.npz, TFDEM maps) into `out_dir`."""
  pred = predict_split(eval_fn, variables, split, config, mesh, views,
                       config.eval.max_videos)
  res = summarize(pred, split.classes, out_dir)
  res['files'] = res.get('files', []) + write_maps(model, variables, split,
                                                   config, out_dir)
  return res


def format_result(res: dict) -> str:
  return (f'top-1 {100 * res["top1"]:.2f}%  top-5 {100 * res["top5"]:.2f}%  '
          f'mean class {100 * res["mean_class_acc"]:.2f}%  '
          f'({res["videos"]} videos' + (f', {res["skipped"]} unreadable'
                                       if res.get('skipped') else '') + ')')
