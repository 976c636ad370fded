"""TrainState, the pure jitted train and eval steps, and `setup`: the one
way every job (trainer, evaluate, bench) gets model, optimizer, state and
jitted steps for a config and a mesh.

`train_step(state, batch) -> (state, metrics)` is jitted with the state
donated and replicated and the batch sharded over the `data` mesh axis.
Batches arrive as uint8 clips and are normalised on the device. Samples that
failed to decode (valid=False) are left out of the loss and counted. A
non-finite loss or gradient leaves the state unchanged (the select costs
one pass over the parameters) and is flagged in the metrics, so a NaN never
reaches a checkpoint. The loss and the video scores are `models.task`'s.
Only trainable parameters are differentiated (`optimizer.split_frozen`):
the frozen ones get no gradient (zeros reach the optimizer, whose state
keeps the whole tree), so they are not in the clipped or logged norm.
"""
from __future__ import annotations

import collections
import copy
import dataclasses
import functools
import json
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax
from jax import lax
from jax.sharding import Mesh

from mstsm_jax import cpu, files
from mstsm_jax.models import task
from mstsm_jax.models.mstsm import build_model, variable_shapes
from mstsm_jax.training import sharding
from mstsm_jax.training.optimizer import (global_norm, make_optimizer,
                                          merge_params, split_frozen)


@flax.struct.dataclass
class TrainState:
  step: jnp.ndarray
  params: Any
  batch_stats: Any
  opt_state: Any
  rng: jnp.ndarray


def create_state(model, tx, rng, clip_shape, variables=None) -> TrainState:
  """Initialises (or adopts `variables`) and the optimizer state. Flax's
  lazy init: `init`'s values without its forward pass on a zero clip
  (jitted, 30% fewer ops to compile)."""
  init_rng, rng = jax.random.split(rng)
  if variables is None:
    variables = model.lazy_init(
        init_rng, jax.ShapeDtypeStruct(clip_shape, jnp.float32))
  params = variables['params']
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    batch_stats=variables.get('batch_stats', {}),
                    opt_state=tx.init(params), rng=jax.random.key_data(rng))


def train_step(state: TrainState, batch, *, model, tx, schedule, config):
  """One SGD step on a global batch {'clips' uint8, 'label', 'valid'}."""
  m, t = config.model, config.train
  rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
  x = task.preprocess(batch['clips'], config)
  valid = batch['valid']

  trainable, frozen = split_frozen(state.params, bn_mode=m.bn_mode,
                                   backbone=m.backbone)

  def loss_fn(trainable):
    (logits, aux), new = model.apply(
        {'params': merge_params(trainable, frozen),
         'batch_stats': state.batch_stats}, x, train=True,
        mutable=['batch_stats'], rngs={'dropout': rng})
    loss, parts = task.loss(logits, aux, batch['label'], valid=valid,
                            tfdem_weight=m.tfdem_weight,
                            label_smoothing=t.label_smoothing)
    parts['correct'] = ((logits.argmax(-1) == batch['label']) * valid).sum()
    return loss, (parts, new['batch_stats'])

  (loss, (out, batch_stats)), grads = jax.value_and_grad(
      loss_fn, has_aux=True)(trainable)
  grad_norm = global_norm(grads)
  grads = merge_params(grads, jax.tree.map(jnp.zeros_like, frozen))
  updates, opt_state = tx.update(grads, state.opt_state, state.params,
                                 grad_norm=grad_norm)
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  new = state.replace(step=state.step + 1,
                      params=optax.apply_updates(state.params, updates),
                      batch_stats=batch_stats, opt_state=opt_state)
  # Keep the old state (step included) if anything went non-finite: one
  # select per leaf on the scalar (jnp.where would broadcast it per leaf).
  new = jax.tree.map(lambda a, b: lax.select(finite, a, b), new, state)
  v = valid.astype(jnp.float32)
  metrics = {'loss': loss, 'grad_norm': grad_norm, 'lr': schedule(state.step),
             'nonfinite': 1 - finite.astype(jnp.int32),
             'skipped': (1 - v).sum(), 'samples': v.sum(), **out}
  return new, metrics


def eval_step(variables, batch, *, model, config):
  """Video scores `[B, classes]` for clips `[B, V, T, H, W, C]`
  (`task.scores` over the V views)."""
  clips = batch['clips']
  b, v = clips.shape[:2]
  x = task.preprocess(clips.reshape(b * v, *clips.shape[2:]), config)
  logits, aux = model.apply(variables, x, train=False)
  return task.scores(logits, aux, fuse=config.model.tfdem_fuse, views=v)


def jit_steps(model, tx, schedule, config, mesh):
  """The two steps jitted for `mesh`: state replicated, batch sharded."""
  rep, dat = sharding.replicated(mesh), sharding.data_sharded(mesh)
  train = None
  if tx is not None:
    train = cpu.jit(functools.partial(train_step, model=model, tx=tx,
                                      schedule=schedule, config=config),
                    in_shardings=(rep, dat), out_shardings=(rep, rep),
                    donate_argnums=(0,))
  evaluate = cpu.jit(functools.partial(eval_step, model=model, config=config),
                     in_shardings=(rep, dat), out_shardings=rep)
  return train, evaluate


