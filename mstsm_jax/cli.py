"""Command-line plumbing shared by the `python -m mstsm_jax.<job>` entries.

Each job module defines `define_flags(fv)` and `main(fv, argv) -> exit code`
and ends with `cli.main_entry(define_flags, main, __doc__)`. `invoke` runs a
job on a fresh `FlagValues`, so tests call jobs in-process exactly as the
command line does (exit code, stdout, stderr).

Flags are absl's; `--config=configs/X.py[:variant]` is ml_collections'
config file flag, so every field is overridable as `--config.a.b=value`
(type-checked). `configs/X.py` is found in the package when it is not a path
from the current directory, and `--config=X[:variant]` names a packaged
config. With `--json` the last stdout line is one JSON object; progress bars
and logs go to stderr. Bad input (a `UsageError`, a misspelled config key, a
bad flag value, a missing file) is one `error:` line and a `hint:` line on
stderr and exit code 2; set MSTSM_TRACEBACK=1 for the traceback. Every
flag's type and range is declared in `FLAG_RULES` and every config field's
in `configs.schema`; both are checked (`check_flags`) after parsing and
before the job's `main` runs. Any other exception is our bug, not the
user's: one `error: internal error ...` line naming its type and the
project line it came from, exit code 1.
"""
from __future__ import annotations

import difflib
import json
import os
import pathlib
import re
import sys
import traceback

from absl import flags, logging
from ml_collections import config_flags

from mstsm_jax import configs, files
from mstsm_jax.configs import schema
from mstsm_jax.configs.schema import (Rule, comma_list, either, integer,
                                      matches, number, one_of, text)
from mstsm_jax.errors import UsageError

HELP = ('-h', '--help', '--helpshort', '--helpfull', '-?')
_ARGV: list[str] = []  # the command line being parsed (config overrides)


def define_config(fv: flags.FlagValues, required: bool = True) -> None:
  config_flags.DEFINE_config_file(
      'config', None, 'config file and variant, e.g. '
      'configs/ucf101.py:mstsm_tfdem; fields override as --config.a.b=v',
      flag_values=fv, lock_config=True, sys_argv=_ARGV)
  if required:
    flags.mark_flag_as_required('config', flag_values=fv)


def define_runtime(fv: flags.FlagValues) -> None:
  flags.DEFINE_string('runtime', 'auto', 'exported files: auto (xla for '
                      'an archive, onnxruntime for .onnx), xla, iree '
                      "(.[cpu-runtime]), onnxruntime or openvino (.[onnx])",
                      flag_values=fv)


def define_json(fv: flags.FlagValues) -> None:
  flags.DEFINE_bool('json', False, 'end stdout with one JSON object',
                    flag_values=fv)


def only_with(fv: flags.FlagValues, names, needed: str) -> None:
  """Refuses flags of `names` given on the command line while `--needed`
  is off or empty: they would be ignored, and an ignored flag is one
  line, never silence."""
  given = ', '.join('--' + n for n in names if fv[n].present)
  if given and not fv[needed].value:
    value = '=...' if isinstance(fv[needed].value, str) else ''
    raise UsageError(f'{given}: only with --{needed}, which is not given',
                     f'add --{needed}{value} or drop {given}')


def emit_json(fv: flags.FlagValues, obj) -> None:
  if fv['json'].value:
    print(json.dumps(obj), flush=True)


def config_path(spec: str) -> str:
  """'configs/ucf101.py:tsn' with the file resolved by
  `configs.config_file` (the packaged config when the path is not a file
  here; 'ucf101:tsn' works too)."""
  path, sep, arg = spec.partition(':')
  return f'{configs.config_file(path)}{sep}{arg}'


def _config_arg(argv: list[str]) -> tuple[int, str] | None:
  for i, a in enumerate(argv):
    if a.startswith('--config='):
      return i, a[len('--config='):]
    if a == '--config' and i + 1 < len(argv):
      return i + 1, argv[i + 1]
  return None


