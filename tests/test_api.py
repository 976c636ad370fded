"""The library as people import it: the README's Python API snippet, the
Predictor on the Quick start model's sizes, fine-tuning a TFDEM model into
another class count, and the layout rule (no library module imports a
job)."""
import ast
import pathlib
import re

import jax
import numpy as np

import model_dirs

ROOT = pathlib.Path(__file__).parent.parent
JOBS = {'prepare', 'train', 'evaluate', 'splits', 'convert', 'prune',
        'predict', 'summary', 'bench', 'fuse', 'cli'}


def test_readme_python_api_snippet_runs(tmp_path, monkeypatch):
  readme = (ROOT / 'README.md').read_text()
  section = readme[readme.index('## Python API'):]
  code = re.search(r'```python\n(.*?)```', section, re.S).group(1)
  monkeypatch.chdir(tmp_path)
  config = model_dirs.tiny_config()
  model_dirs.model_dir(tmp_path / 'runs' / 'synthetic', config)
  scope = {}
  exec(compile(code, 'README.md', 'exec'), scope)  # noqa: S102
  assert scope['probs'].shape == (2, 10)
  np.testing.assert_allclose(scope['probs'].sum(-1), 1.0, rtol=1e-5)
  assert float(scope['loss']) > 0 and scope['video_scores'].shape == (2, 10)


def test_predictor_takes_any_size_and_uint8(tmp_path):
  """The Quick start model sees 56 px crops (not a multiple of 32): uint8
  clips of any size are cropped on device as evaluate's 1x1 view, and the
  same view as normalised floats gives the same scores."""
  import mstsm_jax as mj
  from mstsm_jax.data import pipeline
  from mstsm_jax.models import task
  config = mj.get_config('synthetic', **{'data.synthetic_size': 64})
  model_dirs.model_dir(tmp_path / 'm', config)
  predictor = mj.load(tmp_path / 'm', batch_size=3)
  import cv2
  grid = np.random.default_rng(0).uniform(0, 255, (16, 5, 6, 3))
  clips = np.stack([cv2.resize(g, (100, 80), interpolation=cv2.INTER_CUBIC)
                    for g in grid]).clip(0, 255).astype(np.uint8).reshape(
                        2, 8, 80, 100, 3)  # smooth frames, any size
  scores = predictor(clips)
  assert scores.shape == (2, 10)
  # The host-side test view (pipeline) normalised by hand, as floats.
  tf = pipeline.ClipTransform(config.data, 8, train=False)
  view = np.stack([tf((0, {'frames': c, 'label': 0}))['clips'][0]
                   for c in clips])
  assert view.shape == (2, 8, 56, 56, 3)
  x = np.asarray(task.normalize(view, *task.norm_stats(config.data)))
  np.testing.assert_allclose(predictor(x), scores, atol=0.03 * np.abs(
      scores).max())  # cv2 INTER_AREA on the host vs antialiased on device
  assert predictor(clips[:1]).shape == (1, 10)


def test_tfdem_fine_tune_into_another_class_count(tmp_path, job):
  """Pretrain with 10 classes, fine-tune a 7-class config from it: both
  classifier heads (main and TFDEM) are re-initialised, with a message."""
  src = model_dirs.tiny_config()
  v = model_dirs.model_dir(tmp_path / 'pre', src)
  from mstsm_jax.training import checkpoint
  config = model_dirs.tiny_config(**{'model.num_classes': 7})
  init = model_dirs.init_variables(config, seed=1)
  merged, report = checkpoint.merge_variables(init, jax.device_get(v))
  assert sorted(r.split(':')[0] for r in report['reinitialised']) == [
      'params/fc/bias', 'params/fc/kernel', 'params/tfdem/fc/bias',
      'params/tfdem/fc/kernel']
  assert not checkpoint.partial_load_problems(report)
  np.testing.assert_array_equal(
      merged['params']['tfdem']['conv_diff']['kernel'],
      v['params']['tfdem']['conv_diff']['kernel'])
  # And through the train CLI, on a 7-class custom dataset.
  from test_bad_inputs import clips_tree
  root = clips_tree(tmp_path, tuple(f'c{i}' for i in range(7)), per_class=3)
  job('prepare', '--dataset=custom', f'--manual_dir={root}',
      f'--data_dir={tmp_path}/tfds', '--workers=1', '--test_fraction=0.4',
      '--empty_classes=keep')
  r = job('train', '--config=configs/custom.py', f'--workdir={tmp_path}/ft',
          *[a for a in model_dirs.TINY_ARGS if 'synthetic' not in a],
          f'--config.data.data_dir={tmp_path}/tfds',
          f'--config.init_from={tmp_path}/pre', '--config.train.max_steps=1',
          '--config.train.batch_size=8', '--config.eval.batch_size=8')
  assert 're-initialised (class count differs) params/tfdem/fc/kernel: ' \
      '(8, 10) -> (8, 7)' in r.stderr


def test_no_library_module_imports_a_job():
  """Jobs sit at the package top; the library (subpackages) never imports
  them, and the jitted steps do not import the input pipeline."""
  for path in (ROOT / 'mstsm_jax').rglob('*.py'):
    rel = path.relative_to(ROOT / 'mstsm_jax')
    if len(rel.parts) == 1:
      continue  # a job, cli, errors, console, __init__
    for node in ast.walk(ast.parse(path.read_text())):
      names = []
      if isinstance(node, ast.ImportFrom) and node.module:
        names = [node.module] + [f'{node.module}.{a.name}' for a in
                                 node.names]
      elif isinstance(node, ast.Import):
        names = [a.name for a in node.names]
      for n in names:
        parts = n.split('.')
        assert not (parts[0] == 'mstsm_jax' and len(parts) > 1 and
                    parts[1] in JOBS), (rel, n)
  steps = (ROOT / 'mstsm_jax' / 'training' / 'steps.py').read_text()
  assert 'data' not in re.findall(r'from mstsm_jax\.(\w+)', steps)
