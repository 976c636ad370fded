"""Test setup: 8 fake CPU devices (before jax is imported), parsed absl
flags, a persistent compilation cache shared with the subprocesses, and the
`job` fixture that runs a `python -m mstsm_jax.<job>` in-process."""
import dataclasses
import os
import pathlib
import subprocess
import sys
import tempfile

# The tests compile many small programs and run them briefly: at LLVM's
# -O0, XLA:CPU's older fusion emitters compile the tiny training step about
# 3x faster than its MLIR ones (3.5 against 10 s) and run it as fast. No
# fast-math: EfficientNet-B0's forward is bit-identical under either
# emitter (docs/performance.md, "The test suite's time").
FAST_COMPILE = ('--xla_backend_optimization_level=0 '
                '--xla_cpu_use_fusion_emitters=false')


def _xla_knows(xla_flags: str) -> bool:
  """XLA aborts on a flag it does not know, and a newer jaxlib may drop
  one: asked once, in a process of its own, before the workers start."""
  probe = [sys.executable, '-c', 'import jax; jax.devices()']
  env = {**os.environ, 'XLA_FLAGS': xla_flags}
  return subprocess.run(probe, env=env, capture_output=True).returncode == 0


if 'XLA_FLAGS' not in os.environ:  # the workers inherit the controller's
  DEVICES = '--xla_force_host_platform_device_count=8'
  fast = f'{DEVICES} {FAST_COMPILE}'
  os.environ['XLA_FLAGS'] = fast if _xla_knows(fast) else DEVICES
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
# predict and bench --what=deploy change malloc for their whole process
# (cpu.keep_host_memory); never for the test process they run in.
os.environ.setdefault('MSTSM_KEEP_HOST_MEMORY', '0')
# Compiled programs are reused across tests and by the jobs the tests start
# (same shapes, same flags), inside one run and across runs.
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', str(
    pathlib.Path(tempfile.gettempdir()) / 'mstsm_jax_test_cache'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.5')
# IREE modules likewise (keyed by the StableHLO, compiler, flags and CPU):
# the tests' 48 px tiny model compiles once for the files that run it.
os.environ.setdefault('MSTSM_IREE_CACHE', str(
    pathlib.Path(tempfile.gettempdir()) / 'mstsm_jax_test_iree'))

import pytest  # noqa: E402
from absl import flags  # noqa: E402

# grain's mp_prefetch reads absl flags; tests do not go through main_entry.
flags.FLAGS.mark_as_parsed()


@dataclasses.dataclass
class Result:
  code: int
  stdout: str
  stderr: str

  def json(self):
    import json
    return json.loads(self.stdout.strip().splitlines()[-1])


# The files that take longest, slowest first (seconds of one worker,
# measured 2026-12-01, docs/performance.md): xdist hands whole files to
# whichever worker is free, in collection order, so the long ones start
# first and neither worker idles at the end waiting on the other.
SLOWEST_FIRST = (
    'test_train', 'test_onnx', 'test_convert', 'test_bad_inputs_inference',
    'test_checkpoint_integrity', 'test_gradcam', 'test_runtimes', 'test_cli',
    'test_model', 'test_demo', 'test_prune', 'test_bad_inputs',
    'test_ablation', 'test_export', 'test_cpu', 'test_twostream', 'test_api',
    'test_streaming', 'test_data')


def pytest_collection_modifyitems(items):
  rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
  items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))


@pytest.fixture(scope='session')
def run_tmp(tmp_path_factory):
  """A folder every xdist worker of this run sees (the run's base
  temporary folder), for what the run makes once (model_dirs)."""
  base = tmp_path_factory.getbasetemp()
  return base.parent if os.environ.get('PYTEST_XDIST_WORKER') else base


@pytest.fixture
def job(capfd):
  """job('train', '--config=...', code=0) -> Result: the job's `main` on
  fresh flags, exactly as its command line runs it (exit code, stdout,
  stderr), without a new process."""
  import jobs

  def run(name, *args, code=0):
    capfd.readouterr()
    rc = jobs.invoke(name, *args)
    out, err = capfd.readouterr()
    assert rc == code, f'exit {rc}, wanted {code}:\n{err[-3000:]}'
    return Result(rc, out, err)
  return run
