r"""The paper's ablation (Tables 1-3) with seeds and paired intervals.

  python -m mstsm_jax.ablate --config=configs/synthetic_hard.py \
      [--variants=tsn,tsm,mstsm,mstsm2var,mstsm3,tsm_tfdem,mstsm_tfdem] \
      [--seeds=5] --workdir=runs/ablation [--json]

Trains and evaluates every variant with every seed (`config.seed` = 0, 1,
...; the data stay the same) in WORKDIR/<variant>/seed<k>. A finished run
keeps its result (result.json) and the inputs that made it (inputs.json:
the variant's whole config, seed and training length included). A re-run
with the same inputs reuses it and says so, so an interrupted ablation
resumes; with other inputs it is refused before any training, naming the
fields that differ, or, with --overwrite, trained again (a damaged
result.json too). The report of another plan (other variants or seeds) in
WORKDIR is replaced only with --overwrite. SIGTERM stops the
job once the running run has saved its checkpoint (exit 0 as `train`,
JSON {'preempted': true}); the same command resumes it.

Prints top-1 mean +- std (sample std over seeds), the paired difference to
TSM, parameters and GMACs per frame per variant, writes ablation.png (bars
with error bars) and ablation.json: {'variants': {name: {'top1_mean',
'top1_std', 'runs': [...], 'vs_tsm', 'params', 'gflops'}}, 'seconds'}.
A seed fixes the batch order and the initialisation's key for every variant,
so runs of one seed are paired: 'vs_tsm' = {'diffs': top-1 minus TSM's,
seed by seed, 'mean', 'ci95': [low, high], the two-sided 95% Student-t
interval of the mean (None for one seed)}, for every variant but tsm when
tsm ran. With --json that object is the last stdout line. A variant sets
`model.temporal`, `model.tfdem` and `model.causal` (configs.VARIANTS);
every other field is the config's, overrides included.
"""
from __future__ import annotations

import copy
import json
import math
import pathlib
import shutil
import time

import jax
import numpy as np
import scipy.stats
from absl import flags

from mstsm_jax import cli, files
from mstsm_jax.configs import VARIANTS
from mstsm_jax.console import LOG
from mstsm_jax.models import cost
from mstsm_jax.training import workdir as workdirs
from mstsm_jax.training.trainer import train_and_evaluate

# Config fields that do not change a finished run's result.
NOT_INPUTS = ('data.workers', 'data.prefetch', 'train.log_every_steps',
              'train.checkpoint_every_steps', 'train.keep_checkpoints')


def define_flags(fv):
  cli.define_config(fv)
  cli.define_json(fv)
  flags.DEFINE_string('variants', 'tsn,tsm,mstsm,mstsm2var,mstsm3,tsm_tfdem,'
                      'mstsm_tfdem', 'comma-separated paper variants',
                      flag_values=fv)
  flags.DEFINE_integer('seeds', 5, 'runs per variant (seeds 0..N-1)',
                       flag_values=fv)
  flags.DEFINE_string('workdir', None, 'parent of the per-run workdirs',
                      flag_values=fv)
  flags.DEFINE_bool('overwrite', False, 'train again the runs of WORKDIR '
                    'that were made from other inputs (or are damaged), '
                    'and replace the report of another plan',
                    flag_values=fv)
  flags.mark_flag_as_required('workdir', flag_values=fv)


def variants_of(fv) -> list[str]:
  """The variants to run (--variants: paper variants, each once, and
  --seeds >= 1 are checked by cli.FLAG_RULES before `main`)."""
  return [v.strip() for v in fv['variants'].value.split(',')]


def variant_config(config, variant: str, seed: int):
  """`config` as paper variant `variant` with `seed` (a new ConfigDict)."""
  temporal, tfdem, causal = VARIANTS[variant]
  c = copy.deepcopy(config)
  c.variant, c.seed = variant, seed
  c.model.temporal, c.model.tfdem, c.model.causal = temporal, tfdem, causal
  return c


REFERENCE = 'tsm'  # paired differences are taken against this variant


def paired(diffs) -> dict:
  """Mean of per-seed differences with its two-sided 95% t-interval
  (Student's t, n - 1 degrees of freedom): pairing by seed removes what
  the seeds share (init and data order), so it resolves smaller effects
  than two means +- std. One pair has no interval (None)."""
  d = np.asarray(diffs, float)
  if len(d) < 2:
    return {'diffs': d.tolist(), 'mean': float(d.mean()), 'ci95': None}
  half = scipy.stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(
      len(d))
  return {'diffs': d.tolist(), 'mean': float(d.mean()),
          'ci95': [float(d.mean() - half), float(d.mean() + half)]}


