"""1-D signals as model input: WAV files, ``.npy`` arrays and ``.csv`` columns.

A signal is float32 (channels, samples) with, when the file says so, its sample rate. WAV
integers are scaled to [-1, 1]. A signal is fitted to a model by resampling to the model's
rate (polyphase, antialiased), mixing down or repeating channels, and taking the window of
the model's length from its middle (padding with silence when it is shorter), as a still
image is centre-cropped.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepvis.errors import DeepvisError
from deepvis.io import truncation

SIGNAL_SUFFIXES = frozenset({".wav", ".npy", ".csv"})
MAX_SAMPLES = 50_000_000  # a signal beyond this (25 minutes of 32 kHz stereo) is refused, not loaded


@dataclass(frozen=True)
class Signal:
    data: np.ndarray  # float32 (channels, samples)
    rate: int | None  # samples per second; None when the file does not say

    @property
    def channels(self) -> int:
        return int(self.data.shape[0])

    @property
    def samples(self) -> int:
        return int(self.data.shape[1])


def is_signal_file(path) -> bool:
    return Path(path).suffix.lower() in SIGNAL_SUFFIXES


def read_signal(path) -> Signal:
    path = Path(path)
    if not path.is_file():
        raise DeepvisError(f"cannot read signal {path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".wav":
        signal = _read_wav(path)
    elif suffix == ".npy":
        signal = Signal(_channels_first(_load_npy(path), path), None)
    elif suffix == ".csv":
        signal = Signal(_channels_first(_read_csv(path), path), None)
    else:
        raise DeepvisError(f"{path.name}: not a signal file (expected .wav, .npy or .csv)")
    if signal.data.ndim != 2 or signal.channels < 1 or signal.samples < 1:
        raise DeepvisError(f"{path} holds no samples ({signal.channels if signal.data.ndim == 2 else 0} channels "
                           f"x {signal.samples if signal.data.ndim == 2 else 0} samples)")
    if signal.data.size > MAX_SAMPLES:
        raise DeepvisError(f"{path} is too long: {signal.data.size:,} values (at most {MAX_SAMPLES:,})")
    if not np.isfinite(signal.data).all():
        raise DeepvisError(f"{path} contains NaN or infinite values")
    return signal


def _read_wav(path: Path) -> Signal:
    import warnings

    from scipy.io import wavfile

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # unknown chunks: scipy warns and reads on; kept to look at below
            rate, data = wavfile.read(path)
    except Exception as exc:  # scipy's reader fails on broken files with many types, even UnboundLocalError
        raise DeepvisError(f"cannot read {path}: malformed WAV ({str(exc).splitlines()[0] or type(exc).__name__})") \
            from None
    for warning in caught:
        # A file cut short reads as fewer samples: the class it gets is then the wrong one
        # (a sine read as noise bursts), so it is refused, not read with a suppressed warning.
        if "EOF" in str(warning.message) or "prematurely" in str(warning.message):
            what = _short_by(str(warning.message), len(data))
            if not truncation.allowed(path, what):
                raise DeepvisError(f"cannot read {path}: the file is truncated ({what}); {truncation.HINT}")
    data = np.asarray(data)
    if data.dtype == np.uint8:
        data = (data.astype(np.float32) - 128) / 128
    elif np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float32) / float(np.iinfo(data.dtype).max)
    data = data.astype(np.float32)
    data = data[None] if data.ndim == 1 else data.T
    return Signal(np.ascontiguousarray(data), int(rate))


def _short_by(message: str, samples: int) -> str:
    """How much of a WAV file is there, from scipy's warning ("... finished at X bytes,
    expected Y bytes from header")."""
    import re

    sizes = re.search(r"finished at (\d+) bytes, expected (\d+) bytes", message)
    if sizes is None:
        return f"its data stops before its header says it ends; {samples:,} samples present"
    present, expected = (int(n) for n in sizes.groups())
    return f"{samples:,} samples present, {present / expected:.0%} of the data its header announces"


