"""Something-Something V2 (174 classes), TSM's recipe.

The config lives in the package (mstsm_jax/configs/ssv2.py), so it also loads
from any directory as --config=ssv2; this file keeps --config=configs/ssv2.py
working from the repository root.
"""
from mstsm_jax.configs.ssv2 import get_config  # noqa: F401
