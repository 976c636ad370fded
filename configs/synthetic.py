"""Placeholder until the synthetic dataset lands (see data)."""
from mstsm_jax.config_lib import base_config


def get_config(arg=None):
  return base_config('synthetic', 10, arg)
