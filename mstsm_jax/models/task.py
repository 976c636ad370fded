"""The task layer: what turns clips into a loss and into video scores.

One definition each, used by the train step, the evaluator, `Predictor`,
`predict` and the public API (`mstsm_jax.loss`, `mstsm_jax.scores`,
`mstsm_jax.normalize`):

- `normalize`: uint8 clips -> (x / 255 - mean) / std, on the device;
  `preprocess(clips, config)`: the same with the config's statistics and
  dtype, what every job calls.
- `loss`: L = CE(main) + tfdem_weight * CE(TFDEM) (paper eq. 2-4), label
  smoothing, and a `valid` mask that leaves undecodable clips out.
- `scores`: logits -> video scores: the main logits, or softmax(main) +
  softmax(TFDEM) with `tfdem_fuse`, averaged over a video's views.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def in_channels(data_cfg) -> int:
  """Input channels: 3 (RGB) or 2 x flow_stack (flow)."""
  if data_cfg.modality not in ('rgb', 'flow'):
    raise ValueError(f'data.modality={data_cfg.modality!r}; valid: rgb, flow')
  return 3 if data_cfg.modality == 'rgb' else 2 * data_cfg.flow_stack


def norm_stats(data_cfg):
  """(mean, std) in [0, 1] units for `data_cfg.modality` (rgb | flow)."""
  if data_cfg.modality == 'flow':
    return data_cfg.flow_mean, data_cfg.flow_std
  return tuple(data_cfg.mean), tuple(data_cfg.std)


def normalize(clips, mean, std, dtype=jnp.float32):
  """uint8 clips `[..., C]` -> (x / 255 - mean) / std in `dtype`."""
  mean = jnp.asarray(mean, jnp.float32) * 255
  inv = 1 / (jnp.asarray(std, jnp.float32) * 255)
  return ((clips.astype(jnp.float32) - mean) * inv).astype(dtype)


DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def preprocess(clips, config):
  """uint8 pixels `[..., C]` (clips or frames) -> the model's input: each
  channel normalised with `config.data`'s statistics, cast to
  `config.model.dtype`. The one place a job turns pixels into inputs."""
  return normalize(clips, *norm_stats(config.data),
                   DTYPES[config.model.dtype])


def cross_entropy(logits, labels, label_smoothing: float = 0.0):
  """Per-example CE `[N]` against (smoothed) one-hot labels."""
  target = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]),
                               label_smoothing)
  return optax.softmax_cross_entropy(logits, target)


def loss(logits, tfdem_logits, labels, *, valid=None,
         tfdem_weight: float = 1.0, label_smoothing: float = 0.0):
  """L_total = CE(main) + tfdem_weight * CE(TFDEM), means over valid clips.

  Args:
    logits, tfdem_logits: `[N, classes]` (tfdem_logits None without TFDEM).
    labels: `[N]` ints. valid: `[N]` bool or None (all valid).
  Returns:
    (total, {'loss_main', ['loss_tfdem']}).
  """
  w = (jnp.ones(labels.shape, jnp.float32) if valid is None
       else valid.astype(jnp.float32))
  n = jnp.maximum(w.sum(), 1.0)
  parts = {'loss_main': (cross_entropy(logits, labels, label_smoothing)
                         * w).sum() / n}
  total = parts['loss_main']
  if tfdem_logits is not None:
    parts['loss_tfdem'] = (cross_entropy(tfdem_logits, labels,
                                         label_smoothing) * w).sum() / n
    total = total + tfdem_weight * parts['loss_tfdem']
  return total, parts


def scores(logits, tfdem_logits=None, *, fuse: bool = False,
           views: int = 1):
  """Video scores `[N, classes]` from `[N * views, classes]` logits.

  `fuse`: softmax(main) + softmax(TFDEM) (the paper's optional fusion),
  else the main logits; then the mean over each video's `views`.
  """
  if fuse and tfdem_logits is not None:
    logits = jax.nn.softmax(logits) + jax.nn.softmax(tfdem_logits)
  return logits.reshape(-1, views, logits.shape[-1]).mean(axis=1)


def probabilities(video_scores, fuse: bool = False):
  """Scores -> class probabilities: fused scores sum to 2 and are halved,
  logits go through a softmax."""
  if fuse:
    return video_scores / video_scores.sum(-1, keepdims=True)
  return jax.nn.softmax(video_scores, axis=-1)