@dataclasses.dataclass(frozen=True)
class Setup:
  """What `setup` builds for one config on one mesh.

  `train_step(state, batch) -> (state, metrics)` (None for evaluation only)
  and `eval_step(variables, views_batch) -> scores` are jitted with the
  state / variables replicated and the batch sharded over `data`.
  `clip_shape` is the `[1, T, S, S, C]` shape the model is initialised on.
  """
  model: Any
  mesh: Mesh
  clip_shape: tuple[int, ...]
  tx: optax.GradientTransformation | None
  schedule: optax.Schedule | None
  train_step: Callable | None
  eval_step: Callable

  def new_state(self, seed: int, variables=None) -> TrainState:
    """A step-0 TrainState replicated over the mesh: `variables` (e.g.
    fine-tuning weights) or a fresh init, the optimizer's initial state,
    and the RNG of `seed`."""
    return self._create(variables, jax.random.key(seed))

  @functools.cached_property
  def _create(self):
    """`create_state` jitted once per Setup: the seeds of one config trace
    it once."""
    return jax.jit(
        lambda v, r: create_state(self.model, self.tx, r, self.clip_shape,
                                  v),
        out_shardings=sharding.replicated(self.mesh))

  def abstract_state(self) -> TrainState:
    """The TrainState's shapes, dtypes and (replicated) shardings: what a
    checkpoint restores into."""
    rep = sharding.replicated(self.mesh)
    abstract = jax.eval_shape(lambda: create_state(
        self.model, self.tx, jax.random.key(0), self.clip_shape))
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=rep),
        abstract)

  def replicate(self, variables) -> dict:
    """Loaded variables placed for `eval_step`."""
    return jax.device_put(variables, sharding.replicated(self.mesh))


def variables_of(state: TrainState) -> dict:
  """The model variables a TrainState holds (what eval_step takes)."""
  return {'params': state.params, 'batch_stats': state.batch_stats}


# Config fields no jitted step reads: the host's data pipeline, the run's
# length and its bookkeeping (batch sizes only reach the programs as
# shapes). tests/test_train.py traces the steps of two configs that differ
# in all of them and compares the programs. It holds workdir.RESUMABLE's
# fields but is not built from it: a field a resume may change could be
# one a step reads (a learning rate).
HOST_FIELDS = (
    'seed', 'init_from', 'init_partial',
    'train.batch_size', 'train.epochs', 'train.max_steps',
    'train.log_every_steps', 'train.checkpoint_every_steps',
    'train.keep_checkpoints', 'train.eval_every_epochs',
    'eval.batch_size', 'eval.max_videos', 'eval.views',
    'data.dataset', 'data.data_dir', 'data.split', 'data.workers',
    'data.prefetch', 'data.synthetic_videos', 'data.synthetic_size',
    'data.synthetic_frames', 'data.synthetic_seed', 'data.resize_short',
    'data.scales', 'data.max_distort', 'data.flip', 'data.crop_offsets',
    'data.train_sampling', 'data.test_sampling', 'data.test_crops')


def steps_key(config) -> str:
  """`config` as JSON without its `HOST_FIELDS`: equal for two configs
  whose steps are the same programs."""
  return json.dumps({k: v for k, v in files.flatten(config).items()
                     if not files.ignored(k, HOST_FIELDS)}, sort_keys=True)


_SETUPS: collections.OrderedDict = collections.OrderedDict()
SETUPS_KEPT = 2  # the latest Setups, for the next run of the same config


def setup(config, mesh: Mesh, *, channels=None,
          steps_per_epoch: int | None = None) -> Setup:
  """Model, optimizer and jitted steps for `config` on `mesh`.

  `channels`: a pruned model's widths (modeldir.read_channels), None for
  dense. `steps_per_epoch`: the lr schedule's epoch length; None builds
  for evaluation only (no optimizer, no train step).

  The steps read neither the seed (it is in the state) nor the
  `HOST_FIELDS`, so a config that differs from a recent one only there
  gets the same Setup: the seeds of an ablation, a resumed run of another
  length and the splits of `splits` whose epochs have as many steps trace
  and compile their steps once
  (4-6 s a run for the ablation's model, besides the compilations that
  the persistent cache would serve).
  """
  key = (steps_key(config), mesh, channels, steps_per_epoch)
  if key in _SETUPS:
    _SETUPS.move_to_end(key)
    return _SETUPS[key]
  # A copy: the steps read it when they trace, after the caller's changes.
  _SETUPS[key] = built = _build(copy.deepcopy(config), mesh, channels,
                                steps_per_epoch)
  while len(_SETUPS) > SETUPS_KEPT:
    _SETUPS.popitem(last=False)
  return built


def _build(config, mesh, channels, steps_per_epoch) -> Setup:
  model = build_model(config.model, channels)
  s = config.data.crop_size
  clip_shape = (1, config.model.num_segments, s, s,
                task.in_channels(config.data))
  tx = schedule = None
  if steps_per_epoch is not None:
    params = variable_shapes(model, clip_shape)['params']
    tx, schedule = make_optimizer(config.train, config.model, params,
                                  steps_per_epoch)
  train, evaluate = jit_steps(model, tx, schedule, config, mesh)
  return Setup(model, mesh, clip_shape, tx, schedule, train, evaluate)
