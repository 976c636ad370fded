"""A local web page: drop a video or open the webcam, and see what the model
sees (Gradio; pip install -e '.[demo]').

  python -m mstsm_jax.demo --checkpoint=DIR|FILE [--port=7860]
      [--share=false] [--max_mb=200] [--smooth=0] [--window_s=4 --stride_s=1]

Upload tab: a video file's top-5 (`predict`'s, as bars), its timeline
(`predict --timeline`'s plot, and the windows as a table whose row under
the playhead is highlighted), a Grad-CAM clip and strip of the top or a
chosen class (`explain`'s), and the model card (variant, backbone,
parameters, classes, where the model came from). Webcam tab (online
models): the browser's frames go through `Streamer` with the model's shift
buffers, one step per frame; the live top-3 is smoothed over the last
`--smooth` steps as `stream --smooth` smooths it, with the frames per
second processed and the latency per frame; Reset empties the buffers.

Everything is computed by the library functions the command-line jobs use,
and bad input gets the same `error:` and `hint:` lines on the page. A file
over `--max_mb` megabytes is refused before decoding (the page holds the
decoded video in memory). A checkpoint that does not load is refused in
one line before the server starts. Runs on the CPU with no network: no
share link unless `--share`, Gradio's analytics off, system fonts.
"""
from __future__ import annotations

import collections
import html
import os
import pathlib
import tempfile
import threading
import time

import numpy as np
from absl import flags

from mstsm_jax import cli, cpu, inference
from mstsm_jax.console import LOG
from mstsm_jax.data import video
from mstsm_jax.errors import UsageError
from mstsm_jax.inference import gradcam, report
from mstsm_jax.inference.streaming import Mp4Writer, Streamer
from mstsm_jax.inference.timelines import check_window

MB = 1 << 20
PLAYBACK_SHORT_SIDE = 360  # the upload's playback copy, pixels
CAM_SCALE = 4  # Grad-CAM clip: crop size x 4 (56 px -> 224 px)
TOP_CLASS = '(top class)'

# Highlights the timeline window whose centre is nearest the playhead of
# the uploaded video, among the windows that contain it.
PLAYHEAD_JS = """<script>
setInterval(() => {
  const v = document.querySelector('#playback video');
  const rows = document.querySelectorAll('#timeline-table tr[data-start]');
  if (!v || !rows.length) return;
  const t = v.currentTime;
  let best = null, bd = Infinity;
  rows.forEach(r => {
    r.classList.remove('now');
    const a = +r.dataset.start, b = +r.dataset.end, d = Math.abs((a + b) / 2 - t);
    if (t >= a && t <= b && d < bd) { bd = d; best = r; }
  });
  if (best) best.classList.add('now');
}, 200);
</script>"""
CSS = """#timeline-table tr.now { background: #ffe08a; }
#timeline-table td { padding: 1px 8px; font-variant-numeric: tabular-nums; }
#upload-error, #webcam-error { color: #b00020; white-space: pre-wrap; }"""


def define_flags(fv):
  flags.DEFINE_string('checkpoint', None, 'model directory, or a file from '
                      'export (--streaming for the webcam tab)',
                      flag_values=fv)
  flags.DEFINE_integer('port', 7860, 'local port of the page',
                       flag_values=fv)
  flags.DEFINE_bool('share', False, "a public link through Gradio's "
                    'servers (needs the internet)', flag_values=fv)
  flags.DEFINE_float('max_mb', 200.0, 'largest video file the page takes, '
                     'MB', flag_values=fv)
  flags.DEFINE_integer('smooth', 0, 'webcam label from the mean scores of '
                       'the last K steps (0 = T)', lower_bound=0,
                       flag_values=fv)
  flags.DEFINE_float('window_s', 4.0, 'timeline: window length, seconds',
                     flag_values=fv)
  flags.DEFINE_float('stride_s', 1.0, 'timeline: window step, seconds',
                     flag_values=fv)
  flags.mark_flag_as_required('checkpoint', flag_values=fv)


def page_error(e: UsageError) -> str:
  """A UsageError as the page shows it: the command line's two lines."""
  return cli.error_lines(e.message, e.hint)


