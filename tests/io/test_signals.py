"""1-D signals as input: WAV, .npy and .csv read as (channels, samples), fitted to a model's
window (resampled, mixed down, centred), and broken files refused in one line."""

import numpy as np
import pytest
from scipy.io import wavfile

from deepvis.errors import DeepvisError
from deepvis.io.signals import Signal, fit_signal, read_signal


def _peak_hz(x, rate):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()]


def test_wav_integers_scale_and_resampling_keeps_the_pitch(tmp_path):
    t = np.arange(16000) / 16000
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([tone, -tone], 1)
    wavfile.write(tmp_path / "tone.wav", 16000, (stereo * 32767).astype(np.int16))
    signal = read_signal(tmp_path / "tone.wav")
    assert signal.rate == 16000 and signal.data.shape == (2, 16000) and signal.data.dtype == np.float32
    assert np.abs(signal.data[0] - tone).max() < 1e-3
    window = fit_signal(signal, channels=2, length=4000, rate=8000)
    assert window.shape == (2, 4000)
    assert _peak_hz(window[0], 8000) == pytest.approx(440, abs=3)
    mono = fit_signal(signal, channels=1, length=4000, rate=8000)
    assert np.abs(mono).max() < 1e-3  # the two channels cancel when mixed down


def test_npy_and_csv_orientation_window_and_padding(tmp_path):
    np.save(tmp_path / "long.npy", np.arange(3000, dtype=np.float32).reshape(3000, 1))  # samples x channels
    signal = read_signal(tmp_path / "long.npy")
    assert signal.data.shape == (1, 3000) and signal.rate is None
    window = fit_signal(signal, 1, 1000)
    np.testing.assert_array_equal(window[0], np.arange(1000, 2000))  # the middle
    short = fit_signal(Signal(np.ones((1, 10), np.float32), None), 1, 20)
    np.testing.assert_array_equal(short[0], [0] * 5 + [1] * 10 + [0] * 5)
    (tmp_path / "table.csv").write_text("left,right\n1,2\n3,4\n5,6\n")
    np.testing.assert_array_equal(read_signal(tmp_path / "table.csv").data, [[1, 3, 5], [2, 4, 6]])


@pytest.mark.parametrize("name, content, needle", [
    ("bad.wav", b"RIFF1234WAVEjunkjunk", "malformed WAV"),
    ("ragged.csv", b"1,2\n3\n", "line 2: 1 values where line 1 of the data has 2 (a ragged table)"),
    ("words.csv", b"1,2\n3,x\n", "line 2: not a number"),
    ("nan.csv", b"1\nnan\n", "NaN or infinite"),
    ("text.npy", b"not numpy", "cannot read"),
])
def test_broken_signals_are_one_line_errors(tmp_path, name, content, needle):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DeepvisError, match="") as info:
        read_signal(tmp_path / name)
    message = str(info.value)
    assert needle in message and "\n" not in message
