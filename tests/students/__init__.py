"""Tests of l2t_tf/students/ (the layout: docs/tests.md)."""