class Demo:
  """The checkpoint loaded once, and the page's handlers over it.

  `predictor` (clip models) serves the upload tab and `streamer` (online
  models) the webcam tab; each is None with `upload_off` / `webcam_off`
  saying why in the command line's words. Raises UsageError when the
  checkpoint serves neither (it does not load).
  """

  def __init__(self, checkpoint: str, max_mb: float = 200.0, smooth: int = 0,
               window_s: float = 4.0, stride_s: float = 1.0):
    check_window(window_s, stride_s)
    self.checkpoint, self.max_mb = checkpoint, max_mb
    self.window_s, self.stride_s = window_s, stride_s
    self.predictor = self.streamer = None
    self.upload_off = self.webcam_off = ''
    is_file = pathlib.Path(checkpoint).is_file()
    try:
      self.predictor = inference.load(checkpoint)
    except UsageError as e:
      if not is_file:  # a model directory that does not load
        raise
      first, self.upload_off = e, page_error(e)
    try:
      self.streamer = Streamer(checkpoint, predictor=self.predictor)
    except UsageError as e:
      if self.predictor is None:
        raise first from e
      self.webcam_off = page_error(e)
    runner = self.predictor or self.streamer
    self.card = report.model_card(checkpoint, runner)
    self.smooth = smooth or (self.streamer.num_segments if self.streamer
                             else 0)
    self.lock = threading.Lock()  # one stream steps at a time
    self.tmp = tempfile.TemporaryDirectory(prefix='mstsm_demo_')
    if self.streamer is not None:  # compile before the first frame
      self.streamer.step(np.zeros((8, 8, self.streamer.channels), np.uint8))

  # -- upload tab ----------------------------------------------------------

  def analyse(self, path, class_name: str = TOP_CLASS) -> dict:
    """Everything the upload tab shows for one video file: {'error' (the
    lines, or ''), 'notes', 'top5' {class: probability}, 'result'
    (predict --json's object), 'playback', 'timeline_png',
    'timeline_html', 'cam_clip', 'cam_png', 'seconds'}."""
    t0 = time.perf_counter()
    out = dict.fromkeys(('top5', 'result', 'playback', 'timeline_png',
                         'timeline_html', 'cam_clip', 'cam_png'))
    out.update(error='', notes='', seconds=0.0)
    if not path:
      return out
    name = pathlib.Path(path).name
    size = os.path.getsize(path) / MB
    if size > self.max_mb:
      out['error'] = cli.error_lines(
          f'{name} is {size:.1f} MB, over the page\'s limit of '
          f'{self.max_mb:g} MB', 'cut it, run python -m mstsm_jax.predict '
          'on it, or start the page with a larger --max_mb')
      return out
    if self.predictor is None:
      out['error'] = self.upload_off
      return out
    work = pathlib.Path(tempfile.mkdtemp(dir=self.tmp.name))
    try:
      result, warnings = report.top5(self.predictor, path)
      timeline = inference.timeline(path, self.predictor, self.window_s,
                                    self.stride_s)
    except video.VideoError as e:
      shown = video.VideoError(name, e.reason, e.detail.replace(path, name))
      out['error'] = cli.error_lines(report.cannot_read(name, shown),
                                     'give a video file PyAV can decode')
      return out
    except UsageError as e:
      out['error'] = page_error(e)
      return out
    result['video'] = name
    out['result'] = result
    out['top5'] = {r['class']: r['probability'] for r in result['top5']}
    notes = [f'{name}: warning: {w}' for w in warnings]
    out['playback'] = self.playback(path, work / 'playback.mp4', notes)
    timeline['video'] = name
    out['timeline_png'] = inference.plot_timeline(timeline,
                                                  work / 'timeline.png')
    out['timeline_html'] = timeline_table(timeline)
    try:
      gradcam.check_explainable(self.checkpoint)
      cam = gradcam.explain_video(
          self.predictor, path, '' if class_name in (None, TOP_CLASS)
          else class_name)
    except UsageError as e:
      notes.append(page_error(e))
    else:
      out['cam_png'] = gradcam.plot(cam['clip'], cam['maps'],
                                    work / 'gradcam.png', cam['title'])
      out['cam_clip'] = str(work / 'gradcam.mp4')
      writer = Mp4Writer(out['cam_clip'], 2)
      for f in gradcam.overlay(cam['clip'], cam['maps'], CAM_SCALE):
        writer.write(f)
      writer.close()
    out['notes'] = '\n'.join(notes)
    out['seconds'] = round(time.perf_counter() - t0, 3)
    print(f'{name}: {result["top5"][0]["class"]} '
          f'{result["top5"][0]["probability"]:.3f}, page result in '
          f'{out["seconds"]:.2f} s', file=LOG)
    return out

  @staticmethod
  def playback(path, out, notes) -> str:
    """An H.264 copy of the upload that every browser plays (short side at
    most PLAYBACK_SHORT_SIDE), for the timeline's playhead."""
    frames = video.iter_frames(path)
    fps, first = next(frames)
    writer = Mp4Writer(out, fps)
    try:
      for rgb in [first, *(f for _, f in frames)]:
        writer.write(video.resize_short(rgb, PLAYBACK_SHORT_SIDE)
                     if min(rgb.shape[:2]) > PLAYBACK_SHORT_SIDE else rgb)
    except video.VideoError as e:  # truncated: top5 already said so
      if e.reason != 'truncated':
        notes.append(report.cannot_read(pathlib.Path(path).name, e))
    finally:
      writer.close()
    return str(out)

  # -- webcam tab ----------------------------------------------------------

  def frame(self, image, session) -> tuple[dict, str, dict]:
    """One webcam frame (uint8 `[H, W, 3]`) through the streamer with this
    browser session's buffers. Returns (top-3 {class: probability}, the
    speed line, the session)."""
    if image is None or self.streamer is None:
      return None, '', session
    t0 = time.perf_counter()
    s = self.streamer
    if session is None:
      session = {**s.new_state(), 'times': collections.deque(maxlen=60),
                 'step_ms': collections.deque(maxlen=200),
                 'frame_ms': collections.deque(maxlen=200), 'steps': 0}
    with self.lock:
      s.buffers, s.history = session['buffers'], session['history']
      t1 = time.perf_counter()
      rgba = image.ndim == 3 and image.shape[-1] == 4  # the browser's alpha
      s.step(np.ascontiguousarray(image[..., :3] if rgba else image))
      step_ms = 1000 * (time.perf_counter() - t1)
      top = s.ranked(self.smooth, 3)
      session['buffers'] = s.buffers
    now = time.perf_counter()
    session['steps'] += 1
    session['times'].append(now)
    session['step_ms'].append(step_ms)
    session['frame_ms'].append(1000 * (now - t0))
    return {c: p for c, p in top}, speed_line(session), session

  def card_markdown(self) -> str:
    c = self.card
    params = (f'{c["parameters"]:,}' if c['parameters'] is not None else
              'not stored in an exported file (count them on its model '
              'directory with python -m mstsm_jax.summary)')
    classes = ', '.join(c['classes'][:20]) + (
        f', ... ({len(c["classes"])} in all)' if len(c['classes']) > 20
        else '')
    return '\n'.join([
        '| | |', '| --- | --- |',
        f'| variant | {c["variant"]} ({"online" if c["online"] else "offline"}) |',
        f'| backbone | {c["backbone"]} |', f'| parameters | {params} |',
        f'| classes | {len(c["classes"])}: {classes} |',
        *(f'| {"source" if i == 0 else ""} | {html.escape(line)} |'
          for i, line in enumerate(c['source']))])


