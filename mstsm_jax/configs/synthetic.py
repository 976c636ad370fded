"""Synthetic motions (data/synthetic.py): the README's main job on 2 CPU cores.

  python -m mstsm_jax.train --config=configs/synthetic.py --workdir=runs/syn

MSTSM-TFDEM on a narrow, shallow ResNet (one bottleneck per stage, width 16)
with 56x56 crops of 64x64 frames, trained from scratch. The classes differ
only in temporal order, so `:tsn` stays near 50% while MSTSM-TFDEM nears
100%. No flip: it would swap the left/right and clockwise classes.
"""
from mstsm_jax.configs import base_config


def get_config(arg=None):
  c = base_config('synthetic', 10, arg)
  c.model.stage_sizes = (1, 1, 1, 1)
  c.model.width = 16
  c.model.tfdem_width = 32
  c.model.bn_mode = 'train'  # from scratch: no pretrained statistics
  c.model.dropout = 0.2
  c.data.resize_short = 64
  c.data.crop_size = 56
  c.data.flip = False
  c.data.synthetic_videos = 1000  # 800 train, 200 test
  c.train.batch_size = 16
  c.train.lr = 0.05
  c.train.epochs = 10
  c.train.lr_boundaries = (8,)
  c.train.warmup_epochs = 0.5
  c.train.weight_decay = 1e-4
  c.train.log_every_steps = 10
  c.train.checkpoint_every_steps = 100
  c.eval.batch_size = 32
  return c
