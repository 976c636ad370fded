"""Issue 23 class 2 for bench, ablate, evaluate and fuse: a flag value that
makes no sense is refused in one line naming the flag, before any work."""
import pytest

BENCH = ['--config=configs/synthetic.py', '--what=train']
CASES = [
    ('bench', [*BENCH, '--batch=0'], "--batch='0': must be a "
     'comma-separated list of integers >= 1'),
    ('bench', [*BENCH, '--batch=8,x'], "--batch='8,x': must be"),
    ('bench', [*BENCH, '--batch=3'], '--batch=3: every batch size must split '
     'over the 8 devices'),
    ('bench', [*BENCH, '--steps=0'], '--steps=0'),
    ('bench', [*BENCH, '--repeats=-1'], '--repeats=-1'),
    ('bench', [*BENCH, '--workers=-1'], "--workers='-1': must be a "
     'comma-separated list of integers >= 0'),
    ('bench', [*BENCH[:1], '--what=train,fly'], "--what=train,fly: unknown "
     "['fly']"),
    ('ablate', ['--config=configs/synthetic_hard.py', '--seeds=0',
                '--workdir=WORK'], '--seeds=0'),
    ('evaluate', ['--workdir=WORK', '--split=-1'], '--split=-1'),
    ('fuse', ['--scores=a.npz', '--weights=x'], "--weights='x': must be a "
     'comma-separated list of finite numbers >= 0'),
    ('fuse', ['--scores=a.npz', '--scores=b.npz', '--weights=1,nan'],
     "--weights='1,nan': must be"),
    ('fuse', ['--scores=a.npz', '--scores=b.npz', '--weights=0,0'],
     '--weights=0,0: expected comma-separated finite numbers >= 0, not all 0'),
    ('fuse', ['--scores=a.npz', '--weights=1', '--search'],
     '--search takes exactly two --scores files, got 1'),
]


@pytest.mark.parametrize('name,args,error', CASES,
                         ids=[' '.join(c[1][1:]) for c in CASES])
def test_bad_flag_is_one_line(tmp_path, job, name, args, error):
  args = [a.replace('WORK', str(tmp_path)) for a in args]
  r = job(name, *args, code=2)
  assert r.stderr.startswith(f'error: {error}'), r.stderr
  assert 'Traceback' not in r.stderr and 'hint: ' in r.stderr
  assert list(tmp_path.iterdir()) == []  # nothing was started
