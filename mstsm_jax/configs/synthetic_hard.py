"""Synthetic event order (data/synthetic_hard.py): the ablation task.

  python -m mstsm_jax.ablate --config=configs/synthetic_hard.py --seeds=3 \
      --workdir=runs/ablation

Six classes, the orders of three flashed markers at least two segments
apart, with distractors: no frame and no one-frame difference tells the
class. The Quick start's narrow, shallow ResNet (one bottleneck per stage,
width 16) from scratch, sized so 7 variants x 3 seeds fit 20 minutes on 2
CPU cores. No flip (it would not change the class, but keeps the recipe
the Quick start's).
"""
from mstsm_jax.configs import synthetic


def get_config(arg=None):
  c = synthetic.get_config(arg)
  c.data.dataset = 'synthetic_hard'
  c.model.num_classes = 6
  c.data.synthetic_videos = 1200  # 960 train, 240 test
  c.train.epochs = 4
  c.train.lr_boundaries = (3,)
  c.train.warmup_epochs = 0.25
  c.train.checkpoint_every_steps = 1000
  c.train.eval_every_epochs = 0  # only the final evaluation
  return c