def summarize(results: dict, costs: dict) -> dict:
  """{'variants': {name: {'top1_mean', 'top1_std', 'runs', 'vs_tsm',
  ...}}}; 'vs_tsm' (`paired`) where tsm ran too, over their common
  seeds."""
  out = {}
  ref = {r['seed']: r['top1'] for r in results.get(REFERENCE, [])}
  for name, runs in results.items():
    top1 = np.array([r['top1'] for r in runs])
    out[name] = {'top1_mean': float(top1.mean()),
                 'top1_std': float(top1.std(ddof=1)) if len(top1) > 1
                 else 0.0,
                 'runs': runs, **costs[name]}
    common = [r for r in runs if r['seed'] in ref]
    if name != REFERENCE and common:
      out[name][f'vs_{REFERENCE}'] = paired(
          [r['top1'] - ref[r['seed']] for r in common])
  return {'variants': out}


def table(summary: dict) -> str:
  lines = [f'{"variant":<12} {"top-1 (%)":>16} {"runs":>5} '
           f'{f"- {REFERENCE} [95% CI]":>24} '
           f'{"params":>10} {"GMACs/frame":>12}']
  for name, v in summary['variants'].items():
    p = v.get(f'vs_{REFERENCE}')
    diff = ('' if p is None else f'{100 * p["mean"]:+.2f}' + (
        '' if p['ci95'] is None else
        ' [{:+.2f}, {:+.2f}]'.format(*(100 * x for x in p['ci95']))))
    lines.append(f'{name:<12} {100 * v["top1_mean"]:>8.2f} +- '
                 f'{100 * v["top1_std"]:<5.2f} {len(v["runs"]):>5} '
                 f'{diff:>24} '
                 f'{v["params"]:>10,} {v["gflops"]:>12.4f}')
  return '\n'.join(lines)


def plot(summary: dict, path) -> str:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  names = list(summary['variants'])
  mean = [100 * summary['variants'][n]['top1_mean'] for n in names]
  std = [100 * summary['variants'][n]['top1_std'] for n in names]
  fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 3.8))
  ax.bar(names, mean, yerr=std, capsize=4, color='tab:blue', alpha=0.8)
  for i, n in enumerate(names):
    ax.plot([i] * len(summary['variants'][n]['runs']),
            [100 * r['top1'] for r in summary['variants'][n]['runs']], 'k.')
  ax.set_ylabel('test top-1 (%)')
  ax.set_ylim(0, 100)
  ax.grid(axis='y', alpha=0.3)
  ax.set_title('ablation: mean +- std over seeds (dots: runs)')
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return str(path)


def inputs_of(config) -> dict:
  """What a run's result depends on: its whole config (variant, seed and
  training length included) as a JSON dict."""
  return json.loads(config.to_json_best_effort())


RESULT_KEYS = ('seed', 'top1', 'top5', 'mean_class_acc', 'seconds')


def check_run(run_dir: pathlib.Path, config, overwrite: bool) -> dict | None:
  """The result of the finished run of `config` in `run_dir`, read and
  checked now (reused), or None (it trains).

  A finished run made from other inputs, a started run of another config
  or a damaged result.json is refused in one line (the fields that
  differ, the file), or with `overwrite` removed so that it is trained
  again."""
  try:
    same = files.check_same_inputs(run_dir / 'inputs.json',
                                   inputs_of(config), f'run {run_dir}', '',
                                   ignore=NOT_INPUTS)
    if same and (run_dir / 'result.json').is_file():
      return read_result(run_dir / 'result.json')
    if not same:  # an unfinished run resumes only with the same config
      workdirs.check_resume(run_dir, config)
    return None
  except cli.UsageError as e:
    if not overwrite:
      raise cli.UsageError(e.message, 'pass --overwrite to train it again, '
                           'or another --workdir') from None
  print(f'--overwrite: removing {run_dir} (made from other inputs or '
        'damaged)', file=LOG)
  shutil.rmtree(run_dir)
  return None


def read_result(path: pathlib.Path) -> dict:
  """A finished run's result.json, or one line naming what is wrong."""
  try:
    r = json.loads(path.read_text())
    if not isinstance(r, dict):
      raise ValueError('not a JSON object')
    lacks = [k for k in RESULT_KEYS if k not in r]
    if lacks:
      raise ValueError(f'no {", ".join(lacks)}')
    bad = [k for k in RESULT_KEYS if isinstance(r[k], bool) or
           not isinstance(r[k], (int, float)) or not math.isfinite(r[k])
           or (k not in ('seed', 'seconds') and not 0 <= r[k] <= 1)]
    if bad:
      raise ValueError(f'{", ".join(bad)} not a number in range')
  except (ValueError, UnicodeDecodeError) as e:
    raise cli.UsageError(f'{path} is damaged ({str(e)[:80]})',
                         'delete it (the run trains again)') from None
  return r


