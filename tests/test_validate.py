"""The one validator: every config field and every job flag has a declared
type and range (configs/schema.py, cli.FLAG_RULES), checked before any work
starts, with one line naming the field or flag, the value and the range.
The same rules serve the Python API. Nothing here builds a model."""
import importlib
import json
import math
import pathlib
import re

import pytest
from absl import flags
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mstsm_jax import cli, configs
from mstsm_jax.configs import FIELDS, schema
from mstsm_jax.errors import UsageError

JOBS = ('ablate', 'bench', 'convert', 'demo', 'evaluate', 'explain', 'export',
        'fuse', 'predict', 'prepare', 'prune', 'splits', 'stream', 'summary',
        'train')


def flat_keys(config, prefix=''):
  out = []
  for k, v in config.items():
    out += (flat_keys(v, f'{prefix}{k}.') if hasattr(v, 'items')
            else [prefix + k])
  return out


def test_every_config_field_is_declared():
  base = configs.base_config('ucf101', 101, None)
  assert sorted(FIELDS) == sorted(flat_keys(base))


@pytest.mark.parametrize('name', ['ucf101', 'hmdb51', 'ssv2', 'kinetics400',
                                  'custom', 'synthetic', 'synthetic_hard',
                                  'synthetic_far'])
@pytest.mark.parametrize('variant', list(configs.VARIANTS))
def test_every_packaged_config_is_valid(name, variant):
  config = configs.load_config(f'{name}:{variant}')  # validates
  # as a model directory's config.json holds it (tuples become lists)
  configs.validate(json.loads(config.to_json()))


def test_every_flag_of_every_job_is_declared():
  missing = []
  for job in JOBS:
    module = importlib.import_module(f'mstsm_jax.{job}')
    fv = flags.FlagValues()
    module.define_flags(fv)
    for name in fv:
      rule = cli.flag_rule(job, name)
      if rule is None:
        missing.append(f'{job} --{name}')
      elif fv[name].default is not None and name != 'config':
        assert rule.fits(fv[name].default), (job, name, fv[name].default)
  assert not missing, missing


