r"""The grain input pipeline: random-access sources -> uint8 clip batches.

Sources are `tfds` data sources of prepared datasets (one split = an index
list into the stored videos) or the in-memory synthetic motions. Elements:
{'clips': uint8 `[T, S, S, 3]` (train) or `[V, T, S, S, 3]` (V views, eval),
'label': int32, 'valid': bool, 'index': int32 (position in the split)}.
Batches stay uint8 to the device; `normalize` runs there.

A record that fails to decode yields a zero clip with valid=False: the train
step leaves it out of the loss and counts it, so one bad video never kills a
run and is never silently dropped.

Determinism: grain seeds each element's augmentation from (seed, element
index), so batches do not depend on the worker count, and the iterator state
(`get_state`/`set_state`, saved with checkpoints) resumes the same stream.
"""
from __future__ import annotations

import dataclasses
import logging

import grain
import numpy as np

from mstsm_jax.data import flow, sampling, synthetic, transforms
from mstsm_jax.data.builder import ignore_sigint, open_prepared
from mstsm_jax.data.video import decode_jpeg
from mstsm_jax.errors import UsageError
from mstsm_jax.models.task import in_channels


class SplitSource:
  """One split of a prepared dataset: `indices` into the stored videos."""

  def __init__(self, source, indices):
    self.source, self.indices = source, list(indices)

  def __len__(self):
    return len(self.indices)

  def __getitem__(self, i):
    return self.source[self.indices[i]]


@dataclasses.dataclass
class Split:
  source: object  # __len__ / __getitem__ -> record
  classes: list[str]
  videos: list[str]  # names, aligned with the source
  labels: np.ndarray  # int, aligned with the source


def open_split(data_cfg, train: bool) -> Split:
  """The train or test split `data_cfg.split` of `data_cfg.dataset`."""
  name = f'{"train" if train else "test"}{data_cfg.split}'
  flow_model = data_cfg.modality == 'flow'
  if data_cfg.dataset.startswith('synthetic') and not data_cfg.data_dir:
    if flow_model:  # each record was skipped as unreadable
      raise UsageError(f'data.modality=flow: {data_cfg.dataset} data has no '
                       'optical flow', 'use data.modality=rgb, or a dataset '
                       'prepared with --flow')
    if data_cfg.split != 1:
      raise UsageError(f'data.split={data_cfg.split}: {data_cfg.dataset} '
                       'has one split', 'use split 1')
    src = synthetic.SyntheticSource(
        'train1' if train else 'test1', data_cfg.synthetic_videos,
        data_cfg.synthetic_seed, data_cfg.synthetic_size,
        data_cfg.synthetic_frames, data_cfg.dataset)
    if not len(src):
      raise ValueError(f'synthetic {name} is empty with data.synthetic_videos'
                       f'={data_cfg.synthetic_videos}; use at least 50')
    return Split(src, src.classes,
                 [synthetic.video_name(i, src.classes) for i in src.ids],
                 np.array([synthetic.label_of(i, src.classes)
                           for i in src.ids]))
  source, meta = open_prepared(data_cfg.data_dir, data_cfg.dataset)
  if flow_model and not meta.get('flow'):
    raise UsageError(f'data.modality=flow: {data_cfg.data_dir} holds '
                     f'{data_cfg.dataset} prepared without optical flow',
                     'prepare it with --flow=tvl1 (or farneback) into a '
                     'data_dir of its own')
  if name not in meta['splits']:
    raise ValueError(f'split {name!r} is not in the prepared '
                     f'{data_cfg.dataset}; available: {list(meta["splits"])}')
  idx = meta['splits'][name]
  if not idx:
    raise ValueError(f'split {name} of {data_cfg.data_dir} has no videos')
  return Split(SplitSource(source, idx), meta['classes'],
               [meta['videos'][i] for i in idx],
               np.asarray([meta['labels'][i] for i in idx]))


