"""The checkpoint doctor: faults of a trained model found from its activations over data, its
BatchNorm statistics, its input preprocessing and its weights."""
