"""Which of two equal forms an op is traced in: XLA's or ONNX runtimes'.

The model computes NHWC `[N*T, H, W, C]`, the layout XLA:CPU runs fastest:
the temporal shift slices the channel axis of `[N, T, H, W, C]`, and the
stem max pool is the maximum of nine strided views, which XLA fuses with
the BN and ReLU before it. An ONNX graph computes NCHW: jax2onnx wraps each
convolution in NHWC <-> NCHW transposes and cancels the pairs that only
elementwise ops separate, so a shift in NHWC left two full-tensor
transposes per block, and nine strided `Slice`s are no `MaxPool` (ONNX
Runtime: 818 -> 658 ms per ResNet-50 MSTSM-TFDEM clip without them,
docs/performance.md).
Inside `onnx_forms()` (entered by `onnx_file.convert`) those ops are
traced in the forms ONNX runtimes run fastest: the shift on `[N, T, C, H,
W]`, the pool as `nn.max_pool` (jax2onnx's `MaxPool`). The values are the
same bit for bit (tests/test_shift.py, tests/test_cpu.py).
"""
from __future__ import annotations

import contextlib
import contextvars

_ONNX = contextvars.ContextVar('mstsm_jax_onnx_forms', default=False)


@contextlib.contextmanager
def onnx_forms():
  """Traces ops in their ONNX forms within the block."""
  token = _ONNX.set(True)
  try:
    yield
  finally:
    _ONNX.reset(token)


def for_onnx() -> bool:
  return _ONNX.get()
