"""Tests of l2t_tf/related_methods/ (the layout: docs/tests.md)."""
