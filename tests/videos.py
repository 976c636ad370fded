"""Writes real encoded videos and official-layout trees for the tests."""
import pathlib

import av
import numpy as np


def write_video(path, num_frames=20, size=(48, 64), seed=0, fps=25):
  """An MPEG-4 video of a moving bright square; returns the frames."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  h, w = size
  rng = np.random.default_rng(seed)
  base = rng.integers(0, 80, (h, w, 3)).astype(np.uint8)
  frames = []
  with av.open(str(path), 'w') as out:
    stream = out.add_stream('mpeg4', rate=fps)
    stream.width, stream.height, stream.pix_fmt = w, h, 'yuv420p'
    for t in range(num_frames):
      f = base.copy()
      x = (t * 2) % (w - 10)
      f[10:20, x:x + 10] = 250
      frames.append(f)
      for packet in stream.encode(av.VideoFrame.from_ndarray(f, 'rgb24')):
        out.mux(packet)
    for packet in stream.encode():
      out.mux(packet)
  return np.stack(frames)


def crlf(path, lines):
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(''.join(f'{ln}\r\n' for ln in lines).encode())


UCF_CLASSES = ['ApplyEyeMakeup', 'HandstandPushups', 'YoYo']


def ucf101_tree(root):
  """A miniature UCF-101: 3 classes, groups g01-g03, the case quirk, a
  corrupt, an empty and a truncated video, a missing and an unlisted one, a
  duplicate."""
  root = pathlib.Path(root)
  vids = root / 'UCF101'
  for c, cls in enumerate(UCF_CLASSES):
    disk = 'HandStandPushups' if cls == 'HandstandPushups' else cls
    for g in (1, 2, 3):
      write_video(vids / cls / f'v_{disk}_g0{g}_c01.avi', 12 + 4 * g,
                  seed=10 * c + g)
  (vids / 'YoYo' / 'v_YoYo_g02_c01.avi').write_bytes(b'not a video' * 50)
  cut = vids / 'YoYo' / 'v_YoYo_g01_c01.avi'  # a tail lost in a copy
  cut.write_bytes(cut.read_bytes()[:cut.stat().st_size * 2 // 3])
  (vids / 'YoYo' / 'v_YoYo_g03_c01.avi').write_bytes(b'')
  write_video(vids / 'YoYo' / 'v_YoYo_g09_c01.avi', 8)  # unlisted
  lists = root / 'ucfTrainTestlist'
  crlf(lists / 'classInd.txt', [f'{i + 1} {c}' for i, c in
                                enumerate(UCF_CLASSES)])
  for k in (1, 2, 3):
    test_g = k  # split k tests group k
    train, test = [], []
    for c, cls in enumerate(UCF_CLASSES):
      for g in (1, 2, 3):
        rel = f'{cls}/v_{cls}_g0{g}_c01.avi'
        (test if g == test_g else train).append((rel, c + 1))
    if k == 1:
      train.append(('YoYo/v_YoYo_g04_c01.avi', 3))  # missing
      train.append(('ApplyEyeMakeup/v_ApplyEyeMakeup_g02_c01.avi', 1))  # dup
    crlf(lists / f'trainlist0{k}.txt', [f'{r} {l}' for r, l in train])
    crlf(lists / f'testlist0{k}.txt', [r for r, _ in test])
  return root


HMDB_NAMES = {
    'brush_hair': ["Amazing_Hair_(Brushing)_&_Stuff!_brush_hair_f_nm_np1_ba_goo_0.avi",
                   "Bob's_hair_brush_hair_u_cm_np1_fr_med_1.avi",
                   'hair3_brush_hair_h_nm_np1_le_goo_2.avi'],
    'shoot_ball': ["Bob's_ball_shoot_ball_u_cm_np1_fr_med_1.avi",
                   'ball_(2)_shoot_ball_f_cm_np1_ri_bad_0.avi',
                   'ball3_shoot_ball_f_cm_np1_ri_bad_2.avi'],
}


def hmdb51_tree(root):
  """A miniature HMDB51 under hmdb51_org/ with odd names; split k: video k-1
  is test, video (k % 3) is unused, the rest train."""
  root = pathlib.Path(root)
  for c, (cls, names) in enumerate(HMDB_NAMES.items()):
    for v, name in enumerate(names):
      write_video(root / 'hmdb51_org' / cls / name, 10 + v, seed=c * 3 + v)
    for k in (1, 2, 3):
      lines = []
      for v, name in enumerate(names):
        role = 2 if v == k - 1 else (0 if v == k % 3 else 1)
        lines.append(f'{name} {role} ')  # note the trailing space
      crlf(root / 'testTrainMulti_7030_splits' /
           f'{cls}_test_split{k}.txt', lines)
  return root


def write_webm(path, num_frames=12, size=(48, 64), seed=0):
  """A VP8 WebM video (Something-Something V2's format)."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  h, w = size
  rng = np.random.default_rng(seed)
  with av.open(str(path), 'w') as out:
    stream = out.add_stream('libvpx', rate=12)
    stream.width, stream.height, stream.pix_fmt = w, h, 'yuv420p'
    for _ in range(num_frames):
      f = rng.integers(0, 255, (h, w, 3)).astype(np.uint8)
      out.mux(stream.encode(av.VideoFrame.from_ndarray(f, 'rgb24')))
    out.mux(stream.encode())


SSV2_CLASSES = ['Moving something up',
                'Pushing something from left to right',
                'Pushing something from right to left']


def ssv2_tree(root, bad_template=False):
  """A miniature Something-Something V2: templates with brackets, a test
  set without labels, a corrupt and a missing video."""
  import json
  root = pathlib.Path(root)
  labels = root / 'labels'
  labels.mkdir(parents=True, exist_ok=True)
  (labels / 'labels.json').write_text(json.dumps(
      {c: str(i) for i, c in enumerate(SSV2_CLASSES)}))
  templates = ['Moving [something] up',
               'Pushing [something] from left to right',
               'Pushing [something] from right to left']
  if bad_template:
    templates[1] = 'Pushing [something] from left to rightt'

  def entry(i, c):
    return {'id': str(i), 'label': f'entry {i}', 'template': templates[c],
            'placeholders': ['a cup']}
  (labels / 'train.json').write_text(json.dumps(
      [entry(i, (i - 1) // 2) for i in range(1, 7)]))
  (labels / 'validation.json').write_text(json.dumps(
      [entry(7, 0), entry(8, 1), entry(9, 2)]))
  (labels / 'test.json').write_text(json.dumps([{'id': '10'}, {'id': '11'}]))
  vids = root / '20bn-something-something-v2'
  for i in (1, 2, 3, 4, 5, 7, 8, 10, 11):  # 9 is missing
    write_webm(vids / f'{i}.webm', seed=i)
  (vids / '6.webm').write_bytes(b'not a video' * 40)
  return root


KINETICS_CLASSES = ['abseiling', 'passing American football (in game)',
                    'petting animal (not cat)']


def kinetics_tree(root):
  """A miniature Kinetics: quoted labels with spaces and parentheses,
  class folders, a flat folder and MMAction2's videos_val/, a missing and a
  corrupt video, a test row without a label."""
  import csv
  root = pathlib.Path(root)
  ann = root / 'annotations'
  ann.mkdir(parents=True, exist_ok=True)
  rows = {'train': [], 'val': [], 'test': []}
  n = 0
  for c, cls in enumerate(KINETICS_CLASSES):
    for k in range(3):
      n += 1
      yt = f'yt{n:03d}-_x'
      rows['train' if k < 2 else 'val'].append((cls, yt, 10 * n, 10 * n + 10))
  rows['test'].append(('', 'ytTEST', 5, 15))
  for split, items in rows.items():
    with open(ann / f'{split}.csv', 'w', newline='') as f:
      w = csv.writer(f)
      w.writerow(['label', 'youtube_id', 'time_start', 'time_end', 'split',
                  'is_cc'])
      for cls, yt, a, b in items:
        w.writerow([cls, yt, a, b, split, 0])
  for split, items in rows.items():
    for cls, yt, a, b in items:
      name = f'{yt}_{a:06d}_{b:06d}.mp4'
      if yt == 'yt002-_x':
        continue  # missing (a deleted upload)
      if split == 'train':
        folder = root / 'train' / cls if yt != 'yt004-_x' else root / 'train'
      else:
        folder = root / ('videos_val' if split == 'val' else 'test')
      if yt == 'yt005-_x':
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b'corrupt' * 60)
        continue
      write_video(folder / name, 10, seed=a)
  return root


def rawframes_tree(root):
  """TSM / MMAction2 rawframes: class/video folders of img_00001.jpg ...,
  a "frame_dir num_frames label" list with a short count, a corrupt frame
  and a missing folder; one video stored small (24x32), the rest 48x64."""
  import cv2
  root = pathlib.Path(root)
  rng = np.random.default_rng(0)
  train, test = [], []
  for c, cls in enumerate(('jump', 'wave')):
    for k in range(3):
      d = root / 'frames' / cls / f'{cls}_{k}'
      d.mkdir(parents=True, exist_ok=True)
      size = (24, 32) if (c, k) == (0, 0) else (48, 64)
      for t in range(8):
        img = rng.integers(0, 255, (*size, 3)).astype(np.uint8)
        cv2.imwrite(str(d / f'img_{t + 1:05d}.jpg'), img)
      (test if k == 2 else train).append(
          f'{cls}/{cls}_{k} {10 if (c, k) == (1, 1) else 8} {c}')
  (root / 'frames' / 'wave' / 'wave_0' / 'img_00004.jpg').write_bytes(
      b'not a jpeg')
  train.append('jump/jump_9 8 0')  # missing folder
  (root / 'train.txt').write_text('\n'.join(train) + '\n')
  (root / 'test.txt').write_text('\n'.join(test) + '\n')
  return root
