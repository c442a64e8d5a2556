"""Data sets and the per-epoch train/validation split."""