def check_report(path: pathlib.Path, variants, seeds: int,
                 overwrite: bool) -> None:
  """The report of another plan (other variants or seeds) in the root is
  replaced only with `overwrite`; this plan's own report is brought up to
  date (resumed or re-run, its runs reused)."""
  png = path.with_suffix('.png')
  if not overwrite and png.is_file() and not path.is_file():
    raise cli.UsageError(f'{png} exists without its ablation.json (the '
                         'report of an unknown plan)',
                         'pass --overwrite to replace it, or another '
                         '--workdir')
  if overwrite or not path.is_file():
    return
  try:
    old = json.loads(path.read_text())['variants']
    plan = {v: len(old[v]['runs']) for v in old}
  except (ValueError, KeyError, TypeError, UnicodeDecodeError):
    plan = None
  if plan != {v: seeds for v in variants}:
    shown = ('unreadable' if plan is None else
             ', '.join(f'{v} x{n}' for v, n in plan.items()))
    raise cli.UsageError(
        f'{path} reports another plan ({shown}; this one: '
        f'{", ".join(variants)} x{seeds} seeds)',
        'pass --overwrite to replace it and its PNG (finished runs of the '
        'same inputs are reused either way), or another --workdir')


def train_run(config, run_dir: pathlib.Path) -> dict | None:
  """Trains and evaluates one run; records its result, then its inputs
  (so only a finished run is ever reused). None when SIGTERM stopped it
  (its checkpoint is saved: the same command resumes it)."""
  full = train_and_evaluate(config, run_dir)
  if full.get('preempted'):
    return None
  r = {'seed': config.seed, 'top1': full['top1'], 'top5': full['top5'],
       'mean_class_acc': full['mean_class_acc'],
       'seconds': full['seconds'], 'workdir': str(run_dir)}
  files.write_json(run_dir / 'result.json', r)
  files.write_json(run_dir / 'inputs.json', inputs_of(config))
  return r


def run_all(plan: list, root: pathlib.Path) -> dict | None:
  """Every (variant, seed, config, reused result or None) of `plan`:
  {variant: [results]}, the others trained, with progress and ETA; None
  when SIGTERM stopped a run."""
  results = {}
  t0, done_here = time.time(), 0
  left = sum(not reuse for *_, reuse in plan)
  for k, (variant, seed, c, reuse) in enumerate(plan):
    run_dir = root / variant / f'seed{seed}'
    tag = f'[{k + 1}/{len(plan)}] {variant} seed {seed}'
    if reuse:
      r = reuse
      print(f'{tag}: top-1 {100 * r["top1"]:.2f}% (reused: same inputs as '
            'before)', file=LOG)
    else:
      print(tag, file=LOG)
      r = train_run(c, run_dir)
      if r is None:
        print(f'{tag}: stopped (SIGTERM or Ctrl-C), its checkpoint saved; '
              'the same command resumes it', file=LOG)
        return None
      done_here, left = done_here + 1, left - 1
      eta = (time.time() - t0) / done_here * left
      print(f'{tag}: top-1 {100 * r["top1"]:.2f}% in {r["seconds"]:.0f}s; '
            f'ETA {eta / 60:.1f} min', file=LOG)
    results.setdefault(variant, []).append(r)
  return results


def main(fv, argv):
  del argv
  variants = variants_of(fv)
  root = files.check_writable(fv['workdir'].value)
  plan = []  # every run checked before the first one trains
  for variant in variants:
    for seed in range(fv['seeds'].value):
      c = variant_config(fv['config'].value, variant, seed)
      plan.append((variant, seed, c, check_run(
          root / variant / f'seed{seed}', c, fv['overwrite'].value)))
  check_report(root / 'ablation.json', variants, fv['seeds'].value,
               fv['overwrite'].value)
  if not jax.config.jax_compilation_cache_dir:  # seeds reuse compilations
    jax.config.update('jax_compilation_cache_dir', str(root / '.jax_cache'))
  costs = {}
  for variant, _, c, _ in plan:
    if variant not in costs:
      res = cost.of_config(c)
      costs[variant] = {'params': res['params'],
                        'gflops': round(res['macs_per_frame'] / 1e9, 4)}
  t0 = time.time()
  results = run_all(plan, root)
  if results is None:  # as train: a preempted job saved its state
    cli.emit_json(fv, {'preempted': True})
    return 0
  summary = summarize(results, costs)
  summary['seconds'] = round(time.time() - t0, 1)
  print(table(summary))
  summary['files'] = [plot(summary, root / 'ablation.png'),
                      str(root / 'ablation.json')]
  files.write_json(root / 'ablation.json', summary)
  print(f'wrote {root / "ablation.png"} and {root / "ablation.json"}',
        file=LOG)
  cli.emit_json(fv, summary)


if __name__ == '__main__':
  cli.main_entry(define_flags, main, __doc__)