# (a) one case per kind of range, through the real job entry: exit 2, one
# `error:` line naming the field or flag, the value and the range, and
# nothing written.
CASES = [
    # config fields
    ('train', ['--config.train.max_steps=-5'],
     r'--config.train.max_steps=-5: must be an integer >= 0 \(0 = '
     r'train.epochs\)'),
    ('train', ['--config.train.batch_size=0'],
     '--config.train.batch_size=0: must be an integer >= 1'),
    ('train', ['--config.train.lr=nan'],
     '--config.train.lr=nan: must be a finite number >= 0'),
    ('train', ['--config.train.lr_decay=inf'],
     '--config.train.lr_decay=inf: must be a finite number > 0'),
    ('train', ['--config.model.dropout=1.0'],
     r'--config.model.dropout=1.0: must be a finite number in \[0, 1\)'),
    ('train', ['--config.model.r_two=0'],
     r'--config.model.r_two=0.0: must be a finite number in \(0, 0.5\]'),
    ('train', ['--config.model.bn_mode=partal'],
     "--config.model.bn_mode='partal': must be one of train, frozen, "
     'partial'),
    ('train', ['--config.model.backbone=resnet5'],
     "--config.model.backbone: unknown backbone 'resnet5'; valid: "
     '(.*, )?resnet50, '),
    ('train', ['--config.data.modality=depth'],
     "--config.data.modality='depth': must be one of rgb, flow"),
    ('train', ['--config.data.scales=(1.0,0.0)'],
     r'--config.data.scales=\(1.0, 0.0\): must be a tuple of 1 or more '
     r'values, each a finite number in \(0, 1\]'),
    ('train', ['--config.model.stage_sizes=(1,0,1,1)'],
     r'--config.model.stage_sizes=\(1, 0, 1, 1\): must be a tuple of '
     'values, each an integer >= 1'),
    ('train', ['--config.data.std=(0.2,0.2)'],
     r'--config.data.std=\(0.2, 0.2\): must be a tuple of 3 values'),
    ('train', ['--config.eval.views=10x2'],
     "--config.eval.views='10x2': must be CLIPSxCROPS"),
    ('train', ['--config.data.crop_size=72'],
     '--config.data.crop_size=72: must be <= data.resize_short=64'),
    ('train', ['--config.model.num_segments=2'],
     "--config.model.num_segments=2: must be >= 3 for "
     "model.temporal='mstsm'"),
    ('train', ['--config.train.max_steps=1.5'],
     r'--config.train.max_steps=1.5: invalid literal for int; must be an '
     r'integer >= 0 \(0 = train.epochs\)'),
    ('train', ['--config.model.tfdem=maybe'],
     '--config.model.tfdem=maybe: wrong type; must be True or False'),
    # job flags
    ('predict', ['--checkpoint=m', '--timeline', '--window_s=inf'],
     '--window_s=inf: must be a finite number > 0'),
    ('predict', ['--checkpoint=m', '--timeline', '--stride_s=nan'],
     '--stride_s=nan: must be a finite number > 0'),
    ('prepare', ['--dataset=ucf101', '--data_dir={tmp}/out',
                 '--merge_shards=-1'],
     r'--merge_shards=-1: must be an integer >= 0 \(0 = decode'),
    ('prepare', ['--dataset=ucf101', '--data_dir={tmp}/out',
                 '--short_side=-5'],
     r'--short_side=-5: must be an integer >= 0 \(0 = original size\)'),
    ('prepare', ['--dataset=ucf101', '--data_dir={tmp}/out',
                 '--max_failures=-1'],
     '--max_failures=-1.0: must be a finite number >= 0'),
    ('prepare', ['--dataset=ucf101', '--data_dir={tmp}/out',
                 '--test_fraction=1'],
     r'--test_fraction=1.0: must be a finite number in \(0, 1\)'),
    ('prepare', ['--dataset=ucf101', '--data_dir={tmp}/out', '--shard=4/4'],
     "--shard='4/4': must be '' .* or i/N with 0 <= i < N"),
    ('export', ['--checkpoint=m', '--output={tmp}/out', '--batch=0'],
     "--batch='0': must be dynamic or a batch size >= 1"),
    ('export', ['--checkpoint=m', '--output={tmp}/out', '--platforms=gpu'],
     "--platforms='gpu': must be a comma-separated list of platforms"),
    ('bench', ['--config=configs/synthetic.py', '--batch=8,-1'],
     "--batch='8,-1': must be a comma-separated list of integers >= 1"),
    ('bench', ['--config=configs/synthetic.py', '--steps=0'],
     '--steps=0: must be an integer >= 1'),
    ('fuse', ['--scores=a.npz', '--weights=1,nan'],
     "--weights='1,nan': must be a comma-separated list of finite numbers"),
    ('evaluate', ['--workdir={tmp}/out', '--checkpoint=bset'],
     "--checkpoint='bset': must be latest"),
    ('evaluate', ['--workdir={tmp}/out', '--split=4'],
     r'--split=4: must be an integer in \[0, 3\]'),
    ('splits', ['--config=configs/synthetic.py', '--workdir={tmp}/out',
                '--splits=1,4'],
     "--splits='1,4': must be a comma-separated list of splits 1, 2, 3"),
    ('ablate', ['--config=configs/synthetic.py', '--workdir={tmp}/out',
                '--seeds=0'],
     '--seeds=0: must be an integer >= 1'),
    ('prune', ['--checkpoint=m', '--output={tmp}/out', '--r_out=-8'],
     r'--r_out=-8: must be an integer >= 0 \(0 = none\)'),
    ('summary', ['--config=configs/synthetic.py',
                 '--config.model.stage_sizes=(1,1)'],
     r'model.stage_sizes=\(1, 1\): a ResNet has 4 stages'),
    ('summary', ['--config=configs/synthetic.py',
                 '--config.model.tfdem_tap=layer9'],
     r"model.tfdem_tap='layer9': not a stage of resnet50"),
    ('summary', ['--config=configs/synthetic.py:mstsm',
                 '--config.model.tfdem_fuse=True'],
     r'model.tfdem_fuse=True with model.tfdem=False'),
    ('summary', ['--config=configs/synthetic.py', '--config.variant=tsn'],
     r"--config.variant='tsn', but model.temporal='mstsm', model.tfdem=True,"
     r" model.causal=False make 'mstsm_tfdem'"),
    ('summary', ['--config=configs/synthetic.py', '--config.model.tfdem=False'],
     r"--config.variant='mstsm_tfdem', but .* make 'mstsm'"),
    ('prune', ['--checkpoint=m', '--output={tmp}/out', '--r_out=0'],
     r'--r_out=0 --r_in=0 prunes nothing'),
    ('stream', ['--checkpoint=m', '--video=v.mp4', '--runtime=tflite'],
     "--runtime='tflite': must be one of auto, xla, iree, onnxruntime, "
     'openvino'),
]