def speed_line(session) -> str:
  """Frames per second processed (the last 60 frames) and the latency per
  frame: the model step and the page's handler (step, smoothing, copies)."""
  times = session['times']
  fps = ((len(times) - 1) / (times[-1] - times[0])
         if len(times) > 1 and times[-1] > times[0] else 0.0)
  step, frame = np.array(session['step_ms']), np.array(session['frame_ms'])
  return (f'**{fps:.1f} frames/s processed** · {session["steps"]} frames '
          f'since reset · model step p50 {np.percentile(step, 50):.2f} ms, '
          f'p90 {np.percentile(step, 90):.2f} ms · handler per frame p50 '
          f'{np.percentile(frame, 50):.2f} ms')


def timeline_table(timeline: dict) -> str:
  """The timeline's windows as an HTML table (the playhead script marks the
  row under it)."""
  rows = ''.join(
      f'<tr data-start="{r["start"]}" data-end="{r["end"]}"><td>'
      f'{r["start"]:.2f}-{r["end"]:.2f} s</td><td>{html.escape(r["label"])}'
      f'</td><td>{100 * r["probability"]:.1f}%</td></tr>'
      for r in timeline['timeline'])
  return (f'<table id="timeline-table"><tr><th>window</th><th>label</th>'
          f'<th>probability</th></tr>{rows}</table>')


