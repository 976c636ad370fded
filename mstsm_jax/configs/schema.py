"""Every config field's type and valid range, and the one validator.

`FIELDS` maps each field of `base_config` ('train.max_steps') to a `Rule`:
a test and the words for its range. `validate(config)` checks a whole
config (a ConfigDict, or the dict a model directory's config.json holds),
then the ranges that tie fields together (crop_size <= resize_short, the
clip length a temporal module needs); the first violation is a UsageError
naming the field, the value and the range:

  --config.train.max_steps=-5: must be an integer >= 0 (0 = train.epochs)

The same rules check the jobs' flags (cli.FLAG_RULES) and the Python API
(`model_config`, which create_model uses), so a bad number is refused the
same way wherever it comes in, before any work starts.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import re
from typing import Any, Callable, Iterable

from mstsm_jax.configs.variants import (CAUSAL_TEMPORAL, MIN_SEGMENTS,
                                        TEMPORAL, VARIANTS)
from mstsm_jax.errors import UsageError


@dataclasses.dataclass(frozen=True)
class Rule:
  """`ok(value) -> bool` and the range in words ('an integer >= 1')."""
  words: str | Callable[[], str]  # a function: read at check time
  ok: Callable[[Any], bool]
  # the error line, where `name=value: must be <text>` is not the best one
  say: Callable[[str, Any], str] | None = None

  @property
  def text(self) -> str:
    return self.words() if callable(self.words) else self.words

  def fits(self, value) -> bool:
    try:
      return bool(self.ok(value))
    except Exception:  # noqa: BLE001 -- a value the test cannot read fails
      return False

  def check(self, name: str, value) -> None:
    """A UsageError `name=value: must be <text>` unless `value` fits."""
    if not self.fits(value):
      raise UsageError(self.say(name, value) if self.say else
                       f'{name}={show(value)}: must be {self.text}',
                       hint(name))


def show(value) -> str:
  """A value as the user would type it (strings quoted, to show '')."""
  if isinstance(value, str):
    return repr(value)
  if isinstance(value, (list, tuple)):
    return '(' + ', '.join(show(v) for v in value) + (
        ',)' if len(value) == 1 else ')')
  text = repr(value)
  return text if len(text) <= 60 else text[:57] + '...'


def hint(name: str) -> str:
  if name.startswith('--config.'):
    return f'fix {name.split("=")[0]} (or the config file)'
  return f'fix {name}' if name.startswith('--') else ''


# Types: a bool is not a number here (True would pass as 1).
def is_int(v) -> bool:
  return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def is_number(v) -> bool:
  return (isinstance(v, numbers.Real) and not isinstance(v, bool)
          and math.isfinite(v))


def _bounds(lo, hi, lo_open, hi_open) -> Callable[[Any], bool]:
  def inside(v):
    return ((lo is None or (v > lo if lo_open else v >= lo)) and
            (hi is None or (v < hi if hi_open else v <= hi)))
  return inside


def _range_text(lo, hi, lo_open, hi_open) -> str:
  if lo is not None and hi is not None:
    return (f'in {"(" if lo_open else "["}{lo}, {hi}'
            f'{")" if hi_open else "]"}')
  if lo is not None:
    return f'{">" if lo_open else ">="} {lo}'
  if hi is not None:
    return f'{"<" if hi_open else "<="} {hi}'
  return ''


def _note(text: str, note: str) -> str:
  return f'{text} ({note})' if note else text


def integer(lo=None, hi=None, note: str = '') -> Rule:
  """An int (not a bool) in [lo, hi]."""
  inside = _bounds(lo, hi, False, False)
  return Rule(_note(f'an integer {_range_text(lo, hi, False, False)}'
                    .rstrip(), note), lambda v: is_int(v) and inside(v))


def number(lo=None, hi=None, lo_open=False, hi_open=False,
           note: str = '') -> Rule:
  """A finite int or float (not nan or inf) in the range."""
  inside = _bounds(lo, hi, lo_open, hi_open)
  return Rule(_note(f'a finite number {_range_text(lo, hi, lo_open, hi_open)}'
                    .rstrip(), note), lambda v: is_number(v) and inside(v))


def one_of(choices: Iterable | Callable[[], Iterable], note: str = '',
           also: Callable[[str], bool] | None = None) -> Rule:
  """A string from `choices` (or a function returning them, read at check
  time: a registry); `also` admits more (e.g. dotted import paths)."""
  names = choices if callable(choices) else (lambda c=tuple(choices): c)

  def ok(v):
    return isinstance(v, str) and (v in tuple(names()) or
                                   bool(also and also(v)))
  return Rule(lambda: _note(f'one of {", ".join(map(str, names()))}', note),
              ok)


def text(note: str = '') -> Rule:
  return Rule(_note('a string', note), lambda v: isinstance(v, str))


def boolean() -> Rule:
  return Rule('True or False', lambda v: isinstance(v, bool))


def sequence(item: Rule, length: int | None = None, min_len: int = 0,
             note: str = '') -> Rule:
  """A tuple or list of `item`s: exactly `length`, or at least `min_len`."""
  count = f'{length} ' if length else f'{min_len} or more ' if min_len else ''
  return Rule(_note(f'a tuple of {count}values, each {item.text}', note),
              lambda v: isinstance(v, (tuple, list)) and all(
                  item.fits(x) for x in v) and (len(v) == length if length
                                                else len(v) >= min_len))


def comma_list(item: Rule, choices_text: str = '',
               unique: bool = False) -> Rule:
  """A flag value 'a,b,c' (at least one) whose items, parsed as ints or
  floats where the item rule wants numbers, each fit `item`; `unique`:
  each at most once (a variant, split or platform named twice would be
  run or lowered twice, or once under two names)."""
  def ok(v):
    parts = [p.strip() for p in v.split(',')]
    return (all(parts) and all(item.fits(_parse(p)) for p in parts) and
            not (unique and len(set(parts)) < len(parts)))
  return Rule(f'a comma-separated list of {choices_text or item.text}'
              + ', each once' * unique, ok)


def _parse(token: str):
  for kind in (int, float):
    try:
      return kind(token)
    except ValueError:
      pass
  return token


def matches(pattern: str, words: str, test=None) -> Rule:
  """A string matching `pattern` (full match) and `test(match)`."""
  def ok(v):
    m = isinstance(v, str) and re.fullmatch(pattern, v)
    return bool(m) and (test is None or test(m))
  return Rule(words, ok)


def either(*rules: Rule) -> Rule:
  return Rule(lambda: ' or '.join(r.text for r in rules),
              lambda v: any(r.fits(v) for r in rules))


# Backbones: the known names, or a registry's (`use_backbones`); a name with
# a dot or a colon ('pkg.module[:name]') is an import path the model
# registry resolves.
_backbones: Callable[[], Iterable[str]] = (
    lambda: ('resnet50', 'resnet101', 'efficientnet_b0'))


def backbone_names() -> tuple[str, ...]:
  return tuple(_backbones())


def use_backbones(names: Callable[[], Iterable[str]]) -> None:
  """Makes `model.backbone` accept what `names()` returns (the model
  layer's backbone registry calls this when it is imported)."""
  global _backbones
  _backbones = names


VIEWS = matches(r'([1-9]\d*)x([13])', 'CLIPSxCROPS with CLIPS >= 1 and '
                'CROPS 1 or 3, e.g. 1x1 or 10x3')
SEED = integer(0, 2**32 - 1)
POSITIVE = integer(1)
RATIO = number(0, 0.5, lo_open=True, note='e.g. 1/8 or 1/16')
PROBABILITY = number(0, 1, hi_open=True)

FIELDS: dict[str, Rule] = {
    'variant': one_of(VARIANTS),
    'seed': SEED,
    'init_from': text('a model directory, or empty'),
    'init_partial': boolean(),

    'model.backbone': dataclasses.replace(
        one_of(backbone_names,
               also=lambda v: '.' in v.strip('.') or ':' in v.strip(':'),
               note="or an import path 'pkg.module[:name]'"),
        say=lambda name, v: f'{name}: unknown backbone {show(v)}; valid: '
        f'{", ".join(backbone_names())} or an import path '
        "'pkg.module[:name]' whose module registers it"),
    'model.stage_sizes': sequence(POSITIVE, note="() = the backbone's"),
    'model.width': integer(0, note="0 = the backbone's"),
    'model.num_classes': integer(0, note='0 = from the prepared dataset'),
    'model.num_segments': POSITIVE,
    'model.temporal': one_of(TEMPORAL),
    'model.r_one': RATIO,
    'model.r_two': RATIO,
    'model.r_three': RATIO,
    'model.causal': boolean(),
    'model.tfdem': boolean(),
    'model.tfdem_tap': text("a backbone stage, or '' = the backbone's"),
    'model.tfdem_width': integer(0, note="0 = the backbone's"),
    'model.tfdem_reduce_stride': POSITIVE,
    'model.tfdem_conv_stride': POSITIVE,
    'model.tfdem_weight': number(0),
    'model.tfdem_fuse': boolean(),
    'model.dropout': PROBABILITY,
    'model.bn_mode': one_of(('train', 'frozen', 'partial')),
    'model.bn_momentum': number(0, 1),
    'model.dtype': one_of(('float32', 'bfloat16')),

    'data.dataset': one_of(('ucf101', 'hmdb51', 'ssv2', 'kinetics400',
                            'kinetics600', 'kinetics700', 'custom',
                            'synthetic', 'synthetic_hard',
                            'synthetic_far')),
    'data.data_dir': text('the folder prepare wrote, or empty'),
    'data.split': integer(1, 3),
    'data.resize_short': POSITIVE,
    'data.crop_size': POSITIVE,
    'data.scales': sequence(number(0, 1, lo_open=True), min_len=1),
    'data.max_distort': integer(0),
    'data.flip': boolean(),
    'data.crop_offsets': one_of(('five', 'tsm13')),
    'data.train_sampling': one_of(('edges', 'tsm', 'dense')),
    'data.test_sampling': one_of(('spread', 'tsm', 'twice', 'dense')),
    'data.test_crops': one_of(('resize', 'tsm', 'full_res')),
    'data.workers': integer(0, note='0 = in-process'),
    'data.prefetch': POSITIVE,
    'data.synthetic_videos': POSITIVE,
    'data.synthetic_size': POSITIVE,
    'data.synthetic_frames': POSITIVE,
    'data.synthetic_seed': SEED,
    'data.mean': sequence(number(), length=3),
    'data.std': sequence(number(0, lo_open=True), length=3),
    'data.modality': one_of(('rgb', 'flow')),
    'data.flow_stack': POSITIVE,
    'data.flow_mean': number(),
    'data.flow_std': number(0, lo_open=True),

    'train.batch_size': POSITIVE,
    'train.epochs': POSITIVE,
    'train.lr': number(0),
    'train.lr_boundaries': sequence(number(0), note='epochs'),
    'train.lr_decay': number(0, lo_open=True),
    'train.warmup_epochs': number(0),
    'train.momentum': number(0, 1, hi_open=True),
    'train.weight_decay': number(0),
    'train.fc_lr_mult': number(0),
    'train.bias_lr_mult': number(0),
    'train.clip_norm': number(0, note='0 = off'),
    'train.label_smoothing': PROBABILITY,
    'train.log_every_steps': POSITIVE,
    'train.checkpoint_every_steps': POSITIVE,
    'train.keep_checkpoints': POSITIVE,
    'train.eval_every_epochs': integer(0, note='0 = only at the end'),
    'train.max_steps': integer(0, note='0 = train.epochs'),

    'eval.views': VIEWS,
    'eval.batch_size': POSITIVE,
    'eval.max_videos': integer(0, note='0 = all'),
}
_ABSENT = object()


def _get(config, key: str):
  node = config
  for part in key.split('.'):
    try:
      node = node[part]
    except (KeyError, TypeError, IndexError, AttributeError):
      return _ABSENT
  return node


def validate(config, prefix: str = '--config.', keys: Iterable[str] = ()):
  """Checks `config` (ConfigDict or nested dict) field by field, then the
  ranges that tie fields together; returns it. A field the config lacks
  (a config.json from before the field existed) is not checked. `keys`
  limits the check to those fields (and the cross-field rules)."""
  for key in (keys or FIELDS):
    value = _get(config, key)
    if value is not _ABSENT:
      FIELDS[key].check(prefix + key, value)
  _cross_check(config, prefix)
  return config


def _check_variant(config, prefix: str) -> None:
  """`variant` names the run (its files, its final line, exports): a
  label the model fields contradict ('tsn' on an MSTSM-TFDEM model) is
  refused where those fields make another of the paper's variants."""
  fields = [_get(config, k) for k in ('variant', 'model.temporal',
                                      'model.tfdem', 'model.causal')]
  if _ABSENT in fields or not all(isinstance(f, (str, bool))
                                  for f in fields):
    return
  variant, temporal, tfdem, causal = fields
  made = f'{temporal}{"_tfdem" * tfdem}{"_online" * causal}'
  if made != variant and made in VARIANTS:
    raise UsageError(
        f'{prefix}variant={variant!r}, but model.temporal={temporal!r}, '
        f'model.tfdem={tfdem}, model.causal={causal} make {made!r}',
        f'fix --config.variant: pick the variant with --config=FILE:{made} '
        '(it sets those fields and names the run)')


def validate_model(model_cfg, prefix: str = 'model.'):
  """`validate` for a `config.model` alone (create_model, build_model):
  names read `model.num_classes='ten'` (`prefix`)."""
  validate({'model': model_cfg}, prefix[:-len('model.')] if prefix.endswith(
      'model.') else prefix, [k for k in FIELDS if k.startswith('model.')])
  return model_cfg


def _cross_check(config, prefix: str) -> None:
  _check_variant(config, prefix)
  crop, short = _get(config, 'data.crop_size'), _get(config,
                                                     'data.resize_short')
  if _ABSENT not in (crop, short) and crop > short:
    raise UsageError(f'{prefix}data.crop_size={crop}: must be <= '
                     f'data.resize_short={short} (crops come from frames '
                     'resized to that short side)',
                     hint(prefix + 'data.crop_size'))
  rule, views = _get(config, 'data.test_sampling'), _get(config, 'eval.views')
  clips = {'tsm': 1, 'twice': 2, 'dense': 10}.get(rule)
  if clips and isinstance(views, str) and not views.startswith(f'{clips}x'):
    raise UsageError(f'{prefix}eval.views={views!r}: data.test_sampling='
                     f'{rule!r} takes {clips} temporal clips',
                     f'use --config.eval.views={clips}x1 or {clips}x3')
  temporal = _get(config, 'model.temporal')
  segments = _get(config, 'model.num_segments')
  need = MIN_SEGMENTS.get(temporal, 1) if isinstance(temporal, str) else 1
  if segments is not _ABSENT and segments < need:
    raise UsageError(
        f'{prefix}model.num_segments={segments}: must be >= {need} for '
        f'model.temporal={temporal!r} (a {need - 1}-unit shift needs '
        f'{need} frames)', hint(prefix + 'model.num_segments'))
  if _get(config, 'model.causal') is True and (
      temporal not in (_ABSENT, *CAUSAL_TEMPORAL)):
    raise UsageError(
        f'{prefix}model.causal=True: model.temporal={temporal!r} has no '
        f'causal (online) reading; online variants use '
        f'{", ".join(CAUSAL_TEMPORAL)}', hint(prefix + 'model.causal'))
