"""Playing a long signal through the bundled WaveNet: each result is the model's view of the
window it names (window, activation, top class, gradient), playback steps by the hop, keeps
real time by skipping, stops at the end without looping, and seeks while paused."""

import time

import numpy as np
import pytest
import torch
from scipy.io import wavfile

from deepvis.attribution.saliency import attribute, top_class
from deepvis.core.loading import load_model
from deepvis.errors import DeepvisError
from deepvis.io.signals import Signal, read_signal
from deepvis.live.signalplayer import PlaybackSettings, SignalPlayer
from deepvis.models.signals_wavenet import SAMPLE_RATE, make_signals

LAYER = "blocks.3.dilated"


@pytest.fixture(scope="module")
def wavenet():
    return load_model("signals_wavenet", device="cpu")


@pytest.fixture(scope="module")
def recording():
    """Twelve test signals one after another, and their classes."""
    signals, classes = make_signals(12, seed=1, split="test")
    return Signal(np.ascontiguousarray(signals[:, 0].reshape(1, -1)), SAMPLE_RATE), classes


def _results(player, count, timeout=60):
    seen = []
    player.on_result = seen.append
    with player:
        player.wait_for_results(count, timeout)
    return seen[:count]


def test_each_result_is_the_models_view_of_its_window(wavenet, recording):
    signal, classes = recording
    player = SignalPlayer(wavenet, signal, PlaybackSettings(layer=LAYER, hop=1024, speed=0, saliency=True))
    results = _results(player, 12)
    assert [r.start for r in results] == [1024 * i for i in range(12)]
    right = 0
    for r in results:
        expected = signal.data[:, r.start:r.start + 1024]
        np.testing.assert_array_equal(r.window, expected)
        x = torch.from_numpy(expected.copy())[None]
        output, acts = player.probe.capture(x, [LAYER])
        np.testing.assert_allclose(r.activation, acts[LAYER][0].numpy(), rtol=1e-5, atol=1e-6)
        assert r.activation.shape[1] == 1024  # channels x time
        assert r.summary.predictions[0].index == int(output[0].argmax())
        gradient = attribute(wavenet.module, player.probe, x, "gradient", top_class(wavenet.module, x))
        np.testing.assert_allclose(r.saliency, gradient.reshape(-1), rtol=1e-4, atol=1e-7)
        right += r.summary.predictions[0].index == classes[r.start // 1024]
    assert right >= 11  # each window is exactly one generated signal: the model reads them


def test_a_file_at_another_rate_is_resampled_to_the_models(wavenet, recording, tmp_path):
    signal, classes = recording
    from deepvis.io.signals import resample

    wide = resample(signal.data, SAMPLE_RATE, 2 * SAMPLE_RATE)
    stereo = np.concatenate([wide, wide])
    wavfile.write(tmp_path / "rec.wav", 2 * SAMPLE_RATE, (np.clip(stereo.T / 2, -1, 1) * 32767).astype(np.int16))
    player = SignalPlayer(wavenet, read_signal(tmp_path / "rec.wav"), PlaybackSettings(hop=1024, speed=0))
    assert player.samples == signal.samples  # 16 kHz stereo -> 8 kHz mono
    results = _results(player, 6)
    right = sum(r.summary.predictions[0].index == classes[r.start // 1024] for r in results)
    assert right >= 5


def test_playback_wraps_around_or_pauses_at_the_end(wavenet, recording):
    signal, _ = recording
    last = signal.samples - 1024
    looping = _results(SignalPlayer(wavenet, signal, PlaybackSettings(hop=3000, speed=0)), 6)
    starts = [r.start for r in looping]
    assert starts[:4] == [0, 3000, 6000, 9000] and starts[4] == 0  # 12000 > last start 11264

    once = SignalPlayer(wavenet, signal, PlaybackSettings(hop=3000, speed=0, loop=False))
    with once:
        once.wait_for_results(4)
        deadline = time.monotonic() + 10
        while once.settings.playing and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not once.settings.playing
        # The last window ends where the file ends, so its end is seen too.
        assert once.latest().start == last and once.published == 5
        once.seek(10**9)  # clipped to the last whole window
        once.seek(2000)
        assert once.wait_for_results(6).start == 2000


def test_real_time_playback_keeps_pace_by_skipping_windows(wavenet, recording):
    signal, _ = recording
    hop = 256  # 32 ms at 8 kHz
    player = SignalPlayer(wavenet, signal, PlaybackSettings(layer=LAYER, hop=hop, speed=1.0))
    seen = []
    player.on_result = seen.append
    start = time.perf_counter()
    with player:
        player.wait_for_results(3, timeout=30)
        time.sleep(0.5)
    elapsed = time.perf_counter() - start
    starts = [r.start for r in seen]
    assert all(s % hop == 0 for s in starts) and starts == sorted(starts)
    # Never ahead of the clock, and never more windows than the clock allows.
    assert starts[-1] <= elapsed * SAMPLE_RATE + hop
    assert len(seen) <= elapsed * SAMPLE_RATE / hop + 2


def test_paused_it_recomputes_only_on_a_seek_or_a_settings_change(wavenet, recording):
    signal, _ = recording
    player = SignalPlayer(wavenet, signal, PlaybackSettings(playing=False))
    with player:
        assert player.wait_for_results(1).start == 0
        time.sleep(0.3)
        assert player.published == 1
        player.seek(5000)
        assert player.wait_for_results(2).start == 5000
        player.update(layer=LAYER)
        again = player.wait_for_results(3)
        assert again.start == 5000 and again.activation is not None
        time.sleep(0.3)
        assert player.published == 3
        player.seek(5000)  # the window already shown: nothing to compute
        time.sleep(0.3)
        assert player.published == 3


def test_bad_settings_and_models_are_one_line_errors(wavenet, digits, recording):
    signal, _ = recording
    with pytest.raises(DeepvisError, match="takes pictures"):
        SignalPlayer(digits, signal)
    player = SignalPlayer(wavenet, signal, PlaybackSettings(playing=False))
    with pytest.raises(DeepvisError, match="blocks.3.dilatd|no layer"):
        player.update(layer="blocks.3.dilatd")
    with pytest.raises(DeepvisError, match="hop"):
        player.update(hop=0)
    with pytest.raises(DeepvisError, match="speed"):
        player.update(speed=-1)


def test_bench_live_on_a_1d_model_plays_a_long_recording(wavenet):
    from deepvis.bench.engine import bench_live

    result = bench_live(wavenet, frames=20, block=5)
    assert result["signal_samples"] >= 200 * 1024 and result["frames"] == 20
    assert result["stage_ms"]["forward"] > 0 and result["ratio"] > 0
    assert result["ratio"] == pytest.approx(result["pipeline_fps"] / result["bare_fps"], rel=0.01)
