r"""UCF-101 (101 classes), the paper's main setting (SPEC §5-6).

  python -m mstsm_jax.train --config=configs/ucf101.py:mstsm_tfdem \
      --workdir=runs/ucf101_s1 --config.data.data_dir=$DATA \
      --config.init_from=ckpt/tsm_k400
Variants: tsn, tsm, mstsm, mstsm2var, mstsm3, tsm_tfdem, mstsm_tfdem.

`:tsm_official` is TSM's own UCF-101 fine-tuning command (below), to be
on TSM's published path step for step from its converted Kinetics
checkpoint:

  python -m mstsm_jax.convert \
      --input=TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth \
      --config=configs/ucf101.py:tsm_official --output=ckpt/tsm_k400
  python -m mstsm_jax.train --config=configs/ucf101.py:tsm_official \
      --workdir=runs/ucf101_tsm --config.data.data_dir=$DATA \
      --config.init_from=ckpt/tsm_k400
"""
from mstsm_jax.configs import base_config


def get_config(arg=None):
  if arg == 'tsm_official':
    return tsm_official()
  return base_config('ucf101', 101, arg)


def tsm_official():
  """mit-han-lab/temporal-shift-module @1f6a834, README.md:236-242 =
  scripts/finetune_tsm_ucf101_rgb_8f.sh:1-6:
    python main.py ucf101 RGB --arch resnet50 --num_segments 8 \\
      --gd 20 --lr 0.001 --lr_steps 10 20 --epochs 25 \\
      --batch-size 64 -j 16 --dropout 0.8 --consensus_type=avg \\
      --eval-freq=1 --shift --shift_div=8 --shift_place=blockres \\
      --tune_from=pretrained/TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth
  and what main.py, opts.py and ops/ do with it."""
  c = base_config('ucf101', 101, 'tsm')  # --shift --shift_place=blockres
  m, d, t, e = c.model, c.data, c.train, c.eval
  m.num_segments = 8  # --num_segments 8
  m.r_one = 1 / 8  # --shift_div=8
  m.dropout = 0.8  # --dropout 0.8
  # no --no_partialbn: main.py:60 partial_bn=True; main.py:226-232 and
  # ops/models.py:172-188 keep only the first BN training.
  m.bn_mode = 'partial'
  t.lr = 0.001  # --lr 0.001
  t.lr_boundaries = (10, 20)  # --lr_steps 10 20 (opts.py:35 lr_type step)
  t.lr_decay = 10.0  # main.py:352 adjust_learning_rate: 0.1 ** steps passed
  t.epochs = 25  # --epochs 25
  t.batch_size = 64  # --batch-size 64
  t.clip_norm = 20.0  # --gd 20 (main.py:256-257 clip_grad_norm_)
  t.momentum = 0.9  # opts.py:39 default
  t.weight_decay = 5e-4  # opts.py:41 default; decay_mult 0 on BN, biases
  # main.py:63 fc_lr5 = not ('ucf101' in the Kinetics --tune_from path):
  # ops/models.py:257-260 lr5_weight x5, lr10_bias x10 (= 5 x 2).
  t.fc_lr_mult = 5.0
  t.bias_lr_mult = 2.0  # ops/models.py:250 normal_bias lr_mult 2
  t.warmup_epochs = 0.0
  t.eval_every_epochs = 1  # --eval-freq=1
  # ops/models.py:381-386 get_augmentation: GroupMultiScaleCrop(224,
  # [1, .875, .75, .66]) (max_distort 1, more_fix_crop: 13 positions) and
  # a flip (UCF-101 is not something/jester); frames stored at short side
  # 256 (scale_size = 224 * 256 // 224, ops/models.py:378).
  d.resize_short, d.crop_size = 256, 224
  d.scales, d.max_distort, d.flip = (1.0, 0.875, 0.75, 0.66), 1, True
  d.crop_offsets = 'tsm13'
  d.train_sampling = 'tsm'  # ops/dataset.py:119-127 _sample_indices
  # main.py:156-168 validation: GroupScale(256), GroupCenterCrop(224), one
  # clip of segment middles (_get_val_indices; test_models.py's default
  # protocol takes the same frames: _get_test_indices).
  d.test_sampling, d.test_crops = 'tsm', 'tsm'
  e.views = '1x1'
  # --tune_from: the Kinetics checkpoint converted (set init_from); main.py
  # :117-119 drops its fc for a new dataset, as convert does when the
  # class count differs.
  return c