@pytest.mark.parametrize('name,args,error', CASES,
                         ids=[f'{c[0]} {c[1][-1]}' for c in CASES])
def test_bad_number_is_one_line_before_any_work(name, args, error, tmp_path,
                                                job):
  if any(a.startswith('--config.') for a in args) and name == 'train':
    args = ['--config=configs/synthetic.py', f'--workdir={tmp_path}/out',
            *args]
  args = [a.format(tmp=tmp_path) for a in args]
  r = job(name, *args, code=2)
  lines = r.stderr.strip().splitlines()
  assert len(lines) == 2 and lines[1].startswith('hint: fix --'), r.stderr
  assert re.match(f'error: {error}', lines[0]), lines[0]
  assert not (tmp_path / 'out').exists()  # nothing written


def test_summary_names_the_field_for_every_job_with_a_config(job):
  for name in ('summary', 'bench', 'splits', 'ablate'):
    extra = [] if name in ('summary', 'bench') else ['--workdir=/nonexistent']
    r = job(name, '--config=configs/synthetic.py', *extra,
            '--config.eval.batch_size=-8', code=2)
    assert r.stderr.startswith(
        'error: --config.eval.batch_size=-8: must be an integer >= 1'), name


def test_python_api_gets_the_same_one_line_error():
  from mstsm_jax import create_model
  with pytest.raises(UsageError, match=r"^num_classes='ten': must be an "
                     r'integer >= 0'):
    create_model(num_classes='ten')
  with pytest.raises(UsageError, match=r"^num_segments='eight': must "
                     'be an integer >= 1'):
    configs.model_config('tsm', num_classes=5, num_segments='eight')
  with pytest.raises(UsageError, match=r'^r_two=0.75: must be a finite '
                     r'number in \(0, 0.5\]'):
    configs.model_config(num_classes=5, r_two=0.75)
  with pytest.raises(UsageError, match="no model field 'r_tow'"):
    configs.model_config(num_classes=5, r_tow=0.1)
  model = configs.model_config('tsm', num_classes=5, stage_sizes=[1, 1, 1, 1])
  assert model.stage_sizes == (1, 1, 1, 1) and model.temporal == 'tsm'
  with pytest.raises(UsageError, match=r"^train.lr=-1.0: must be a finite "):
    configs.get_config('synthetic', **{'train.lr': -1.0})
  with pytest.raises(UsageError, match=r"^train.epochs='ten': must be an "):
    configs.get_config('synthetic', train={'epochs': 'ten'})
  with pytest.raises(UsageError, match='no such field'):
    configs.get_config('synthetic', **{'train.lr_rate': 0.1})


def test_a_model_directory_config_json_is_checked():
  saved = json.loads(configs.get_config('synthetic').to_json())
  del saved['model']['causal']  # written before the field existed: fine
  configs.validate(saved)
  saved['train']['batch_size'] = 0
  with pytest.raises(UsageError, match=r'^--config.train.batch_size=0'):
    configs.validate(saved)
  with pytest.raises(UsageError, match=r'^model.dtype=.float16.: must be '
                     'one of float32, bfloat16'):
    configs.validate_model({**saved['model'], 'dtype': 'float16'})


def test_backbones_come_from_a_registry_and_import_paths_pass(monkeypatch):
  model = configs.get_config('synthetic').model
  model.backbone = 'my_package.backbones.Tiny'  # the registry imports it
  configs.validate_model(model)
  monkeypatch.setattr(schema, '_backbones', lambda: ('resnet50', 'vit_s'))
  model.backbone = 'vit_s'
  configs.validate_model(model)
  model.backbone = 'resnet101'
  with pytest.raises(UsageError, match='valid: resnet50, vit_s or an import path'):
    configs.validate_model(model)


