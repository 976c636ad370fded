r"""UCF-101 (101 classes), the paper's main setting (SPEC §5-6).

  python -m mstsm_jax.train --config=configs/ucf101.py:mstsm_tfdem \
      --workdir=runs/ucf101_s1 --config.data.data_dir=$DATA \
      --config.init_from=ckpt/tsm_k400
Variants: tsn, tsm, mstsm, mstsm2var, mstsm3, tsm_tfdem, mstsm_tfdem.
"""
from mstsm_jax.configs import base_config


def get_config(arg=None):
  return base_config('ucf101', 101, arg)
