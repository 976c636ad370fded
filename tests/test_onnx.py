"""ONNX export (inference/onnx_file.py) and its runtimes: every variant,
both backbone families and a pruned model give the model directory's
scores on uint8 clips under ONNX Runtime and OpenVINO (dynamic and fixed
batch); the streaming step for 10 steps; the graph passes the ONNX checker and holds
only standard ops; the README's onnxruntime-only snippet; bad input.
ResNet-101 is ResNet-50's blocks, more of them: its full-depth export
(3-4 minutes) is checked in docs/performance.md, not here."""
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

if os.environ.get('CI') != 'true':  # CI installs .[onnx]: never skipped
  pytest.importorskip('jax2onnx')

import model_dirs  # noqa: E402
from mstsm_jax import inference  # noqa: E402
from mstsm_jax.errors import UsageError  # noqa: E402
from mstsm_jax.inference.export import export_model  # noqa: E402
from mstsm_jax.inference.streaming import Streamer  # noqa: E402

RUNTIMES = ('onnxruntime', 'openvino')
CLIPS = np.random.default_rng(0).integers(0, 256, (3, 8, 40, 50, 3),
                                          np.uint8)


def assert_same(got, want):
  np.testing.assert_allclose(got, want, rtol=0,
                             atol=1e-4 * np.abs(want).max())


def model(tmp_path, variant='mstsm_tfdem', **extra):
  d = tmp_path / variant
  model_dirs.model_dir(d, model_dirs.tiny_config(variant, **extra),
                       head_std=0.5)
  return d


@pytest.mark.parametrize('variant,extra', [
    ('tsn', {}), ('tsm', {}), ('mstsm', {}), ('mstsm2var', {}),
    ('mstsm3', {}), ('tsm_tfdem', {}), ('mstsm_tfdem', {}),
    ('mstsm_tfdem', {'model.tfdem_fuse': True}),
])
def test_every_variant_matches_the_model_directory(tmp_path, variant, extra):
  matches_its_export(model(tmp_path, variant, **extra), tmp_path)


def matches_its_export(d, tmp_path):
  want = inference.load(d)(CLIPS)
  export_model(d, tmp_path / 'm.onnx', fmt='onnx')
  for runtime in RUNTIMES:
    assert_same(inference.load(tmp_path / 'm.onnx', runtime=runtime)(CLIPS),
                want)


def test_efficientnet_matches_the_model_directory(tmp_path, run_tmp):
  """Full-width EfficientNet-B0 (test_export.py's model) as above."""
  matches_its_export(model_dirs.efficientnet_dir(run_tmp), tmp_path)


def test_pruned_model_and_fixed_batch(tmp_path, job):
  d = model(tmp_path, 'mstsm_tfdem', **{'model.width': 16})
  job('prune', f'--checkpoint={d}', f'--output={tmp_path}/p', '--r_out=4',
      '--r_in=4')
  want = inference.load(tmp_path / 'p')(CLIPS)
  r = job('export', f'--checkpoint={tmp_path}/p',
          f'--output={tmp_path}/p.onnx', '--format=onnx', '--batch=3',
          '--json').json()
  assert r['format'] == 'onnx' and r['batch'] == 3
  for runtime in RUNTIMES:
    p = inference.load(tmp_path / 'p.onnx', runtime=runtime)
    assert_same(p(CLIPS), want)
    assert_same(p(CLIPS[:1]), want[:1])  # padded to the fixed batch


@pytest.mark.parametrize('variant', ['tsm_online', 'mstsm_online',
                                     'mstsm_tfdem_online'])
def test_streaming_step_ten_frames(tmp_path, variant):
  d = model(tmp_path, variant)
  export_model(d, tmp_path / 's.onnx', fmt='onnx', streaming=True)
  frames = CLIPS[0].repeat(2, axis=0)[:10]
  direct = Streamer(d)
  want = [direct.step(f) for f in frames]
  for runtime in RUNTIMES:
    s = Streamer(tmp_path / 's.onnx', runtime=runtime)
    for f, w in zip(frames, want):
      assert_same(s.step(f), w)


