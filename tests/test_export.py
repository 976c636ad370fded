"""Exported models (jax.export): parity with the Python model for several
architectures, a symbolic and a fixed batch, cuda lowering on this CPU
machine, the standalone snippet, and bad files."""
import json
import re
import zipfile

import jax
import numpy as np
import pytest

import model_dirs
from mstsm_jax import inference
from mstsm_jax.errors import UsageError
from mstsm_jax.models import pruning
from mstsm_jax import modeldir


def clips(n, size, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (n, 8, size, size, 3),
                                              np.uint8)


def reference(model_dir, x):
  """The model directory's predictor on the same uint8 clips (the same
  contract: centre view, then the model)."""
  return inference.load(model_dir)(x)


def pruned_dir(tmp_path, _=None):
  config = model_dirs.tiny_config()
  variables = model_dirs.init_variables(config)
  variables['params']['fc']['kernel'] = np.random.default_rng(0).normal(
      0, 0.5, variables['params']['fc']['kernel'].shape).astype(np.float32)
  from mstsm_jax.models.mstsm import build_model
  model = build_model(config.model)
  pruned, spec, _ = pruning.prune(variables, model.channels, model.shift, 4)
  modeldir.write_model(tmp_path / 'pruned', config, pruned, spec)
  return tmp_path / 'pruned'


# Batch sizes per case: full-width EfficientNet-B0 compiles for about 10 s
# per size, in each of the two runs, so it gets one (the ResNet cases show
# that the batch is dynamic). Tolerance per case, of the largest score:
# EfficientNet-B0 (16 blocks of SiLU and sigmoid gates, BN-calibrated,
# scores up to 70) amplifies rounding more than the tiny ResNets (1.4e-5
# measured).
@pytest.mark.parametrize('make,sizes,tol', [
    (lambda tmp, _: model_dirs.model_dir(tmp / 'tsn', model_dirs.tiny_config(
        'tsn'), head_std=0.5) and tmp / 'tsn', (1, 7), 1e-5),
    (lambda tmp, _: model_dirs.model_dir(tmp / 'mt', model_dirs.tiny_config(
        'mstsm_tfdem', **{'model.tfdem_fuse': True}), head_std=0.5) and
     tmp / 'mt', (1, 7), 1e-5),
    (pruned_dir, (1, 7), 1e-5),
    (lambda tmp, run_tmp: model_dirs.efficientnet_dir(run_tmp), (3,), 1e-4),
], ids=['tsn', 'mstsm_tfdem_fused', 'pruned', 'efficientnet_b0'])
def test_export_parity_dynamic_batch(make, sizes, tol, tmp_path, run_tmp,
                                     job):
  model_dir = make(tmp_path, run_tmp)
  out = tmp_path / 'model.mstsm'
  meta = job('export', f'--checkpoint={model_dir}', f'--output={out}',
             '--json').json()
  assert meta['batch'] == 'dynamic' and meta['input'].startswith('uint8')
  exported = inference.load(out)
  for n in sizes:
    x = clips(n, 32, seed=n)
    got, want = exported(x), reference(model_dir, x)
    assert got.shape == (n, 10)
    np.testing.assert_allclose(got, want, rtol=0,
                               atol=tol * max(1, np.abs(want).max()))


