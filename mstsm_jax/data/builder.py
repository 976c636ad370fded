"""tfds builders (array_record, no TensorFlow) for prepared video datasets.

Every video is stored once, in the tfds split `videos`, with its frames as
JPEG bytes (`Sequence(Tensor((), object))`: tfds' Image/Video encoders need
TensorFlow). The official splits (train1/test1 ... train3/test3) are index
lists into it, kept in the dataset's metadata, so three splits cost one copy
of the frames. `disable_shuffling` keeps the records in the order written.

One builder class per registered layout (data/layouts.py), made the same
way for all by `builder_class`, named by the layout's `builder_name`.

A build can be split over machines (a batch scheduler's array job): shard
i of N decodes the videos whose list position is i mod N into its own
dataset under `shard_dir` (`FramesBuilder(shard=(i, N))`), and
`MergedFrames` then writes the dataset from the shards' records in list
order, record for record what one machine would have written.
Every finished build keeps the inputs that made it in `INPUTS` beside its
`dataset_info.json`, for `files.check_same_inputs`.
"""
from __future__ import annotations

import functools
import multiprocessing
import pathlib
import signal

import numpy as np
import tensorflow_datasets as tfds
import tqdm

from mstsm_jax.console import LOG
from mstsm_jax.data import flow, layouts, video
from mstsm_jax.data.layouts import Layout
from mstsm_jax.errors import UsageError, one_line

VERSION = '1.0.0'
INPUTS = 'prepare_inputs.json'  # the inputs of a finished build


def features(flow_: bool = False) -> tfds.features.FeaturesDict:
  text = tfds.features.Tensor(shape=(), dtype=np.object_)
  extra = {'flow_x': tfds.features.Sequence(text),  # grayscale JPEG,
           'flow_y': tfds.features.Sequence(text)} if flow_ else {}  # 128 = 0
  return tfds.features.FeaturesDict({
      **extra,
      'frames': tfds.features.Sequence(text),  # JPEG bytes, RGB
      'label': tfds.features.Scalar(np.int64),
      'class_name': text,
      'video': text,  # relative path, the id used in reports and scores
      'num_frames': tfds.features.Scalar(np.int32),
      'fps': tfds.features.Scalar(np.float32),
      'height': tfds.features.Scalar(np.int32),  # original size
      'width': tfds.features.Scalar(np.int32),
  })


def ignore_sigint(*_) -> None:
  """A worker (prepare's decoding pool; grain's data workers, whose
  `worker_init_fn` passes its index and count) leaves Ctrl-C to the main
  process, which stops it: a terminal's Ctrl-C reaches every process of
  the group, and each worker printed its own traceback."""
  signal.signal(signal.SIGINT, signal.SIG_IGN)


def decode_job(job):
  """Worker: (index, path, short_side, fps, flow method, frame filename
  template, decoder) -> (index, record | error); a template means `path` is
  a folder of extracted frames, a decoder (generated layouts) renders it.
  With a flow method also the flow of every frame pair."""
  i, path, short_side, fps, flow_method, tmpl, decoder = job
  as_jpeg = not flow_method
  try:
    if decoder:
      rec = decoder(path, short_side, fps, as_jpeg=as_jpeg)
    elif tmpl:
      rec = video.read_frame_folder(path, tmpl, short_side, as_jpeg=as_jpeg)
    else:
      rec = video.read_video(path, short_side, fps, as_jpeg=as_jpeg)
  except video.VideoError as e:
    return i, {'file': path, 'reason': e.reason, 'detail': e.detail}
  except Exception as e:  # pylint: disable=broad-except
    # A decoder's own failure on one file (OpenCV's assertions, PyAV's
    # errors) is that file's, counted and reported; never the build's.
    return i, {'file': path, 'reason': 'undecodable',
               'detail': one_line(e, 200)}
  if flow_method:
    frames = rec['frames']
    rec['flow_x'], rec['flow_y'] = flow.video_flow(frames, flow_method)
    rec['frames'] = [video.encode_jpeg(f) for f in frames]
  return i, rec


# Record notes a shard keeps for the merge, and the warnings they become.
NOTES = {'truncated': 'truncated', 'mixed_sizes': 'mixed sizes'}
UNSTORED = ('unlisted', 'class dropped')  # problems that are not failures


class FramesBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Decodes a `Layout`'s videos in parallel workers into one tfds split."""
  VERSION = tfds.core.Version(VERSION)
  MANUAL_DOWNLOAD_INSTRUCTIONS = 'See README "Data": the official archives.'

  def __init__(self, *, layout: Layout | None = None, short_side: int = 256,
               fps: float = 0.0, workers: int = 1, flow: str = '',
               build_args: dict | None = None, shard=(0, 1), **kwargs):
    self.layout, self.short_side, self.fps = layout, short_side, fps
    self.workers, self.flow, self.shard = workers, flow, tuple(shard)
    self.build_args = build_args or {}  # prepare's inputs, for re-runs
    super().__init__(file_format='array_record', **kwargs)

  def _info(self):
    return tfds.core.DatasetInfo(builder=self,
                                 features=features(bool(self.flow)),
                                 disable_shuffling=True,
                                 metadata=tfds.core.MetadataDict())

  def _split_generators(self, dl_manager):
    del dl_manager
    return {'videos': self._generate_examples()}

  def jobs(self) -> list[tuple]:
    """The decode jobs of this shard: entries on disk (or generated)."""
    layout, (k, n) = self.layout, self.shard
    return [(i, e.path, self.short_side, self.fps, self.flow,
             layout.filename_tmpl, layout.decoder)
            for i, e in enumerate(layout.entries) if e.path and i % n == k]

  def decoded(self, jobs):
    """(entry index, record or failure) of `jobs`, in order: decoded by a
    pool of worker processes."""
    ctx = multiprocessing.get_context('spawn')
    with ctx.Pool(max(1, self.workers), initializer=ignore_sigint) as pool:
      yield from pool.imap(decode_job, jobs, chunksize=1)

  def _generate_examples(self):
    layout = self.layout
    k, n = self.shard
    jobs = self.jobs()
    warnings = []
    failed = [p for p in layout.problems if p['reason'] not in UNSTORED]
    position = {}  # entry index -> record index
    names, labels, decode_failed = [], [], {}
    notes = {key: {} for key in NOTES}
    with tqdm.tqdm(total=len(jobs), unit='video', file=LOG,
                   desc=f'decoding {self.name}' + (
                       f' shard {k}/{n}' if n > 1 else '')) as bar:
      for i, rec in self.decoded(jobs):
        bar.update()
        if 'frames' not in rec:
          failed.append(rec)
          decode_failed[str(i)] = rec
          continue
        e = layout.entries[i]
        if e.listed_frames is not None and \
            e.listed_frames != int(rec['num_frames']):
          warnings.append({'file': e.path, 'reason': 'frame count',
                           'detail': f'the list says {e.listed_frames}, the '
                                     f'folder has {int(rec["num_frames"])}'})
        for key, reason in NOTES.items():
          if rec.get(key):
            notes[key][str(i)] = rec[key]
            warnings.append({'file': e.path, 'reason': reason,
                             'detail': rec[key]})
        position[i] = len(position)
        names.append(e.name)
        labels.append(e.label)
        flows = {k: rec[k] for k in ('flow_x', 'flow_y') if k in rec}
        yield f'{position[i]:08d}', {
            **flows, 'frames': rec['frames'], 'label': e.label,
            'class_name': e.class_name, 'video': e.name,
            'num_frames': rec['num_frames'], 'fps': rec['fps'],
            'height': rec['height'], 'width': rec['width']}
    if not position:  # tfds would stop with "No examples were yielded"
      first = decode_failed[min(decode_failed, key=int)]
      raise UsageError(
          f'none of the {layouts.plural(len(jobs), "video")} of '
          f'{self.name}' + (f' shard {k}/{n}' if n > 1 else '')
          + f' could be decoded (e.g. {first["file"]}: {first["reason"]}'
          + (f', {first["detail"]}' if first.get('detail') else '') + ')',
          'check that the files are videos (or frame folders) and readable')
    self.info.metadata.update({
        'classes': list(layout.classes),
        'splits': {name: [position[i] for i in members if i in position]
                   for name, members in layout.split_members().items()},
        'failed': failed,
        'unlisted': [p for p in layout.problems
                     if p['reason'] == 'unlisted'],
        'dropped': [p for p in layout.problems
                    if p['reason'] == 'class dropped'],
        'empty_classes': list(layout.empty_classes),
        'dropped_classes': list(layout.dropped_classes),
        'warnings': warnings,
        'listed': len(layout.entries),
        'videos': names, 'labels': labels,
        'short_side': self.short_side, 'fps': self.fps, 'flow': self.flow,
        'build_args': self.build_args,
    })
    if n > 1:  # what the merge needs to put records back in list order
      self.info.metadata.update({'shard': [k, n],
                                 'entry_index': list(position),
                                 'decode_failed': decode_failed, **notes})


