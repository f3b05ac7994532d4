"""Segmentation maps drawn over their picture: class colours, boundaries, confidence maps,
hatched ignore pixels."""

import numpy as np

from deepvis.segmentation.masks import IGNORE

UNSEEN_SHADE = 0.35  # pixels the model did not see are darkened to this share of their brightness


def overlay(image: np.ndarray, labels: np.ndarray, palette: np.ndarray, opacity: float = 0.55,
            hidden=(), boundaries: bool = True) -> np.ndarray:
    """``labels`` (H, W) coloured over ``image`` (H, W, 3); classes in ``hidden`` left uncoloured,
    UNSEEN pixels darkened, the edges between classes drawn in white."""
    out = image.astype(np.float32).copy()
    seen = labels >= 0
    shown = seen & ~np.isin(labels, list(hidden)) if len(hidden) else seen
    colours = palette[np.clip(labels, 0, len(palette) - 1)].astype(np.float32)
    out[shown] = (1 - opacity) * out[shown] + opacity * colours[shown]
    out[~seen] *= UNSEEN_SHADE
    if boundaries:
        edge = np.zeros(labels.shape, bool)
        edge[:-1] |= labels[:-1] != labels[1:]
        edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
        edge &= seen
        out[edge] = 255
    return np.clip(out, 0, 255).astype(np.uint8)


def hatch_ignored(picture: np.ndarray, truth: np.ndarray, period: int = 6) -> np.ndarray:
    """Diagonal white stripes over the pixels the ground truth ignores: visible, never a class."""
    ys, xs = np.indices(truth.shape)
    stripes = ((ys + xs) % period) < 2
    out = picture.copy()
    out[(truth == IGNORE) & stripes] = 255
    return out


def value_map(image: np.ndarray, values: np.ndarray, levels: tuple[float, float], colormap: str = "magma",
              opacity: float = 0.7) -> np.ndarray:
    """A per-pixel value (confidence, entropy, margin) through a colormap over the picture."""
    from deepvis.render.colormaps import lut

    lo, hi = levels
    index = np.clip((np.nan_to_num(values, nan=lo) - lo) / (hi - lo if hi > lo else 1.0) * 255, 0, 255)
    colours = lut(colormap)[index.astype(np.uint8)].astype(np.float32)
    out = (1 - opacity) * image.astype(np.float32) + opacity * colours
    out[np.isnan(values)] = image[np.isnan(values)] * UNSEEN_SHADE
    return np.clip(out, 0, 255).astype(np.uint8)

