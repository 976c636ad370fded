"""Online models: streaming one frame at a time equals the offline model,
the exported step equals the Python one, and `stream` writes a playable
annotated MP4 with its timeline."""
import json
import pathlib

import av
import jax
import numpy as np
import pytest

import model_dirs
import videos
from mstsm_jax import inference
from mstsm_jax.data import video
from mstsm_jax.errors import UsageError
from mstsm_jax.inference.archive import read
from mstsm_jax.models import task
from mstsm_jax.inference.streaming import Streamer, step_function, zeros


def offline_frame_scores(predictor, clip):
  """The offline model's per-frame scores `[T, classes]` on a uint8 clip
  `[T, H, W, 3]`, cropped and normalised as Predictor does."""
  cfg = predictor.config
  x = task.normalize(inference.center_view(clip[None], cfg.data.resize_short,
                                           cfg.data.crop_size),
                     *task.norm_stats(cfg.data))
  logits, aux = jax.jit(lambda v, x: predictor.model.apply(
      v, x, method=predictor.model.frame_logits))(predictor.variables, x)
  return np.asarray(task.scores(logits[0], None if aux is None else aux[0],
                                fuse=cfg.model.tfdem_fuse))


@pytest.mark.parametrize('variant,extra', [
    ('tsm_online', {}),
    ('mstsm_tfdem_online', {'model.tfdem_fuse': True}),
], ids=['tsm_online', 'mstsm_tfdem_online_fused'])
def test_streaming_equals_the_offline_model(variant, extra, tmp_path):
  model_dirs.model_dir(tmp_path / 'm', model_dirs.tiny_config(variant,
                                                              **extra),
                       head_std=0.5)
  predictor = inference.load(tmp_path / 'm')
  clip = np.random.default_rng(0).integers(0, 256, (12, 40, 48, 3), np.uint8)
  streamer = Streamer(tmp_path / 'm')
  got = np.stack([streamer.step(f) for f in clip[:8]])
  want = offline_frame_scores(predictor, clip[:8])
  scale = np.abs(want).max()
  assert scale > 0.1  # O(1) scores, so the tolerance means something
  np.testing.assert_allclose(got, want, atol=1e-5 * scale)
  if not extra.get('model.tfdem_fuse'):
    np.testing.assert_allclose(streamer.smoothed(8), predictor(clip[None, :8])[0],
                               atol=1e-5 * scale)
  # The buffers matter: frame 1 differs from frame 1 streamed alone.
  streamer.reset()
  alone = streamer.step(clip[1])
  assert np.abs(alone - got[1]).max() > 1e-3 * scale
  # Streaming goes on past T frames; a reset starts a video afresh.
  streamer.reset()
  for f in clip:
    streamer.step(f)
  streamer.reset()
  np.testing.assert_allclose(streamer.step(clip[0]), got[0], atol=1e-6)


def test_offline_variants_refuse_to_stream(tmp_path):
  model_dirs.model_dir(tmp_path / 'm', model_dirs.tiny_config('mstsm_tfdem'))
  with pytest.raises(UsageError, match='looks at future frames'):
    Streamer(tmp_path / 'm')


def test_exported_step_equals_the_python_step(tmp_path, job):
  config = model_dirs.tiny_config('mstsm_tfdem_online')
  model_dirs.model_dir(tmp_path / 'm', config, head_std=0.5)
  out = tmp_path / 'online.mstsm'
  meta = job('export', f'--checkpoint={tmp_path}/m', f'--output={out}',
             '--streaming', '--batch=1', '--json').json()['metadata']
  assert meta['kind'] == 'stream' and meta['batch'] == 1
  _, exported = read(out)
  p = inference.load(tmp_path / 'm')
  fn, shapes = step_function(p.model, p.variables, p.config)
  fn = jax.jit(fn)
  frames = np.random.default_rng(1).integers(0, 256, (8, 1, 32, 32, 3),
                                             np.uint8)
  b1, b2 = zeros(exported.in_avals[1:]), zeros(shapes)
  for f in frames:
    (s1, *b1), (s2, b2) = exported.call(f, *b1), fn(f, b2)
    np.testing.assert_allclose(s1, s2, atol=1e-5 * np.abs(s2).max())
  # Streamer(FILE) runs it; a clip loader refuses it with a pointer.
  assert Streamer(out).step(frames[0, 0]).shape == (10,)
  with pytest.raises(UsageError, match='streaming step'):
    inference.load(out)
  # A step for two streams at once is the user's loop, not Streamer's.
  job('export', f'--checkpoint={tmp_path}/m', f'--output={tmp_path}/2.mstsm',
      '--streaming', '--batch=2')
  with pytest.raises(UsageError, match='steps 2 streams at once') as e:
    Streamer(tmp_path / '2.mstsm')
  assert '--batch=1' in e.value.hint


