"""Arrays to pictures: colormaps, and activation, filter and picture-grid tiling."""
