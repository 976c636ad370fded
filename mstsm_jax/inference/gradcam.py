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
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from mstsm_jax.errors import UsageError
from mstsm_jax.inference.views import (note_fields, read_video_views,
                                       short_video_note)
from mstsm_jax.models import backbones, task


def last_stage(model) -> str:
  """The default Grad-CAM layer: the one the backbone declares (its last
  stage unless it says otherwise)."""
  return backbones.get(model.backbone_name).default_layer


def grad_cam(model, variables, clip, layer: str = '', target=None,
             fuse: bool = False):
  """Class activation maps of one normalised clip `[T, S, S, C]`.

  Args:
    layer: one of the backbone's `stages` ('layer1'..'layer4' for
      ResNets, 'features_1'..'features_8' for EfficientNet-B0); '' = its
      default (`last_stage`).
    target: class index; None = the predicted class.
    fuse: the model's `tfdem_fuse`: its scores are the fused softmaxes.
  Returns:
    (maps float32 `[T, S, S]` in [0, 1], class index, the clip's scores
    `[classes]` as `task.scores` gives them).
  """
  x = jnp.asarray(clip)[None]
  layer = layer or last_stage(model)
  shapes = _perturbation_shapes(model, variables, x)
  if layer not in shapes['backbone']:
    raise ValueError(f'unknown layer {layer!r}; valid: '
                     f'{", ".join(shapes["backbone"])}')
  zeros = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)
  maps, k, scores = _maps(model, layer, variables, zeros, x,
                          -1 if target is None else int(target), fuse)
  return np.asarray(maps), int(k), np.asarray(scores)


_SHAPES = {}


def _perturbation_shapes(model, variables, x):
  """The stage outputs' shapes, traced once per model and clip shape."""
  key = (model, x.shape, x.dtype)
  if key not in _SHAPES:
    _SHAPES[key] = jax.eval_shape(
        lambda v, a: model.apply(v, a, mutable=['perturbations'])[1],
        variables, x)['perturbations']
  return _SHAPES[key]


@functools.partial(jax.jit, static_argnames=('model', 'layer', 'fuse'))
def _maps(model, layer, variables, zeros, x, target, fuse):
  """Jitted once per model, layer and clip shape; `target` < 0 = the
  predicted class: the argmax of the clip's scores (`task.scores`, fused
  with the TFDEM head's when the model fuses). The map is the main head's
  logit's gradient."""

  def class_logit(perturbations):
    (logits, aux), inter = model.apply(
        {**variables, 'perturbations': perturbations}, x,
        mutable=['intermediates'])
    scores = jax.lax.stop_gradient(
        task.scores(logits, aux, fuse=fuse)[0])
    k = jnp.where(target < 0, jnp.argmax(scores), target)
    acts = inter['intermediates']['backbone'][layer][0]
    return logits[0, k], (k, scores, acts)

  grads, (k, scores, acts) = jax.grad(class_logit, has_aux=True)(zeros)
  grads = grads['backbone'][layer]
  weights = grads.mean(axis=(1, 2), keepdims=True)  # [T, 1, 1, C]
  cams = jax.nn.relu((weights * acts).sum(-1))  # [T, h, w]
  cams = cams / jnp.maximum(cams.max(), 1e-12)
  s = x.shape[2]
  maps = jax.image.resize(cams, (cams.shape[0], s, s), 'bilinear')
  return jnp.clip(maps, 0, 1), k, scores


def check_explainable(checkpoint) -> None:
  """Grad-CAM needs weights: an exported file is refused in one line."""
  if pathlib.Path(checkpoint).is_file():
    raise UsageError(f'--checkpoint={checkpoint} is a file, not a model '
                     'directory; Grad-CAM needs the weights',
                     'pass the model directory (an exported file cannot be '
                     'explained: pass the directory it came from)')


def explain_video(predictor, path: str, class_name: str = '',
                  layer: str = '') -> dict:
  """Grad-CAM of a video file (a model directory's `Predictor`), sampled
  and cropped as evaluate's 1x1 view, as `explain` makes it.

  Returns {'clip': uint8 `[T, S, S, 3]`, 'maps': float32 `[T, S, S]`,
  'class', 'class_index', 'probability', 'predicted', 'layer', 'title',
  'warning' (a short video), 'truncated' and 'mixed_sizes' (each '' or
  predict's note),
  'warnings': those that apply}.
  Raises UsageError for a class or layer the model does not have, and
  `video.VideoError` for a file that cannot be read.
  """
  cfg, classes = predictor.config, list(predictor.classes)
  target = None
  if class_name:
    if class_name not in classes:
      raise UsageError(
          f'--class={class_name} is not a class of this model',
          f'one of {", ".join(classes[:8])}{", ..." * (len(classes) > 8)}')
    target = classes.index(class_name)
  notes = []
  views, frames = read_video_views(path, cfg, warnings=notes)
  short = short_video_note(frames, cfg.model.num_segments)
  clip = views[0]  # [T, S, S, 3] uint8
  if len(views) > 1:  # data.test_sampling 'twice' / 'dense'
    notes.append(f'the first of the {len(views)} temporal clips '
                 f'data.test_sampling={cfg.data.test_sampling!r} takes is '
                 'explained (its class and probability are that clip\'s)')
  x = task.normalize(clip, *task.norm_stats(cfg.data))
  try:
    maps, k, scores = grad_cam(predictor.model, predictor.variables, x,
                               layer, target, predictor.fuse)
  except ValueError as e:
    raise UsageError(f'--layer={layer}: {e}', 'choose a backbone stage') from e
  probs = np.asarray(task.probabilities(scores, fuse=predictor.fuse))
  layer = layer or last_stage(predictor.model)
  grid = _perturbation_shapes(predictor.model, predictor.variables,
                              jnp.asarray(x)[None])['backbone'][layer]
  if grid.shape[-3:-1] == (1, 1):  # one value per frame: flat colours
    notes.append(f'{layer} of a {clip.shape[1]} px input is 1x1, so each '
                 'frame\'s map is one flat value; an earlier --layer gives '
                 'a finer map')
  return {'clip': clip, 'maps': maps, 'class': classes[k], 'class_index': k,
          'probability': float(probs[k]),
          'predicted': classes[int(probs.argmax())], 'layer': layer,
          'title': f'{pathlib.Path(path).name}: Grad-CAM of {classes[k]} '
                   f'(p={probs[k]:.2f}) at {layer}',
          'warning': short, **note_fields(notes),
          'warnings': [short] * bool(short) + notes}


def overlay(frames: np.ndarray, maps: np.ndarray,
            scale: int = 1) -> np.ndarray:
  """uint8 `[T, S*scale, S*scale, 3]`: each frame (uint8 `[T, S, S, 3]`)
  enlarged `scale` times with its map (`[T, S, S]` in [0, 1]) blended on it
  in the colours of `plot` (jet, alpha 0.45): the frames of a clip."""
  import cv2
  import matplotlib
  jet = matplotlib.colormaps['jet']
  out = []
  for f, m in zip(frames, maps):
    size = (f.shape[1] * scale, f.shape[0] * scale)
    big = cv2.resize(f, size, interpolation=cv2.INTER_NEAREST)
    heat = jet(cv2.resize(m.astype(np.float32), size))[..., :3] * 255
    out.append(np.round(0.55 * big + 0.45 * heat).astype(np.uint8))
  return np.stack(out)


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
