r"""Throughput benchmark: prints a table (and --json) of what was measured.

  python -m mstsm_jax.bench --config=configs/ucf101.py:mstsm_tfdem \
      [--batch=16,64] [--what=train,infer,latency,stream,deploy,data,e2e]
      [--json]
      [--deploy_batch=1,8] [--runtimes=xla,onnxruntime,openvino]
      [--data_dir=DIR] [--workers=1,2] [--steps=10] [--repeats=3]

train    clips/s of forward + backward + SGD update on device-resident
         uint8 clips (normalised on device), state donated
infer    clips/s of the jitted eval forward
latency  batch-1 inference, ms p50 / p90
stream   online variants: one frame per jitted step with its shift buffers
         (inference/streaming.py), frames/s and per-frame latency ms p50 / p90
deploy   the exported model (uint8 clips, at each --deploy_batch, default
         1) on every CPU runtime installed or named in --runtimes (xla,
         iree, and with .[onnx] the ONNX file on onnxruntime and openvino:
         inference/runtimes.py) and
         on XLA with
         jax's own CPU settings (xla_jax_defaults; cpu.py): clips/s, latency
         p50 / p90, max |diff| against the JAX model; with torch installed
         also a PyTorch TSM ResNet-50 (models/torch_reference.py) in
         eager mode on the same clip size, batch and threads, and the ratio;
         where cpu.keep_host_memory changed malloc for this process, also
         PyTorch NCHW in a fresh process with the default malloc
data     clips/s of the grain training pipeline (decode, sample, augment,
         batch) per worker count; on --data_dir's prepared dataset or, by
         default, on generated UCF-like 320x240 JPEG videos
         (data/jpeg_videos.py)
e2e      training clips/s fed by the real pipeline (needs train too)
Timing: compile and warm-up excluded (compile time reported), each repeat
times `steps` calls ended by block_until_ready, the median repeat counts.
Peak device memory comes from the device's allocator statistics (GPU/TPU).
Model, optimizer, state and jitted steps are training.steps.setup's, as in
train and evaluate.
"""
from __future__ import annotations

import copy
import functools
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from mstsm_jax import cli, cpu, modeldir
from mstsm_jax.console import LOG
from mstsm_jax.data import jpeg_videos, pipeline
from mstsm_jax.inference import Predictor
from mstsm_jax.inference import onnx_file
from mstsm_jax.inference.export import (clip_function, export_clips,
                                        io_names, stream_function)
from mstsm_jax.inference.runtimes import RUNTIMES, available, callable_for
from mstsm_jax.inference.runtimes import check as check_runtime
from mstsm_jax.models import torch_reference
from mstsm_jax.models.task import in_channels
from mstsm_jax.inference.streaming import flat_step, step_function, zeros
from mstsm_jax.training import sharding, steps as train_steps

WHAT = ('train', 'infer', 'latency', 'stream', 'deploy', 'data', 'e2e')
# The flags only some measurements read.
USES = {'deploy_batch': ('deploy',), 'runtimes': ('deploy', 'stream'),
        'workers': ('data', 'e2e'), 'data_dir': ('data', 'e2e')}


# ------------------------------------------------------------------ timing
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


def latency_stats(lat, batch: int = 1) -> dict:
  """clips/s and latency p50 / p90 ms of calls of `batch` clips taking
  `lat` ms."""
  return {'infer_clips_s': 1e3 * batch / float(np.mean(lat)),
          'latency_ms_p50': float(np.percentile(lat, 50)),
          'latency_ms_p90': float(np.percentile(lat, 90))}


def timed_calls(fn, calls: int, batch: int = 1) -> dict:
  """`latency_stats` of `calls` calls of `fn` on `batch` clips (after two
  warm-up calls); `fn` returns when its result is ready."""
  return interleaved_calls({'fn': fn}, calls, rounds=1, batch=batch)['fn']


def interleaved_calls(fns: dict, calls: int, rounds: int = 5,
                      batch: int = 1) -> dict:
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
  return {name: latency_stats(v, batch) for name, v in lat.items()}