def _load_npy(path: Path) -> np.ndarray:
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DeepvisError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
    if np.iscomplexobj(data):  # astype would drop the imaginary part without a word
        raise DeepvisError(f"{path} holds complex numbers ({data.dtype}): a signal is real; save its real part, "
                           f"magnitude or channels as real arrays")
    if not (np.issubdtype(data.dtype, np.number) or data.dtype == bool):
        raise DeepvisError(f"{path}: expected numbers, got {data.dtype}")
    return data.astype(np.float32)


def _read_csv(path: Path) -> np.ndarray:
    try:
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DeepvisError(f"cannot read {path}: {exc}") from None
    rows = []
    for number, line in enumerate(lines, 1):
        cells = [c.strip() for c in line.split(",")]
        try:
            rows.append([float(c) for c in cells])
        except ValueError:
            if number == 1 and not rows:
                continue  # a header
            raise DeepvisError(f"{path}, line {number}: not a number in {line[:60]!r}") from None
        if len(rows[-1]) != len(rows[0]):
            raise DeepvisError(f"{path}, line {number}: {len(rows[-1])} values where line 1 of the data has "
                               f"{len(rows[0])} (a ragged table)")
    if not rows:
        raise DeepvisError(f"{path} has no rows of numbers")
    return np.asarray(rows, np.float32)  # (samples, columns)


def _channels_first(data: np.ndarray, path: Path) -> np.ndarray:
    if data.ndim == 1:
        return np.ascontiguousarray(data[None])
    if data.ndim != 2:
        raise DeepvisError(f"{path}: expected a 1-D series or a 2-D (channels, samples) table, got {data.shape}")
    # Signals are longer than they are wide: the short side holds the channels.
    return np.ascontiguousarray(data if data.shape[0] <= data.shape[1] else data.T)


MAX_RESAMPLE_FACTOR = 4096  # resample_poly's filter grows with the ratio's terms; 8 kHz -> 32 MHz at most


def resample(data: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return data
    from math import gcd

    # Estimated before any work: the result's size and the polyphase filter both grow with the rates.
    out_samples = data.shape[1] * target // rate + 1
    if out_samples * data.shape[0] > MAX_SAMPLES:
        raise DeepvisError(f"at {target:,} Hz the recording would be {out_samples * data.shape[0]:,} values (at "
                           f"most {MAX_SAMPLES:,}): check --sample-rate")
    if max(target, rate) // gcd(int(rate), int(target)) > MAX_RESAMPLE_FACTOR * 1000:
        raise DeepvisError(f"resampling {rate:,} Hz to {target:,} Hz needs a filter of "
                           f"{max(target, rate) // gcd(int(rate), int(target)):,} taps per phase: choose a rate with "
                           f"a simpler ratio to {rate:,} Hz")

    from scipy.signal import resample_poly

    g = gcd(int(rate), int(target))
    return resample_poly(data, target // g, rate // g, axis=1).astype(np.float32)


def conform(signal: Signal, channels: int, rate: int | None = None) -> np.ndarray:
    """The whole signal as float32 (channels, samples) at ``rate`` (when both rates are known),
    mixed down or repeated to ``channels``."""
    data = signal.data
    if rate is not None and signal.rate is not None:
        data = resample(data, signal.rate, rate)
    if data.shape[0] != channels:
        data = data.mean(0, keepdims=True) if channels == 1 else np.repeat(data[:1], channels, axis=0)
    return np.ascontiguousarray(data, np.float32)


def window(data: np.ndarray, start: int, length: int) -> np.ndarray:
    """float32 (channels, length) from ``start``; silence where it runs past either end."""
    channels, n = data.shape
    lo, hi = max(start, 0), min(start + length, n)
    if lo == start and hi - lo == length:
        return data[:, lo:hi]
    out = np.zeros((channels, length), np.float32)
    if hi > lo:
        out[:, lo - start:hi - start] = data[:, lo:hi]
    return out


def fit_signal(signal: Signal, channels: int, length: int, rate: int | None = None) -> np.ndarray:
    """float32 (channels, length): the signal conformed to the model, its middle ``length``
    samples (zero-padded if short)."""
    data = conform(signal, channels, rate)
    return np.ascontiguousarray(window(data, (data.shape[1] - length) // 2, length))
