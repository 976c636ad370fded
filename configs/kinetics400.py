"""Kinetics-400, TSM's recipe.

The config lives in the package (mstsm_jax/configs/kinetics400.py), so it also loads
from any directory as --config=kinetics400; this file keeps --config=configs/kinetics400.py
working from the repository root.
"""
from mstsm_jax.configs.kinetics400 import get_config  # noqa: F401