# ------------------------------------------------------------------- flags
def int_list(fv, name: str, least: int) -> list[int]:
  """--NAME=a,b,... as ints >= `least`, or a one-line UsageError."""
  arg = fv[name].value
  try:
    values = [int(v) for v in arg.split(',')]
  except ValueError:
    values = []
  if not values or min(values) < least:
    raise cli.UsageError(f'--{name}={arg}: expected comma-separated '
                         f'integers >= {least}', f'e.g. --{name}='
                         f'{fv[name].default}')
  return values


def check_flags(fv) -> dict:
  """Every flag checked before any work: {'what', 'batches', 'workers'}."""
  what = fv['what'].value.split(',')
  bad = set(what) - set(WHAT)
  if bad:
    raise cli.UsageError(f'--what={fv["what"].value}: unknown {sorted(bad)}',
                         f'valid: {",".join(WHAT)}')
  for name in ('steps', 'repeats'):
    if fv[name].value < 1:
      raise cli.UsageError(f'--{name}={fv[name].value}', 'use 1 or more')
  batches = int_list(fv, 'batch', 1)
  n = jax.device_count()
  if any(b % n for b in batches):
    raise cli.UsageError(f'--batch={fv["batch"].value}: every batch size '
                         f'must split over the {n} devices',
                         f'use multiples of {n}')
  for flag, users in USES.items():  # an ignored flag is never silence
    if fv[flag].present and not set(users) & set(what):
      raise cli.UsageError(
          f'--{flag} is used by --what={"/".join(users)}, not by '
          f'--what={fv["what"].value}', f'drop --{flag}, or add '
          f'{" or ".join(users)} to --what')
  runtimes = [r for r in fv['runtimes'].value.split(',') if r]
  for r in runtimes:  # unknown or not installed: one line
    if check_runtime(r).reads == 'onnx' and not onnx_file.converter_installed():
      raise cli.UsageError(f'--runtimes={fv["runtimes"].value}: {r} runs '
                           'the ONNX export, which needs jax2onnx',
                           onnx_file.INSTALL)
  left_out = []  # by default every runtime installed that can run here
  if not runtimes:
    runtimes = available()
    if not onnx_file.converter_installed():
      left_out = [r for r in runtimes if RUNTIMES[r].reads == 'onnx']
      runtimes = [r for r in runtimes if r not in left_out]
  return {'what': what, 'batches': batches,
          'workers': int_list(fv, 'workers', 0),
          'deploy_batches': int_list(fv, 'deploy_batch', 1),
          'runtimes': runtimes, 'runtimes_left_out': left_out}


def bench_config(fv):
  """(config, channels): --config's, or --checkpoint's model directory
  (its config and pruned widths) with --config's dtype and crop size."""
  config, channels = copy.deepcopy(fv['config'].value), None
  if fv['checkpoint'].value:
    config = modeldir.read_config(fv['checkpoint'].value)
    channels = modeldir.read_channels(fv['checkpoint'].value)
    if fv['config'].value is not None:
      config.model.dtype = fv['config'].value.model.dtype
      config.data.crop_size = fv['config'].value.data.crop_size
      print(f'note: benchmarking {fv["checkpoint"].value}\'s model at '
            f'--config\'s dtype {config.model.dtype} and crop size '
            f'{config.data.crop_size} px; no other --config field is used',
            file=LOG)
  if config is None:
    raise cli.UsageError('--config or --checkpoint is required',
                         'e.g. --config=configs/ucf101.py:mstsm_tfdem')
  return config, channels


# --------------------------------------------------------- the measurements
def bench_split(config, data_dir: str):
  """(train split, description): `data_dir`'s prepared dataset or the
  generated UCF-like JPEG videos."""
  if data_dir:
    config.data.data_dir = data_dir
    return (pipeline.open_split(config.data, train=True),
            f'{config.data.dataset} at {data_dir}')
  return jpeg_videos.split(), 'generated 320x240 JPEG videos, 90 frames'


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


