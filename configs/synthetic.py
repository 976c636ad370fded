"""Synthetic motions (data/synthetic.py): the README's main job on 2 CPU cores.

The config lives in the package (mstsm_jax/configs/synthetic.py), so it also loads
from any directory as --config=synthetic; this file keeps --config=configs/synthetic.py
working from the repository root.
"""
from mstsm_jax.configs.synthetic import get_config  # noqa: F401
