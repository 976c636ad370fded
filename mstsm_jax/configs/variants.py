"""The paper's model variants (Tables 1-3): the names `--config=X:variant`
takes and what each switches on."""
from __future__ import annotations

from mstsm_jax.errors import UsageError

# variant -> (temporal module, TFDEM on, causal). The *_online variants
# see only past frames (ops/shift.py) and stream one frame at a time.
VARIANTS = {
    'tsn': ('tsn', False, False),
    'tsm': ('tsm', False, False),
    'mstsm': ('mstsm', False, False),
    'mstsm2var': ('mstsm2var', False, False),
    'mstsm3': ('mstsm3', False, False),
    'tsm_tfdem': ('tsm', True, False),
    'mstsm_tfdem': ('mstsm', True, False),
    'tsm_online': ('tsm', False, True),
    'mstsm_online': ('mstsm', False, True),
    'mstsm_tfdem_online': ('mstsm', True, True),
}
DEFAULT_VARIANT = 'mstsm_tfdem'
# Temporal modules (ops/shift.py), the ones with a causal (online) reading,
# and the clip length each needs (a k-unit shift needs k + 1 frames).
TEMPORAL = ('tsn', 'tsm', 'mstsm', 'mstsm2var', 'mstsm3')
CAUSAL_TEMPORAL = ('tsn', 'tsm', 'mstsm')
MIN_SEGMENTS = {'mstsm': 3, 'mstsm2var': 3, 'mstsm3': 4}


def parse_variant(arg: str | None) -> str:
  variant = arg or DEFAULT_VARIANT
  if not isinstance(variant, str) or variant not in VARIANTS:
    raise UsageError(f'unknown variant {variant!r}; valid: '
                     f'{", ".join(VARIANTS)}')
  return variant
