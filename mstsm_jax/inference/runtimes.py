"""CPU runtimes for exported files: XLA (jax.export's own) or IREE.

An exported file (inference/export.py) holds StableHLO. `callable_for(
exported, runtime)` returns a function of numpy arrays (the exported
function's flattened inputs) -> its outputs as numpy arrays, run by:

- 'xla': `Exported.call`, jax's CPU compiler;
- 'iree': the OpenXLA deployment compiler and runtime (`pip install -e
  '.[cpu-runtime]'`): the StableHLO is compiled for this machine's CPU
  (`llvm-cpu`, `--iree-llvmcpu-target-cpu=host`, O3, data tiling,
  microkernels, aggressive fusion: the fastest of the settings measured in
  docs/performance.md) on first use and cached by content under
  ~/.cache/mstsm_jax/iree (or $MSTSM_IREE_CACHE). IREE needs static
  shapes: export with `--batch=N`. IREE 3.13 does not compile a strided 3x3
  convolution whose output is 1x1 (a ResNet fed under 48 px); that is a
  one-line error naming the fix.
"""
from __future__ import annotations

import hashlib
import os
import pathlib

import jax
import numpy as np

from mstsm_jax.errors import UsageError

RUNTIMES = ('xla', 'iree')
IREE_FLAGS = ('--iree-llvmcpu-target-cpu=host', '--iree-opt-level=O3',
              '--iree-opt-data-tiling', '--iree-llvmcpu-enable-ukernels=all',
              '--iree-dispatch-creation-enable-aggressive-fusion')


def available() -> list[str]:
  """The runtimes installed here."""
  out = ['xla']
  try:
    import iree.compiler  # noqa: F401
    import iree.runtime  # noqa: F401
    out.append('iree')
  except ImportError:
    pass
  return out


def check(runtime: str) -> None:
  if runtime not in RUNTIMES:
    raise UsageError(f'--runtime={runtime}',
                     f'valid: {", ".join(RUNTIMES)}')
  if runtime not in available():
    raise UsageError(f'--runtime={runtime}: IREE is not installed',
                     "pip install -e '.[cpu-runtime]'")


def callable_for(exported, runtime: str = 'xla'):
  """fn(*flat numpy inputs) -> output pytree of numpy arrays."""
  check(runtime)
  if runtime == 'xla':
    def run(*args):
      return jax.tree.map(np.asarray, exported.call(
          *jax.tree.unflatten(exported.in_tree, list(args))[0]))
    return run
  if any(not isinstance(d, int) for a in exported.in_avals
         for d in a.shape):
    raise UsageError('IREE needs static shapes; this file was exported '
                     'with a symbolic batch',
                     're-export it with --batch=N (e.g. --batch=1)')
  main = _iree_main(exported.mlir_module())
  kept = sorted(exported.module_kept_var_idx)  # jax drops unused inputs

  def run(*args):
    # Copies: the runtime reuses its output buffers on the next call.
    out = main(*[np.ascontiguousarray(args[i]) for i in kept])
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return jax.tree.unflatten(exported.out_tree,
                              [np.array(o.to_host(), copy=True)
                               for o in outs])
  return run


def _iree_main(mlir: str):
  """The compiled module's `main`, compiled once per module and machine."""
  import importlib.metadata

  import iree.compiler
  import iree.runtime as rt
  version = importlib.metadata.version('iree-base-compiler')
  key = hashlib.sha256((mlir + ' '.join(IREE_FLAGS) + version).encode()
                       ).hexdigest()
  cache = pathlib.Path(os.environ.get(
      'MSTSM_IREE_CACHE', pathlib.Path.home() / '.cache' / 'mstsm_jax' /
      'iree'))
  path = cache / f'{key[:32]}.vmfb'
  if not path.is_file():
    try:
      blob = iree.compiler.compile_str(
          mlir, target_backends=['llvm-cpu'], input_type='stablehlo',
          extra_args=list(IREE_FLAGS))
    except iree.compiler.CompilerToolError as e:
      first = next((ln.split('error: ', 1)[1] for ln in str(e).splitlines()
                    if 'error: ' in ln), str(e).splitlines()[0])
      raise UsageError(
          f'IREE {version} cannot compile this model ({first[:160]})',
          'run it with --runtime=xla; IREE 3.13 fails on a strided 3x3 '
          'convolution with a 1x1 output (inputs under 48 px)') from e
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f'.{os.getpid()}.tmp')
    tmp.write_bytes(blob)
    tmp.replace(path)
  config = rt.Config('local-task')
  module = rt.VmModule.copy_buffer(config.vm_instance, path.read_bytes())
  ctx = rt.SystemContext(config=config)
  ctx.add_vm_module(module)
  return ctx.modules[module.name]['main']
