"""CPU runtimes for exported files (inference/runtimes.py): IREE against
XLA and the Python model on the same uint8 clips, for clip models, the
streaming step, `predict` and `bench --what=deploy`."""
import os

import numpy as np
import pytest

pytest.importorskip('iree.runtime')

import model_dirs  # noqa: E402
import videos  # noqa: E402
from mstsm_jax import inference  # noqa: E402
from mstsm_jax.errors import UsageError  # noqa: E402
from mstsm_jax.inference import runtimes  # noqa: E402
from mstsm_jax.inference.streaming import Streamer  # noqa: E402


# 48 px: IREE 3.13 does not compile a strided 3x3 conv with a 1x1 output,
# which the 32 px test models have in layer4 (a one-line error, tested).
SIZE = {'data.crop_size': 48, 'data.resize_short': 52}


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
  """The 48 px tiny model (test_bad_inputs_inference's too): its IREE
  module for batch 2 compiles once in the run's cache (conftest.py)."""
  path = tmp_path_factory.mktemp('tiny') / 'm'
  model_dirs.model_dir(path, model_dirs.tiny_config(**SIZE), head_std=0.5)
  return path


def test_iree_clip_model_parity(tiny, tmp_path, job):
  out = tmp_path / 'm2.mstsm'
  job('export', f'--checkpoint={tiny}', f'--output={out}', '--batch=2')
  clips = np.random.default_rng(0).integers(0, 256, (3, 8, 48, 48, 3),
                                            np.uint8)
  p = inference.load(tiny)
  want = p(clips)
  got = inference.load(out, runtime='iree')(clips)  # 3 clips: padded batches
  assert np.abs(want).max() > 0.1
  np.testing.assert_allclose(got, want, atol=1e-4 * np.abs(want).max())
  # Videos through predict, on both runtimes: the same top-5.
  videos.write_video(tmp_path / 'v.avi', 20, size=(36, 40))
  rows = [job('predict', f'--checkpoint={out}', f'--runtime={rt}',
              str(tmp_path / 'v.avi'), '--json').json() for rt in
          ('xla', 'iree')]
  assert [r['class'] for r in rows[0]['top5']] == [
      r['class'] for r in rows[1]['top5']]
  np.testing.assert_allclose([r['probability'] for r in rows[0]['top5']],
                             [r['probability'] for r in rows[1]['top5']],
                             atol=1e-4)
  # A symbolic batch cannot compile for IREE: said, with the fix.
  job('export', f'--checkpoint={tiny}', f'--output={tmp_path}/d.mstsm')
  with pytest.raises(UsageError, match='symbolic batch'):
    inference.load(tmp_path / 'd.mstsm', runtime='iree')
  with pytest.raises(UsageError, match='model directory'):
    inference.load(tiny, runtime='iree')
  model_dirs.model_dir(tmp_path / 's', model_dirs.tiny_config())  # 32 px
  job('export', f'--checkpoint={tmp_path}/s', f'--output={tmp_path}/s.mstsm',
      '--batch=1')
  with pytest.raises(UsageError, match='cannot compile this model'):
    inference.load(tmp_path / 's.mstsm', runtime='iree')


def test_export_format_iree_runs_without_compiling(tiny, tmp_path, job,
                                                   capfd, monkeypatch):
  import json
  import zipfile
  out = tmp_path / 'm.mstsm'
  meta = job('export', f'--checkpoint={tiny}', f'--output={out}',
             '--batch=2', '--format=iree', '--json').json()
  assert meta['format'] == 'iree' and meta['iree']['flags']
  clips = np.random.default_rng(0).integers(0, 256, (2, 8, 48, 48, 3),
                                            np.uint8)
  want = inference.load(out)(clips)  # XLA on the same file

  def compile_iree(mlir):
    raise AssertionError('compiled at load')
  with monkeypatch.context() as m:  # the file's own module: nothing compiled
    m.setattr(runtimes, 'compile_iree', compile_iree)
    m.setenv('MSTSM_IREE_CACHE', str(tmp_path / 'empty'))
    got = inference.load(out, runtime='iree')(clips)
  np.testing.assert_allclose(got, want, atol=1e-4 * np.abs(want).max())
  with zipfile.ZipFile(out) as z:  # a module IREE reads; cut short, not
    module = z.read('iree.vmfb')
  assert runtimes._unreadable(module) == ''
  assert runtimes._unreadable(module[:1000])
  # Exported on another CPU: said, and this machine's module used instead
  # (compiled, or as here, the one export compiled in the cache).
  moved = tmp_path / 'moved.mstsm'
  with zipfile.ZipFile(out) as src, zipfile.ZipFile(moved, 'w') as dst:
    for name in src.namelist():
      data = src.read(name)
      if name == 'metadata.json':
        m = json.loads(data)
        m['iree']['cpu'] = 'another CPU'
        data = json.dumps(m)
      dst.writestr(name, data)
  capfd.readouterr()
  got = inference.load(moved, runtime='iree')(clips)
  assert 'compiled for' in capfd.readouterr().err
  np.testing.assert_allclose(got, want, atol=1e-4 * np.abs(want).max())
  r = job('export', f'--checkpoint={tiny}', f'--output={out}',
          '--format=iree', code=2)
  assert 'fixed batch' in r.stderr
  job('export', f'--checkpoint={tiny}', f'--output={out}',
      '--format=onnx', code=2)


