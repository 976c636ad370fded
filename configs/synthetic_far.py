"""Synthetic far event order, the long-reach ablation task
(mstsm_jax/configs/synthetic_far.py).

This file keeps --config=configs/synthetic_far.py working from the
repository root; --config=synthetic_far works from anywhere.
"""
from mstsm_jax.configs.synthetic_far import get_config  # noqa: F401
