"""Evaluation: video metrics, the multi-view evaluator, PNGs, fusion."""
