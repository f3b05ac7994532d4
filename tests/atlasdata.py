"""What the atlas tests share: the folder's size, the layers kept, and row lookup by path."""

import numpy as np

COUNT = 2500
LAYERS = ["conv2", "relu4"]  # a spatial map and the feature vector before the head
OPTIONS = {"source": "digits_cnn", "device": "cpu"}


def by_path(atlas, array: np.ndarray, paths) -> np.ndarray:
    index = {p: i for i, p in enumerate(atlas.rows()["path"])}
    return array[[index[p] for p in paths]]