def random_batch(config, b: int, mesh) -> dict:
  """A global batch of `b` random uint8 clips, sharded over `mesh`."""
  s = config.data.crop_size
  rng = np.random.default_rng(0)
  return sharding.put_batch({
      'clips': rng.integers(0, 256, (b, config.model.num_segments, s, s,
                                     in_channels(config.data)), np.uint8),
      'label': rng.integers(0, config.model.num_classes, b).astype(np.int32),
      'valid': np.ones(b, bool), 'index': np.arange(b, dtype=np.int32)},
      mesh)


class Stepper:
  """A compiled train step that carries its (donated) state along."""

  def __init__(self, run, state, batch):
    t0 = time.perf_counter()
    self.compiled = run.train_step.lower(state, batch).compile()
    self.compile_s = time.perf_counter() - t0
    self.state = state

  def __call__(self, batch):
    self.state, m = self.compiled(self.state, batch)
    return m['loss']


def bench_train(stepper, batch, b: int, fv) -> dict:
  """Train clips/s and ms/step on one device-resident batch (and a
  profiler trace with --profile)."""
  step = functools.partial(stepper, batch)
  for _ in range(2):
    step()
  sec = timed(step, fv['steps'].value, fv['repeats'].value)
  profile = fv['profile'].value
  if profile:  # a trace of a few steps for TensorBoard / Perfetto
    jax.block_until_ready(step())
    with jax.profiler.trace(f'{profile}/batch{b}'):
      for _ in range(3):
        r = step()
      jax.block_until_ready(r)
    print(f'profile: {profile}/batch{b}', file=LOG)
  return {'train_clips_s': b / sec, 'train_ms': 1e3 * sec}


def bench_e2e(stepper, split, config, b: int, workers, mesh, fv) -> float:
  """Training clips/s with every batch from the real input pipeline."""
  config.data.workers = max(workers)
  it = iter(pipeline.train_dataset(split, config.data,
                                   config.model.num_segments, b, seed=0))
  stepper(sharding.put_batch(next(it), mesh))
  sec = timed(lambda: stepper(sharding.put_batch(next(it), mesh)),
              fv['steps'].value, fv['repeats'].value)
  return b / sec


def bench_infer(run, variables, batch, b: int, fv) -> float:
  """Clips/s of the jitted eval step (one view per clip)."""
  views = dict(batch)
  views['clips'] = batch['clips'][:, None]
  infer = run.eval_step.lower(variables, views).compile()
  jax.block_until_ready(infer(variables, views))
  sec = timed(lambda: infer(variables, views), fv['steps'].value,
              fv['repeats'].value)
  return b / sec


def bench_batch(run, config, b: int, opts: dict, fv, data_split):
  """One batch size's table row, and the model variables it ends with."""
  what, row = opts['what'], {'batch': b}
  state = run.new_state(0)
  config.eval.batch_size = b
  batch = random_batch(config, b, run.mesh)
  if 'train' in what or 'e2e' in what:
    stepper = Stepper(run, state, batch)
    row['compile_s'] = stepper.compile_s
    row.update(bench_train(stepper, batch, b, fv))
    if 'e2e' in what:
      row['e2e_clips_s'] = bench_e2e(stepper, data_split(), config, b,
                                     opts['workers'], run.mesh, fv)
    state = stepper.state
  variables = train_steps.variables_of(state)
  if 'infer' in what:
    row['infer_clips_s'] = bench_infer(run, variables, batch, b, fv)
  row['peak_mem_gb'] = peak_memory_gb()
  return row, variables


def bench_latency(model, variables, config, steps: int) -> dict:
  """Batch-1 forward latency p50 / p90 ms."""
  fwd = cpu.jit(lambda v, x: model.apply(v, x, train=False)[0])
  s = config.data.crop_size
  x = jnp.zeros((1, config.model.num_segments, s, s,
                 in_channels(config.data)), jnp.float32)
  r = timed_calls(lambda: jax.block_until_ready(fwd(variables, x)),
                  max(20, steps))
  return {'latency_ms_p50': r['latency_ms_p50'],
          'latency_ms_p90': r['latency_ms_p90']}


