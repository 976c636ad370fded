"""Property-based tests (hypothesis) of the annotation parsers: generated
malformed JSON, CSV and list lines end in a clean refusal (UsageError) or
a correct result, never a traceback. The parsers are called directly on
small files (no video is decoded)."""
import csv
import io
import json
import pathlib
import tempfile

from hypothesis import HealthCheck, given, settings, strategies as st

from mstsm_jax.data import layouts
from mstsm_jax.errors import UsageError

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
DIR = pathlib.Path(tempfile.mkdtemp(prefix='parsers_'))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
# Text of list files: separators, digits, signs and odd characters.
line_text = st.text(st.sampled_from(list(' \t/.-+_,;"\'\ufeff\r0123456789'
                                         'abcXYZé²٣')), max_size=30)


def write(name, data) -> pathlib.Path:
  path = DIR / name
  path.write_bytes(data if isinstance(data, bytes) else data.encode(
      'utf-8', 'surrogatepass'))
  return path


def refused_or(fn, *args):
  """fn(*args), or None when it refuses with a UsageError."""
  try:
    return fn(*args)
  except UsageError as e:
    assert str(e) and '\n' not in str(e)
    return None


@SETTINGS
@given(json_values)
def test_ssv2_labels_any_json(obj):
  classes = refused_or(layouts.ssv2.parse_labels,
                       write('labels.json', json.dumps(obj)))
  if classes is not None:
    assert isinstance(obj, dict) and len(classes) == len(obj)
    assert sorted(classes) == sorted(obj)
    assert [int(obj[c]) for c in classes] == list(range(len(classes)))


@SETTINGS
@given(json_values, st.booleans())
def test_ssv2_entries_any_json(obj, labelled):
  rows = refused_or(layouts.ssv2.parse_entries,
                    write('train.json', json.dumps(obj)),
                    ['Moving something up', 'x'], labelled)
  if rows is not None:
    assert len(rows) == len(obj)
    for (n, vid, label), item in zip(rows, obj):
      assert vid == str(item['id']).strip() and vid
      assert label == (-1 if not labelled else ['Moving something up', 'x']
                       .index(item['template'].replace('[', '')
                              .replace(']', '')))


@SETTINGS
@given(st.binary(max_size=60) | st.text(max_size=60).map(str.encode))
def test_json_files_any_bytes(data):
  refused_or(layouts.ssv2.parse_labels, write('labels.json', data))
  refused_or(layouts.ssv2.parse_entries, write('train.json', data), [], True)


HEADER = 'label,youtube_id,time_start,time_end,split'


@SETTINGS
@given(st.booleans(), st.lists(line_text, max_size=5), st.booleans())
def test_kinetics_csv_malformed(header, lines, bom):
  text = ('\ufeff' if bom else '') + '\n'.join(
      ([HEADER] if header else []) + lines) + '\n'
  rows = refused_or(layouts.kinetics.parse_csv, write('train.csv', text))
  if rows is not None:
    assert header or not rows


ids = st.text(st.sampled_from(list('abcXYZ019-_')), min_size=1, max_size=11)
labels = st.text(st.sampled_from(list('ab (),"\'é')), max_size=12)


@SETTINGS
@given(st.lists(st.tuples(labels, ids, st.integers(0, 10**6),
                          st.integers(0, 10**6)), max_size=6), st.booleans())
def test_kinetics_csv_well_formed_is_read_exactly(rows, bom):
  out = io.StringIO()
  w = csv.writer(out)
  w.writerow(HEADER.split(','))
  for label, yt, a, b in rows:
    w.writerow([label, yt, a, b, 'train'])
  path = write('train.csv', ('\ufeff' if bom else '') + out.getvalue())
  got = layouts.kinetics.parse_csv(path)
  assert [(label, stem) for _, label, stem in got] == [
      (label.strip(), f'{yt}_{a:06d}_{b:06d}') for label, yt, a, b in rows]


@SETTINGS
@given(st.lists(line_text, max_size=6), st.booleans())
def test_video_and_rawframe_lists_malformed(lines, rawframes):
  rows = refused_or(layouts.custom.parse_list,
                    write('list.txt', '\n'.join(lines)), rawframes)
  if rows is not None:
    for no, rel, lab, kind, frames in rows:
      assert rel and kind in ('index', 'name', 'folder')
      if kind == 'index':
        assert 0 <= int(lab) < layouts.custom.MAX_CLASSES
      assert (frames is None) != rawframes


@SETTINGS
@given(st.lists(line_text, max_size=6))
def test_ucf_and_hmdb_lists_malformed(lines):
  text = '\n'.join(lines)
  classes = refused_or(layouts.ucf101.parse_class_index, write('classInd.txt', text))
  if classes is not None:
    assert len(classes) == len([ln for ln in lines if ln.strip()])
  rows = refused_or(layouts.ucf101.parse_split, write('trainlist01.txt', text),
                    ['ApplyEyeMakeup', 'YoYo'], 'classInd.txt')
  for no, rel, label in rows or ():
    assert rel.split('/')[0].lower() in ('applyeyemakeup', 'yoyo')
  for no, name, role in refused_or(layouts.hmdb51.parse_split,
                                   write('x_test_split1.txt', text)) or ():
    assert name and role in (0, 1, 2)