def test_iree_streaming_step_parity(tmp_path, job):
  model_dirs.model_dir(tmp_path / 'm',
                       model_dirs.tiny_config('mstsm_tfdem_online', **SIZE),
                       head_std=0.5)
  out = tmp_path / 's.mstsm'
  job('export', f'--checkpoint={tmp_path}/m', f'--output={out}',
      '--streaming', '--batch=1')
  frames = np.random.default_rng(1).integers(0, 256, (10, 40, 44, 3),
                                             np.uint8)
  xla, iree = Streamer(out), Streamer(out, runtime='iree')
  for f in frames:
    a, b = xla.step(f), iree.step(f)
    np.testing.assert_allclose(b, a, atol=1e-4 * np.abs(a).max())


def test_bench_deploy_reports_every_runtime_and_torch(job):
  r = job('bench', '--config=configs/synthetic.py', *model_dirs.TINY_ARGS,
          '--config.data.crop_size=48',
          '--config.data.resize_short=52', '--batch=8', '--what=deploy',
          '--steps=2', '--json').json()
  d = r['deploy']
  assert {'xla', 'iree', 'xla_jax_defaults', 'torch_tsm_resnet50_eager',
          'torch_tsm_resnet50_eager_channels_last'} <= set(d)
  assert r['xla_cpu_options'] == {'xla_cpu_experimental_ynn_fusion_type': ''}
  onnx = ('onnxruntime', 'openvino') if 'onnxruntime' in d else ()
  assert onnx or os.environ.get('CI') != 'true'  # CI installs .[onnx]
  for name in ('xla', 'iree', 'xla_jax_defaults', *onnx):
    assert d[name]['max_rel_diff'] < 1e-4
    assert d[name]['ratio_to_torch_channels_last'] > 0
    assert d[name]['latency_ms_p90'] >= d[name]['latency_ms_p50'] > 0
    assert d[name]['ratio_to_torch'] > 0


def test_bench_runtimes_flag_picks_the_runtimes_timed(monkeypatch):
  """`bench --runtimes=...` (e.g. leaving out IREE's minute-long batch-8
  calls) names the runtimes timed; empty: every one installed that can
  run (an ONNX runtime without the converter: left out, and said)."""
  from absl import flags
  from mstsm_jax import bench
  fv = flags.FlagValues()
  bench.define_flags(fv)
  fv(['bench', '--what=deploy', '--batch=8', '--runtimes=iree,xla'])
  assert bench.check_flags(fv)['runtimes'] == ['iree', 'xla']
  fv['runtimes'].value = ''
  opts = bench.check_flags(fv)
  assert sorted(opts['runtimes'] + opts['runtimes_left_out']) == sorted(
      runtimes.available())
  # an ONNX runtime without the converter would time nothing: refused
  fv['runtimes'].value = 'xla,openvino'
  monkeypatch.setattr(bench.onnx_file, 'converter_installed', lambda: False)
  with pytest.raises(UsageError, match='openvino runs the ONNX export'):
    bench.check_flags(fv)
  # by default, the ONNX runtimes installed are left out and named
  fv['runtimes'].value = ''
  onnx = [r for r in runtimes.available() if r in ('onnxruntime', 'openvino')]
  assert onnx or os.environ.get('CI') != 'true'  # CI installs both
  opts = bench.check_flags(fv)
  assert opts['runtimes_left_out'] == onnx
  assert opts['runtimes'] == [r for r in runtimes.available() if r not in onnx]
  # a flag no measurement of --what reads is refused, not ignored
  fv = flags.FlagValues()
  bench.define_flags(fv)
  fv(['bench', '--what=infer', '--deploy_batch=4', '--workers=3'])
  with pytest.raises(UsageError, match=r'--deploy_batch is used by '
                     r'--what=deploy, not by --what=infer'):
    bench.check_flags(fv)
  fv(['bench', '--what=stream', '--runtimes=xla'])  # stream reads it too
  fv['deploy_batch'].present = fv['workers'].present = 0
  assert bench.check_flags(fv)['runtimes'] == ['xla']


def test_iree_cache_key_leaves_out_source_locations(tmp_path, monkeypatch,
                                                   capfd):
  """One module exported from two call sites (its `#locN` lines name the
  caller's file and line) compiles once; another module compiles again; a
  cached module cut short is said and compiled again, never used."""
  monkeypatch.setenv('MSTSM_IREE_CACHE', str(tmp_path))
  compiled = []
  monkeypatch.setattr(runtimes, 'compile_iree',
                      lambda mlir: compiled.append(mlir) or b'module')
  monkeypatch.setattr(runtimes, '_unreadable',  # what the stub compiles
                      lambda blob: '' if blob == b'module' else 'cut short')
  body = ('module @jit_f {\n  func.func public @main(%arg0: tensor<2xf32> '
          'loc("x")) -> tensor<2xf32> {\n    return %arg0 : tensor<2xf32> '
          'loc(#loc3)\n  } loc(#loc)\n} loc(#loc)\n#loc = loc(unknown)\n')
  target = runtimes.iree_target()
  for caller in ('a.py":14:0', 'scripts/b.py":7:2'):
    assert runtimes._cached_module(
        body + f'#loc3 = loc("{caller})\n', target) == b'module'
  assert len(compiled) == 1
  runtimes._cached_module(body.replace('2xf32', '3xf32'), target)
  assert len(compiled) == 2
  for entry in tmp_path.glob('*.vmfb'):
    entry.write_bytes(b'mod')  # cut short (a full disk, a copy stopped)
  capfd.readouterr()
  assert runtimes._cached_module(body, target) == b'module'
  assert len(compiled) == 3
  assert 'is damaged (cut short); compiling it again' in capfd.readouterr().err
  assert sorted(p.read_bytes() for p in tmp_path.glob('*.vmfb')) == [
      b'mod', b'module']
