"""Tests of l2t_tf/data/ (the layout: docs/tests.md)."""
