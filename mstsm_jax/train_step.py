"""TrainState and the pure, jitted train and eval steps.

`train_step(state, batch) -> (state, metrics)` is jitted with the state
donated and replicated and the batch sharded over the `data` mesh axis.
Batches arrive as uint8 clips and are normalised on the device. Samples that
failed to decode (valid=False) are left out of the loss and counted. A
non-finite loss or gradient leaves the state unchanged (the select costs
one pass over the parameters) and is flagged in the metrics, so a NaN never
reaches a checkpoint.
"""
from __future__ import annotations

import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from mstsm_jax.data.pipeline import norm_stats, normalize
from mstsm_jax.models.mstsm import DTYPES


@flax.struct.dataclass
class TrainState:
  step: jnp.ndarray
  params: Any
  batch_stats: Any
  opt_state: Any
  rng: jnp.ndarray


def create_state(model, tx, rng, clip_shape, variables=None) -> TrainState:
  """Initialises (or adopts `variables`) and the optimizer state."""
  init_rng, rng = jax.random.split(rng)
  if variables is None:
    variables = model.init(init_rng, jnp.zeros(clip_shape, jnp.float32))
  params = variables['params']
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    batch_stats=variables.get('batch_stats', {}),
                    opt_state=tx.init(params), rng=jax.random.key_data(rng))


def per_example_ce(logits, labels, smoothing):
  target = optax.smooth_labels(jax.nn.one_hot(labels, logits.shape[-1]),
                               smoothing)
  return optax.softmax_cross_entropy(logits, target)


def train_step(state: TrainState, batch, *, model, tx, schedule, config):
  """One SGD step on a global batch {'clips' uint8, 'label', 'valid'}."""
  m, t = config.model, config.train
  rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
  x = normalize(batch['clips'], *norm_stats(config.data), DTYPES[m.dtype])
  valid = batch['valid'].astype(jnp.float32)
  n_valid = jnp.maximum(valid.sum(), 1.0)

  def loss_fn(params):
    (logits, aux), new = model.apply(
        {'params': params, 'batch_stats': state.batch_stats}, x, train=True,
        mutable=['batch_stats'], rngs={'dropout': rng})
    ce = per_example_ce(logits, batch['label'], t.label_smoothing)
    loss_main = (ce * valid).sum() / n_valid
    out = {'loss_main': loss_main,
           'correct': ((logits.argmax(-1) == batch['label']) * valid).sum()}
    loss = loss_main
    if aux is not None:
      out['loss_tfdem'] = (per_example_ce(aux, batch['label'],
                                          t.label_smoothing)
                           * valid).sum() / n_valid
      loss = loss + m.tfdem_weight * out['loss_tfdem']
    return loss, (out, new['batch_stats'])

  (loss, (out, batch_stats)), grads = jax.value_and_grad(
      loss_fn, has_aux=True)(state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  grad_norm = optax.tree.norm(grads)
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  new = state.replace(step=state.step + 1,
                      params=optax.apply_updates(state.params, updates),
                      batch_stats=batch_stats, opt_state=opt_state)
  # Keep the old state (step included) if anything went non-finite.
  new = jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, state)
  metrics = {'loss': loss, 'grad_norm': grad_norm, 'lr': schedule(state.step),
             'nonfinite': 1 - finite.astype(jnp.int32),
             'skipped': (1 - valid).sum(), 'samples': valid.sum(), **out}
  return new, metrics


def eval_step(variables, batch, *, model, config):
  """Video scores `[B, classes]` for clips `[B, V, T, H, W, 3]`: logits
  (or, with tfdem_fuse, softmax(main) + softmax(TFDEM)) averaged over the
  V views."""
  clips = batch['clips']
  b, v = clips.shape[:2]
  x = normalize(clips.reshape(b * v, *clips.shape[2:]),
                *norm_stats(config.data), DTYPES[config.model.dtype])
  logits, aux = model.apply(variables, x, train=False)
  if config.model.tfdem_fuse and aux is not None:
    logits = jax.nn.softmax(logits) + jax.nn.softmax(aux)
  return logits.reshape(b, v, -1).mean(axis=1)


def jit_steps(model, tx, schedule, config, mesh):
  """The two steps jitted for `mesh`: state replicated, batch sharded."""
  from mstsm_jax import sharding
  rep, dat = sharding.replicated(mesh), sharding.data_sharded(mesh)
  train = jax.jit(functools.partial(train_step, model=model, tx=tx,
                                    schedule=schedule, config=config),
                  in_shardings=(rep, dat), out_shardings=(rep, rep),
                  donate_argnums=(0,))
  evaluate = jax.jit(functools.partial(eval_step, model=model, config=config),
                     in_shardings=(rep, dat), out_shardings=rep)
  return train, evaluate
