"""Datasets (tfds builders, synthetic motions) and the grain pipeline."""