def bench_stream(model, variables, config, steps: int,
                 channels=None, runtimes=None) -> dict:
  """Frames/s and per-frame latency of the jitted streaming step and, with
  .[onnx], of its ONNX export on each ONNX runtime of `runtimes` (default:
  every one installed; calls interleaved): the XLA step's keys at the
  top, the others under 'stream_runtimes'."""
  fn, shapes = step_function(model, variables, config)
  fn = cpu.jit(fn)
  s, ch = config.data.crop_size, in_channels(config.data)
  frame = np.random.default_rng(0).integers(0, 256, (1, s, s, ch), np.uint8)
  fns = {'xla': stepper(lambda f, b: fn(f, b), zeros(shapes), frame)}
  if onnx_file.converter_installed():
    step, inputs = stream_function(
        Predictor(config, variables, channels, batch_size=1), 1)
    program = onnx_file.program(onnx_file.convert(
        step, inputs, *io_names(len(inputs), True), name=config.variant))
    for name in runtimes or available():
      if RUNTIMES[name].reads == 'onnx':
        fns[name] = stepper(flat_step(callable_for(program, name)),
                            zeros(shapes), frame)
  rows = interleaved_calls(fns, max(50, 5 * steps))
  r = rows.pop('xla')
  out = {'stream_frames_s': r['infer_clips_s'],
         'stream_ms_p50': r['latency_ms_p50'],
         'stream_ms_p90': r['latency_ms_p90']}
  if rows:
    out['stream_runtimes'] = {name: {
        'stream_frames_s': r['infer_clips_s'],
        'stream_ms_p50': r['latency_ms_p50'],
        'stream_ms_p90': r['latency_ms_p90']} for name, r in rows.items()}
  return out


def stepper(fn, buffers, frame):
  """A call of the step `fn(frame, buffers) -> (scores, buffers)` that
  carries its buffers and returns when the scores are ready."""
  state = {'buffers': buffers}

  def step():
    scores, state['buffers'] = fn(frame, state['buffers'])
    jax.block_until_ready(scores)
  return step


def bench_deploy(config, variables, channels, steps: int,
                 batch: int = 1, runtimes=None) -> dict:
  """Each of `runtimes` (default: every one installed) on the model
  exported with a fixed `batch` (the zip archive's StableHLO, and the ONNX
  file with .[onnx]), and PyTorch eager, interleaved."""
  p = Predictor(config, variables, channels, batch_size=batch)
  t, s, ch = config.model.num_segments, config.data.crop_size, p.channels
  clip = np.random.default_rng(0).integers(0, 256, (batch, t, s, s, ch),
                                           np.uint8)
  want = p.scores_views(clip)
  programs = {'stablehlo': export_clips(p, batch)}
  if onnx_file.converter_installed():
    t0 = time.perf_counter()
    programs['onnx'] = onnx_file.program(onnx_file.convert(
        clip_function(p), [jax.ShapeDtypeStruct(clip.shape, jnp.uint8)],
        *io_names(1, False), name=config.variant))
    print(f'ONNX export (jax2onnx): {time.perf_counter() - t0:.1f}s',
          file=LOG)
  calls = max(10, steps)
  out, fns = {}, {}
  # 'xla' with jax's own XLA:CPU settings, for what cpu.py's options gain.
  untuned = jax.jit(programs['stablehlo'].call)
  names = [n for n in runtimes or available()
           if RUNTIMES[n].reads in programs]
  for name in [*names, 'xla_jax_defaults']:
    t0 = time.perf_counter()
    fn = (lambda c: np.asarray(untuned(c))) if name == 'xla_jax_defaults' \
        else functools.partial(
            lambda run, c: run(c)[0],
            callable_for(programs[RUNTIMES[name].reads], name))
    got = fn(clip)
    out[name] = {'first_call_s': time.perf_counter() - t0,
                 'max_abs_diff': float(np.abs(got - want).max())}
    out[name]['max_rel_diff'] = (out[name]['max_abs_diff'] /
                                 float(np.abs(want).max()))
    fns[name] = functools.partial(fn, clip)
  torch = torch_installed()
  if torch:
    for name, (fn, model) in torch_reference.runners(
        config.model.num_classes, clip).items():
      fns[name], out[name] = fn, {'model': model}
  for name, row in interleaved_calls(fns, calls, batch=batch).items():
    out[name].update(row)
  if not torch:
    return out
  if cpu.host_memory_kept():  # PyTorch as a plain process runs it too
    out.update(torch_rows_default_malloc(config.model.num_classes, clip,
                                         calls))
  for ref in ('torch_tsm_resnet50_eager',
              'torch_tsm_resnet50_eager_channels_last'):
    key = 'ratio_to_torch' + ref[len('torch_tsm_resnet50_eager'):]
    for name in [*names, 'xla_jax_defaults']:
      out[name][key] = out[name]['infer_clips_s'] / out[ref]['infer_clips_s']
  return out