def _override_keys(argv: list[str]) -> list[tuple[str, str]]:
  out = []
  for a in argv:
    m = re.match(r'--config\.([^=\s]+)', a)
    if m:
      out.append((a, m.group(1)))
  return out


def check_overrides(argv: list[str], spec: str) -> None:
  """Loads the config (a bad variant is a UsageError); a `--config.a.b=v`
  naming no field is a UsageError with suggestions."""
  config = configs.load_config(spec, check=False)  # checked after parsing
  for arg, key in _override_keys(argv):
    node, done = config, []
    for part in key.split('.'):
      if '[' in part:
        break
      fields = list(node.keys()) if hasattr(node, 'keys') else []
      if part not in fields:
        where = '.'.join(done) or 'the config'
        close = difflib.get_close_matches(part, fields, n=3)
        raise UsageError(
            f'{arg.split("=")[0]}: {where} has no field {part!r}',
            (f'did you mean {" or ".join(close)}? ' if close else '')
            + f'fields of {where}: {", ".join(fields)}')
      node, done = node[part], done + [part]


def resolve_config_arg(argv: list[str]) -> list[str]:
  """argv with `--config=` pointing at a file that exists (see
  `config_path`)."""
  found = _config_arg(argv)
  if not found:
    return argv
  i, spec = found
  argv = list(argv)
  resolved = config_path(spec)
  argv[i] = (f'--config={resolved}' if argv[i].startswith('--config=')
             else resolved)
  return argv


def _parse(fv: flags.FlagValues, argv: list[str]) -> list[str]:
  found = _config_arg(argv)
  if found and 'config' in fv:
    check_overrides(argv, found[1])
  try:
    return fv(argv)
  except flags.Error as e:
    msg = str(e)
    m = re.search(r'Flag --(\w+) must have a value other than None', msg)
    if m:
      raise UsageError(f'--{m.group(1)} is required',
                       f'see python -m {_job(argv)} --help') from e
    m = re.match(r'flag --config\.([\w.]+)=(.*?): ([^:(]*)', msg)
    if m and m.group(1) in configs.FIELDS:  # a value of the wrong type
      key, value, why = m.groups()
      raise UsageError(f'--config.{key}={value}: {why.strip() or "wrong type"}'
                       f'; must be {configs.FIELDS[key].text}',
                       schema.hint(f'--config.{key}')) from e
    raise UsageError(msg.splitlines()[0],
                     f'see python -m {_job(argv)} --help') from e


def _job(argv) -> str:
  path = pathlib.Path(argv[0]) if argv else pathlib.Path('job')
  return f'mstsm_jax.{path.stem}' if path.suffix == '.py' else str(path)


def usage(fv: flags.FlagValues, doc: str) -> str:
  """The job's docstring and every one of its flags."""
  lines = [(doc or '').strip(), '', 'flags:']
  seen = set()
  for module_flags in fv.flags_by_module_dict().values():
    for f in module_flags:
      if f.name in seen:
        continue
      seen.add(f.name)
      default = '' if f.default in (None, '') else f' (default: {f.default})'
      req = ' (required)' if f.name in _required(fv) else ''
      lines.append(f'  --{f.name}: {f.help}{default}{req}')
  return '\n'.join(lines)


def _required(fv) -> set[str]:
  return {name for name in fv if any(
      'must have a value other than None' in (v.message or '')
      for v in fv[name].validators)}


# Every job flag's type and range, checked before `main` runs: 'flag' for
# every job, 'job.flag' where one job means something else by the name.
# absl already parsed the type (an int, a float, a string); a rule adds the
# range (finite, positive, a set, a format). tests/test_validate.py checks
# that every flag of every job is declared here.
PATH, ANY = text('a path'), text()
FINITE_POSITIVE = number(0, lo_open=True)
FINITE_NON_NEGATIVE = number(0)
POSITIVE_INT = integer(1)


def empty(meaning: str) -> Rule:
  return Rule(f"'' ({meaning})", lambda v: v == '')


