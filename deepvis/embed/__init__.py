"""A layer's features over a dataset, their 2-D projections and the rendered maps."""
