"""1-D signals and their maps as pictures: the waveform, a channels x time map under it."""

import numpy as np

BACKGROUND = (30, 31, 34)
TRACE = (120, 190, 255)


def waveform(data: np.ndarray, width: int = 1024, height: int = 160, values: np.ndarray | None = None,
             colormap: str = "inferno") -> np.ndarray:
    """uint8 (height, width, 3): each channel's trace in its own band; ``values`` (samples,),
    when given, colours the background under the trace by time (a saliency over time)."""
    import cv2

    from deepvis.render.colormaps import lut

    data = np.atleast_2d(np.asarray(data, np.float32))
    channels, samples = data.shape
    out = np.empty((height, width, 3), np.uint8)
    out[:] = BACKGROUND
    if values is not None:
        v = np.abs(np.asarray(values, np.float32))
        v = v / v.max() if v.max() > 0 else v
        columns = np.interp(np.linspace(0, samples - 1, width), np.arange(samples), v)
        out[:] = (0.25 * out + 0.75 * lut(colormap)[(columns * 255).astype(np.uint8)][None]).astype(np.uint8)
    band = height / channels
    xs = np.linspace(0, width - 1, samples)
    for c in range(channels):
        trace = data[c]
        scale = float(np.abs(trace).max()) or 1.0
        ys = (c + 0.5) * band - trace / scale * (band * 0.45)
        points = np.stack([xs, ys], 1).round().astype(np.int32)
        cv2.polylines(out, [points], False, TRACE, 1, cv2.LINE_AA)
    return out


def time_map(values: np.ndarray, colormap: str = "viridis", width: int = 1024, row_height: int = 4) -> np.ndarray:
    """A (channels, samples) activation as a picture: a row per channel, time left to right,
    each channel scaled to its own range."""
    from deepvis.render.colormaps import apply_colormap

    values = np.asarray(values, np.float32)
    lo = values.min(1, keepdims=True)
    span = values.max(1, keepdims=True) - lo
    scaled = (values - lo) / np.where(span > 0, span, 1)
    rgb = apply_colormap(scaled, colormap)
    import cv2

    return cv2.resize(rgb, (width, row_height * values.shape[0]), interpolation=cv2.INTER_NEAREST)
