"""Temporal feature differences for TFDEM (paper §3.3, Figure 6; SPEC §3)."""
from __future__ import annotations

import jax.numpy as jnp

from mstsm_jax.ops.shift import shift_time, to_clips


def frame_difference(x: jnp.ndarray, num_segments: int,
                     causal: bool = False) -> jnp.ndarray:
  """D_t = F_t - F_{t+1} for t < T-1; the last frame keeps F_{T-1}.

  `causal` (online variants): D_t = F_t - F_{t-1}; the first frame keeps F_0.

  Args:
    x: `[N*T, H, W, C]` per-frame features, clip-major.
    num_segments: T.
  Returns:
    `[N*T, H, W, C]`, never mixing clips.
  """
  v = to_clips(x, num_segments)
  return (v - shift_time(v, -1 if causal else 1)).reshape(x.shape)