SHARD = matches(r'(\d+)/(\d+)', 'i/N with 0 <= i < N, e.g. 3/16',
                lambda m: int(m[1]) < int(m[2]))
FLAG_RULES: dict[str, Rule] = {
    'config': Rule('a config file', lambda v: True),  # configs.schema
    'json': schema.boolean(), 'workdir': PATH,
    'checkpoint': PATH, 'output': PATH, 'video': PATH, 'input': PATH,
    'data_dir': PATH, 'manual_dir': PATH, 'classes_file': PATH,
    'train_list': PATH, 'test_list': PATH, 'output_dir': PATH,
    'profile': PATH, 'filename_tmpl': ANY, 'class': ANY, 'layer': ANY,
    'scores': Rule('one or more score files', lambda v: bool(v) and all(
        isinstance(p, str) for p in v)),
    'distributed': schema.boolean(), 'streaming': schema.boolean(),
    'timeline': schema.boolean(), 'overwrite': schema.boolean(),
    'rawframes': schema.boolean(), 'allow_partial': schema.boolean(),
    'strict': schema.boolean(), 'search': schema.boolean(),
    # ablate, splits
    'variants': comma_list(one_of(configs.VARIANTS), 'paper variants (' +
                           ', '.join(configs.VARIANTS) + ')', unique=True),
    'seeds': POSITIVE_INT,
    'splits': comma_list(integer(1, 3), 'splits 1, 2, 3', unique=True),
    # bench
    'bench.batch': comma_list(POSITIVE_INT, 'integers >= 1'),
    'deploy_batch': comma_list(POSITIVE_INT, 'integers >= 1'),
    'what': ANY,  # bench.WHAT (cli cannot import bench): bench checks it
    # first thing
    'bench.workers': comma_list(integer(0), 'integers >= 0'),
    'steps': POSITIVE_INT, 'repeats': POSITIVE_INT,
    # convert, export, predict, stream
    'format': ANY,  # an enum (convert) or checked just below (export)
    'export.format': one_of(('xla', 'iree', 'onnx')),
    'export.batch': Rule('dynamic or a batch size >= 1', lambda v: v == (
        'dynamic') or (v.isdigit() and int(v) > 0)),
    'platforms': comma_list(one_of(('cpu', 'cuda', 'rocm', 'tpu')),
                            'platforms (cpu, cuda, rocm, tpu)', unique=True),
    'runtime': one_of(('auto', 'xla', 'iree', 'onnxruntime', 'openvino')),
    'runtimes': either(empty('every runtime installed'), comma_list(
        one_of(('xla', 'iree', 'onnxruntime', 'openvino')),
        'runtimes (xla, iree, onnxruntime, openvino)', unique=True)),
    'views': either(empty("the config's eval.views"), schema.VIEWS),
    'predict.views': schema.VIEWS,
    'window_s': FINITE_POSITIVE, 'stride_s': FINITE_POSITIVE,
    'every': POSITIVE_INT, 'smooth': integer(0, note='0 = num_segments'),
    # evaluate
    'evaluate.checkpoint': Rule("latest (or ''), best or a step number",
                                lambda v: v in ('', 'latest', 'best') or
                                v.isdigit()),
    'split': integer(0, 3, note='0 = the trained split'),
    # fuse
    'weights': comma_list(FINITE_NON_NEGATIVE, 'finite numbers >= 0'),
    # prepare
    'dataset': ANY, 'flow': ANY, 'empty_classes': ANY,  # absl enums
    'prepare.workers': integer(0, note='decoding processes; 0 = 1'),
    'short_side': integer(0, note='0 = original size'),
    'fps': number(0, note='0 = every frame'),
    'max_failures': number(0, note='a fraction if < 1, else a count'),
    'max_missing': either(Rule('-1 (the default)', lambda v: v == -1),
                          number(0, note='a fraction if < 1, else a count')),
    'test_fraction': number(0, 1, lo_open=True, hi_open=True),
    'shard': either(empty('no sharding'), SHARD),
    'merge_shards': integer(0, note='0 = decode, no shards'),
    'num_videos': POSITIVE_INT,
    'seed': schema.SEED,
    # prune
    'r_out': integer(0, note='0 = none'), 'r_in': integer(0, note='0 = none'),
    # demo
    'port': integer(1, 65535), 'share': schema.boolean(),
    'max_mb': FINITE_POSITIVE,
}


