"""The paper's optimizer (SPEC §5) as optax, with TSM's parameter policy.

SGD, momentum 0.9, L2 weight decay 5e-4 added to the gradient (as PyTorch's
SGD `weight_decay`) only on conv and dense kernels (TSM: no decay on BN and
biases), global-norm clipping (TSM: 20) of the raw gradient by the norm the
train step computes once (`global_norm`, passed as `grad_norm`), lr divided by
10 at epoch boundaries with optional linear warmup. Per-parameter learning
rate multipliers (TSM's 5x new classifier, 2x biases) are one tree of scales
applied after momentum, which is exactly a per-group lr.

Frozen parameters (the backbone's BN scale and bias under bn_mode frozen,
all but the stem's under partial: TSM's `requires_grad=False`) take no part
in the step: the train step differentiates only the trainable ones
(`split_frozen`), so frozen ones add nothing to the clipped norm or the
logged grad_norm, are never decayed, and their update is exactly 0.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import traverse_util

from mstsm_jax.errors import UsageError
from mstsm_jax.models.mstsm import param_role


def lr_schedule(cfg, steps_per_epoch: int) -> optax.Schedule:
  """Piecewise constant: lr / decay**k after the k-th boundary epoch,
  after a linear warmup when there is one. `join_schedules` counts the
  second schedule's steps from the warmup's end, so its boundaries are
  moved back by the warmup: they stay at their epochs."""
  warm, steps = schedule_steps(cfg, steps_per_epoch)
  decay = optax.piecewise_constant_schedule(
      cfg.lr, {s - warm: 1 / cfg.lr_decay for s in steps})
  if not warm:
    return decay
  return optax.join_schedules(
      [optax.linear_schedule(cfg.lr / warm, cfg.lr, warm), decay], [warm])


def schedule_steps(cfg, steps_per_epoch: int) -> tuple[int, list[int]]:
  """(warmup steps, the step of each lr boundary). Boundaries must fall
  on distinct steps in increasing order: two on one step would be one
  drop (a dict key), silently."""
  warm = int(round(cfg.warmup_epochs * steps_per_epoch))
  steps = [int(round(e * steps_per_epoch)) for e in cfg.lr_boundaries]
  if any(b <= a for a, b in zip(steps, steps[1:])):
    raise UsageError(
        f'train.lr_boundaries={tuple(cfg.lr_boundaries)} (epochs) fall on '
        f'steps {steps} at {steps_per_epoch} steps per epoch: each must '
        'come after the one before, or the drops merge',
        'give increasing epochs at least one step apart')
  return warm, steps


def schedule_notes(cfg, steps_per_epoch: int, total_steps: int) -> list[str]:
  """What of the lr schedule a run of `total_steps` never reaches: a
  shortened run (train.epochs, train.max_steps) is common, so said, not
  refused."""
  warm, steps = schedule_steps(cfg, steps_per_epoch)
  notes = [f'note: train.lr_boundaries epoch {e} (step {s}) is past the '
           f'run\'s {total_steps} steps: that lr drop never happens'
           for e, s in zip(cfg.lr_boundaries, steps) if s >= total_steps]
  if warm > total_steps:
    notes.append(f'note: train.warmup_epochs={cfg.warmup_epochs} is '
                 f'{warm} steps, past the run\'s {total_steps}: the lr '
                 f'never reaches train.lr={cfg.lr}')
  return notes


def path_names(path) -> tuple[str, ...]:
  return tuple(getattr(p, 'key', str(p)) for p in path)


def decay_mask(params, *, bn_mode: str = 'train',
               backbone: str = 'resnet50'):
  """True for conv/dense kernels that train: the only weights that get L2
  decay."""
  return jax.tree_util.tree_map_with_path(
      lambda p, _: path_names(p)[-1] == 'kernel' and not is_frozen(
          path_names(p), bn_mode=bn_mode, backbone=backbone), params)


def is_frozen(names, *, bn_mode: str, backbone: str = 'resnet50') -> bool:
  """True for a parameter `bn_mode` holds fixed: backbone normalisation
  (all under 'frozen', all but the stem's under 'partial'). TFDEM's BNs
  are 'tfdem': a new branch always learns."""
  if bn_mode not in ('frozen', 'partial'):
    return False
  role = param_role(tuple(names), backbone)
  return role == 'norm' or (role == 'stem_norm' and bn_mode == 'frozen')


def split_frozen(params, *, bn_mode: str, backbone: str = 'resnet50'):
  """(trainable, frozen): two flat {path tuple: array} dicts of `params`;
  `merge_params` puts them back together."""
  flat = traverse_util.flatten_dict(params)
  frozen = {k: v for k, v in flat.items()
            if is_frozen(k, bn_mode=bn_mode, backbone=backbone)}
  return {k: v for k, v in flat.items() if k not in frozen}, frozen


def merge_params(trainable: dict, frozen: dict):
  """The params pytree from `split_frozen`'s two flat dicts."""
  return traverse_util.unflatten_dict({**trainable, **frozen})


def lr_multipliers(params, *, bn_mode: str, fc_lr_mult: float = 1.0,
                   bias_lr_mult: float = 1.0, backbone: str = 'resnet50'):
  """Per-leaf lr scale from the model's parameter roles: 0 for frozen
  parameters (`is_frozen`), `fc_lr_mult` for the classifier heads,
  `bias_lr_mult` for conv and dense biases."""
  def mult(path, _):
    names = path_names(path)
    if is_frozen(names, bn_mode=bn_mode, backbone=backbone):
      return 0.0
    role = param_role(names, backbone)
    is_norm = role in ('norm', 'stem_norm') or (
        role == 'tfdem' and names[-2].startswith('bn'))
    m = fc_lr_mult if role == 'classifier' else 1.0
    return m * (bias_lr_mult if names[-1] == 'bias' and not is_norm else 1.0)
  return jax.tree_util.tree_map_with_path(mult, params)


def scale_by_tree(scales) -> optax.GradientTransformation:
  def update(updates, state, params=None):
    del params
    return jax.tree.map(lambda u, s: u * s, updates, scales), state
  return optax.GradientTransformation(lambda _: optax.EmptyState(), update)


def global_norm(tree) -> jnp.ndarray:
  """The L2 norm of all leaves of `tree` together: one dot product per leaf
  (optax.tree.norm takes five ops per leaf: squares of the real and the
  imaginary part, their sum, a reduction; a train step traces and compiles
  each of them for every parameter)."""
  return jnp.sqrt(sum(jnp.vdot(x, x) for x in jax.tree.leaves(tree)))


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
  """optax.clip_by_global_norm, on the norm the caller has computed when
  it gives `update` one as `grad_norm` (the train step logs it too):
  updates scaled by max_norm / grad_norm where that is below 1, one
  multiply per leaf. Its state is optax's (empty): checkpoints keep their
  structure."""
  def update(updates, state, params=None, *, grad_norm=None):
    del params
    if grad_norm is None:
      grad_norm = global_norm(updates)
    scale = jnp.where(grad_norm < max_norm, 1.0, max_norm / grad_norm)
    return jax.tree.map(lambda u: u * scale.astype(u.dtype), updates), state
  return optax.GradientTransformationExtraArgs(optax.init_empty_state, update)


def make_optimizer(train_cfg, model_cfg, params, steps_per_epoch: int):
  """Returns (optax transformation, lr schedule). Its `update` takes the
  gradient's `global_norm` as the keyword `grad_norm`."""
  schedule = lr_schedule(train_cfg, steps_per_epoch)
  parts = []
  if train_cfg.clip_norm:
    parts.append(clip_by_global_norm(train_cfg.clip_norm))
  if train_cfg.weight_decay:
    parts.append(optax.add_decayed_weights(
        train_cfg.weight_decay, decay_mask(params, bn_mode=model_cfg.bn_mode,
                                           backbone=model_cfg.backbone)))
  parts.append(optax.sgd(schedule, momentum=train_cfg.momentum or None))
  mults = lr_multipliers(params, bn_mode=model_cfg.bn_mode,
                         fc_lr_mult=train_cfg.fc_lr_mult,
                         bias_lr_mult=train_cfg.bias_lr_mult,
                         backbone=model_cfg.backbone)
  if any(m != 1.0 for m in jax.tree.leaves(mults)):
    parts.append(scale_by_tree(jax.tree.map(jnp.float32, mults)))
  return optax.chain(*parts), schedule
