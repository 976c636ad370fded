r"""Throughput benchmark: prints a table (and --json) of what was measured.

  python -m mstsm_jax.bench --config=configs/ucf101.py:mstsm_tfdem \
      [--batch=16,64] [--what=train,infer,latency,stream,deploy,data,e2e]
      [--json]
      [--data_dir=DIR] [--workers=1,2] [--steps=10] [--repeats=3]

train    clips/s of forward + backward + SGD update on device-resident
         uint8 clips (normalised on device), state donated
infer    clips/s of the jitted eval forward
latency  batch-1 inference, ms p50 / p90
stream   online variants: one frame per jitted step with its shift buffers
         (streaming/), frames/s and per-frame latency ms p50 / p90
deploy   the exported model (batch 1, uint8 clips) on every CPU runtime
         installed (xla, iree: inference/runtimes.py) and on XLA with
         jax's own CPU settings (xla_jax_defaults; cpu.py): clips/s, latency
         p50 / p90, max |diff| against the JAX model; with torch installed
         also a PyTorch TSM ResNet-50 (torchvision + the official shift) in
         eager mode on the same clip size, batch and threads, and the ratio;
         where cpu.keep_host_memory changed malloc for this process, also
         PyTorch NCHW in a fresh process with the default malloc
data     clips/s of the grain training pipeline (decode, sample, augment,
         batch) per worker count; on --data_dir's prepared dataset or, by
         default, on generated UCF-like 320x240 JPEG videos
e2e      training clips/s fed by the real pipeline (needs train too)
Timing: compile and warm-up excluded (compile time reported), each repeat
times `steps` calls ended by block_until_ready, the median repeat counts.
Peak device memory comes from the device's allocator statistics (GPU/TPU).
"""
from __future__ import annotations

import functools
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from mstsm_jax import cli, cpu
from mstsm_jax.console import LOG
from mstsm_jax.data import pipeline, video
from mstsm_jax.models.mstsm import build_model
from mstsm_jax.models.task import in_channels
from mstsm_jax.training import sharding
from mstsm_jax.training.optimizer import make_optimizer
from mstsm_jax.training.steps import create_state, jit_steps

WHAT = ('train', 'infer', 'latency', 'stream', 'deploy', 'data', 'e2e')


def timed(fn, steps: int, repeats: int) -> float:
  """Median seconds per call over `repeats` runs of `steps` calls."""
  out = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    r = None
    for _ in range(steps):
      r = fn()
    jax.block_until_ready(r)
    out.append((time.perf_counter() - t0) / steps)
  return statistics.median(out)


def peak_memory_gb():
  stats = jax.devices()[0].memory_stats() or {}
  peak = stats.get('peak_bytes_in_use')
  return round(peak / 2**30, 2) if peak else None


class JpegVideos:
  """UCF-like source: `n` videos of `frames` 320x240 JPEG frames (textured,
  moving content, so JPEG sizes and decode cost are realistic)."""

  def __init__(self, n=32, frames=90, size=(240, 320), seed=0):
    rng = np.random.default_rng(seed)
    h, w = size
    base = cv2_blur(rng.integers(0, 256, (h + 64, w + 64, 3), np.uint8))
    self.videos = []
    for i in range(n):
      jpgs = [video.encode_jpeg(np.ascontiguousarray(
          base[(i + t) % 64:(i + t) % 64 + h, t % 64:t % 64 + w]))
              for t in range(frames)]
      self.videos.append({'frames': jpgs, 'label': i % 10})

  def __len__(self):
    return len(self.videos)

  def __getitem__(self, i):
    return self.videos[i]


def cv2_blur(img):
  import cv2
  return cv2.GaussianBlur(img, (5, 5), 1.5)


def bench_split(config, data_dir: str):
  """(train split, description): `data_dir`'s prepared dataset or the
  generated UCF-like JPEG videos."""
  if data_dir:
    config.data.data_dir = data_dir
    return (pipeline.open_split(config.data, train=True),
            f'{config.data.dataset} at {data_dir}')
  src = JpegVideos()
  return (pipeline.Split(src, [str(i) for i in range(10)],
                         [str(i) for i in range(len(src))],
                         np.arange(len(src)) % 10),
          'generated 320x240 JPEG videos, 90 frames')


