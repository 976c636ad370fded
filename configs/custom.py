"""Your own videos, prepared with `prepare --dataset=custom`.

The config lives in the package (mstsm_jax/configs/custom.py), so it also loads
from any directory as --config=custom; this file keeps --config=configs/custom.py
working from the repository root.
"""
from mstsm_jax.configs.custom import get_config  # noqa: F401