def test_graph_is_checked_standard_onnx(tmp_path):
  """Opset 18, the full checker, only ai.onnx ops, the shift as Slice and
  Concat, the dynamic batch symbolic, the metadata inside."""
  import onnx
  d = model(tmp_path, 'mstsm_tfdem')
  export_model(d, tmp_path / 'm.onnx', fmt='onnx')
  m = onnx.load(tmp_path / 'm.onnx')
  onnx.checker.check_model(m, full_check=True)
  assert [(o.domain, o.version) for o in m.opset_import] == [('', 18)]
  ops = {n.op_type for n in m.graph.node}
  assert {'Slice', 'Concat', 'Conv', 'MaxPool'} <= ops
  # The shift in the convolutions' NCHW layout (ops/forms.py): no
  # transpose takes or gives a Slice's or Concat's tensor.
  made_by = {o: n.op_type for n in m.graph.node for o in n.output}
  for n in m.graph.node:
    if n.op_type in ('Slice', 'Concat'):
      assert 'Transpose' not in {made_by.get(i) for i in n.input}, n
  for n in m.graph.node:
    if n.op_type == 'Transpose':
      assert made_by.get(n.input[0]) not in ('Slice', 'Concat'), n
  assert all(n.domain in ('', 'ai.onnx') for n in m.graph.node)
  (x,) = m.graph.input
  assert x.name == 'clips' and x.type.tensor_type.elem_type == onnx.TensorProto.UINT8
  assert x.type.tensor_type.shape.dim[0].dim_param == 'N'
  meta = json.loads({p.key: p.value for p in m.metadata_props}['mstsm_jax'])
  assert meta['kind'] == 'clips' and len(meta['classes']) == 10
  # TensorRT's static linter: passes, and finds nothing to remove.
  lint = pathlib.Path(sys.executable).parent / 'polygraphy'
  r = subprocess.run([lint, 'check', 'lint', tmp_path / 'm.onnx'],
                     capture_output=True, text=True)
  assert r.returncode == 0 and 'PASSED' in r.stdout + r.stderr
  assert '| LINT |' not in r.stdout + r.stderr, r.stdout + r.stderr


def test_readme_onnxruntime_snippet_needs_neither_jax_nor_this_package(
    tmp_path, job):
  readme = (pathlib.Path(__file__).parent.parent / 'README.md').read_text()
  code = re.search(r'```python\n(.*?)```', readme[readme.index(
      '### ONNX'):], re.S).group(1)
  d = model(tmp_path, 'mstsm_tfdem')
  job('export', f'--checkpoint={d}', f'--output={tmp_path}/model.onnx',
      '--format=onnx')
  check = ("\nimport sys\nassert not {'jax', 'jaxlib', 'flax', 'mstsm_jax'}"
           " & set(sys.modules), sorted(sys.modules)\n"
           "print(scores.tolist())\n")
  r = subprocess.run([sys.executable, '-c', code + check], cwd=tmp_path,
                     capture_output=True, text=True, check=True)
  lines = r.stdout.strip().splitlines()
  got, meta = np.array(json.loads(lines[-1])), json.loads(lines[0][6:])
  assert meta['num_segments'] == 8
  t, s = 8, 32
  want = inference.load(d).scores_views(np.zeros((1, t, s, s, 3), np.uint8))
  assert_same(got, want)


def test_bad_input_is_one_line(tmp_path, job):
  d = model(tmp_path, 'mstsm_tfdem')
  job('export', f'--checkpoint={d}', f'--output={tmp_path}/m.onnx',
      '--format=onnx')
  r = job('predict', f'--checkpoint={tmp_path}/m.onnx', '--runtime=iree',
          'v.avi', code=2)
  assert 'runs STABLEHLO; this file holds ONNX' in r.stderr
  r = job('export', f'--checkpoint={d}', f'--output={tmp_path}/c.onnx',
          '--format=onnx', '--platforms=cuda', code=2)
  assert 'an ONNX file names no platform' in r.stderr
  import onnx
  m = onnx.load(tmp_path / 'm.onnx')
  del m.metadata_props[:]
  onnx.save(m, tmp_path / 'plain.onnx')
  with pytest.raises(UsageError, match='without mstsm_jax metadata'):
    inference.load(tmp_path / 'plain.onnx')
  (tmp_path / 'cut.onnx').write_bytes((tmp_path / 'm.onnx').read_bytes()
                                      [:5000])
  with pytest.raises(UsageError, match='is not an exported mstsm_jax model'):
    inference.load(tmp_path / 'cut.onnx')
  with pytest.raises(UsageError, match='--runtime=openvino runs ONNX'):
    export_model(d, tmp_path / 'm.mstsm')
    inference.load(tmp_path / 'm.mstsm', runtime='openvino')
