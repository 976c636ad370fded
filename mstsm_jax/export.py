"""Export a model directory to one file that runs without this package.

  python -m mstsm_jax.export --checkpoint=DIR --output=model.mstsm \
      [--batch=dynamic|N] [--platforms=cpu,cuda] [--streaming]
      [--format=xla|iree|onnx] [--overwrite] [--json]

The file (`mstsm_jax.inference.archive`) holds the model as serialized
StableHLO (`jax.export`, weights inside) and its metadata: uint8 test-time
views `[N, T, S, S, C]` at the model's crop size in, float32 video scores
out, normalisation inside. `mstsm_jax.load(FILE)` runs it on clips of any
size (the centre view first, as a model directory), and so do `jax` and
`numpy` alone (README "Deploy"). The file is written whole or not at all;
an existing one is replaced only with `--overwrite`.
`--platforms=cpu,cuda` lowers for both (no GPU needed to export).
`--streaming` exports an online model's one-frame step `(frames, buffers)
-> (scores, buffers)` instead (`mstsm_jax.Streamer(FILE)` and `stream
--checkpoint=FILE` run it).
`--format=iree` also stores the model compiled by IREE for this CPU, so
`--runtime=iree` runs it without compiling (inference/runtimes.py).
`--format=onnx` writes one ONNX file instead (inference/onnx_file.py; the
same function, metadata and `--streaming`), which `--runtime=onnxruntime`
or `openvino` run, and TensorRT's `trtexec --onnx=FILE` reads.
"""
from __future__ import annotations

import os
import time

from absl import flags

from mstsm_jax import cli, files
from mstsm_jax.console import LOG
from mstsm_jax.inference.export import check_export_flags, export_model


def define_flags(fv):
  flags.DEFINE_string('checkpoint', None, 'model directory to export',
                      flag_values=fv)
  flags.DEFINE_string('output', None, 'file to write', flag_values=fv)
  flags.DEFINE_string('batch', 'dynamic', 'dynamic (any batch) or a fixed '
                      'batch size', flag_values=fv)
  flags.DEFINE_string('platforms', 'cpu', 'comma-separated: cpu, cuda, rocm,'
                      ' tpu', flag_values=fv)
  flags.DEFINE_bool('streaming', False, 'export the one-frame step of an '
                    'online model (frames, buffers) -> (scores, buffers)',
                    flag_values=fv)
  flags.DEFINE_string('format', 'xla', 'xla: StableHLO, run by any runtime;'
                      ' iree: also the IREE module compiled for this CPU '
                      '(needs --batch=N and .[cpu-runtime]); onnx: one ONNX '
                      'file (opset 18, .[onnx]) for ONNX Runtime, OpenVINO, '
                      'TensorRT', flag_values=fv)
  flags.DEFINE_bool('overwrite', False, 'replace an existing --output',
                    flag_values=fv)
  flags.mark_flags_as_required(['checkpoint', 'output'], flag_values=fv)
  cli.define_json(fv)


def main(fv, argv):
  del argv
  # each name, once, checked by cli.FLAG_RULES
  platforms = [p.strip() for p in fv['platforms'].value.split(',')]
  out = fv['output'].value
  check_export_flags(fv['batch'].value, fv['format'].value)
  check_name(out, fv['format'].value)
  files.check_writable(os.path.dirname(os.path.abspath(out)),
                       'output folder')
  files.check_outputs({'--output': out}, [fv['checkpoint'].value],
                      fv['overwrite'].value)
  t0 = time.time()
  meta = export_model(fv['checkpoint'].value, out, fv['batch'].value,
                      platforms, streaming=fv['streaming'].value,
                      fmt=fv['format'].value)
  size = os.path.getsize(out)
  print(f'wrote {out}: {size / 2**20:.1f} MiB, {meta["input"]} -> '
        f'{meta["output"]}, platforms {",".join(platforms)}, '
        f'{time.time() - t0:.1f}s', file=LOG)
  # Flat as before, 'output' being the file; the file's own metadata
  # (whose 'output' describes the scores) whole under 'metadata'.
  cli.emit_json(fv, {**meta, 'output': out, 'bytes': size, 'metadata': meta})


def check_name(out: str, fmt: str) -> None:
  """An ONNX file is named .onnx and nothing else is: ONNX Runtime,
  OpenVINO and TensorRT users open a `.onnx` as ONNX, and a StableHLO zip
  under that name fails there."""
  named = out.lower().endswith('.onnx')
  if named and fmt != 'onnx':
    raise cli.UsageError(f'--output={out} is named .onnx, but --format={fmt}'
                         ' writes a StableHLO zip',
                         'add --format=onnx, or name the file .mstsm')
  if fmt == 'onnx' and not named:
    raise cli.UsageError(f'--format=onnx writes an ONNX file; --output={out}'
                         ' is not named .onnx',
                         'name it .onnx, as ONNX tools expect')


if __name__ == '__main__':
  cli.main_entry(define_flags, main, __doc__)
