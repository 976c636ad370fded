"""Shift ops against a NumPy port of the official TSM (mit-han-lab) semantics."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mstsm_jax.ops import forms, shift as S
from mstsm_jax.ops.diff import frame_difference


def ref_tsm_shift(x, n_segment, fold_div=8):
  """NumPy port of temporal_shift.py `TemporalShift.shift` (NCHW there).

  Here NHWC: the channel axis is last; otherwise line by line the same.
  """
  nt, h, w, c = x.shape
  x = x.reshape(nt // n_segment, n_segment, h, w, c)
  fold = c // fold_div
  out = np.zeros_like(x)
  out[:, :-1, ..., :fold] = x[:, 1:, ..., :fold]  # shift left
  out[:, 1:, ..., fold:2 * fold] = x[:, :-1, ..., fold:2 * fold]  # right
  out[..., 2 * fold:] = x[..., 2 * fold:]  # not shift
  return out.reshape(nt, h, w, c)


def ref_unit_shift(x, n_segment, units, lo, hi, fill=None):
  """out[t] = x[t + units] on channels [lo, hi), `fill[t]` (or 0) outside."""
  nt, h, w, c = x.shape
  v = x.reshape(nt // n_segment, n_segment, h, w, c)[..., lo:hi]
  out = np.zeros_like(v) if fill is None else fill.copy()
  for t in range(n_segment):
    if 0 <= t + units < n_segment:
      out[:, t] = v[:, t + units]
  return out.reshape(nt, h, w, hi - lo)


def ref_module(x, n_segment, kind, r_one=1 / 8, r_two=1 / 16, r_three=1 / 16):
  c = x.shape[-1]
  if kind == 'tsn':
    return x
  out = [ref_tsm_shift(x, n_segment, round(1 / r_one))]
  fold = int(c * r_one)
  if kind.startswith('mstsm'):
    g = int(np.floor(c * r_two))
    lo, hi = 2 * fold, 2 * fold + g
    f_fwd = f_bwd = None
    if kind == 'mstsm2var':
      v = x.reshape(-1, n_segment, *x.shape[1:])
      f_fwd = ref_unit_shift(x, n_segment, -3, lo, hi).reshape(
          v.shape[:-1] + (g,))
      f_bwd = ref_unit_shift(x, n_segment, 3, lo, hi).reshape(
          v.shape[:-1] + (g,))
    out += [ref_unit_shift(x, n_segment, 2, lo, hi, f_fwd),
            ref_unit_shift(x, n_segment, -2, lo, hi, f_bwd)]
    if kind == 'mstsm3':
      g3 = int(np.floor(c * r_three))
      out += [ref_unit_shift(x, n_segment, 3, hi, hi + g3),
              ref_unit_shift(x, n_segment, -3, hi, hi + g3)]
  return np.concatenate(out, -1)


@pytest.fixture
def x():
  # 3 clips of T=8 frames, 64 channels; distinct values everywhere.
  return np.random.default_rng(0).normal(size=(24, 3, 2, 64)).astype(
      np.float32)


def test_one_unit_equals_official_tsm(x):
  got = jax.jit(S.one_unit_shift, static_argnums=1)(x, 8)
  np.testing.assert_array_equal(got, ref_tsm_shift(x, 8))


@pytest.mark.parametrize('kind', S.KINDS)
def test_modules_equal_reference(x, kind):
  spec = S.ShiftSpec(kind, 8)
  got = jax.jit(lambda a: S.temporal_module(a, spec))(x)
  assert got.shape[-1] == spec.out_channels(64)
  np.testing.assert_array_equal(got, ref_module(x, 8, kind))


def test_known_values_two_unit():
  # A single clip whose value is the frame index: the concatenated channels
  # read t+2 / t-2, zero past the ends.
  t = np.arange(8, dtype=np.float32) + 1
  x = np.broadcast_to(t[:, None, None, None], (8, 1, 1, 32)).copy()
  out = np.asarray(S.temporal_module(x, S.ShiftSpec('mstsm', 8)))
  assert out.shape == (8, 1, 1, 36)  # g = 32 // 16 = 2
  np.testing.assert_array_equal(out[:, 0, 0, 0], [2, 3, 4, 5, 6, 7, 8, 0])
  np.testing.assert_array_equal(out[:, 0, 0, 4], [0, 1, 2, 3, 4, 5, 6, 7])
  np.testing.assert_array_equal(out[:, 0, 0, 32], [3, 4, 5, 6, 7, 8, 0, 0])
  np.testing.assert_array_equal(out[:, 0, 0, 34], [0, 0, 1, 2, 3, 4, 5, 6])
  var = np.asarray(S.temporal_module(x, S.ShiftSpec('mstsm2var', 8)))
  # Vacancies hold the next frame beyond those already seen (t-3 / t+3).
  np.testing.assert_array_equal(var[:, 0, 0, 32], [3, 4, 5, 6, 7, 8, 4, 5])
  np.testing.assert_array_equal(var[:, 0, 0, 34], [4, 5, 1, 2, 3, 4, 5, 6])


def test_nothing_crosses_clips(x):
  # Perturb clip 1 only: clips 0 and 2 of every module's output are unchanged.
  y = x.copy()
  y[8:16] += 100.0
  for kind in S.KINDS:
    spec = S.ShiftSpec(kind, 8)
    a = np.asarray(S.temporal_module(x, spec))
    b = np.asarray(S.temporal_module(y, spec))
    np.testing.assert_array_equal(a[:8], b[:8])
    np.testing.assert_array_equal(a[16:], b[16:])


def test_vjp_is_the_opposite_shift(x):
  g = np.random.default_rng(1).normal(size=x.shape).astype(np.float32)
  _, vjp = jax.vjp(lambda a: S.one_unit_shift(a, 8), x)
  (gx,) = vjp(g)
  # Opposite shift: channels [0, fold) move right, [fold, 2fold) move left.
  fold = 8
  want = g.copy()
  want[..., :fold] = ref_unit_shift(g, 8, -1, 0, fold)
  want[..., fold:2 * fold] = ref_unit_shift(g, 8, 1, fold, 2 * fold)
  np.testing.assert_array_equal(gx, want)


def test_vjp_two_unit_concat(x):
  spec = S.ShiftSpec('mstsm', 8)
  out = S.temporal_module(x, spec)
  g = np.random.default_rng(2).normal(size=out.shape).astype(np.float32)
  _, vjp = jax.vjp(lambda a: S.temporal_module(a, spec), x)
  (gx,) = vjp(g)
  _, vjp1 = jax.vjp(lambda a: S.one_unit_shift(a, 8), x)
  (want,) = vjp1(g[..., :64])
  want = np.array(want)
  # The t+2 copy sends its gradient 2 frames later, the t-2 copy earlier.
  want[..., 16:20] += ref_unit_shift(g[..., 64:68], 8, -2, 0, 4)
  want[..., 16:20] += ref_unit_shift(g[..., 68:72], 8, 2, 0, 4)
  np.testing.assert_allclose(gx, want, rtol=0, atol=1e-6)


def test_bf16_in_bf16_out(x):
  for kind in S.KINDS:
    out = S.temporal_module(jnp.asarray(x, jnp.bfloat16), S.ShiftSpec(kind, 8))
    assert out.dtype == jnp.bfloat16


def test_vmap_and_grad(x):
  spec = S.ShiftSpec('mstsm3', 8)
  batched = jax.vmap(lambda a: S.temporal_module(a, spec))(
      x.reshape(3, 8, 3, 2, 64))
  np.testing.assert_array_equal(batched.reshape(24, 3, 2, -1),
                                ref_module(x, 8, 'mstsm3'))
  grad = jax.grad(lambda a: S.temporal_module(a, spec).sum())(x)
  assert grad.shape == x.shape


def test_bad_inputs():
  with pytest.raises(ValueError, match='not divisible by num_segments=8'):
    S.temporal_module(np.zeros((12, 2, 2, 64)), S.ShiftSpec('tsm', 8))
  with pytest.raises(ValueError, match='unknown temporal module .*valid'):
    S.ShiftSpec('mstsm4')
  with pytest.raises(ValueError, match=r'r_two=0.75 is outside \(0, 1/2\]'):
    S.ShiftSpec('mstsm', r_two=0.75)
  with pytest.raises(ValueError, match='num_segments=2 is too short'):
    S.ShiftSpec('mstsm', num_segments=2)
  with pytest.raises(ValueError, match='exceeds the 64 channels'):
    S.ShiftSpec('mstsm', r_one=0.5, r_two=0.25).out_channels(64)


def test_frame_difference(x):
  d = np.asarray(frame_difference(x, 8)).reshape(3, 8, 3, 2, 64)
  v = x.reshape(3, 8, 3, 2, 64)
  np.testing.assert_allclose(d[:, :-1], v[:, :-1] - v[:, 1:], atol=1e-6)
  np.testing.assert_array_equal(d[:, -1], v[:, -1])  # last keeps its own


@pytest.mark.parametrize('kind', S.KINDS)
def test_lowers_to_slices_and_concats_only(kind):
  """No gathers, scatters, selects or masks: XLA can fuse the shift into
  the neighbouring ops."""
  x = jnp.zeros((16, 8, 8, 64), jnp.bfloat16)
  text = jax.jit(lambda a: S.temporal_module(a, S.ShiftSpec(kind, 8))).lower(
      x).as_text()
  ops = {ln.split('=', 1)[1].split()[0].split('(')[0]
         for ln in text.splitlines() if '= stablehlo.' in ln}
  assert ops <= {'stablehlo.slice', 'stablehlo.concatenate',
                 'stablehlo.reshape', 'stablehlo.broadcast_in_dim',
                 'stablehlo.constant'}, ops


@pytest.mark.parametrize('causal', [False, True])
def test_the_onnx_form_is_the_same_function(x, causal):
  """Traced for ONNX (ops/forms.py) every module computes on `[N*T, C, H,
  W]` between two transposes: the same values, bit for bit."""
  for kind in S.CAUSAL_KINDS if causal else S.KINDS:
    spec = S.ShiftSpec(kind, 8, causal=causal)
    want = S.temporal_module(x, spec)
    with forms.onnx_forms():
      got = S.temporal_module(x, spec)
      jaxpr = str(jax.make_jaxpr(lambda a, s=spec: S.temporal_module(a, s))(x))
    np.testing.assert_array_equal(got, want)
    assert ('transpose' in jaxpr) == (kind != 'tsn'), jaxpr
    if causal:  # one streamed frame, from buffers holding values
      frame = x[:3]
      buffers = jax.tree.map(
          lambda b: np.random.default_rng(1).normal(size=b.shape).astype(
              np.float32), S.causal_buffers(spec, frame.shape, jnp.float32))
      want = S.causal_step(frame, buffers, spec)
      with forms.onnx_forms():
        got = S.causal_step(frame, buffers, spec)
      jax.tree.map(np.testing.assert_array_equal, got, want)
  assert not forms.for_onnx()


def ref_online_tsm(frames, fold_div=8):
  """NumPy port of TSM's online demo `TemporalShift.forward(x, buffer)`
  (online_demo/mobilenet_v2_tsm.py), one frame per call: the first C/8
  channels are replaced by the buffer (the previous frame's), which then
  holds this frame's."""
  c = frames.shape[-1]
  fold = c // fold_div
  buffer = np.zeros_like(frames[0][..., :fold])
  out = []
  for f in frames:
    out.append(np.concatenate([buffer, f[..., fold:]], -1))
    buffer = f[..., :fold]
  return np.stack(out)


@pytest.mark.parametrize('kind', S.CAUSAL_KINDS)
def test_causal_module_and_step_equal_online_tsm(x, kind):
  spec = S.ShiftSpec(kind, 8, causal=True)
  offline = np.asarray(jax.jit(lambda a: S.temporal_module(a, spec))(x))
  clips = x.reshape(3, 8, 3, 2, 64)
  # One frame per call for the 3 clips as 3 streams, from zero buffers.
  step = jax.jit(lambda f, b: S.causal_step(f, b, spec))
  buffers = S.causal_buffers(spec, clips[:, 0].shape, jnp.float32)
  streamed = []
  for t in range(8):
    y, buffers = step(clips[:, t], buffers)
    streamed.append(np.asarray(y))
  np.testing.assert_array_equal(
      np.stack(streamed, 1).reshape(offline.shape), offline)
  if kind == 'tsn':
    return
  ref = np.stack([ref_online_tsm(c) for c in clips]).reshape(24, 3, 2, 64)
  np.testing.assert_array_equal(offline[..., :64], ref)
  if kind == 'mstsm':  # the concatenated pair: g channels from t-1, t-2
    src = clips[..., 16:20]
    np.testing.assert_array_equal(offline[..., 64:68].reshape(src.shape)[:, 1:],
                                  src[:, :-1])
    np.testing.assert_array_equal(offline[..., 68:].reshape(src.shape)[:, 2:],
                                  src[:, :-2])
    assert not offline.reshape(3, 8, 3, 2, 72)[:, :2, ..., 68:].any()


def test_causal_modules_never_see_the_future(x):
  for kind in S.CAUSAL_KINDS:
    spec = S.ShiftSpec(kind, 8, causal=True)
    y = x.copy().reshape(3, 8, 3, 2, 64)
    y[:, 5] += 100.0
    a = np.asarray(S.temporal_module(x, spec)).reshape(3, 8, 3, 2, -1)
    b = np.asarray(S.temporal_module(y.reshape(x.shape), spec)).reshape(
        a.shape)
    np.testing.assert_array_equal(a[:, :5], b[:, :5])
    assert (a[:, 5:] != b[:, 5:]).any()
  d = np.asarray(frame_difference(x, 8, causal=True)).reshape(3, 8, 3, 2, 64)
  v = x.reshape(3, 8, 3, 2, 64)
  np.testing.assert_allclose(d[:, 1:], v[:, 1:] - v[:, :-1], atol=1e-6)
  np.testing.assert_array_equal(d[:, 0], v[:, 0])  # the first keeps its own
  with pytest.raises(ValueError, match='no causal'):
    S.ShiftSpec('mstsm3', causal=True)
