"""HMDB51 (51 classes), the paper's second benchmark (SPEC §6).

The config lives in the package (mstsm_jax/configs/hmdb51.py), so it also loads
from any directory as --config=hmdb51; this file keeps --config=configs/hmdb51.py
working from the repository root.
"""
from mstsm_jax.configs.hmdb51 import get_config  # noqa: F401
