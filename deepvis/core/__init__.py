"""Models: loading, checkpoints, devices, input specs, labels, predictions, layer probes, the zoo, cache keys."""
