"""Regions to explain in a segmentation (Seg-Grad-CAM's "class c inside region R"): the
predicted blob under a click, as the box the saliency targets take."""

import numpy as np

from deepvis.errors import DeepvisError


def blob_under(labels: np.ndarray, x: float, y: float) -> tuple[int, np.ndarray]:
    """The class at (x, y) and the mask of its connected blob (8-connected) in ``labels``."""
    from deepvis.io.images import quiet_cv2

    cv2 = quiet_cv2()
    h, w = labels.shape
    row, col = int(np.clip(y, 0, h - 1)), int(np.clip(x, 0, w - 1))
    k = int(labels[row, col])
    if k < 0:
        raise DeepvisError("the model did not see that pixel: click inside the region it segments")
    _, components = cv2.connectedComponents((labels == k).astype(np.uint8), connectivity=8)
    return k, components == components[row, col]


def blob_region(labels: np.ndarray, x: float, y: float) -> tuple[int, tuple[float, float, float, float]]:
    """The class under (x, y) and its blob's bounding box as (x0, y0, x1, y1) fractions of the
    width and height: a saliency target's region."""
    k, blob = blob_under(labels, x, y)
    ys, xs = np.nonzero(blob)
    h, w = labels.shape
    return k, (xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h)
