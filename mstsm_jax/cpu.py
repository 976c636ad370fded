"""XLA:CPU settings measured fastest for this model (docs/performance.md),
and how many CPUs this process may use.

Two settings, both measured on the project's 2-core AMD EPYC (Zen 5,
AVX-512) machines with jax 0.10.2; ResNet-50 MSTSM-TFDEM, 8 x 224 px,
batch 1, float32:

- `jit(fn)`: `jax.jit` with `compiler_options()` when jax runs on the CPU.
  jax 0.10's XLA:CPU hands every convolution to YNNPACK by default; XLA's
  own convolutions are faster here: 345 -> 255 ms per clip, 37 -> 27 ms
  per streamed frame (the Quick start's model 1.6 -> 1.1 ms per clip, its
  training step 4% faster).
  `MSTSM_XLA_CPU_DEFAULTS=1` keeps jax's defaults (to compare, or on a CPU
  where YNNPACK wins).
- `keep_host_memory()`: XLA:CPU allocates each call's scratch memory anew
  (150 MB for that model) and glibc maps large blocks fresh from the kernel
  every time, so every call page-faults and zeroes it again (38,000 faults,
  60 ms of kernel time per call here). Keeping freed memory in the heap
  takes the call from 255 to 210-230 ms (PyTorch gains too: bench
  --what=deploy measures it both ways). Process-wide, so only `predict`
  and `bench --what=deploy` turn it on, at their start; a server that
  wants it calls it before its first jax computation. Small calls lose
  with it (one malloc arena for every thread): a streamed ResNet-50 frame
  27 -> 30 ms, the Quick start's model 1.5 -> 2.0-2.6 ms per clip, so
  `stream` leaves it off. (Synchronous dispatch instead of one arena,
  measured too, keeps small calls fast but left 38,000 faults per call in
  one run of three.)

jax is imported only where it is used: `prepare` and the PyTorch
reference ask `cores()` without starting it.
"""
from __future__ import annotations

import ctypes
import functools
import os
import sys

OPTIONS = {'xla_cpu_experimental_ynn_fusion_type': ''}
# glibc mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8
_kept = [False]


def cores() -> int:
  """The CPUs this process may run on: its affinity set (taskset, a Slurm
  or container cpuset), not the host's count, so that thread pools and
  decoding processes fit a 4-CPU share of a 64-core node instead of
  starting 64 threads on it. The host's count where the OS has no
  affinity (macOS)."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:
    return os.cpu_count() or 1


@functools.cache
def compiler_options() -> dict | None:
  """`OPTIONS` on the CPU if this jax takes them (said once if not); None
  on accelerators or with MSTSM_XLA_CPU_DEFAULTS=1."""
  import jax
  if (os.environ.get('MSTSM_XLA_CPU_DEFAULTS') == '1' or
      jax.default_backend() != 'cpu'):
    return None
  try:
    jax.jit(lambda x: x + 1, compiler_options=OPTIONS).lower(1.0).compile()
  except Exception as e:  # pylint: disable=broad-except
    print(f'warning: jax {jax.__version__} does not take the XLA:CPU '
          f'options {OPTIONS} ({type(e).__name__}); convolutions use jax\'s '
          'defaults', file=sys.stderr)
    return None
  return dict(OPTIONS)


def jit(fn, **kwargs):
  """`jax.jit(fn, **kwargs)` with `compiler_options()`."""
  import jax
  return jax.jit(fn, compiler_options=compiler_options(), **kwargs)


def keep_host_memory() -> bool:
  """Makes glibc keep freed memory for reuse, process-wide: one malloc
  arena, no fresh mappings for large blocks, no trimming (the process
  keeps its peak memory). Must run before jax's first computation (its
  threads keep the arena they start with). False where it cannot (not
  glibc, jax already running) or with MSTSM_KEEP_HOST_MEMORY=0."""
  if os.environ.get('MSTSM_KEEP_HOST_MEMORY') == '0':
    return False
  try:
    from jax._src import xla_bridge
    if xla_bridge.backends_are_initialized():
      return False
  except (ImportError, AttributeError):
    pass
  try:
    mallopt = ctypes.CDLL('libc.so.6').mallopt
  except (OSError, AttributeError):
    return False
  _kept[0] = all(mallopt(k, v) == 1 for k, v in (
      (M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1)))
  return _kept[0]


def host_memory_kept() -> bool:
  """Whether `keep_host_memory` took effect in this process."""
  return _kept[0]