def bench_data(config, split, batch, workers, steps):
  """Training-pipeline clips/s for each worker count."""
  cfg = config.data
  rows = []
  for w in workers:
    cfg.workers = w
    it = iter(pipeline.train_dataset(split, cfg, config.model.num_segments,
                                     batch, seed=0))
    # Start-up and the prefetch buffers are excluded: drain them, then time
    # enough batches for the steady-state rate.
    for _ in range(w * cfg.prefetch + 1):
      next(it)
    n = max(steps, 4 * (w * cfg.prefetch + 1))
    t0 = time.perf_counter()
    for _ in range(n):
      next(it)
    dt = time.perf_counter() - t0
    rows.append({'workers': w, 'clips_s': batch * n / dt})
    del it
  return rows


def latency_stats(lat) -> dict:
  """clips/s (batch 1) and latency p50 / p90 ms of latencies in ms."""
  return {'infer_clips_s': 1e3 / float(np.mean(lat)),
          'latency_ms_p50': float(np.percentile(lat, 50)),
          'latency_ms_p90': float(np.percentile(lat, 90))}


def timed_calls(fn, calls: int) -> dict:
  """`latency_stats` of `calls` calls of `fn` (after two warm-up calls);
  `fn` returns when its result is ready."""
  return interleaved_calls({'fn': fn}, calls, rounds=1)['fn']