def build(demo: Demo):
  """The page (a gradio.Blocks) over `demo`."""
  import gradio as gr
  with gr.Blocks(title='mstsm-jax demo', analytics_enabled=False,
                 delete_cache=(3600, 3600)) as page:
    gr.Markdown(f'## mstsm-jax: {demo.card["variant"]} '
                f'({demo.card["backbone"]}), {len(demo.card["classes"])} '
                'classes')
    with gr.Tab('Upload', id='upload'):
      with gr.Row():
        with gr.Column():
          upload = gr.File(label=f'Video file (at most {demo.max_mb:g} MB)',
                           file_types=['video'], type='filepath',
                           elem_id='upload-file')
          choices = [TOP_CLASS, *demo.card['classes']]
          cam_class = gr.Dropdown(choices, value=TOP_CLASS,
                                  label='Grad-CAM of class')
          error = gr.Markdown(demo.upload_off, elem_id='upload-error')
          notes = gr.Markdown(elem_id='upload-notes')
          top5 = gr.Label(num_top_classes=5, label='Top-5',
                          elem_id='top5')
          timing = gr.Markdown(elem_id='upload-time')
        with gr.Column():
          playback = gr.Video(label='Video (the timeline row under the '
                              'playhead is highlighted)', interactive=False,
                              elem_id='playback')
          table = gr.HTML(elem_id='timeline-html')
      timeline_png = gr.Image(label='Timeline (predict --timeline)',
                              elem_id='timeline-png')
      with gr.Row():
        cam_clip = gr.Video(label='Grad-CAM clip', interactive=False,
                            elem_id='cam-clip')
        cam_png = gr.Image(label='Grad-CAM frames (explain)',
                           elem_id='cam-png')
      result_json = gr.JSON(label='predict --json', elem_id='result-json')
      gr.Markdown(demo.card_markdown(), elem_id='model-card')

      def on_upload(path, class_name):
        r = demo.analyse(path, class_name)
        took = (f'Time to result: {r["seconds"]:.2f} s' if r['seconds']
                else '')
        return (r['error'], r['notes'], r['top5'], r['playback'],
                r['timeline_html'], r['timeline_png'], r['cam_clip'],
                r['cam_png'], r['result'], took)

      outputs = [error, notes, top5, playback, table, timeline_png, cam_clip,
                 cam_png, result_json, timing]
      upload.change(on_upload, [upload, cam_class], outputs)
      cam_class.change(on_upload, [upload, cam_class], outputs)
    with gr.Tab('Webcam', id='webcam'):
      if demo.streamer is None:
        gr.Markdown(demo.webcam_off, elem_id='webcam-error')
      else:
        session = gr.State(None)
        with gr.Row():
          cam = gr.Image(sources=['webcam'], streaming=True, type='numpy',
                         label='Webcam (press record to stream)',
                         webcam_options=gr.WebcamOptions(mirror=False),
                         elem_id='webcam')
          with gr.Column():
            live = gr.Label(num_top_classes=3, label=f'Top-3 (mean of the '
                            f'last {demo.smooth} steps)', elem_id='live')
            speed = gr.Markdown(elem_id='speed')
            reset = gr.Button('Reset (empty the shift buffers)',
                              elem_id='reset')
        cam.stream(demo.frame, [cam, session], [live, speed, session],
                   stream_every=0.04, concurrency_limit=None,
                   show_progress='hidden')
        reset.click(lambda: (None, None, 'buffers emptied'), None,
                    [session, live, speed])
  return page


def main(fv, argv):
  del argv
  cpu.keep_host_memory()  # a server: before jax starts (a no-op after)
  os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')
  try:
    import gradio as gr
  except ImportError as e:
    raise UsageError('the demo needs Gradio, which is not installed',
                     "pip install -e '.[demo]'") from e
  demo = Demo(fv['checkpoint'].value, fv['max_mb'].value, fv['smooth'].value,
              fv['window_s'].value, fv['stride_s'].value)
  page = build(demo)
  print(f'serving {fv["checkpoint"].value} on http://127.0.0.1:'
        f'{fv["port"].value} (Ctrl-C stops it)', file=LOG)
  page.launch(server_name='127.0.0.1', server_port=fv['port'].value,
              share=fv['share'].value, head=PLAYHEAD_JS, css=CSS,
              theme=theme(gr), quiet=True)
  return 0


def theme(gr):
  """Gradio's default look with system fonts: nothing fetched from a font
  server, so the page works offline."""
  return gr.themes.Default(font=['ui-sans-serif', 'system-ui', 'sans-serif'],
                           font_mono=['ui-monospace', 'monospace'])


if __name__ == '__main__':
  cli.main_entry(define_flags, main, __doc__)
