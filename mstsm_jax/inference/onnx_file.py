"""ONNX files: the exported model for the deployment ecosystem users have
(ONNX Runtime, OpenVINO, TensorRT, and converters onward).

`export --format=onnx` writes one `.onnx` file holding the same function as
the zip archive (archive.py): uint8 views `[N, T, S, S, C]` in, float32
video scores `[N, classes]` out, normalisation inside; or, with
`--streaming`, the one-frame step with its shift buffers as explicit inputs
(`frames`, `buffer_0` ...) and outputs (`scores`, `new_buffer_0` ...). The
archive's metadata (classes, T, sizes, normalisation, variant, ...) is the
JSON string `metadata_props['mstsm_jax']`, so the file is self-describing
and `mstsm_jax.load(FILE)` reads it as it reads an archive.

The conversion is jax2onnx's (a maintained converter from jaxprs to ONNX
ops; `pip install -e '.[onnx]'`); nothing here builds graph nodes. The
temporal shifts are slices and concatenations in the jaxpr, so they stay
plain `Slice` / `Concat` nodes that every ONNX parser accepts. Three things
are done to its output, all checked:
- nodes no output depends on are removed (`_without_dead_nodes`);
- jax2onnx 0.17 annotates some intermediate values with the NHWC shapes of
  the jaxpr where its `Conv` nodes compute NCHW; those annotations
  (`value_info`) are dropped and ONNX's own shape inference, in strict
  mode, derives them again;
- the result must pass the ONNX checker with `full_check` before it is
  written.
Opset 18: jax2onnx writes `ReduceMean` with its axes as an input, which
ONNX allows from opset 18 on (TensorRT 10, ONNX Runtime and OpenVINO read
it).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os

import numpy as np

from mstsm_jax import files
from mstsm_jax.errors import UsageError
from mstsm_jax.ops import forms

OPSET = 18
META_KEY = 'mstsm_jax'
INSTALL = "pip install -e '.[onnx]'"
DTYPES = {1: np.float32, 2: np.uint8, 10: np.float16, 11: np.float64}


@dataclasses.dataclass(frozen=True)
class Aval:
  """An input's shape (str for a symbolic dimension) and numpy dtype."""
  shape: tuple
  dtype: type


@dataclasses.dataclass(frozen=True)
class OnnxProgram:
  """A loaded `.onnx` file: the serialized model for a runtime, and its
  inputs' and outputs' avals, as `jax.export.Exported` gives them."""
  model: bytes
  in_avals: tuple
  out_avals: tuple
  input_names: tuple


def converter_installed() -> bool:
  try:
    check_installed()
  except UsageError:
    return False
  return True


def check_installed() -> None:
  """Refuses `--format=onnx` in one line when its converter is missing."""
  try:
    import jax2onnx  # noqa: F401
  except ImportError as e:
    raise UsageError('--format=onnx needs jax2onnx', INSTALL) from e


def _onnx():
  try:
    import onnx
  except ImportError as e:
    raise UsageError('ONNX files need the onnx package', INSTALL) from e
  return onnx


def convert(fn, inputs, input_names, output_names, *, name: str):
  """`fn(*inputs)` as a checked ONNX `ModelProto` (jax2onnx; module
  docstring). `inputs`: `jax.ShapeDtypeStruct`s, symbolic dimensions kept
  symbolic (dynamic batch)."""
  check_installed()
  from jax2onnx import to_onnx
  onnx = _onnx()
  # jax2onnx's serializer warns about each constant it types itself.
  serde = logging.getLogger('onnx_ir.serde')
  level = serde.level
  serde.setLevel(logging.ERROR)
  try:
    with forms.onnx_forms():
      model = to_onnx(fn, list(inputs), opset=OPSET, model_name=name,
                      input_names=list(input_names),
                      output_names=list(output_names))
  finally:
    serde.setLevel(level)
  model = _without_dead_nodes(model)
  del model.graph.value_info[:]
  model = onnx.shape_inference.infer_shapes(model, check_type=True,
                                            strict_mode=True, data_prop=True)
  onnx.checker.check_model(model, full_check=True)
  return model


def _without_dead_nodes(model):
  """jax2onnx leaves nodes whose values no output uses (about 140 in a
  TFDEM model: shape arithmetic for the symbolic batch, the sown
  intermediates); onnx-ir's (its dependency) pass removes them, so
  TensorRT's and polygraphy's linters see none."""
  import onnx_ir
  from onnx_ir.passes.common import RemoveUnusedNodesPass
  graph = onnx_ir.serde.deserialize_model(model)
  RemoveUnusedNodesPass()(graph)
  return onnx_ir.serde.serialize_model(graph)


def write(path, meta: dict, model) -> None:
  """The model with `meta` in its metadata_props, whole or not at all."""
  entry = model.metadata_props.add()
  entry.key, entry.value = META_KEY, json.dumps(meta)
  with files.atomic_path(path, 'the exported file') as tmp:
    with open(tmp, 'wb') as f:
      f.write(model.SerializeToString())


def _aval(value) -> Aval:
  t = value.type.tensor_type
  shape = tuple(d.dim_value if d.HasField('dim_value') else
                (d.dim_param or '?') for d in t.shape.dim)
  return Aval(shape, DTYPES.get(t.elem_type, object))


def read(path) -> tuple[dict, OnnxProgram]:
  """(metadata, program) of an ONNX file this package wrote; anything else
  is one line naming the file."""
  hint = ('give a model directory or a file written by python -m '
          'mstsm_jax.export')
  if os.path.getsize(path) == 0:
    raise UsageError(f'{path} is empty (0 bytes), not an exported model',
                     hint)
  try:
    onnx = _onnx()
  except UsageError as e:
    raise UsageError(f'{path} is not a zip archive; reading it as an ONNX '
                     'file needs the onnx package', INSTALL) from e
  try:
    model = onnx.load_model(str(path))
    meta = json.loads({p.key: p.value
                       for p in model.metadata_props}[META_KEY])
  except KeyError as e:
    raise UsageError(f'{path} is an ONNX model without mstsm_jax metadata',
                     hint) from e
  except Exception as e:  # pylint: disable=broad-except
    raise UsageError(f'{path} is not an exported mstsm_jax model '
                     f'({type(e).__name__})', hint) from e
  return meta, program(model)


def program(model) -> OnnxProgram:
  """An ONNX `ModelProto` as what a runtime loads (runtimes.py)."""
  graph = model.graph
  return OnnxProgram(
      model.SerializeToString(),
      tuple(_aval(v) for v in graph.input),
      tuple(_aval(v) for v in graph.output),
      tuple(v.name for v in graph.input))
