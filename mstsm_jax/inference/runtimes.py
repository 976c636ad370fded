"""CPU runtimes for exported files.

An exported file holds StableHLO (the zip archive, archive.py) or ONNX
(onnx_file.py). A runtime is one `Runtime` adapter in `RUNTIMES` (adding one
touches this file only) that reads one of the two; `callable_for(program,
runtime)` returns a function of numpy arrays (the exported function's
flattened inputs) -> the flat list of its outputs as numpy arrays, run by:

- 'xla': `Exported.call`, jax's compiler, with the XLA:CPU options
  measured fastest (cpu.py);
- 'iree': the OpenXLA deployment compiler and runtime (`pip install -e
  '.[cpu-runtime]'`): the StableHLO is compiled for this machine's CPU
  (`llvm-cpu`, `--iree-llvmcpu-target-cpu=host`, O3, data tiling,
  microkernels, aggressive fusion: the fastest of the settings measured in
  docs/performance.md) on first use and cached by content under
  ~/.cache/mstsm_jax/iree (or $MSTSM_IREE_CACHE), or at export (`export
  --format=iree` compiles through the same cache and stores the module in
  the file, used where its target, `iree_target()`, is this machine's).
  IREE needs static shapes: export with `--batch=N`. IREE 3.13 does not
  compile a strided 3x3 convolution whose output is 1x1 (a ResNet fed
  under 48 px); that is a one-line error naming the fix;
- 'onnxruntime': ONNX Runtime's CPU execution provider, every graph
  optimisation on, one thread per CPU this process may use
  (`pip install -e '.[onnx]'`);
- 'openvino': OpenVINO's CPU plugin, which reads the ONNX model directly,
  latency hint (`pip install -e '.[onnx]'`).
`DEFAULT` names each format's default runtime, the fastest measured
(docs/performance.md).
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import os
import pathlib
import re
import sys
from typing import Callable

import jax
import numpy as np

from mstsm_jax import cpu
from mstsm_jax.errors import UsageError

IREE_FLAGS = ('--iree-llvmcpu-target-cpu=host', '--iree-opt-level=O3',
              '--iree-opt-data-tiling', '--iree-llvmcpu-enable-ukernels=all',
              '--iree-dispatch-creation-enable-aggressive-fusion')


@dataclasses.dataclass(frozen=True)
class Runtime:
  """One way to run an exported function: everything the rest of the code
  asks of a runtime. Adding one is one more entry in `RUNTIMES`.

  `modules`: what must import for it to be available; `install`: the hint
  when they do not; `static`: it needs static shapes (a fixed batch);
  `reads`: the program it runs ('stablehlo' or 'onnx');
  `load(program, stored)` -> fn(*flat numpy inputs) -> the flat list of
  outputs as numpy arrays, `stored` being (target, bytes) of a module
  compiled at export or None; `compile(exported)` -> (target, bytes) that
  `export --format=NAME` stores in the file under `module_file` (None:
  nothing to store)."""
  name: str
  load: Callable
  reads: str = 'stablehlo'
  modules: tuple[str, ...] = ()
  install: str = ''
  static: bool = False
  compile: Callable | None = None
  module_file: str = ''


def _xla_load(exported, stored=None):
  """`Exported.call`, jax's compiler, with the XLA:CPU options measured
  fastest (cpu.py)."""
  del stored
  from jax import export
  here = export.default_export_platform()
  if here not in exported.platforms:
    raise UsageError(f'this file was exported for '
                     f'{",".join(exported.platforms)}; jax here runs on '
                     f'{here}',
                     f're-export it with --platforms={here} (or '
                     f'{",".join((*exported.platforms, here))})')
  call = cpu.jit(exported.call)

  def run(*args):
    return [np.asarray(o) for o in jax.tree.leaves(call(
        *jax.tree.unflatten(exported.in_tree, list(args))[0]))]
  return run


def _iree_load(exported, stored=None):
  """The IREE module stored at export when it was compiled for this
  machine, else compiled here (cached). A file lowered for several
  platforms (`--platforms=cpu,cuda`) takes the index of the lowering to
  run first: the CPU's."""
  platforms = [p.lower() for p in exported.platforms]
  if 'cpu' not in platforms:
    raise UsageError(f'--runtime=iree runs the CPU lowering; this file was '
                     f'exported for {",".join(platforms)} only',
                     're-export it with --platforms=cpu (or cpu,'
                     f'{",".join(platforms)})')
  lead = ([np.int32(platforms.index('cpu'))] if len(platforms) > 1 else [])
  module, here = None, iree_target()
  if stored is not None:
    target, blob = stored
    if target == here:
      module = blob
    else:
      print(f'note: the file\'s IREE module was compiled for {target}; '
            f'compiling for this machine ({here})', file=sys.stderr)
  main = _iree_main(module or _cached_module(exported.mlir_module(), here))
  kept = sorted(exported.module_kept_var_idx)  # jax drops unused inputs

  def run(*args):
    # Copies: the runtime reuses its output buffers on the next call.
    out = main(*lead, *[np.ascontiguousarray(args[i]) for i in kept])
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [np.array(o.to_host(), copy=True) for o in outs]
  return run


