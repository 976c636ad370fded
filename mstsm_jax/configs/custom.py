r"""Your own videos, prepared with `prepare --dataset=custom`.

Set the class count to your dataset's (prepare prints it):
  python -m mstsm_jax.train --config=configs/custom.py \
      --config.model.num_classes=10 --config.data.data_dir=$DATA ...
"""
from mstsm_jax.configs import base_config


def get_config(arg=None):
  return base_config('custom', 0, arg)
