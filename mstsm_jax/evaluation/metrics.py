"""Video-level metrics (paper §4.5, SPEC §6) and the PNGs people look at."""
from __future__ import annotations

import csv
import pathlib

import numpy as np


def classification_metrics(scores: np.ndarray, labels: np.ndarray,
                           num_classes: int) -> dict:
  """top-1, top-5, mean class accuracy, per-class accuracy, confusion.

  Args:
    scores: `[N, classes]` video scores; labels: `[N]` ints.
  Returns:
    dict with floats in [0, 1] (mean_class_acc over classes present in
    `labels`), `per_class` `[classes]` (nan for absent classes) and
    `confusion` `[classes, classes]` counts (rows true, columns predicted).
  """
  scores, labels = np.asarray(scores), np.asarray(labels)
  pred = scores.argmax(-1)
  k = min(5, scores.shape[-1])
  top5 = np.argsort(-scores, axis=-1)[:, :k]
  confusion = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(confusion, (labels, pred), 1)
  support = confusion.sum(1)
  with np.errstate(invalid='ignore', divide='ignore'):
    per_class = np.diag(confusion) / support
  return {'top1': float((pred == labels).mean()),
          'top5': float((top5 == labels[:, None]).any(-1).mean()),
          'mean_class_acc': float(np.nanmean(per_class)),
          'per_class': per_class, 'confusion': confusion,
          'videos': int(len(labels))}


def write_confusion(path_stem, confusion: np.ndarray, classes) -> list[str]:
  """Writes `<stem>.csv` (counts, class names as header) and `<stem>.png`."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  stem = pathlib.Path(path_stem)
  stem.parent.mkdir(parents=True, exist_ok=True)
  with open(stem.with_suffix('.csv'), 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['true \\ predicted', *classes])
    for name, row in zip(classes, confusion):
      w.writerow([name, *row.tolist()])
  n = len(classes)
  norm = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
  size = min(4 + 0.18 * n, 40)
  fig, ax = plt.subplots(figsize=(size, size * 0.9))
  im = ax.imshow(norm, cmap='Blues', vmin=0, vmax=1)
  ticks = np.arange(n)
  fs = max(3, min(9, 300 // max(n, 1)))
  ax.set_xticks(ticks, classes, rotation=90, fontsize=fs)
  ax.set_yticks(ticks, classes, fontsize=fs)
  ax.set_xlabel('predicted')
  ax.set_ylabel('true')
  if n <= 20:
    for i in range(n):
      for j in range(n):
        if confusion[i, j]:
          ax.text(j, i, int(confusion[i, j]), ha='center', va='center',
                  fontsize=fs, color='white' if norm[i, j] > 0.5 else 'black')
  fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label='row-normalised')
  ax.set_title('confusion matrix (counts; colour = recall)')
  fig.tight_layout()
  fig.savefig(stem.with_suffix('.png'), dpi=120)
  plt.close(fig)
  return [str(stem.with_suffix('.csv')), str(stem.with_suffix('.png'))]


def plot_curves(records: list[dict], path) -> str:
  """Training loss / lr and eval top-1 over steps, from metrics.jsonl rows."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  train = [r for r in records if 'loss' in r]
  evals = [r for r in records if 'eval_top1' in r]
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
  if train:
    axes[0].plot([r['step'] for r in train], [r['loss'] for r in train],
                 label='loss')
    axes[0].set_xlabel('step')
    axes[0].set_ylabel('training loss')
    axes[0].set_yscale('log')
  if evals:
    axes[1].plot([r['step'] for r in evals],
                 [100 * r['eval_top1'] for r in evals], 'o-', label='top-1')
    axes[1].set_xlabel('step')
    axes[1].set_ylabel('test top-1 (%)')
  for ax in axes:
    ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return str(path)
