"""The package as a house: every import points down or sideways, never up,
and no module imports itself back through others.

Read from the source with `ast` (nothing is imported): an arrow is any
`import` / `from ... import` of a project module, at module level or inside
a function. Inside functions only optional dependencies (torch, IREE, cv2
helpers, matplotlib, ...) may be imported; project modules are imported at
the top, so the real dependencies show.
"""
from __future__ import annotations

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / 'mstsm_jax'

# Bottom to top. A module belongs to the first (longest) prefix that
# matches; jobs are every top-level module not named here.
LAYERS = (
    ('base', ('mstsm_jax.errors', 'mstsm_jax.console', 'mstsm_jax.cpu',
              'mstsm_jax.files', 'mstsm_jax.configs', 'mstsm_jax')),
    ('ops', ('mstsm_jax.ops',)),
    ('models', ('mstsm_jax.models',)),
    ('modeldir', ('mstsm_jax.modeldir',)),
    ('data', ('mstsm_jax.data',)),
    ('library', ('mstsm_jax.training', 'mstsm_jax.evaluation',
                 'mstsm_jax.inference')),
    ('jobs', ('mstsm_jax.cli',)),
)


def module_name(path: pathlib.Path) -> str:
  parts = list(path.relative_to(PACKAGE.parent).with_suffix('').parts)
  if parts[-1] == '__init__':
    parts = parts[:-1]
  return '.'.join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob('*.py')}


def layer(module: str) -> int:
  best, rank = -1, len(LAYERS) - 1  # top-level jobs by default
  for i, (_, prefixes) in enumerate(LAYERS):
    for p in prefixes:
      if (module == p or module.startswith(p + '.')) and len(p) > best:
        if p == 'mstsm_jax' and module != 'mstsm_jax':
          continue
        best, rank = len(p), i
  return rank


def imports(module: str):
  """(target module, inside a function) for each project import."""
  path = MODULES[module]
  package = module if path.name == '__init__.py' else module.rpartition(
      '.')[0]
  out = []

  def visit(node, in_function):
    for child in ast.iter_child_nodes(node):
      inner = in_function or isinstance(
          child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
      if isinstance(child, ast.Import):
        names = [a.name for a in child.names]
      elif isinstance(child, ast.ImportFrom):
        base = child.module or ''
        if child.level:
          up = package.split('.')[:len(package.split('.')) - child.level + 1]
          base = '.'.join(up + ([base] if base else []))
        names = [f'{base}.{a.name}' for a in child.names] + [base]
      else:
        visit(child, inner)
        continue
      for name in names:
        # the longest project module the name starts with
        hits = [m for m in MODULES if name == m or name.startswith(m + '.')]
        if hits:
          target = max(hits, key=len)
          if target not in (module, 'mstsm_jax'):
            out.append((target, inner))
            break
  visit(ast.parse(path.read_text()), False)
  return out


def test_no_arrow_runs_back_up():
  up = [f'{m} ({LAYERS[layer(m)][0]}) imports {t} ({LAYERS[layer(t)][0]})'
        for m in MODULES for t, _ in imports(m) if layer(t) > layer(m)]
  assert not up, '\n'.join(up)


def test_no_circle():
  graph = {m: {t for t, _ in imports(m)} for m in MODULES}
  state, cycles = {}, []

  def dfs(m, stack):
    state[m] = 'open'
    for t in sorted(graph[m]):
      if state.get(t) == 'open':
        cycles.append(' -> '.join(stack[stack.index(t):] + [t]))
      elif t not in state:
        dfs(t, stack + [t])
    state[m] = 'done'

  for m in sorted(graph):
    if m not in state:
      dfs(m, [m])
  assert not cycles, '\n'.join(cycles)


def test_project_imports_at_module_level():
  inside = [f'{m} imports {t} inside a function' for m in MODULES
            for t, in_function in imports(m) if in_function]
  assert not inside, '\n'.join(inside)


def test_layers_are_what_the_readme_says():
  assert layer('mstsm_jax.ops.shift') < layer('mstsm_jax.models.mstsm') < (
      layer('mstsm_jax.modeldir')) < layer('mstsm_jax.data.pipeline') < (
          layer('mstsm_jax.inference')) < layer('mstsm_jax.train')