def test_stream_smooths_past_64_steps_and_warns_when_short(tmp_path, job):
  """--smooth=K is the mean of K steps whatever K (the Streamer kept 64,
  so K = 70 was silently 64); fewer steps than T are said."""
  model_dirs.model_dir(tmp_path / 'm', model_dirs.tiny_config('tsm_online'),
                       head_std=0.5)
  videos.write_video(tmp_path / 'v.avi', 70, size=(36, 36))
  r = job('stream', f'--checkpoint={tmp_path}/m', f'--video={tmp_path}/v.avi',
          '--smooth=70', '--json').json()
  streamer = Streamer(tmp_path / 'm', history=70)
  for f in video.read_video(str(tmp_path / 'v.avi'), 0,
                            as_jpeg=False)['frames']:
    streamer.step(f)
  (label, prob), = streamer.ranked(70)
  assert r['timeline'][-1] == {'frame': 69, 'time': 2.76, 'label': label,
                               'probability': round(prob, 6)}
  assert streamer.ranked(64) != streamer.ranked(70)
  videos.write_video(tmp_path / 'short.avi', 4, size=(36, 36))
  r = job('stream', f'--checkpoint={tmp_path}/m',
          f'--video={tmp_path}/short.avi')
  assert 'warning: 4 of 4 frames stepped (--every=1), fewer than T = 8' \
      in r.stderr


def test_stream_writes_a_playable_annotated_mp4(tmp_path, job):
  model_dirs.model_dir(tmp_path / 'm',
                       model_dirs.tiny_config('mstsm_tfdem_online'),
                       head_std=0.5)
  videos.write_video(tmp_path / 'v.avi', 30, size=(48, 63), fps=10)
  out = tmp_path / 'annotated.mp4'
  ran = job('stream', f'--checkpoint={tmp_path}/m',
            f'--video={tmp_path}/v.avi', '--every=2', '--smooth=4',
            f'--output={out}', '--json')
  assert '63x48 frames written as 62x48 (H.264 needs even sizes' in \
      ran.stderr
  r = ran.json()
  assert r['frames'] == 30 and r['steps'] == 15 and r['smooth'] == 4
  assert [row['frame'] for row in r['timeline']] == list(range(0, 30, 2))
  assert r['timeline'][1]['time'] == 0.2
  assert r['latency_ms_p90'] >= r['latency_ms_p50'] > 0
  assert r['frames_per_s'] > 0
  assert json.loads((tmp_path / 'annotated.json').read_text())['timeline'] \
      == r['timeline']
  with av.open(str(out)) as f:
    s = f.streams.video[0]
    assert s.codec_context.name == 'h264'
    decoded = [fr.to_ndarray(format='rgb24') for fr in f.decode(s)]
  assert len(decoded) == 30 and decoded[0].shape == (48, 62, 3)
  # The label band is drawn: the top rows are darker and hold white text.
  assert decoded[5][:8].max() > 200


def test_stream_reports_a_quietly_truncated_video(tmp_path, job):
  """FFmpeg ends a cut AVI after its first frame without an error: the
  stream says so (warning and `truncated`) instead of a short, silent run."""
  model_dirs.model_dir(tmp_path / 'm', model_dirs.tiny_config('tsm_online'))
  videos.write_video(tmp_path / 'full.avi', 60, size=(36, 36))
  data = (tmp_path / 'full.avi').read_bytes()
  (tmp_path / 'cut.avi').write_bytes(data[:len(data) * 2 // 3])
  r = job('stream', f'--checkpoint={tmp_path}/m',
          f'--video={tmp_path}/cut.avi', '--json')
  res = r.json()
  assert res['frames'] < 60 and 'of the 60 frames the container declares' \
      in res['truncated']
  assert 'warning:' in r.stderr and 'decoding stopped' in r.stderr
  full = job('stream', f'--checkpoint={tmp_path}/m',
             f'--video={tmp_path}/full.avi', '--json').json()
  assert full['frames'] == 60 and full['truncated'] == ''


def test_readme_clip_snippet_writes_the_video_deploy_uses(tmp_path, capsys,
                                                          monkeypatch):
  """README "Deploy" makes clip.mp4 with a one-liner; run as written (its
  Python, in-process) it writes a 16-frame video of the class it names."""
  readme = (pathlib.Path(__file__).parent.parent / 'README.md').read_text()
  block = readme[readme.index('## Deploy'):].split('```')[1]
  code = block.split('-c "', 1)[1].rsplit('"', 1)[0]
  monkeypatch.chdir(tmp_path)
  exec(code, {})  # pylint: disable=exec-used
  assert capsys.readouterr().out.strip() == 'shrink'
  frames = video.read_video(str(tmp_path / 'clip.mp4'), 0, as_jpeg=False)
  assert frames['num_frames'] == 16 and frames['frames'].shape[1:] == (
      64, 64, 3)
