r"""Something-Something V2 (174 classes): TSM's published recipe.

  python -m mstsm_jax.prepare --dataset=ssv2 --manual_dir=~/ssv2 --data_dir=$DATA
  python -m mstsm_jax.train --config=configs/ssv2.py:mstsm_tfdem \
      --workdir=runs/ssv2 --config.data.data_dir=$DATA \
      --config.init_from=ckpt/imagenet_r50

From the official TSM README ("train on Something-Something", ImageNet
initialisation): `--lr 0.01 --lr_steps 20 40 --epochs 50 --batch-size 64
--dropout 0.5 --gd 20 --npb` with the default weight decay 5e-4, and no
horizontal flip (main.py turns it off for Something-Something: left/right
are the labels). `--npb`: every BN learns (bn_mode 'train'). TSM's policy
for a new classifier from ImageNet weights: 5x its learning rate, 2x for
biases. `--config.model.backbone=resnet101` is the zoo's R101 setting.
"""
from mstsm_jax.configs import base_config


def get_config(arg=None):
  c = base_config('ssv2', 174, arg)
  c.model.dropout = 0.5
  c.model.bn_mode = 'train'
  c.data.flip = False
  c.train.batch_size = 64
  c.train.lr = 0.01
  c.train.lr_boundaries = (20, 40)
  c.train.epochs = 50
  c.train.weight_decay = 5e-4
  c.train.clip_norm = 20.0
  c.train.fc_lr_mult = 5.0
  c.train.bias_lr_mult = 2.0
  return c
