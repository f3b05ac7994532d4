"""2-D semantic segmentation: dense outputs, ground-truth masks, metrics and overlays."""
