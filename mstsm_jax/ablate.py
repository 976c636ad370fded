r"""The paper's ablation (Tables 2-3) with seeds and error bars.

  python -m mstsm_jax.ablate --config=configs/synthetic_hard.py \
      --variants=tsn,tsm,mstsm,mstsm2var,mstsm3,tsm_tfdem,mstsm_tfdem \
      --seeds=3 --workdir=runs/ablation [--json]

Trains and evaluates every variant with every seed (`config.seed` = 0, 1,
...; the data stay the same) in WORKDIR/<variant>/seed<k>. A finished run
(its result.json) is not redone, so an interrupted ablation resumes. Prints
top-1 mean +- std (sample std over seeds), parameters and GMACs per frame
per variant, writes ablation.png (bars with error bars) and ablation.json:
{'variants': {name: {'top1_mean', 'top1_std', 'runs': [...], 'params',
'gflops'}}}; with --json that object is the last stdout line. A variant
sets `model.temporal`, `model.tfdem` and `model.causal` (configs.VARIANTS);
every other field is the config's, overrides included.
"""
from __future__ import annotations

import copy
import json
import time

from absl import flags

from mstsm_jax import cli
from mstsm_jax.console import LOG


def define_flags(fv):
  cli.define_config(fv)
  cli.define_json(fv)
  flags.DEFINE_string('variants', 'tsn,tsm,mstsm,mstsm2var,mstsm3,tsm_tfdem,'
                      'mstsm_tfdem', 'comma-separated paper variants',
                      flag_values=fv)
  flags.DEFINE_integer('seeds', 3, 'runs per variant (seeds 0..N-1)',
                       flag_values=fv)
  flags.DEFINE_string('workdir', None, 'parent of the per-run workdirs',
                      flag_values=fv)
  flags.mark_flag_as_required('workdir', flag_values=fv)


def variant_config(config, variant: str, seed: int):
  """`config` as paper variant `variant` with `seed` (a new ConfigDict)."""
  from mstsm_jax.configs import VARIANTS
  temporal, tfdem, causal = VARIANTS[variant]
  c = copy.deepcopy(config)
  c.variant, c.seed = variant, seed
  c.model.temporal, c.model.tfdem, c.model.causal = temporal, tfdem, causal
  return c


def summarize(results: dict, costs: dict) -> dict:
  """{'variants': {name: {'top1_mean', 'top1_std', 'runs', ...}}}."""
  import numpy as np
  out = {}
  for name, runs in results.items():
    top1 = np.array([r['top1'] for r in runs])
    out[name] = {'top1_mean': float(top1.mean()),
                 'top1_std': float(top1.std(ddof=1)) if len(top1) > 1
                 else 0.0,
                 'runs': runs, **costs[name]}
  return {'variants': out}


def table(summary: dict) -> str:
  lines = [f'{"variant":<12} {"top-1 (%)":>16} {"runs":>5} '
           f'{"params":>12} {"GMACs/frame":>12}']
  for name, v in summary['variants'].items():
    lines.append(f'{name:<12} {100 * v["top1_mean"]:>8.2f} +- '
                 f'{100 * v["top1_std"]:<5.2f} {len(v["runs"]):>5} '
                 f'{v["params"]:>12,} {v["gflops"]:>12.4f}')
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


def main(fv, argv):
  del argv
  import jax

  from mstsm_jax.configs import VARIANTS
  from mstsm_jax.models import cost
  from mstsm_jax.training.trainer import train_and_evaluate
  from mstsm_jax.files import check_writable, write_json
  variants = [v.strip() for v in fv['variants'].value.split(',') if v]
  bad = [v for v in variants if v not in VARIANTS]
  if bad or not variants:
    raise cli.UsageError(f'--variants: unknown {bad}',
                         f'valid: {", ".join(VARIANTS)}')
  if fv['seeds'].value < 1:
    raise cli.UsageError(f'--seeds={fv["seeds"].value}', 'use 1 or more')
  root = check_writable(fv['workdir'].value)
  if not jax.config.jax_compilation_cache_dir:  # seeds reuse compilations
    jax.config.update('jax_compilation_cache_dir', str(root / '.jax_cache'))
  config = fv['config'].value
  runs = [(v, s) for v in variants for s in range(fv['seeds'].value)]
  results = {v: [] for v in variants}
  costs = {}
  t0, done_here = time.time(), 0
  for k, (variant, seed) in enumerate(runs):
    c = variant_config(config, variant, seed)
    if variant not in costs:
      res = cost.analyse(c.model, image_size=c.data.crop_size)
      costs[variant] = {'params': res['params'],
                        'gflops': round(res['macs_per_frame'] / 1e9, 4)}
    workdir = root / variant / f'seed{seed}'
    done = workdir / 'result.json'
    if done.is_file():
      r = json.loads(done.read_text())
      print(f'[{k + 1}/{len(runs)}] {variant} seed {seed}: top-1 '
            f'{100 * r["top1"]:.2f}% (done before)', file=LOG)
    else:
      print(f'[{k + 1}/{len(runs)}] {variant} seed {seed}', file=LOG)
      full = train_and_evaluate(c, workdir)
      r = {'seed': seed, 'top1': full['top1'], 'top5': full['top5'],
           'mean_class_acc': full['mean_class_acc'],
           'seconds': full['seconds'], 'workdir': str(workdir)}
      write_json(done, r)
      done_here += 1
      left = sum(not (root / v / f'seed{s}' / 'result.json').is_file()
                 for v, s in runs[k + 1:])
      eta = (time.time() - t0) / done_here * left
      print(f'[{k + 1}/{len(runs)}] {variant} seed {seed}: top-1 '
            f'{100 * r["top1"]:.2f}% in {r["seconds"]:.0f}s; ETA '
            f'{eta / 60:.1f} min', file=LOG)
    results[variant].append(r)
  summary = summarize(results, costs)
  summary['seconds'] = round(time.time() - t0, 1)
  print(table(summary))
  summary['files'] = [plot(summary, root / 'ablation.png'),
                      str(root / 'ablation.json')]
  write_json(root / 'ablation.json', summary)
  print(f'wrote {root / "ablation.png"} and {root / "ablation.json"}',
        file=LOG)
  cli.emit_json(fv, summary)


if __name__ == '__main__':
  cli.main_entry(define_flags, main, __doc__)