def test_an_internal_error_is_one_line_with_type_and_place(capfd):
  """Our bug, not the user's: exit 1, the exception's type and text, the
  innermost project line, and a request to report it."""
  package = pathlib.Path(cli.__file__).resolve().parent
  scope = {}
  exec(compile('def report(rows):\n  return rows["classes"]\n',  # noqa: S102
               str(package / 'evaluation' / 'fake_report.py'), 'exec'), scope)

  def main(fv, argv):
    del fv, argv
    return scope['report']({})

  from mstsm_jax import summary
  rc = cli.invoke(summary.define_flags, main,
                  ['summary.py', '--config=configs/synthetic.py'])
  err = capfd.readouterr().err.strip().splitlines()
  assert rc == 1 and len(err) == 1, err
  assert re.match(r"error: internal error: KeyError: 'classes' at "
                  r'mstsm_jax/evaluation/fake_report.py:2 \(report\); '
                  r'please report it', err[0]), err[0]


# (b) generated values for random fields: a clean UsageError or acceptance,
# never another exception; what is accepted satisfies the schema.
WEIRD = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-3, 3),
    st.integers(min_value=2**31), st.floats(), st.floats(-1, 2),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324]),
    st.text(max_size=8), st.sampled_from(['', '1', 'nan', 'resnet50',
                                          'rgb', 'train', '1x1', 'tsm']),
    st.lists(st.one_of(st.integers(-2, 300), st.floats(), st.text(
        max_size=3)), max_size=5).map(tuple),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


BASE = configs.base_config('custom', 1, None)
SYNTHETIC = configs.get_config('synthetic').to_json()


def satisfies_schema(config) -> None:
  """Independent of the rules' code: the types and ranges they promise."""
  for key in FIELDS:
    value = schema._get(config, key)
    if value is schema._ABSENT:  # a config.model alone
      continue
    base = schema._get(BASE, key)
    if isinstance(base, bool):
      assert isinstance(value, bool), key
    elif isinstance(base, (int, float)):
      assert not isinstance(value, bool) and math.isfinite(value), key
      if isinstance(base, int):
        assert float(value).is_integer(), key
    elif isinstance(base, str):
      assert isinstance(value, str), key
    else:
      assert all(math.isfinite(x) for x in value), key
    assert FIELDS[key].fits(value), key


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(sorted(FIELDS)), value=WEIRD)
def test_validate_never_crashes(key, value):
  config = json.loads(SYNTHETIC)
  section, _, field = key.rpartition('.')
  (config[section] if section else config)[field] = value
  try:
    configs.validate(config)
  except UsageError as e:
    assert e.message.startswith(f'--config.') and '\n' not in e.message
    return
  satisfies_schema(config)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(sorted(FIELDS)), value=WEIRD)
def test_get_config_never_crashes(key, value):
  """The Python API's overrides: ml_collections' type checks included."""
  try:
    config = configs.get_config('synthetic', **{key: value})
  except UsageError as e:
    assert key.split('.')[-1] in e.message and '\n' not in e.message
    return
  satisfies_schema(config)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(sorted(k[len('model.'):] for k in FIELDS
                                    if k.startswith('model.'))), value=WEIRD)
def test_model_config_never_crashes(field, value):
  try:
    model = configs.model_config('mstsm', **{'num_classes': 3, field: value})
  except UsageError as e:
    assert field in e.message and '\n' not in e.message
    return
  satisfies_schema({'model': model})


FLAG_VALUES = st.one_of(
    st.integers(), st.floats(), st.text(max_size=10),
    st.lists(st.sampled_from(['1', '-1', '0', 'nan', 'inf', 'a', '', ' 3',
                              '2.5', 'dynamic', 'cpu']), min_size=1,
             max_size=3).map(','.join))


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(cli.FLAG_RULES)), value=FLAG_VALUES)
def test_flag_rules_never_crash(name, value):
  try:
    cli.FLAG_RULES[name].check(f'--{name}', value)
  except UsageError as e:
    assert e.message.startswith(f'--{name}=') and '\n' not in e.message