def interleaved_calls(fns: dict, calls: int, rounds: int = 5) -> dict:
  """`latency_stats` per name of `calls` calls of each function, taken in
  `rounds` alternating rounds, so that a machine that speeds up or slows
  down during the run (shared cloud cores do) moves every figure alike."""
  for fn in fns.values():
    for _ in range(2):
      fn()
  lat = {name: [] for name in fns}
  for r in range(rounds):
    for name, fn in fns.items():
      for _ in range(calls // rounds + (r < calls % rounds)):
        t0 = time.perf_counter()
        fn()
        lat[name].append(1e3 * (time.perf_counter() - t0))
  return {name: latency_stats(v) for name, v in lat.items()}


def bench_stream(model, variables, config, steps: int) -> dict:
  """Frames/s and per-frame latency of the jitted streaming step."""
  from mstsm_jax.inference.streaming import step_function, zeros
  fn, shapes = step_function(model, variables, config)
  fn = cpu.jit(fn)
  s, ch = config.data.crop_size, in_channels(config.data)
  frame = np.random.default_rng(0).integers(0, 256, (1, s, s, ch), np.uint8)
  state = {'buffers': zeros(shapes)}

  def step():
    scores, state['buffers'] = fn(frame, state['buffers'])
    jax.block_until_ready(scores)

  r = timed_calls(step, max(50, 5 * steps))
  return {'stream_frames_s': r['infer_clips_s'],
          'stream_ms_p50': r['latency_ms_p50'],
          'stream_ms_p90': r['latency_ms_p90']}


def torch_tsm_resnet50(num_classes: int, t: int):
  """The model a user would run instead: torchvision's ResNet-50 with the
  official TSM shift (fold C/8 each way, zero-padded) before every
  bottleneck's conv1, eval mode."""
  import torch
  import torchvision

  def shift(x):
    nt, c, h, w = x.shape
    x = x.view(nt // t, t, c, h, w)
    fold = c // 8
    out = torch.zeros_like(x)
    out[:, :-1, :fold] = x[:, 1:, :fold]
    out[:, 1:, fold:2 * fold] = x[:, :-1, fold:2 * fold]
    out[:, :, 2 * fold:] = x[:, :, 2 * fold:]
    return out.view(nt, c, h, w)

  class Shifted(torch.nn.Module):
    def __init__(self, conv):
      super().__init__()
      self.conv = conv

    def forward(self, x):
      return self.conv(shift(x))

  m = torchvision.models.resnet50(num_classes=num_classes)
  for layer in (m.layer1, m.layer2, m.layer3, m.layer4):
    for blk in layer:
      blk.conv1 = Shifted(blk.conv1)
  return m.eval()


def bench_deploy(config, variables, channels, steps: int) -> dict:
  """Every installed runtime on the exported model, and PyTorch eager."""
  from mstsm_jax.inference import Predictor
  from mstsm_jax.inference.export import export_clips
  from mstsm_jax.inference.runtimes import available, callable_for
  from mstsm_jax.models import task
  p = Predictor(config, variables, channels, batch_size=1)
  t, s, ch = config.model.num_segments, config.data.crop_size, p.channels
  clip = np.random.default_rng(0).integers(0, 256, (1, t, s, s, ch),
                                           np.uint8)
  want = p.scores_views(clip)
  exported = export_clips(p, 1)
  calls = max(10, steps)
  out, fns = {}, {}
  # 'xla' with jax's own XLA:CPU settings, for what cpu.py's options gain.
  untuned = jax.jit(exported.call)
  runtimes = [*available(), 'xla_jax_defaults']
  for name in runtimes:
    t0 = time.perf_counter()
    fn = (callable_for(exported, name) if name != 'xla_jax_defaults' else
          lambda c: np.asarray(untuned(c)))
    got = fn(clip)
    out[name] = {'first_call_s': time.perf_counter() - t0,
                 'max_abs_diff': float(np.abs(got - want).max())}
    out[name]['max_rel_diff'] = (out[name]['max_abs_diff'] /
                                 float(np.abs(want).max()))
    fns[name] = functools.partial(fn, clip)
  try:
    import torch  # noqa: F401
  except ImportError:
    torch = None
  if torch is not None:
    for name, (fn, model) in torch_callables(config.model.num_classes,
                                             clip).items():
      fns[name], out[name] = fn, {'model': model}
  for name, row in interleaved_calls(fns, calls).items():
    out[name].update(row)
  if torch is None:
    return out
  if cpu.host_memory_kept():  # PyTorch as a plain process runs it too
    out.update(torch_rows_default_malloc(config.model.num_classes, clip,
                                         calls))
  row = out['torch_tsm_resnet50_eager']
  for name in runtimes:
    out[name]['ratio_to_torch'] = (out[name]['infer_clips_s'] /
                                   row['infer_clips_s'])
  return out


def torch_callables(num_classes: int, clip: np.ndarray, suffix: str = '',
                    formats=('contiguous_format', 'channels_last')) -> dict:
  """{name: (call, description)}: PyTorch TSM ResNet-50 eager on the uint8
  clip `[1, T, S, S, C]`, NCHW as the TSM code runs it and, a PyTorch
  option too, channels-last."""
  import os

  import torch
  torch.set_num_threads(os.cpu_count() or 1)
  x = torch.from_numpy(clip[0].astype(np.float32)).permute(0, 3, 1, 2)
  out = {}
  for fmt in formats:
    name = 'torch_tsm_resnet50_eager' + (
        '_channels_last' if fmt == 'channels_last' else '') + suffix
    ref = torch_tsm_resnet50(num_classes, clip.shape[1]).to(
        memory_format=getattr(torch, fmt))
    xf = x.contiguous(memory_format=getattr(torch, fmt))

    def call(ref=ref, xf=xf):
      with torch.no_grad():
        return ref(xf)
    out[name] = (call, f'TSM ResNet-50, torch {torch.__version__} eager, '
                       f'{fmt}{suffix.replace("_", " ")}')
  return out


def torch_rows(num_classes: int, clip: np.ndarray, calls: int,
               suffix: str = '', formats=('contiguous_format',)) -> dict:
  """`timed_calls` of `torch_callables`."""
  return {name: {**timed_calls(fn, calls), 'model': model}
          for name, (fn, model) in torch_callables(num_classes, clip, suffix,
                                                   formats).items()}


def torch_rows_default_malloc(num_classes: int, clip: np.ndarray,
                              calls: int) -> dict:
  """`torch_rows` (NCHW) in a fresh process with glibc's default malloc
  settings (cpu.keep_host_memory changes them for this whole process)."""
  import json
  import subprocess
  import sys
  import tempfile
  with tempfile.TemporaryDirectory() as tmp:
    np.save(f'{tmp}/clip.npy', clip)
    code = ('import json, numpy as np; from mstsm_jax.bench import '
            f'torch_rows; print(json.dumps(torch_rows({num_classes}, '
            f'np.load("{tmp}/clip.npy"), {calls}, "_default_malloc")))')
    r = subprocess.run([sys.executable, '-c', code], capture_output=True,
                       text=True, check=True)
  return json.loads(r.stdout.strip().splitlines()[-1])


def main(fv, argv):
  del argv
  import copy

  FLAGS = fv  # parsed FlagValues read flags as attributes
  if 'deploy' in FLAGS.what.split(','):  # a deployment process's setting
    cpu.keep_host_memory()  # before jax starts (a no-op after)
  config, channels = copy.deepcopy(FLAGS.config), None
  if FLAGS.checkpoint:  # a model directory's config and (pruned) widths
    from mstsm_jax import modeldir
    config = modeldir.read_config(FLAGS.checkpoint)
    channels = modeldir.read_channels(FLAGS.checkpoint)
    if FLAGS.config is not None:
      config.model.dtype = FLAGS.config.model.dtype
      config.data.crop_size = FLAGS.config.data.crop_size
  if config is None:
    raise cli.UsageError('--config or --checkpoint is required',
                         'e.g. --config=configs/ucf101.py:mstsm_tfdem')
  what = FLAGS.what.split(',')
  bad = set(what) - set(WHAT)
  if bad:
    raise cli.UsageError(f'--what={FLAGS.what}: unknown {sorted(bad)}',
                         f'valid: {",".join(WHAT)}')
  batches = [int(b) for b in FLAGS.batch.split(',')]
  dev = jax.devices()[0]
  print(f'device: {dev.device_kind} x{jax.device_count()} ({dev.platform}); '
        f'jax {jax.__version__}, python {platform.python_version()}; '
        f'{config.variant} {config.model.backbone} T='
        f'{config.model.num_segments} {config.data.crop_size}px '
        f'{config.model.dtype}', file=LOG)
  cache = {}

  def data_split(with_desc=False):
    """The input split, built once (generating videos takes seconds)."""
    if not cache:
      cache['split'] = bench_split(config, FLAGS.data_dir)
    return cache['split'] if with_desc else cache['split'][0]

  mesh = sharding.make_mesh()
  model = build_model(config.model, channels)
  t, s = config.model.num_segments, config.data.crop_size
  ch = in_channels(config.data)
  rows, result = [], {'device': dev.device_kind, 'platform': dev.platform,
                      'jax': jax.__version__, 'variant': config.variant,
                      'dtype': config.model.dtype}
  for b in batches:
    row = {'batch': b}
    shape = (b, t, s, s, ch)
    params = jax.eval_shape(model.init, jax.random.key(0),
                            jnp.zeros((1, t, s, s, ch)))['params']
    tx, schedule = make_optimizer(config.train, config.model, params, 1000)
    rep = sharding.replicated(mesh)
    state = jax.jit(lambda r: create_state(model, tx, r, (1, t, s, s, ch)),
                    out_shardings=rep)(jax.random.key(0))
    config.eval.batch_size = b
    train_fn, eval_fn = jit_steps(model, tx, schedule, config, mesh)
    rng = np.random.default_rng(0)
    batch = sharding.put_batch({
        'clips': rng.integers(0, 256, shape, np.uint8),
        'label': rng.integers(0, config.model.num_classes, b).astype(
            np.int32),
        'valid': np.ones(b, bool), 'index': np.arange(b, dtype=np.int32)},
        mesh)
    if 'train' in what or 'e2e' in what:
      t0 = time.perf_counter()
      compiled = train_fn.lower(state, batch).compile()
      row['compile_s'] = time.perf_counter() - t0
      holder = {'state': state}

      def step():
        holder['state'], m = compiled(holder['state'], batch)
        return m['loss']
      for _ in range(2):
        step()
      sec = timed(step, FLAGS.steps, FLAGS.repeats)
      if FLAGS.profile:  # a trace of a few steps for TensorBoard / Perfetto
        jax.block_until_ready(step())
        with jax.profiler.trace(f'{FLAGS.profile}/batch{b}'):
          for _ in range(3):
            r = step()
          jax.block_until_ready(r)
        print(f'profile: {FLAGS.profile}/batch{b}', file=LOG)
      row['train_clips_s'] = b / sec
      row['train_ms'] = 1e3 * sec
      state = holder['state']
    if 'e2e' in what:
      holder = {'state': state}
      split = data_split()
      config.data.workers = max(int(w) for w in FLAGS.workers.split(','))
      it = iter(pipeline.train_dataset(split, config.data, t, b, seed=0))
      holder['state'], _ = compiled(holder['state'],
                                    sharding.put_batch(next(it), mesh))

      def real_step():
        holder['state'], m = compiled(holder['state'],
                                      sharding.put_batch(next(it), mesh))
        return m['loss']
      sec = timed(real_step, FLAGS.steps, FLAGS.repeats)
      row['e2e_clips_s'] = b / sec
      state = holder['state']
    variables = {'params': state.params, 'batch_stats': state.batch_stats}
    if 'infer' in what:
      views = dict(batch)
      views['clips'] = batch['clips'][:, None]
      infer = eval_fn.lower(variables, views).compile()
      jax.block_until_ready(infer(variables, views))
      sec = timed(lambda: infer(variables, views), FLAGS.steps,
                  FLAGS.repeats)
      row['infer_clips_s'] = b / sec
    row['peak_mem_gb'] = peak_memory_gb()
    rows.append(row)
  if 'latency' in what:
    fwd = cpu.jit(lambda v, x: model.apply(v, x, train=False)[0])
    x = jnp.zeros((1, t, s, s, ch), jnp.float32)
    r = timed_calls(lambda: jax.block_until_ready(fwd(variables, x)),
                    max(20, FLAGS.steps))
    result['latency_ms_p50'] = r['latency_ms_p50']
    result['latency_ms_p90'] = r['latency_ms_p90']
  if 'stream' in what:
    result.update(bench_stream(model, variables, config, FLAGS.steps))
  if 'deploy' in what:
    result['deploy'] = bench_deploy(config, variables, channels, FLAGS.steps)
    result['xla_cpu_options'] = cpu.compiler_options()
    result['host_memory_kept'] = cpu.host_memory_kept()
  if 'data' in what:
    workers = [int(w) for w in FLAGS.workers.split(',')]
    split, desc = data_split(with_desc=True)
    result['data'] = bench_data(config, split, batches[0], workers,
                                FLAGS.steps)
    result['data_source'] = desc
  # ------------------------------------------------------------ report
  cols = [('batch', 'batch', '{:d}'), ('train_clips_s', 'train clips/s',
                                       '{:.1f}'),
          ('train_ms', 'train ms/step', '{:.1f}'),
          ('infer_clips_s', 'infer clips/s', '{:.1f}'),
          ('e2e_clips_s', 'e2e clips/s', '{:.1f}'),
          ('compile_s', 'compile s', '{:.1f}'),
          ('peak_mem_gb', 'peak GiB', '{}')]
  cols = [c for c in cols if any(c[0] in r for r in rows)]
  print(' | '.join(f'{h:>14}' for _, h, _ in cols))
  for r in rows:
    print(' | '.join(f'{(f.format(r[k]) if r.get(k) is not None else "-"):>14}'
                     for k, _, f in cols))
  if 'latency_ms_p50' in result:
    print(f'batch-1 latency: p50 {result["latency_ms_p50"]:.1f} ms, '
          f'p90 {result["latency_ms_p90"]:.1f} ms')
  if 'stream_frames_s' in result:
    print(f'streaming, one frame per step: {result["stream_frames_s"]:.1f} '
          f'frames/s, latency p50 {result["stream_ms_p50"]:.2f} ms, p90 '
          f'{result["stream_ms_p90"]:.2f} ms')
  if 'deploy' in result:
    print(f'deploy (batch 1, {t}x{s}px, uint8 in): runtime, clips/s, '
          'latency p50 / p90 ms, max |diff|, x PyTorch eager')
    for name, r in result['deploy'].items():
      ratio = r.get('ratio_to_torch')
      print(f'  {name:<26} {r["infer_clips_s"]:8.3f} '
            f'{r["latency_ms_p50"]:9.1f} / {r["latency_ms_p90"]:<9.1f}'
            f'{r.get("max_abs_diff", float("nan")):10.2e}'
            + (f'  {ratio:.2f}x' if ratio else ''))
    print(f'  XLA:CPU options {result["xla_cpu_options"]}, host memory kept '
          f'for reuse: {result["host_memory_kept"]} (cpu.py)')
  if 'data' in result:
    print(f'input pipeline ({result["data_source"]}, batch {batches[0]}, '
          f'{t}x{s}px, full augmentation):')
    for r in result['data']:
      print(f'  {r["workers"]:>3} workers: {r["clips_s"]:8.1f} clips/s')
  result['rows'] = rows
  main_row = rows[-1] if rows else {}
  result['train_clips_s'] = main_row.get('train_clips_s')
  result['infer_clips_s'] = main_row.get('infer_clips_s')
  cli.emit_json(fv, result)


def define_flags(fv):
  cli.define_config(fv, required=False)
  cli.define_json(fv)
  flags.DEFINE_string('checkpoint', '', 'benchmark this model directory\'s '
                      'architecture (e.g. a pruned one) instead of --config; '
                      '--config still sets dtype and crop size',
                      flag_values=fv)
  flags.DEFINE_string('batch', '16,64', 'comma-separated clip batch sizes',
                      flag_values=fv)
  flags.DEFINE_string('what', 'train,infer,latency', ','.join(WHAT),
                      flag_values=fv)
  flags.DEFINE_string('data_dir', '', 'prepared dataset for data/e2e',
                      flag_values=fv)
  flags.DEFINE_string('workers', '0,1,2', 'grain worker counts for data',
                      flag_values=fv)
  flags.DEFINE_integer('steps', 10, 'calls per timed repeat', flag_values=fv)
  flags.DEFINE_integer('repeats', 3, 'timed repeats (median)',
                       flag_values=fv)
  flags.DEFINE_string('profile', '', 'write a jax.profiler trace of 3 train '
                      'steps per batch size here', flag_values=fv)


if __name__ == '__main__':
  cli.main_entry(define_flags, main, __doc__)
