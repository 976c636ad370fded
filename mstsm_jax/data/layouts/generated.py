"""The synthetic datasets (data/synthetic.py; data/synthetic_hard.py's
event orders, near and far) as layouts: rendered, not read, so `prepare`
stores them like a decoded dataset."""
from __future__ import annotations

import functools

from mstsm_jax.data import synthetic
from mstsm_jax.data.layouts.base import Entry, Layout, Option, Reader
from mstsm_jax.errors import UsageError


def layout(task: str, num_videos: int = 600, seed: int = 0,
           size: int = 64, num_frames: int = 16) -> Layout:
  """The synthetic videos of `task` (data/synthetic.py) as a layout: entry
  paths are video indices, rendered by `synthetic.record`."""
  if num_videos < 1:
    raise UsageError(f'--num_videos={num_videos}', 'generate at least 1')
  if seed < 0:
    raise UsageError(f'--seed={seed}', 'valid: 0 or more')
  classes, _ = synthetic.task(task)
  least = 5 * len(classes)  # every fifth round of the classes is test
  if num_videos < least:
    raise UsageError(f'--num_videos={num_videos}: {task} puts every fifth '
                     f'round of its {len(classes)} classes in test, so '
                     f'test1 would hold {max(0, num_videos - 4 * len(classes))}'
                     ' videos', f'generate at least {least}')
  entries = []
  for i in range(num_videos):
    label = synthetic.label_of(i, classes)
    role = 1 if synthetic.split_of(i, classes) == 'train1' else 2
    entries.append(Entry(str(i), synthetic.video_name(i, classes), label,
                         classes[label], (role,)))
  return Layout(classes, entries, 1, (), decoder=functools.partial(
      synthetic.record, name=task, seed=seed, size=size,
      num_frames=num_frames))


OPTIONS = (Option('num_videos', 600, 'synthetic: videos to generate'),
           Option('seed', 0, 'synthetic: generator seed'))


def _generated(task):
  def read_generated(manual_dir, num_videos=600, seed=0):
    del manual_dir
    return layout(task, num_videos, seed)
  return read_generated


READERS = (
    Reader('synthetic', _generated('synthetic'), 'generated motions (no '
           '--manual_dir)', options=OPTIONS,
           builder_name='synthetic_motions', generated=True),
    Reader('synthetic_hard', _generated('synthetic_hard'), 'generated '
           'event orders (no --manual_dir)', options=OPTIONS,
           builder_name='synthetic_hard_events', generated=True),
    Reader('synthetic_far', _generated('synthetic_far'), 'generated '
           'far event orders (no --manual_dir)', options=OPTIONS,
           builder_name='synthetic_far_events', generated=True),
)
