r"""HMDB51 (51 classes), the paper's second benchmark (SPEC §6).

  python -m mstsm_jax.train --config=configs/hmdb51.py:mstsm_tfdem \
      --workdir=runs/hmdb51_s1 --config.data.data_dir=$DATA
"""
from mstsm_jax.configs import base_config


def get_config(arg=None):
  return base_config('hmdb51', 51, arg)