def test_fixed_batch_cuda_lowering_and_bad_files(tmp_path, job):
  model_dirs.model_dir(tmp_path / 'm', model_dirs.tiny_config(),
                       head_std=0.5)
  out = tmp_path / 'fixed.mstsm'
  meta = job('export', f'--checkpoint={tmp_path}/m', f'--output={out}',
             '--batch=4', '--platforms=cpu,cuda', '--json').json()
  assert meta['platforms'] == ['cpu', 'cuda'] and meta['batch'] == 4
  exported = inference.load(out)
  assert exported.exported.platforms == ('cpu', 'cuda')
  x = clips(5, 32)  # two calls of 4, the second padded
  np.testing.assert_allclose(exported(x), reference(tmp_path / 'm', x),
                             atol=1e-5, rtol=0)
  np.testing.assert_allclose(exported.probabilities(x).sum(-1), 1, rtol=1e-5)
  # Any size is taken (the centre view first); another T is not.
  np.testing.assert_allclose(exported(clips(2, 40)),
                             reference(tmp_path / 'm', clips(2, 40)),
                             atol=1e-5, rtol=0)
  with pytest.raises(UsageError, match=r'takes \[N, 8, H, W, 3\] .*got '
                     r'\[1, 4, 40, 40, 3\]'):
    exported(clips(1, 40)[:, :4])
  (tmp_path / 'junk.mstsm').write_bytes(b'not a zip' * 10)
  with pytest.raises(UsageError, match='junk.mstsm is not an exported '
                     'mstsm_jax model'):
    inference.load(tmp_path / 'junk.mstsm')
  with zipfile.ZipFile(out) as z:
    meta = json.loads(z.read('metadata.json'))
    blob = z.read('function.bin')
  meta['format_version'] = 99
  with zipfile.ZipFile(tmp_path / 'future.mstsm', 'w') as z:
    z.writestr('metadata.json', json.dumps(meta))
    z.writestr('function.bin', blob)
  with pytest.raises(UsageError, match='has export format 99, this version '
                     'reads 1 and 2'):
    inference.load(tmp_path / 'future.mstsm')
  with zipfile.ZipFile(tmp_path / 'broken.mstsm', 'w') as z:
    z.writestr('metadata.json', json.dumps({**meta, 'format_version': 2}))
    z.writestr('function.bin', blob[:100])
  r = job('predict', f'--checkpoint={tmp_path}/broken.mstsm', 'v.avi',
          code=2)
  assert 'the exported function does not load with jax' in r.stderr


def test_readme_standalone_snippet(tmp_path, monkeypatch, job):
  """The README's Deploy snippet: jax and numpy only."""
  import pathlib
  readme = (pathlib.Path(__file__).parent.parent / 'README.md').read_text()
  code = re.search(r'```python\n(.*?)```', readme[readme.index(
      '## Deploy'):], re.S).group(1)
  assert 'mstsm_jax' not in code and 'flax' not in code
  model_dirs.model_dir(tmp_path / 'm', model_dirs.tiny_config())
  job('export', f'--checkpoint={tmp_path}/m', f'--output={tmp_path}/'
      'model.mstsm')
  monkeypatch.chdir(tmp_path)
  scope = {}
  exec(compile(code, 'README.md', 'exec'), scope)  # noqa: S102
  assert scope['scores'].shape == (1, 10)
  assert jax.numpy.isfinite(scope['scores']).all()


def test_predict_timeline(tmp_path, job):
  """Sliding windows: their count and times follow window and stride, a
  window over the whole video scores what predict scores, and the JSON and
  PNG are written."""
  import videos
  model_dirs.model_dir(tmp_path / 'm', model_dirs.tiny_config())
  videos.write_video(tmp_path / 'long.avi', 100, size=(40, 48), fps=25)
  rows = job('predict', f'--checkpoint={tmp_path}/m', '--timeline',
             '--window_s=1.2', '--stride_s=0.4', f'--output_dir={tmp_path}',
             '--json', str(tmp_path / 'long.avi')).json()
  starts = [r['start'] for r in rows['timeline']]
  # 100 frames at 25 fps: windows of 30 frames every 10.
  assert starts == [0.0, 0.4, 0.8, 1.2, 1.6, 2.0, 2.4, 2.8]
  assert all(abs(r['end'] - r['start'] - 1.2) < 1e-9 for r in rows['timeline'])
  for r in rows['timeline']:
    assert abs(sum(r['probabilities']) - 1) < 1e-4
    assert r['probability'] == max(r['probabilities'])
  assert (tmp_path / 'long.timeline.png').is_file()
  saved = json.loads((tmp_path / 'long.timeline.json').read_text())
  assert saved['timeline'] == rows['timeline']
  whole = job('predict', f'--checkpoint={tmp_path}/m', '--timeline',
              '--window_s=10', f'--output_dir={tmp_path}', '--json',
              '--overwrite', str(tmp_path / 'long.avi')).json()['timeline']
  plain = job('predict', f'--checkpoint={tmp_path}/m', '--json',
              str(tmp_path / 'long.avi')).json()['top5'][0]
  assert len(whole) == 1 and whole[0]['end'] == 4.0
  assert abs(whole[0]['probabilities'][plain['index']]
             - plain['probability']) < 1e-5
