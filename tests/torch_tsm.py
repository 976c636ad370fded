"""The official TSM shift in PyTorch, written in the tests from the
official rules (mit-han-lab/temporal-shift-module, `TemporalShift.shift`
and the "blockres" placement): the reference the parity tests hold our
JAX code to, so it is never project code."""
import torch


def tsm_shift(x, n_segment=8, fold_div=8):
  """Zero-padded shift, NCHW `[B*T, C, H, W]`: channels [0, C/8) from frame
  t+1, [C/8, C/4) from frame t-1, the rest in place."""
  nt, c, h, w = x.size()
  x = x.view(nt // n_segment, n_segment, c, h, w)
  fold = c // fold_div
  out = torch.zeros_like(x)
  out[:, :-1, :fold] = x[:, 1:, :fold]  # shift left
  out[:, 1:, fold:2 * fold] = x[:, :-1, fold:2 * fold]  # shift right
  out[:, :, 2 * fold:] = x[:, :, 2 * fold:]  # not shift
  return out.view(nt, c, h, w)


class Shifted(torch.nn.Module):
  """TSM's residual ("blockres") placement: shift, then the block's conv1."""

  def __init__(self, net, n_segment=8):
    super().__init__()
    self.net, self.n_segment = net, n_segment

  def forward(self, x):
    return self.net(tsm_shift(x, self.n_segment))
