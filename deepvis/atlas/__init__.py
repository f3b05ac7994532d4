"""Model atlases: features, predictions and unit profiles over image collections of any size,
built on Ray Data or in one process, and the maps and unit views made from them."""
