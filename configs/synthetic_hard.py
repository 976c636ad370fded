"""Synthetic event order, the ablation task (mstsm_jax/configs/synthetic_hard.py).

This file keeps --config=configs/synthetic_hard.py working from the
repository root; --config=synthetic_hard works from anywhere.
"""
from mstsm_jax.configs.synthetic_hard import get_config  # noqa: F401
