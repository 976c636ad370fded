"""Synthetic far event order (data/synthetic_hard.py, FAR_*): the long-reach
ablation task, on the ablation recipe (configs/synthetic_hard.py).

  python -m mstsm_jax.ablate --config=configs/synthetic_far.py \
      --variants=tsn,tsm,mstsm,mstsm3,mstsm_tfdem --seeds=5 \
      --workdir=runs/ablation_far

Six classes, the ordered pairs of two of the three markers, the two events
5 to 7 segments apart (of 8). The prediction, written before any run:

- TSN sees which two markers flash, not in which order: 50% at most
  (chance is 1/6).
- In the 4-block network a segment's feature after block k sees k
  segments each way with TSM's one-unit shift, 2k with MSTSM's two-unit
  channels, 3k with MSTSM_3's. A segment between two events d = 5-7 apart
  sees both only after ceil(d / 2) = 3-4 blocks with TSM (the last one or
  two, through a one-unit hop in every block) but after 2 blocks with
  MSTSM and MSTSM_3. So TSM < MSTSM <= MSTSM_3, with a larger MSTSM - TSM
  gap than on synthetic_hard.
- TFDEM's one-frame differences see one event at most: MSTSM-TFDEM =
  MSTSM.
- What could break it: zero padding at the clip ends tells a segment
  where it is, and with d >= 5 the first event is always in segments 0-2.
  A network that learns "which marker flashes near the start" reads the
  order without relating the events, and TSM reaches the start from there
  in 2-3 blocks; then TSM = MSTSM.
"""
from mstsm_jax.configs import synthetic_hard


def get_config(arg=None):
  c = synthetic_hard.get_config(arg)
  c.data.dataset = 'synthetic_far'
  return c
