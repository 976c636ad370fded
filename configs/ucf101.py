"""UCF-101 (101 classes), the paper's main setting (SPEC §5-6).

The config lives in the package (mstsm_jax/configs/ucf101.py), so it also loads
from any directory as --config=ucf101; this file keeps --config=configs/ucf101.py
working from the repository root.
"""
from mstsm_jax.configs.ucf101 import get_config  # noqa: F401
