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


def filter_responses(weight: np.ndarray, rate: float | None = None, n_fft: int = 256):
    """A Conv1d's filters as waveforms and spectra: taps float32 (filters, kernel), the first
    input channel's, and magnitudes in dB (filters, n_fft // 2 + 1) of each filter summed
    over its input channels' spectra, at frequencies (Hz when ``rate`` is known, else cycles
    per sample). Short kernels are zero-padded, so a 2-tap filter still shows its slope."""
    weight = np.asarray(weight, np.float32)
    if weight.ndim != 3:
        raise ValueError(f"a Conv1d weight is (out, in, kernel), got {weight.shape}")
    n_fft = max(n_fft, weight.shape[2])
    spectra = np.abs(np.fft.rfft(weight, n=n_fft, axis=2)).sum(1)
    magnitude = 20 * np.log10(np.maximum(spectra, 1e-8))
    freqs = np.fft.rfftfreq(n_fft, d=1.0 / rate if rate else 1.0)
    return weight[:, 0].copy(), freqs.astype(np.float32), magnitude.astype(np.float32)
