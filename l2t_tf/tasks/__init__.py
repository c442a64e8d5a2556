"""Tasks: classification, segmentation, detection behind one interface."""