def flag_rule(job: str, name: str) -> Rule | None:
  return FLAG_RULES.get(f'{job}.{name}', FLAG_RULES.get(name))


def check_flags(fv: flags.FlagValues, job: str) -> None:
  """Every flag of `job` against its rule, then the config (when the job
  takes one) against `configs.schema`: a UsageError naming the flag or
  field, the value and the valid range."""
  for name in fv:
    rule, value = flag_rule(job, name), fv[name].value
    if rule is not None and value is not None:
      rule.check(f'--{name}', value)
  if 'config' in fv and fv['config'].value is not None:
    configs.validate(fv['config'].value)


def _internal(e: BaseException) -> str:
  """One line for an exception that is our bug: its type, text and the
  innermost project line it came from."""
  package = pathlib.Path(__file__).resolve().parent
  where = ''
  for frame, line in traceback.walk_tb(e.__traceback__):
    file = pathlib.Path(frame.f_code.co_filename).resolve()
    if package in file.parents:
      where = (f' at {file.relative_to(package.parent)}:{line} '
               f'({frame.f_code.co_name})')
  what = (str(e).strip().splitlines() or [''])[0][:200]
  return (f'internal error: {type(e).__name__}'
          f'{": " + what if what else ""}{where}; please report it (with '
          'the command line) as a bug; MSTSM_TRACEBACK=1 shows the traceback')


def error_lines(message: str, hint: str = '') -> str:
  """The `error:` line (the message's first line) and the `hint:` line
  that bad input gets, on the command line and on the demo page."""
  message = message.strip().splitlines()[0]
  return f'error: {message}' + (f'\nhint: {hint}' if hint else '')


def invoke(define, main, argv, doc: str = '') -> int:
  """Runs a job on fresh flags; returns its exit code (0 ok, 2 bad input).
  A job that fails leaves no empty output folder behind."""
  files.created.clear()
  code = _run(define, main, argv, doc)
  if code:
    files.remove_created()
  return code


def _run(define, main, argv, doc: str) -> int:
  fv = flags.FlagValues()
  argv = list(argv)
  try:
    if not any(a in HELP for a in argv[1:]):
      argv = resolve_config_arg(argv)
    _ARGV[:] = argv  # ml_collections reads the overrides from here
    define(fv)
    if any(a in HELP for a in argv[1:]):
      print(usage(fv, doc))
      return 0
    rest = _parse(fv, argv)
    check_flags(fv, _job(argv).rpartition('.')[2])
    return main(fv, rest) or 0
  except (UsageError, ValueError, FileNotFoundError, PermissionError) as e:
    if os.environ.get('MSTSM_TRACEBACK'):
      traceback.print_exc()
    message, hint = (e.message, e.hint) if isinstance(e, UsageError) else (
        str(e).strip('"\''), '')
    print(error_lines(message.strip() or type(e).__name__, hint),
          file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    if os.environ.get('MSTSM_TRACEBACK'):
      traceback.print_exc()
    print('error: interrupted (Ctrl-C)', file=sys.stderr)
    return 130
  except Exception as e:  # noqa: BLE001 -- last resort: our bug, one line
    if os.environ.get('MSTSM_TRACEBACK'):
      traceback.print_exc()
    print(f'error: {_internal(e)}', file=sys.stderr)
    return 1


def main_entry(define, main, doc: str = '') -> None:
  """`if __name__ == '__main__'` of every job."""
  flags.FLAGS.mark_as_parsed()  # grain's worker processes read absl flags
  logging.set_verbosity(logging.WARNING)  # orbax/jax INFO lines are noise
  sys.exit(invoke(define, main, sys.argv, doc))
