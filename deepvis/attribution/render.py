"""Showing attribution maps the way the papers and the Deep Visualization Toolbox did, plus overlays.

``clip99`` (the default) is the magnitude scaled to its 99th percentile and clipped there, as the
SmoothGrad paper and PAIR's saliency library show gradients: scaled to its maximum, one extreme
pixel leaves the rest of a gradient map near black. ``signed`` keeps the sign on a diverging map
(blue negative, red positive), scaled the same way. ``abs`` (``norm``) is the magnitude scaled to
its own maximum; ``normblur`` the same after a blur; ``gray`` the magnitude in grey; ``raw``
the toolbox's red positive, green negative on black.
"""

import numpy as np

from deepvis.render.colormaps import apply_colormap
from deepvis.errors import DeepvisError
from deepvis.io.images import quiet_cv2

MODES = ("clip99", "signed", "abs", "raw", "gray", "norm", "normblur")
DEFAULT_MODE = "clip99"
CLIP_PERCENTILE = 99.0
SMOOTH_METHODS = ("gradcam", "attention-rollout", "grad-rollout")  # coarse maps, upsampled: no speckle to clip


def default_display(method: str | None) -> str:
    """How a method's maps are shown unless asked otherwise: pixel gradients clipped at their
    99th percentile (SmoothGrad's figures); Grad-CAM and rollouts, smooth and coarse, scaled to
    their maximum as their papers show them (clipped, a whole face saturates)."""
    return "abs" if method in SMOOTH_METHODS else DEFAULT_MODE


def _clip_scale(magnitude: np.ndarray) -> float:
    """The 99th percentile of the magnitude (its maximum when that is 0: a sparse map)."""
    scale = float(np.percentile(magnitude, CLIP_PERCENTILE))
    return scale if scale > 0 else (float(magnitude.max()) or 1.0)


def render_saliency(saliency: np.ndarray, mode: str = DEFAULT_MODE, colormap: str = "inferno",
                    image: np.ndarray | None = None, opacity: float = 0.6, blur_sigma: float | None = None) -> np.ndarray:
    """An (H, W) map as RGB uint8, optionally blended over ``image`` (uint8 RGB of the same size)."""
    if mode not in MODES:
        raise DeepvisError(f"unknown display mode {mode!r}: expected one of {', '.join(MODES)}")
    s = np.nan_to_num(np.asarray(saliency, np.float32))
    if mode == "raw":
        peak = float(np.abs(s).max()) or 1.0
        strength = np.abs(s) / peak
        rgb = apply_colormap(0.5 + 0.5 * s / peak, "redgreen")
    elif mode == "signed":
        signed = np.clip(s / _clip_scale(np.abs(s)), -1.0, 1.0)
        strength = np.abs(signed)
        rgb = apply_colormap(0.5 + 0.5 * signed, "coolwarm")
    else:
        a = np.abs(s)
        if mode == "normblur":
            cv2 = quiet_cv2()
            sigma = blur_sigma or max(1.0, min(a.shape) / 64)
            a = cv2.GaussianBlur(a, (0, 0), sigma)
        peak = _clip_scale(a) if mode == "clip99" else (float(a.max()) or 1.0)
        strength = np.minimum(a / peak, 1.0)
        rgb = apply_colormap(strength, "gray" if mode == "gray" else colormap)
    if image is None:
        return rgb
    if image.shape[:2] != rgb.shape[:2]:
        raise DeepvisError(f"overlay image is {image.shape[:2]}, the map {rgb.shape[:2]}")
    # Where the map is weak the photo shows through: a uniform blend would only darken it.
    alpha = (float(np.clip(opacity, 0.0, 1.0)) * np.sqrt(strength))[:, :, None]
    return np.clip(rgb * alpha + image[:, :, :3] * (1.0 - alpha) + 0.5, 0, 255).astype(np.uint8)


def display_legend(saliency: np.ndarray, mode: str, colormap: str = "inferno"):
    """What a colour of :func:`render_saliency`'s picture means: (colour map, ticks as
    (position 0..1, label), caption) for a colour bar."""
    from deepvis.render.figure import format_value

    s = np.nan_to_num(np.asarray(saliency, np.float32))
    a = np.abs(s)
    if mode == "signed":
        scale = _clip_scale(a)
        return "coolwarm", [(0.0, f"<= -{format_value(scale)}"), (0.5, "0"), (1.0, f">= {format_value(scale)}")], \
            "attribution (clipped at the 99th percentile of |value|)"
    if mode == "raw":
        peak = float(a.max()) or 1.0
        return "redgreen", [(0.0, f"-{format_value(peak)}"), (0.5, "0"), (1.0, format_value(peak))], "attribution"
    if mode == "normblur":
        return colormap, [(0.0, "0"), (1.0, "max")], "|attribution|, blurred, to its maximum"
    if mode == "clip99":
        scale = _clip_scale(a)
        return colormap, [(0.0, "0"), (0.5, format_value(scale / 2)), (1.0, f">= {format_value(scale)}")], \
            "|attribution| (clipped at its 99th percentile)"
    peak = float(a.max()) or 1.0
    return ("gray" if mode == "gray" else colormap), [(0.0, "0"), (0.5, format_value(peak / 2)),
                                                      (1.0, format_value(peak))], "|attribution|"