def _iree_compile(exported):
  """At export: the module for this machine, through the cache `load`
  reads (exporting a model again, or running its XLA export with
  `--runtime=iree`, compiles nothing)."""
  here = iree_target()
  return here, _cached_module(exported.mlir_module(), here)


def _onnxruntime_load(program, stored=None):
  """An ONNX Runtime CPU session (all graph optimisations, a thread per
  CPU this process may use: the settings measured fastest in
  docs/performance.md)."""
  del stored
  import onnxruntime as ort
  options = ort.SessionOptions()
  options.graph_optimization_level = (
      ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
  options.intra_op_num_threads = cpu.cores()
  session = ort.InferenceSession(program.model, options,
                                 providers=['CPUExecutionProvider'])

  def run(*args):
    return session.run(None, {name: np.asarray(a) for name, a in
                              zip(program.input_names, args)})
  return run


def _openvino_load(program, stored=None):
  """The model compiled by OpenVINO's CPU plugin (latency hint) in
  float32: on a CPU with bfloat16 instructions (AVX512_BF16, AMX) the
  plugin otherwise computes in bfloat16 by default, and the scores leave
  the model directory's by ~3e-3 x max|score| (1e-4 is the contract)."""
  del stored
  core = _openvino().Core()
  compiled = core.compile_model(core.read_model(program.model), 'CPU',
                                {'PERFORMANCE_HINT': 'LATENCY',
                                 'INFERENCE_PRECISION_HINT': 'f32'})
  request = compiled.create_infer_request()
  # By name: OpenVINO drops an input nothing reads (a streaming buffer the
  # step overwrites unread), so positions shift.
  wanted = {n for i in compiled.inputs for n in i.get_names()}

  def run(*args):
    # share_inputs: the request reads the (contiguous) arrays in place
    # instead of copying each in (the infer call is synchronous).
    out = request.infer({name: np.ascontiguousarray(a) for name, a in
                         zip(program.input_names, args) if name in wanted},
                        share_inputs=True)
    # Copies: the request reuses its output tensors on the next call.
    return [np.array(out[o], copy=True) for o in compiled.outputs]
  return run


def _openvino():
  """`openvino`, imported without its model-conversion tools: importing
  those starts openvino-telemetry, which forks a process from a thread to
  send usage data unless the user opted out (a fork JAX warns can
  deadlock). Only the runtime is needed here; a later import of
  `openvino.tools.ovc` by the user works as usual."""
  if 'openvino' in sys.modules:
    return sys.modules['openvino']
  sys.modules['openvino.tools.ovc'] = None
  try:
    import openvino
  finally:
    del sys.modules['openvino.tools.ovc']
  return openvino


ONNX_INSTALL = "pip install -e '.[onnx]'"
RUNTIMES = {
    'xla': Runtime('xla', _xla_load),
    'iree': Runtime('iree', _iree_load, 'stablehlo',
                    ('iree.compiler', 'iree.runtime'),
                    "pip install -e '.[cpu-runtime]'", static=True,
                    compile=_iree_compile, module_file='iree.vmfb'),
    'onnxruntime': Runtime('onnxruntime', _onnxruntime_load, 'onnx',
                           ('onnxruntime',), ONNX_INSTALL),
    'openvino': Runtime('openvino', _openvino_load, 'onnx', ('openvino',),
                        ONNX_INSTALL),
}
DEFAULT = {'stablehlo': 'xla', 'onnx': 'onnxruntime'}
# The metadata keys that hold a stored module's target (`export
# --format=NAME`).
MODULE_KEYS = tuple(n for n, rt in RUNTIMES.items() if rt.module_file)


def available() -> list[str]:
  """The runtimes installed here (found, not imported: importing some
  starts work of their own, `_openvino`)."""
  def found(module: str) -> bool:
    try:
      return importlib.util.find_spec(module) is not None
    except ImportError:
      return False
  return [name for name, rt in RUNTIMES.items()
          if all(found(m) for m in rt.modules)]


def check(runtime: str) -> Runtime:
  """The runtime named `runtime`, or a one-line error (unknown, or not
  installed here)."""
  if runtime not in RUNTIMES:
    raise UsageError(f'--runtime={runtime}',
                     f'valid: auto, {", ".join(RUNTIMES)}')
  if runtime not in available():
    raise UsageError(f'--runtime={runtime}: {runtime} is not installed',
                     RUNTIMES[runtime].install)
  return RUNTIMES[runtime]


def program_kind(program) -> str:
  """'onnx' for an ONNX file's program, 'stablehlo' for a jax Exported."""
  return 'onnx' if hasattr(program, 'input_names') else 'stablehlo'


def callable_for(program, runtime: str = 'auto', stored=None):
  """fn(*flat numpy inputs) -> the flat list of outputs as numpy arrays,
  run by `runtime` ('auto': the program's default, `DEFAULT`). `stored`:
  (target, bytes) of a module compiled at export (`export --format=NAME`),
  used when its target is this machine's."""
  kind = program_kind(program)
  runtime = DEFAULT[kind] if runtime == 'auto' else runtime
  rt = RUNTIMES.get(runtime) or check(runtime)
  if rt.reads != kind:
    fit = ', '.join(n for n, r in RUNTIMES.items() if r.reads == kind)
    raise UsageError(f'--runtime={runtime} runs {rt.reads.upper()}; this '
                     f'file holds {kind.upper()}',
                     f'use --runtime={fit.replace(", ", " or --runtime=")}'
                     ' (or auto)')
  check(runtime)
  if rt.static and any(not isinstance(d, int) for a in program.in_avals
                       for d in a.shape):
    raise UsageError(f'{runtime} needs static shapes; this file was '
                     'exported with a symbolic batch',
                     're-export it with --batch=N (e.g. --batch=1)')
  return rt.load(program, stored)


def iree_target() -> dict:
  """What an IREE module compiled here runs on: the compiler version, its
  flags and this CPU (`target-cpu=host` uses every ISA extension it has)."""
  import importlib.metadata
  import platform
  model, isa = platform.machine(), ''
  try:
    info = pathlib.Path('/proc/cpuinfo').read_text().splitlines()
    model = next(ln.split(':', 1)[1].strip() for ln in info
                 if ln.startswith('model name'))
    isa = next(ln.split(':', 1)[1] for ln in info if ln.startswith('flags'))
  except (OSError, StopIteration):
    pass
  isa = hashlib.sha256(isa.encode()).hexdigest()[:8]
  return {'compiler': importlib.metadata.version('iree-base-compiler'),
          'flags': list(IREE_FLAGS), 'cpu': f'{model} (ISA {isa})'}


def compile_iree(mlir: str) -> bytes:
  """StableHLO text -> an IREE module for this CPU, or a one-line error."""
  import iree.compiler
  try:
    return iree.compiler.compile_str(
        mlir, target_backends=['llvm-cpu'], input_type='stablehlo',
        extra_args=list(IREE_FLAGS))
  except iree.compiler.CompilerToolError as e:
    first = next((ln.split('error: ', 1)[1] for ln in str(e).splitlines()
                  if 'error: ' in ln), str(e).splitlines()[0])
    raise UsageError(
        f'IREE {iree_target()["compiler"]} cannot compile this model '
        f'({first[:160]})',
        'run it with --runtime=xla; IREE 3.13 fails on a strided 3x3 '
        'convolution with a 1x1 output (inputs under 48 px)') from e


def _cached_module(mlir: str, target: dict) -> bytes:
  """`compile_iree`, once per module and `iree_target()`. The key leaves
  out the module's source locations (`#locN`: the file and line that
  called export), so one model exported from two scripts is one module."""
  body = '\n'.join(ln for ln in re.sub(r' loc\(#loc\d*\)', '', mlir)
                   .splitlines() if not ln.startswith('#loc'))
  key = hashlib.sha256((body + repr(target)).encode()).hexdigest()
  cache = pathlib.Path(os.environ.get(
      'MSTSM_IREE_CACHE', pathlib.Path.home() / '.cache' / 'mstsm_jax' /
      'iree'))
  path = cache / f'{key[:32]}.vmfb'
  if path.is_file():
    blob = path.read_bytes()
    damage = _unreadable(blob)
    if not damage:
      return blob
    # Never run, nor store in an exported file, a cut-short module.
    print(f'note: {path} is damaged ({damage}); compiling it again',
          file=sys.stderr)
  blob = compile_iree(mlir)
  cache.mkdir(parents=True, exist_ok=True)
  tmp = path.with_suffix(f'.{os.getpid()}.tmp')
  tmp.write_bytes(blob)
  tmp.replace(path)
  return blob


def _unreadable(module: bytes) -> str:
  """Why IREE's runtime cannot read `module` (a cache entry cut short), or
  '' when it reads it."""
  import iree.runtime as rt
  try:
    rt.VmModule.copy_buffer(rt.VmInstance(), module)
  except ValueError as e:
    return str(e).splitlines()[0][:160]
  return ''


def _iree_main(module: bytes):
  """The IREE module's `main`, loaded on the local task executor."""
  import iree.runtime as rt
  config = rt.Config('local-task')
  vm_module = rt.VmModule.copy_buffer(config.vm_instance, module)
  ctx = rt.SystemContext(config=config)
  ctx.add_vm_module(vm_module)
  return ctx.modules[vm_module.name]['main']
