r"""Kinetics-400: TSM's published recipe (scripts/train_tsm_kinetics_rgb_8f.sh).

  python -m mstsm_jax.prepare --dataset=kinetics400 --manual_dir=~/k400 --data_dir=$DATA
  python -m mstsm_jax.train --config=configs/kinetics400.py:mstsm_tfdem \
      --workdir=runs/k400 --config.data.data_dir=$DATA

`--lr 0.02 --wd 1e-4 --lr_steps 20 40 --epochs 50 --batch-size 128
--dropout 0.5 --gd 20 --npb` (every BN learns), flip on; TSM scales the
learning rate with the batch (256 -> 0.04). Kinetics-600/700: add
`--config.data.dataset=kinetics600 --config.model.num_classes=600`.
"""
from mstsm_jax.configs import base_config


def get_config(arg=None):
  c = base_config('kinetics400', 400, arg)
  c.model.dropout = 0.5
  c.model.bn_mode = 'train'
  c.train.batch_size = 128
  c.train.lr = 0.02
  c.train.lr_boundaries = (20, 40)
  c.train.epochs = 50
  c.train.weight_decay = 1e-4
  c.train.clip_norm = 20.0
  c.train.fc_lr_mult = 5.0
  c.train.bias_lr_mult = 2.0
  return c
