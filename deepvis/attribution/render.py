"""Showing attribution maps the way the Deep Visualization Toolbox did, plus overlays.

``raw`` keeps the sign (red positive, green negative, black zero); ``gray`` is the magnitude;
``norm`` the magnitude scaled to its own maximum through a colormap; ``normblur`` the same
after a blur, which reads better at a glance on busy textures.
"""

import numpy as np

from deepvis.render.colormaps import apply_colormap
from deepvis.errors import DeepvisError
from deepvis.io.images import quiet_cv2

MODES = ("raw", "gray", "norm", "normblur")


def render_saliency(saliency: np.ndarray, mode: str = "norm", colormap: str = "inferno",
                    image: np.ndarray | None = None, opacity: float = 0.6, blur_sigma: float | None = None) -> np.ndarray:
    """An (H, W) map as RGB uint8, optionally blended over ``image`` (uint8 RGB of the same size)."""
    if mode not in MODES:
        raise DeepvisError(f"unknown display mode {mode!r}: expected one of {', '.join(MODES)}")
    s = np.nan_to_num(np.asarray(saliency, np.float32))
    if mode == "raw":
        peak = float(np.abs(s).max()) or 1.0
        strength = np.abs(s) / peak
        rgb = apply_colormap(0.5 + 0.5 * s / peak, "redgreen")
    else:
        a = np.abs(s)
        if mode == "normblur":
            cv2 = quiet_cv2()
            sigma = blur_sigma or max(1.0, min(a.shape) / 64)
            a = cv2.GaussianBlur(a, (0, 0), sigma)
        peak = float(a.max()) or 1.0
        strength = a / peak
        rgb = apply_colormap(strength, "gray" if mode == "gray" else colormap)
    if image is None:
        return rgb
    if image.shape[:2] != rgb.shape[:2]:
        raise DeepvisError(f"overlay image is {image.shape[:2]}, the map {rgb.shape[:2]}")
    # Where the map is weak the photo shows through: a uniform blend would only darken it.
    alpha = (float(np.clip(opacity, 0.0, 1.0)) * np.sqrt(strength))[:, :, None]
    return np.clip(rgb * alpha + image[:, :, :3] * (1.0 - alpha) + 0.5, 0, 255).astype(np.uint8)