def load_frames(record, indices) -> np.ndarray:
  """The frames at `indices` (any shape) as uint8 `[*indices.shape, H, W, 3]`;
  decodes each distinct JPEG once."""
  frames = record['frames']
  flat = indices.reshape(-1)
  if isinstance(frames, np.ndarray) and frames.dtype == np.uint8:
    out = frames[flat]
  else:
    cache = {int(i): decode_jpeg(frames[int(i)]) for i in np.unique(flat)}
    out = np.stack([cache[int(i)] for i in flat])
  return out.reshape(*indices.shape, *out.shape[1:])


def load_flow(record, starts: np.ndarray, stack: int) -> np.ndarray:
  """Flow stacks from `starts` (any shape): uint8 `[*starts.shape, H, W,
  2 * stack]`, channels x1, y1, ..., x_stack, y_stack."""
  n = len(record['flow_x'])
  idx = np.minimum(starts[..., None] + np.arange(stack), n - 1)
  cache = {}
  for j in np.unique(idx):
    cache[int(j)] = np.stack([flow.decode_gray(record['flow_x'][int(j)]),
                              flow.decode_gray(record['flow_y'][int(j)])], -1)
  out = np.stack([cache[int(j)] for j in idx.reshape(-1)])
  out = out.reshape(*idx.shape, *out.shape[1:])  # [..., stack, H, W, 2]
  out = np.moveaxis(out, -4, -2)  # [..., H, W, stack, 2]
  return out.reshape(*out.shape[:-2], 2 * stack)


def test_protocol(data) -> tuple[str, str]:
  """(data.test_sampling, data.test_crops) of a data config, or of an
  exported file's metadata (which records them): a config.json or a file
  from before these fields reads as ours, ('spread', 'resize')."""
  return data.get('test_sampling', 'spread'), data.get('test_crops', 'resize')


def own_views(data) -> tuple[int, int]:
  """The views a model is scored with when none are asked for (predict,
  explain, the demo, evaluations during training): one centre crop of
  each temporal clip its test sampling takes (1; 'twice' 2, 'dense' 10)."""
  return sampling.TEST_VIEWS.get(test_protocol(data)[0], 1), 1


def view_size(data) -> int:
  """The side of the test-time views a model of data config `data`
  sees: the crop size, or `resize_short` with test_crops='full_res'."""
  return transforms.test_size(data.resize_short, data.crop_size,
                              test_protocol(data)[1])


class ClipTransform:
  """record -> element; `views` = (temporal clips, spatial crops) at test.

  RGB: one frame per segment. Flow: `flow_stack` consecutive (x, y) pairs
  per segment; a flip also negates x.
  """

  def __init__(self, data_cfg, num_segments: int, train: bool,
               views: tuple[int, int] | None = None):
    self.cfg = dict(resize_short=data_cfg.resize_short,
                    crop_size=data_cfg.crop_size)
    self.scales, self.max_distort = tuple(data_cfg.scales), \
        data_cfg.max_distort
    views = views or own_views(data_cfg)  # unasked: the model's own
    self.flip, self.t, self.train, self.views = (data_cfg.flip, num_segments,
                                                 train, views)
    self.channels = in_channels(data_cfg)
    self.stack = data_cfg.flow_stack if data_cfg.modality == 'flow' else 0
    # TSM's rules where chosen (sampling.py, transforms.py); a config.json
    # from before these fields reads as ours.
    self.offsets = data_cfg.get('crop_offsets', 'five')
    self.train_rule = data_cfg.get('train_sampling', 'edges')
    self.test_rule, self.test_crops = test_protocol(data_cfg)
    want = sampling.TEST_VIEWS.get(self.test_rule)
    if not train and want and views[0] != want:
      raise UsageError(
          f'views {views[0]}x{views[1]}: data.test_sampling='
          f'{self.test_rule!r} takes {want} temporal clips',
          f'use views {want}x{views[1]} (--views, or eval.views)')

  def shape(self):
    s = self.cfg['crop_size'] if self.train else transforms.test_size(
        mode=self.test_crops, **self.cfg)
    v = () if self.train else (self.views[0] * self.views[1],)
    return (*v, self.t, s, s, self.channels)

  def load(self, record, indices):
    if self.stack:
      return load_flow(record, indices, self.stack)
    return load_frames(record, indices)

  def __call__(self, item, rng=None):
    i, record = item
    try:
      n = len(record['flow_x'] if self.stack else record['frames'])
      if n == 0:
        raise ValueError('video has no frames' if not self.stack else
                         'video has no flow (prepare --flow=...)')
      if self.stack:  # positions where a whole stack starts
        n = max(n - self.stack + 1, 1)
      if self.train:
        frames = self.load(record, sampling.train_indices(
            n, self.t, rng, self.train_rule))
        clips = transforms.train_clip(
            frames, rng, scales=self.scales, max_distort=self.max_distort,
            flip=self.flip, flip_fn=flow.flip_flow if self.stack else None,
            offsets=self.offsets, **self.cfg)
      else:
        idx = sampling.test_indices(n, self.t, self.views[0], self.test_rule)
        frames = self.load(record, idx)
        clips = np.concatenate([transforms.test_clips(
            f, crops=self.views[1], mode=self.test_crops, **self.cfg)
                                for f in frames])
      valid = True
    except Exception as e:  # pylint: disable=broad-except
      logging.warning('skipping record %d (%s): %s', i,
                      record.get('video', '?'), e)
      clips, valid = np.zeros(self.shape(), np.uint8), False
    return {'clips': clips, 'label': np.int32(record['label']),
            'valid': np.bool_(valid), 'index': np.int32(i)}


