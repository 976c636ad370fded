"""Test setup: 8 fake CPU devices (before jax is imported) and parsed flags."""
import os

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import flags  # noqa: E402

# grain's mp_prefetch reads absl flags; tests do not go through app.run.
flags.FLAGS.mark_as_parsed()