class MergedFrames(FramesBuilder, skip_registration=True):
  """Writes a dataset from the N shards under `shard_dir` (each built with
  the same layout and `shard=(i, N)`), without decoding anything."""

  def __init__(self, *, shard_dir: str, num_shards: int, **kwargs):
    self.shard_dir, self.num_shards = shard_dir, num_shards
    super().__init__(**kwargs)

  def decoded(self, jobs):
    shards = []
    for path in shard_paths(self.shard_dir, self.name, self.num_shards):
      b = tfds.builder_from_directory(str(path))
      meta = dict(b.info.metadata)
      shards.append((b.as_data_source(split='videos'),
                     {i: j for j, i in enumerate(meta['entry_index'])},
                     meta['decode_failed'],
                     {key: meta.get(key, {}) for key in NOTES}))
    for job in jobs:
      i = job[0]
      source, where, failures, notes = shards[i % self.num_shards]
      if i in where:
        rec = dict(source[where[i]], **{key: note.get(str(i), '')
                                        for key, note in notes.items()})
        for key in ('frames', 'flow_x', 'flow_y'):
          if key in rec:
            rec[key] = list(rec[key])
        yield i, rec
      else:
        yield i, failures[str(i)]


@functools.cache
def builder_class(name: str, merged: bool = False) -> type[FramesBuilder]:
  """The builder class writing the tfds dataset `name` (a layout's
  `builder_name`); `merged`: the one writing it from shards."""
  base = MergedFrames if merged else FramesBuilder
  title = ''.join(p.capitalize() for p in name.split('_'))
  return type(f'{"Merged" if merged else ""}{title}', (base,),
              {'name': name, '__module__': __name__}, skip_registration=True)


def make_builder(dataset: str, data_dir: str, **kwargs) -> FramesBuilder:
  """The builder of layout `dataset`, writing under data_dir/<name>/<version>
  (with shard_dir=, num_shards=: from the shards)."""
  cls = builder_class(layouts.get(dataset).builder_name,
                      merged='shard_dir' in kwargs)
  return cls(data_dir=data_dir, **kwargs)


def shard_paths(shard_root, name: str, n: int) -> list[pathlib.Path]:
  """The N shard datasets under `shard_root`; a UsageError naming the
  first one not built."""
  paths = [pathlib.Path(shard_root) / f'{k}-of-{n}' / name / VERSION
           for k in range(n)]
  for k, path in enumerate(paths):
    if not (path / 'dataset_info.json').is_file():
      raise UsageError(f'shard {k} of {n} is not built ({path})',
                       f'run prepare --shard={k}/{n} first')
  return paths


def shard_dir(data_dir: str, dataset: str) -> pathlib.Path:
  """Where `prepare --shard=i/N` builds shard i: <dir>/i-of-N/..."""
  return pathlib.Path(data_dir) / f'{layouts.get(dataset).builder_name}_shards'


def dataset_dir(data_dir: str, dataset: str) -> pathlib.Path:
  return pathlib.Path(data_dir) / layouts.get(dataset).builder_name / VERSION


def open_prepared(data_dir: str, dataset: str):
  """(random-access source of every video, metadata dict) of a prepared set."""
  path = dataset_dir(data_dir, dataset)
  if not (path / 'dataset_info.json').is_file():
    raise FileNotFoundError(
        f'no prepared {dataset} dataset at {path}; run python -m '
        f'mstsm_jax.prepare --dataset={dataset} --manual_dir=... '
        f'--data_dir={data_dir}')
  builder = tfds.builder_from_directory(str(path))
  return builder.as_data_source(split='videos'), dict(builder.info.metadata)
