"""256-entry colour lookup tables and applying them to [0, 1] images.

Kept here, not borrowed from pyqtgraph or matplotlib, because the engine must not import Qt
and matplotlib is not a dependency. The perceptual maps are linear interpolations of the
published anchor colours; turbo uses Google's polynomial fit.
"""

from functools import lru_cache

import numpy as np

from deepvis.errors import DeepvisError

_ANCHORS = {
    "gray": [(0, 0, 0), (255, 255, 255)],
    "viridis": [(68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141), (39, 173, 129),
                (92, 200, 99), (170, 220, 50), (253, 231, 37)],
    "magma": [(0, 0, 4), (28, 16, 68), (79, 18, 123), (129, 37, 129), (181, 54, 122), (229, 80, 100),
              (251, 135, 97), (254, 194, 135), (252, 253, 191)],
    "inferno": [(0, 0, 4), (31, 12, 72), (85, 15, 109), (136, 34, 106), (186, 54, 85), (227, 89, 51),
                (249, 140, 10), (249, 201, 50), (252, 255, 164)],
    # Diverging maps put 0.5 (zero, for signed data scaled symmetrically) at their neutral middle.
    "coolwarm": [(59, 76, 192), (141, 176, 254), (221, 220, 219), (244, 154, 123), (180, 4, 38)],
    "redgreen": [(0, 255, 0), (0, 128, 0), (0, 0, 0), (128, 0, 0), (255, 0, 0)],
}
_TURBO = (
    (0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943),
    (0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604),
    (0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973),
)
COLORMAPS = ("viridis", "gray", "magma", "inferno", "turbo", "coolwarm", "redgreen")
NAN_COLOR = (48, 48, 48)


@lru_cache(maxsize=None)
def lut(name: str) -> np.ndarray:
    """The (256, 3) uint8 table of a colormap (read-only)."""
    t = np.linspace(0.0, 1.0, 256)
    if name == "turbo":
        table = np.stack([np.polyval(coeffs[::-1], t) for coeffs in _TURBO], axis=1) * 255
    elif name in _ANCHORS:
        anchors = np.asarray(_ANCHORS[name], np.float64)
        x = np.linspace(0.0, 1.0, len(anchors))
        table = np.stack([np.interp(t, x, anchors[:, c]) for c in range(3)], axis=1)
    else:
        raise DeepvisError(f"unknown colormap {name!r}: expected one of {', '.join(COLORMAPS)}")
    table = np.clip(np.rint(table), 0, 255).astype(np.uint8)
    table.flags.writeable = False
    return table


def apply_colormap(values: np.ndarray, name: str = "viridis", nan_color=NAN_COLOR) -> np.ndarray:
    """Map a float image with values in [0, 1] to RGB uint8; NaN (tile padding) gets ``nan_color``."""
    values = np.asarray(values, np.float32)
    nan = np.isnan(values)
    index = np.clip(np.nan_to_num(values, nan=0.0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    rgb = lut(name)[index]
    if nan.any():
        rgb[nan] = nan_color
    return rgb


# Tableau's 20 colours: distinct on black, the palette embedding projectors use. Labels on
# embedding maps and parts of 3-D shapes both take theirs from here.
CATEGORICAL = np.array([
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
    (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (174, 199, 232), (255, 187, 120),
    (152, 223, 138), (255, 152, 150), (197, 176, 213), (196, 156, 148), (247, 182, 210), (199, 199, 199),
    (219, 219, 141), (158, 218, 229)], np.uint8)


def voc_palette(count: int = 256) -> np.ndarray:
    """PASCAL VOC's colours (the bit-interleaved palette its PNGs carry): uint8 (count, 3).
    Class 0 (background) is black, 1 (aeroplane) dark red, 15 (person) pink."""
    palette = np.zeros((count, 3), np.uint8)
    for k in range(count):
        c, r, g, b = k, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette[k] = (r, g, b)
    return palette
