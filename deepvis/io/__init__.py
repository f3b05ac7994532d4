"""Image and video files, frame sources (files, folders, videos, cameras, the pattern), datasets, output paths."""
