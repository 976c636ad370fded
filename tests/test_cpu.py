"""XLA:CPU settings (cpu.py) and the stem pool written for them."""
import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mstsm_jax import cpu
from mstsm_jax.models.resnet import stem_pool
from mstsm_jax.ops import forms


def test_convolutions_leave_ynnpack_with_the_same_values():
  x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 20, 20, 16)),
                  jnp.float32)
  w = jnp.asarray(np.random.default_rng(1).standard_normal((3, 3, 16, 32)),
                  jnp.float32)

  def conv(x, w):
    return jax.lax.conv_general_dilated(x, w, (1, 1), 'SAME',
                                        dimension_numbers=('NHWC', 'HWIO',
                                                           'NHWC'))

  assert cpu.compiler_options() == cpu.OPTIONS, (
      f'jax {jax.__version__} no longer takes {cpu.OPTIONS}: measure '
      'bench --what=deploy again and update cpu.py')
  tuned = cpu.jit(conv).lower(x, w).compile().as_text()
  assert 'convolution(' in tuned and '__ynn' not in tuned
  np.testing.assert_allclose(cpu.jit(conv)(x, w), jax.jit(conv)(x, w),
                             rtol=1e-5, atol=1e-4)


# With keep_host_memory, every module of the package is imported first: one
# that starts jax at import (a module-level cpu.jit did) makes it a no-op in
# predict and bench.
IMPORT_ALL = '''
import importlib, pkgutil
import mstsm_jax
for m in pkgutil.walk_packages(mstsm_jax.__path__, 'mstsm_jax.'):
  importlib.import_module(m.name)
'''
PROBE = '''
import resource
from mstsm_jax import cpu
kept = cpu.keep_host_memory()
import jax, jax.numpy as jnp
f = jax.jit(lambda x: ((2 * x).T @ (2 * x)[:, :8]).sum())
x = jnp.ones((2048, 8192), jnp.float32)  # 64 MiB of scratch per call
assert f.lower(x).compile().memory_analysis().temp_size_in_bytes >= 2**26
for _ in range(10):
  f(x).block_until_ready()
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
  f(x).block_until_ready()
print(kept, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0) / 20)
'''


def page_faults(keep: bool) -> tuple[str, float]:
  env = dict(os.environ, MSTSM_KEEP_HOST_MEMORY='1' if keep else '0',
             JAX_PLATFORMS='cpu')
  probe = IMPORT_ALL * keep + PROBE
  out = subprocess.run([sys.executable, '-c', probe], env=env, check=True,
                       capture_output=True, text=True).stdout.split()
  return out[0], float(out[1])


def test_keep_host_memory_stops_refaulting_scratch_memory():
  # 64 MiB = 16,384 pages: faulted in again on every call by default.
  kept, faults = page_faults(keep=True)
  default, default_faults = page_faults(keep=False)
  assert (kept, default) == ('True', 'False')
  assert default_faults > 8000
  assert faults < default_faults / 5  # 0-10% measured: heap growth


def test_stem_pool_is_torchvisions_max_pool():
  pool = lambda x: nn.max_pool(x, (3, 3), strides=(2, 2),  # noqa: E731
                               padding=((1, 1), (1, 1)))
  for shape in [(2, 28, 28, 5), (1, 7, 9, 3), (1, 1, 1, 2), (3, 2, 3, 1)]:
    x = jnp.asarray(np.random.default_rng(0).standard_normal(shape),
                    jnp.float32)
    np.testing.assert_array_equal(stem_pool(x), pool(x))
    with forms.onnx_forms():  # one MaxPool node in an ONNX graph
      np.testing.assert_array_equal(stem_pool(x), pool(x))
    grads = [jax.grad(lambda x, p=p: (p(jax.nn.relu(x))**2).sum())(x)
             for p in (stem_pool, pool)]
    np.testing.assert_array_equal(*grads)


def test_bench_times_pytorch_in_a_plain_process_too():
  import pytest
  pytest.importorskip('torch')
  from mstsm_jax import bench
  clip = np.random.default_rng(0).integers(0, 256, (2, 8, 32, 32, 3),
                                           np.uint8)
  row = bench.torch_rows_default_malloc(5, clip, 2)[
      'torch_tsm_resnet50_eager_default_malloc']
  assert row['latency_ms_p90'] >= row['latency_ms_p50'] > 0
  # two clips per call (a batch-8 row said 1/8 of its clips/s)
  assert row["infer_clips_s"] > 1.5e3 / row["latency_ms_p90"]
  assert row['model'].endswith('contiguous_format default malloc')


@pytest.mark.skipif(not hasattr(os, 'sched_setaffinity'),
                    reason='no CPU affinity on this OS')
def test_cores_is_the_affinity_set_not_the_hosts_count():
  """A Slurm or container cpuset gives a process a share of the host:
  ONNX Runtime's threads, PyTorch's and prepare's decoding processes are
  sized to that share."""
  mine = os.sched_getaffinity(0)
  try:
    os.sched_setaffinity(0, {min(mine)})
    assert cpu.cores() == 1
  finally:
    os.sched_setaffinity(0, mine)
  assert cpu.cores() == len(mine)
