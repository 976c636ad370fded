"""The package's jobs run from the tests: in this process (`invoke`; the
`job` fixture captures its file descriptors, `run` its Python streams, for
a module-scoped fixture or a process whose file descriptors must stay
uncaptured), or in a child process on the suite's XLA flags
(`xla_flags`)."""
import contextlib
import importlib
import io
import os
import re


def invoke(name: str, *args) -> int:
  """`python -m mstsm_jax.<name> ARGS` as its command line runs it (its
  `main` on fresh flags through `cli.invoke`), in this process -> its exit
  code. The `job` fixture (conftest.py) and `run` capture its output."""
  from mstsm_jax import cli
  module = importlib.import_module(f'mstsm_jax.{name}')
  return cli.invoke(module.define_flags, module.main, [f'{name}.py', *args],
                    module.__doc__)


def run(name: str, *args) -> tuple[int, str, str]:
  """`invoke` -> (exit code, stdout, stderr), caught at Python level."""
  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    rc = invoke(name, *args)
  return rc, out.getvalue(), err.getvalue()


def xla_flags(devices: int, optimization_level: int | None = None) -> str:
  """The suite's XLA_FLAGS (those this XLA knows: conftest.py) with
  `devices` fake CPU devices and, given, another LLVM optimisation level."""
  flags = re.sub(r'(?<=--xla_force_host_platform_device_count=)\d+',
                 str(devices), os.environ['XLA_FLAGS'])
  if optimization_level is not None:
    flags = re.sub(r'(?<=--xla_backend_optimization_level=)\d+',
                   str(optimization_level), flags)
  return flags
