"""Grad-CAM for a video clip (Selvaraju et al. 2017), one map per frame.

The gradient of the clip's class logit (the main head: the mean of the T
per-frame logits) with respect to a backbone stage's output `A` `[T, h, w,
C]` is read through that stage's Flax perturbation (`layers.stage_output`).
Each frame's channel weights are its gradient averaged over space, and its
map is relu(sum_c w_c A_c). Maps are divided by the clip's largest value, so
frames compare with each other, and resized to the input size. Temporal
shifts mix frames inside the backbone, so a frame's map also carries what
its neighbours contributed to the stage output at that frame.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from mstsm_jax.models import backbones


def last_stage(model) -> str:
  """The default Grad-CAM layer: the one the backbone declares (its last
  stage unless it says otherwise)."""
  return backbones.get(model.backbone_name).default_layer


def grad_cam(model, variables, clip, layer: str = '', target=None):
  """Class activation maps of one normalised clip `[T, S, S, C]`.

  Args:
    layer: one of the backbone's `stages` ('layer1'..'layer4' for
      ResNets, 'features_1'..'features_8' for EfficientNet-B0); '' = its
      default (`last_stage`).
    target: class index; None = the predicted class.
  Returns:
    (maps float32 `[T, S, S]` in [0, 1], class index, clip logits
    `[classes]`).
  """
  x = jnp.asarray(clip)[None]
  layer = layer or last_stage(model)
  shapes = _perturbation_shapes(model, variables, x)
  if layer not in shapes['backbone']:
    raise ValueError(f'unknown layer {layer!r}; valid: '
                     f'{", ".join(shapes["backbone"])}')
  zeros = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)
  maps, k, logits = _maps(model, layer, variables, zeros, x,
                          -1 if target is None else int(target))
  return np.asarray(maps), int(k), np.asarray(logits)


_SHAPES = {}


def _perturbation_shapes(model, variables, x):
  """The stage outputs' shapes, traced once per model and clip shape."""
  key = (model, x.shape, x.dtype)
  if key not in _SHAPES:
    _SHAPES[key] = jax.eval_shape(
        lambda v, a: model.apply(v, a, mutable=['perturbations'])[1],
        variables, x)['perturbations']
  return _SHAPES[key]


@functools.partial(jax.jit, static_argnames=('model', 'layer'))
def _maps(model, layer, variables, zeros, x, target):
  """Jitted once per model, layer and clip shape; `target` < 0 = the
  predicted class."""

  def class_logit(perturbations):
    (logits, _), inter = model.apply(
        {**variables, 'perturbations': perturbations}, x,
        mutable=['intermediates'])
    k = jnp.where(target < 0, jnp.argmax(jax.lax.stop_gradient(logits[0])),
                  target)
    acts = inter['intermediates']['backbone'][layer][0]
    return logits[0, k], (k, logits[0], acts)

  grads, (k, logits, acts) = jax.grad(class_logit, has_aux=True)(zeros)
  grads = grads['backbone'][layer]
  weights = grads.mean(axis=(1, 2), keepdims=True)  # [T, 1, 1, C]
  cams = jax.nn.relu((weights * acts).sum(-1))  # [T, h, w]
  cams = cams / jnp.maximum(cams.max(), 1e-12)
  s = x.shape[2]
  maps = jax.image.resize(cams, (cams.shape[0], s, s), 'bilinear')
  return jnp.clip(maps, 0, 1), k, logits


def mass_on(maps: np.ndarray, masks: np.ndarray) -> float:
  """Fraction of the maps' total mass inside `masks` (bool, same shape),
  over the frames where the mask is not empty."""
  keep = masks.reshape(len(masks), -1).any(1)
  total = maps[keep].sum()
  return float((maps[keep] * masks[keep]).sum() / total) if total else 0.0


def plot(frames: np.ndarray, maps: np.ndarray, path, title: str) -> str:
  """PNG: each frame (uint8 `[T, S, S, 3]`) with its map overlaid, and a
  colour bar."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  t = len(frames)
  fig, axes = plt.subplots(1, t, figsize=(1.7 * t + 0.8, 2.3),
                           squeeze=False)
  im = None
  for i, ax in enumerate(axes[0]):
    ax.imshow(frames[i])
    im = ax.imshow(maps[i], cmap='jet', alpha=0.45, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f't={i}', fontsize=8)
  fig.colorbar(im, ax=axes[0].tolist(), fraction=0.02, pad=0.01)
  fig.suptitle(title, fontsize=9)
  fig.savefig(path, dpi=110, bbox_inches='tight')
  plt.close(fig)
  return str(path)
