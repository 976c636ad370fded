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
        'predict', 'summary', 'bench', 'fuse', 'ablate', 'export', 'stream',
        'explain', 'demo', 'cli'}


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
  # cv2 INTER_AREA on the host vs antialiased on device
  np.testing.assert_allclose(predictor.scores_normalized(x), scores,
                             atol=0.03 * np.abs(scores).max())
  # Another directory of the same model: its own weights and scores
  # through the programs the first one compiled (no tracing again).
  from mstsm_jax.inference import predictor as predictor_kinds
  model_dirs.model_dir(tmp_path / 'm2', config, seed=1, head_std=0.5)
  hits = predictor_kinds._programs.cache_info().hits
  other = mj.load(tmp_path / 'm2', batch_size=3)
  assert predictor_kinds._programs.cache_info().hits == hits + 1
  assert np.abs(other(clips) - scores).max() > 1e-3
  assert predictor(clips[:1]).shape == (1, 10)


def test_tfdem_fine_tune_into_another_class_count(tmp_path, job):
  """Across class counts (10 -> 7 merged by hand, 7 -> 10 through `train
  --config.init_from`) both classifier heads, main and TFDEM, are
  re-initialised with a message; the rest of TFDEM loads."""
  src = model_dirs.tiny_config()
  v = model_dirs.model_dir(tmp_path / 'pre', src)
  from mstsm_jax.models import fit
  config = model_dirs.tiny_config(**{'model.num_classes': 7})
  init = model_dirs.init_variables(config, seed=1)
  merged, report = fit.merge_variables(init, jax.device_get(v))
  assert sorted(r.split(':')[0] for r in report['reinitialised']) == [
      'params/fc/bias', 'params/fc/kernel', 'params/tfdem/fc/bias',
      'params/tfdem/fc/kernel']
  assert not fit.partial_load_problems(report)
  np.testing.assert_array_equal(
      merged['params']['tfdem']['conv_diff']['kernel'],
      v['params']['tfdem']['conv_diff']['kernel'])
  # And through the train CLI: a 7-class model fine-tuned on the 10
  # synthetic classes.
  model_dirs.model_dir(tmp_path / 'pre7', config)
  r = job('train', '--config=configs/synthetic.py', *model_dirs.TINY_ARGS,
          f'--workdir={tmp_path}/ft', f'--config.init_from={tmp_path}/pre7',
          '--config.train.max_steps=1', '--config.eval.max_videos=8')
  assert 're-initialised (class count differs) params/tfdem/fc/kernel: ' \
      '(8, 7) -> (8, 10)' in r.stderr
  assert 're-initialised (class count differs) params/fc/kernel' in r.stderr


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


def test_predict_on_the_quick_start_model_and_its_pruned_copy(tmp_path, job):
  """The Quick start's architecture (56 px crops) and its pruned copy."""
  import videos
  from mstsm_jax.configs import get_config
  model_dirs.model_dir(tmp_path / 'm', get_config('synthetic'))
  job('prune', f'--checkpoint={tmp_path}/m', f'--output={tmp_path}/p')
  videos.write_video(tmp_path / 'v.avi', 20, size=(64, 64))
  for d in ('m', 'p'):
    rows = job('predict', f'--checkpoint={tmp_path}/{d}', '--json',
               str(tmp_path / 'v.avi')).json()
    probs = [r['probability'] for r in rows['top5']]
    assert len(probs) == 5 and probs == sorted(probs, reverse=True)
    assert rows['frames'] == 20 and 0 < sum(probs) <= 1.0001
