"""The PyTorch model a user would run instead: TSM ResNet-50, for `bench`.

torchvision's ResNet-50 with TSM's temporal shift (Lin et al. 2019, the
"residual shift" placement) in front of every bottleneck's first conv: over
the T frames of each clip, 1/8 of the channels take the next frame's values,
1/8 the previous frame's, the rest stay, and the ends are zero-padded.
Written here from that rule (eval mode, random weights: only its speed is
measured). torch and torchvision are optional and imported on first use.
"""
from __future__ import annotations

import numpy as np

from mstsm_jax import cpu

FOLD_DIV = 8  # 1/8 of the channels shift each way


def temporal_shift(x, t: int):
  """`[N*T, C, H, W]` -> the same with channels [0, C/8) taken from frame
  t+1 and [C/8, C/4) from frame t-1 (zeros past the ends)."""
  import torch
  nt, c, h, w = x.shape
  x = x.view(nt // t, t, c, h, w)
  fold = c // FOLD_DIV
  out = torch.zeros_like(x)
  out[:, :-1, :fold] = x[:, 1:, :fold]
  out[:, 1:, fold:2 * fold] = x[:, :-1, fold:2 * fold]
  out[:, :, 2 * fold:] = x[:, :, 2 * fold:]
  return out.view(nt, c, h, w)


def tsm_resnet50(num_classes: int, t: int):
  """TSM ResNet-50 for clips of `t` frames, in eval mode."""
  import torch
  import torchvision

  class Shifted(torch.nn.Module):
    """A conv that sees the temporally shifted input."""

    def __init__(self, conv):
      super().__init__()
      self.conv = conv

    def forward(self, x):
      return self.conv(temporal_shift(x, t))

  m = torchvision.models.resnet50(num_classes=num_classes)
  for layer in (m.layer1, m.layer2, m.layer3, m.layer4):
    for blk in layer:
      blk.conv1 = Shifted(blk.conv1)
  return m.eval()


def runners(num_classes: int, clip: np.ndarray, suffix: str = '',
            formats=('contiguous_format', 'channels_last')) -> dict:
  """{name: (call, description)}: the TSM ResNet-50 in eager mode on the
  uint8 clips `[N, T, S, S, C]`, on every CPU core, in each memory format
  (NCHW as the TSM code runs it and, a PyTorch option too, channels-last);
  `call()` returns the logits."""
  import torch
  torch.set_num_threads(cpu.cores())
  x = torch.from_numpy(clip.reshape(-1, *clip.shape[2:]).astype(
      np.float32)).permute(0, 3, 1, 2)
  out = {}
  for fmt in formats:
    name = 'torch_tsm_resnet50_eager' + (
        '_channels_last' if fmt == 'channels_last' else '') + suffix
    ref = tsm_resnet50(num_classes, clip.shape[1]).to(
        memory_format=getattr(torch, fmt))
    xf = x.contiguous(memory_format=getattr(torch, fmt))

    def call(ref=ref, xf=xf):
      with torch.no_grad():
        return ref(xf)
    out[name] = (call, f'TSM ResNet-50, torch {torch.__version__} eager, '
                       f'{fmt}{suffix.replace("_", " ")}')
  return out
