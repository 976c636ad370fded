"""Every config file and variant loads, is locked, and builds a model."""
import glob

import pytest

from mstsm_jax.configs import VARIANTS, load_config
from mstsm_jax.models.mstsm import build_model

CONFIGS = sorted(glob.glob('configs/*.py'))


def test_configs_exist():
  names = {c.split('/')[-1] for c in CONFIGS}
  assert {'ucf101.py', 'hmdb51.py', 'synthetic.py', 'custom.py'} <= names


@pytest.mark.parametrize('path', CONFIGS)
@pytest.mark.parametrize('variant', [None, *VARIANTS])
def test_every_config_and_variant(path, variant):
  config = load_config(path + (f':{variant}' if variant else ''))
  assert config.variant == (variant or 'mstsm_tfdem')
  if config.model.num_classes == 0:  # custom: from the prepared dataset
    config.model.num_classes = 7
  build_model(config.model)
  with pytest.raises(AttributeError):
    config.model.r_tow = 0.1  # locked: a misspelled key fails


def test_unknown_variant_is_clear():
  with pytest.raises(ValueError, match="unknown variant 'mstsm5'; valid: tsn"):
    load_config('configs/ucf101.py:mstsm5')


def test_override_types_are_checked():
  config = load_config('configs/ucf101.py', {'model.r_two': 0.125})
  assert config.model.r_two == 0.125
  with pytest.raises(TypeError):
    config.model.num_segments = 'eight'


def test_resume_accepts_fields_added_later_when_off():
  """A run written before `model.causal` existed resumes; switching the
  new field on is a change."""
  import json

  from mstsm_jax.training.workdir import config_differences
  config = load_config('configs/synthetic.py:mstsm_tfdem')
  saved = json.loads(config.to_json())
  del saved['model']['causal']
  assert config_differences(saved, config) == []
  online = load_config('configs/synthetic.py:mstsm_tfdem_online')
  assert "model.causal: '<absent>' -> True" in config_differences(saved,
                                                                  online)