class WithIndex:
  """i -> (i, source[i]): the position travels with the record (picklable
  for grain's worker processes)."""

  def __init__(self, source):
    self.source = source

  def __call__(self, i):
    return i, self.source[i]


class Constant:
  def __init__(self, value):
    self.value = value

  def __call__(self, _):
    return self.value


def indexed(source) -> grain.MapDataset:
  return grain.MapDataset.range(len(source)).map(WithIndex(source))


def train_dataset(split: Split, data_cfg, num_segments: int, batch: int,
                  seed: int, process_index: int = 0, process_count: int = 1):
  """Infinite shuffled (reshuffled every epoch) per-process batches."""
  ds = indexed(split.source).seed(seed).shuffle().repeat()
  ds = ds.random_map(ClipTransform(data_cfg, num_segments, train=True))
  # Slice after random_map (lazy: each process decodes only its share) so
  # augmentation is seeded by the global element index: hosts draw
  # independent crops, and any host count sees the same clips.
  ds = ds[process_index::process_count]
  ds = ds.batch(batch, drop_remainder=True)
  return iter_dataset(ds, data_cfg)


def eval_dataset(split: Split, data_cfg, num_segments: int, batch: int,
                 views=(1, 1), process_index: int = 0,
                 process_count: int = 1, max_videos: int = 0):
  """This process's share of the split, in order, padded with
  valid=False elements (index -1) to the same number of batches on every
  process."""
  ds = indexed(split.source)
  if max_videos:
    ds = ds[:max_videos]
  # Every process runs the same number of batches (the step is collective).
  per_process = -(-len(ds) // process_count)
  ds = ds[process_index::process_count]
  pad = -(-per_process // batch) * batch - len(ds)
  tf = ClipTransform(data_cfg, num_segments, train=False, views=views)
  ds = ds.map(tf)
  if pad:
    blank = {'clips': np.zeros(tf.shape(), np.uint8), 'label': np.int32(0),
             'valid': np.bool_(False), 'index': np.int32(-1)}
    ds = grain.MapDataset.concatenate(
        [ds, grain.MapDataset.range(pad).map(Constant(blank))])
  return iter_dataset(ds.batch(batch), data_cfg)


def iter_dataset(ds: grain.MapDataset, data_cfg) -> grain.IterDataset:
  it = ds.to_iter_dataset(grain.ReadOptions(num_threads=4,
                                            prefetch_buffer_size=8))
  if data_cfg.workers:
    it = it.mp_prefetch(grain.MultiprocessingOptions(
        num_workers=data_cfg.workers,
        per_worker_buffer_size=data_cfg.prefetch),
        worker_init_fn=ignore_sigint)
  return it
