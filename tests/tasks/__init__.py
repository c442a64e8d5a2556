"""Tests of l2t_tf/tasks/ (the layout: docs/tests.md)."""
