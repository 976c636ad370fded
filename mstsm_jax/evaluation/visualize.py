"""Feature-difference maps as PNG (paper Figure 6).

Top row: the sampled frames; middle: TFDEM's features F_t (mean |F| over
channels); bottom: the differences D_t = F_t - F_{t+1} (the last frame keeps
its own features), where the moving regions light up.
"""
from __future__ import annotations

import functools
import pathlib

import jax
import numpy as np

from mstsm_jax.data import pipeline
from mstsm_jax.models import task


@functools.lru_cache(maxsize=4)
def _intermediates(model):
  """`model`'s forward with its sown intermediates, jitted once per model
  (flax modules compare by their fields): every evaluation report of a run
  draws these maps, and tracing the model again for each took 1-2 s."""
  return jax.jit(lambda v, x: model.apply(v, x, train=False,
                                          mutable=['intermediates']))


GAP = 0.1  # between two frames of a row of the maps, in frame widths


def tfdem_maps(model, variables, clip: np.ndarray, config, path,
               title: str = '') -> str | None:
  """clip: uint8 `[T, H, W, 3]` -> writes `path` (PNG); None without TFDEM
  or for flow input. `config`'s data statistics and dtype prepare it."""
  if not model.tfdem or clip.shape[-1] != 3:
    return None
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  x = task.preprocess(clip[None], config)
  _, inter = _intermediates(model)(variables, x)
  feats = np.abs(np.asarray(inter['intermediates']['tfdem']['features'][0],
                            np.float32)).mean(-1)
  diffs = np.abs(np.asarray(inter['intermediates']['tfdem']['diff'][0],
                            np.float32)).mean(-1)
  t = clip.shape[0]
  # One axes a row (24 axes, one an image, drew 3x slower).
  fig, axes = plt.subplots(3, 1, figsize=(1.6 * t, 5.2))
  rows = (('frame', clip), ('|F_t|', feats), ('|F_t - F_t+1|', diffs))
  for r, (label, images) in enumerate(rows):
    ax = axes[r]
    vmax = None if r == 0 else float(np.percentile(images, 99.5)) or 1.0
    aspect = images.shape[1] / images.shape[2]
    for i in range(t):  # placed in frame widths: the rows line up
      ax.imshow(images[i], cmap=None if r == 0 else 'magma', vmin=0,
                vmax=vmax, extent=(i * (1 + GAP), i * (1 + GAP) + 1,
                                   aspect, 0))
    ax.set_xlim(0, t + (t - 1) * GAP)
    ax.set_ylim(aspect, 0)
    if r == 0:
      ax.set_xticks([i * (1 + GAP) + 0.5 for i in range(t)],
                    [f't={i + 1}' for i in range(t)], fontsize=8)
      ax.xaxis.tick_top()
    else:
      ax.set_xticks([])
    ax.tick_params(length=0)
    ax.set_yticks([])
    ax.set_frame_on(False)
    ax.set_ylabel(label, fontsize=8)
  axes[2].set_xlabel('last: own F', fontsize=7, loc='right')
  fig.suptitle(title or 'TFDEM feature differences', fontsize=9)
  fig.tight_layout()
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return str(path)


def first_clip(split, data_cfg, num_segments: int) -> np.ndarray | None:
  """The test-time clip of the split's first readable video."""
  tf = pipeline.ClipTransform(data_cfg, num_segments, train=False)
  for i in range(min(len(split.source), 8)):
    out = tf((i, split.source[i]))
    if out['valid']:
      return out['clips'][0]
  return None
