"""Tests of l2t_tf/experiments/ (the layout: docs/tests.md)."""