def torch_installed() -> bool:
  try:
    import torch  # noqa: F401
  except ImportError:
    return False
  return True


def torch_rows(num_classes: int, clip: np.ndarray, calls: int,
               suffix: str = '', formats=('contiguous_format',)) -> dict:
  """`timed_calls` of the PyTorch reference's runners on `clip`'s batch."""
  return {name: {**timed_calls(fn, calls, len(clip)), 'model': model}
          for name, (fn, model) in torch_reference.runners(
              num_classes, clip, suffix, formats).items()}


def torch_rows_default_malloc(num_classes: int, clip: np.ndarray,
                              calls: int) -> dict:
  """`torch_rows` (NCHW) in a fresh process with glibc's default malloc
  settings (cpu.keep_host_memory changes them for this whole process)."""
  with tempfile.TemporaryDirectory() as tmp:
    np.save(f'{tmp}/clip.npy', clip)
    code = ('import json, numpy as np; from mstsm_jax.bench import '
            f'torch_rows; print(json.dumps(torch_rows({num_classes}, '
            f'np.load("{tmp}/clip.npy"), {calls}, "_default_malloc")))')
    r = subprocess.run([sys.executable, '-c', code], capture_output=True,
                       text=True, check=True)
  return json.loads(r.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ report
COLUMNS = [('batch', 'batch', '{:d}'),
           ('train_clips_s', 'train clips/s', '{:.1f}'),
           ('train_ms', 'train ms/step', '{:.1f}'),
           ('infer_clips_s', 'infer clips/s', '{:.1f}'),
           ('e2e_clips_s', 'e2e clips/s', '{:.1f}'),
           ('compile_s', 'compile s', '{:.1f}'),
           ('peak_mem_gb', 'peak GiB', '{}')]


def print_rows(rows: list) -> None:
  """The per-batch table, with the columns that were measured; none when
  only other measurements ran (--what=stream, deploy, data)."""
  cols = [c for c in COLUMNS if any(r.get(c[0]) is not None for r in rows)]
  if all(k == 'batch' for k, _, _ in cols):
    return
  print(' | '.join(f'{h:>14}' for _, h, _ in cols))
  for r in rows:
    print(' | '.join(f'{(f.format(r[k]) if r.get(k) is not None else "-"):>14}'
                     for k, _, f in cols))


def print_deploy(result: dict, t: int, s: int) -> None:
  for b, rows in result['deploy_by_batch'].items():
    print(f'deploy (batch {b}, {t}x{s}px, uint8 in): runtime, clips/s, '
          'latency p50 / p90 ms, max |diff|, x PyTorch eager NCHW / '
          'channels-last')
    for name, r in rows.items():
      ratios = [r.get(k) for k in ('ratio_to_torch',
                                   'ratio_to_torch_channels_last')]
      print(f'  {name:<26} {r["infer_clips_s"]:8.3f} '
            f'{r["latency_ms_p50"]:9.1f} / {r["latency_ms_p90"]:<9.1f}'
            f'{r.get("max_abs_diff", float("nan")):10.2e}'
            + (f'  {ratios[0]:.2f}x / {ratios[1]:.2f}x' if ratios[0]
               else ''))
  print(f'  XLA:CPU options {result["xla_cpu_options"]}, host memory kept '
        f'for reuse: {result["host_memory_kept"]} (cpu.py)')


def print_report(result: dict, batch: int, t: int, s: int) -> None:
  """The table and one block per measurement beyond it."""
  print_rows(result['rows'])
  if 'latency_ms_p50' in result:
    print(f'batch-1 latency: p50 {result["latency_ms_p50"]:.1f} ms, '
          f'p90 {result["latency_ms_p90"]:.1f} ms')
  if 'stream_frames_s' in result:
    print(f'streaming, one frame per step: {result["stream_frames_s"]:.1f} '
          f'frames/s, latency p50 {result["stream_ms_p50"]:.2f} ms, p90 '
          f'{result["stream_ms_p90"]:.2f} ms')
    for name, r in result.get('stream_runtimes', {}).items():
      print(f'  ONNX file on {name}: {r["stream_frames_s"]:.1f} frames/s, '
            f'p50 {r["stream_ms_p50"]:.2f} ms, p90 {r["stream_ms_p90"]:.2f} '
            'ms')
  if 'deploy' in result:
    print_deploy(result, t, s)
  if 'data' in result:
    print(f'input pipeline ({result["data_source"]}, batch {batch}, '
          f'{t}x{s}px, full augmentation):')
    for r in result['data']:
      print(f'  {r["workers"]:>3} workers: {r["clips_s"]:8.1f} clips/s')


# -------------------------------------------------------------------- main
def main(fv, argv):
  del argv
  if 'deploy' in fv['what'].value.split(','):  # a deployment process's
    cpu.keep_host_memory()  # setting, before jax starts (a no-op after)
  opts = check_flags(fv)
  what, batches = opts['what'], opts['batches']
  config, channels = bench_config(fv)
  dev = jax.devices()[0]
  print(f'device: {dev.device_kind} x{jax.device_count()} ({dev.platform}); '
        f'jax {jax.__version__}, python {platform.python_version()}; '
        f'{config.variant} {config.model.backbone} T='
        f'{config.model.num_segments} {config.data.crop_size}px '
        f'{config.model.dtype}', file=LOG)
  # Generating videos takes seconds: the input split is built once.
  data_split = functools.cache(
      lambda: bench_split(config, fv['data_dir'].value))
  run = train_steps.setup(config, sharding.make_mesh(), channels=channels,
                          steps_per_epoch=1000)
  result = {'device': dev.device_kind, 'platform': dev.platform,
            'jax': jax.__version__, 'variant': config.variant,
            'dtype': config.model.dtype}
  if opts['runtimes_left_out'] and {'deploy', 'stream'} & set(what):
    print(f'note: {", ".join(opts["runtimes_left_out"])} installed but not '
          'timed: they run the ONNX export, which needs jax2onnx '
          f'({onnx_file.INSTALL})', file=LOG)
    result['runtimes_left_out'] = opts['runtimes_left_out']
  rows = []
  for b in batches:
    row, variables = bench_batch(run, config, b, opts, fv,
                                 lambda: data_split()[0])
    rows.append(row)
  if 'latency' in what:
    result.update(bench_latency(run.model, variables, config,
                                fv['steps'].value))
  if 'stream' in what:
    result.update(bench_stream(run.model, variables, config,
                               fv['steps'].value, channels, opts['runtimes']))
  if 'deploy' in what:
    by_batch = {b: bench_deploy(config, variables, channels,
                                fv['steps'].value, b, opts['runtimes'])
                for b in opts['deploy_batches']}
    result['deploy'] = by_batch[opts['deploy_batches'][0]]
    result['deploy_by_batch'] = {str(b): r for b, r in by_batch.items()}
    result['xla_cpu_options'] = cpu.compiler_options()
    result['host_memory_kept'] = cpu.host_memory_kept()
  if 'data' in what:
    split, desc = data_split()
    result['data'] = bench_data(config, split, batches[0], opts['workers'],
                                fv['steps'].value)
    result['data_source'] = desc
  result['rows'] = rows
  print_report(result, batches[0], config.model.num_segments,
               config.data.crop_size)
  last = rows[-1]
  result['train_clips_s'] = last.get('train_clips_s')
  result['infer_clips_s'] = last.get('infer_clips_s')
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
  flags.DEFINE_string('deploy_batch', '1', 'comma-separated batch sizes of '
                      'the exported model for --what=deploy', flag_values=fv)
  flags.DEFINE_string('runtimes', '', 'comma-separated runtimes for '
                      '--what=deploy (default: every one installed)',
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
