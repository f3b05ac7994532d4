"""The Signals tab on the bundled WaveNet and a recording of known signals: the window drawn is
the one the model saw, the activation map is the layer's output for it, the class timeline
reads the recording, seeking and pausing work, the filters' spectra are those of the weights,
a broken file leaves the recording playing, and a picture model gets the explanation."""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
from deepvis.widgets.window import qtenv  # noqa: E402,F401

import torch  # noqa: E402

from deepvis.models.signals_wavenet import SAMPLE_RATE, WINDOW, write_recording  # noqa: E402
from deepvis.resources import SAMPLE_SETS  # noqa: E402
from test_gui import WAIT_MS, open_window, private_settings  # noqa: E402,F401

LAYER = "blocks.2.dilated"


@pytest.fixture
def recording(tmp_path):
    path = tmp_path / "known.wav"
    classes = write_recording(path, count=40, seed=5)
    return path, classes


def _signals_view(w):
    return next(v for v in w.views if v.title == "Signals")


@pytest.mark.slow
def test_signals_tab_plays_a_recording_through_the_model(qtbot, open_window, recording, tmp_path):
    path, classes = recording
    w = open_window(model="signals_wavenet", input_spec=str(path))
    view = _signals_view(w)
    assert w.tabs.currentWidget() is view  # a 1-D model brings its tab to the front
    s = w.session
    s.set_layer(LAYER)
    view.speed.setCurrentText("as fast as it runs")
    qtbot.waitUntil(lambda: view.player is not None, timeout=WAIT_MS)
    view.hop.setValue(WINDOW)  # from the start, window k is signal k of the recording
    view.seek_seconds(0)

    # The class timeline reads the recording: one window per generated signal.
    starts = [k * WINDOW for k in range(40)]
    qtbot.waitUntil(lambda: set(starts) <= set(view.timeline), timeout=WAIT_MS)
    read = [int(np.argmax(view.timeline[start])) for start in starts]
    assert np.mean(np.array(read) == classes) >= 0.9
    for start in starts:
        assert view.timeline[start].sum() == pytest.approx(1.0, abs=1e-4)  # every class, not only the top
    # Lined up with the overview, the timeline's view still shows the first window's centre.
    assert view.classes_plot.viewRange()[0][0] <= WINDOW / 2 / SAMPLE_RATE

    # Paused and moved to signal 17: the drawn window, map and prediction are the model's.
    view.set_playing(False)
    view.seek_seconds(17 * WINDOW / SAMPLE_RATE)
    # (Playing, the player passes window 17 too: the result must be one computed paused.)
    qtbot.waitUntil(lambda: view.result is not None and view.result.start == 17 * WINDOW and
                    not view.result.settings.playing and view.result.activation is not None, timeout=WAIT_MS)
    result = view.result
    _, y = view.window_curve.getData()
    np.testing.assert_allclose(y, view.player.data[0, 17 * WINDOW:18 * WINDOW], atol=1e-6)
    x = torch.from_numpy(view.player.data[:, 17 * WINDOW:18 * WINDOW].copy())[None]
    from deepvis.live.computethread import compute_thread

    output, acts = compute_thread().call(lambda: s.state.probe.capture(x, [LAYER]))
    np.testing.assert_allclose(view.map_image.image, acts[LAYER][0].numpy(), rtol=1e-5, atol=1e-6)
    assert result.summary.predictions[0].index == int(output[0].argmax())
    assert view.predictions.text().index(result.summary.predictions[0].label) < view.predictions.text().index(
        result.summary.predictions[1].label)
    lo, hi = view.region.getRegion()
    assert lo == pytest.approx(17 * WINDOW / SAMPLE_RATE) and hi == pytest.approx(18 * WINDOW / SAMPLE_RATE)
    # Paused, nothing more is computed.
    published = view.player.published
    qtbot.wait(300)
    assert view.player.published == published

    # The gradient over time: on for this window, a filled band under the trace.
    view.saliency.setChecked(True)
    qtbot.waitUntil(lambda: view.result.saliency is not None, timeout=WAIT_MS)
    assert view.saliency_curve.isVisible() and np.abs(view.result.saliency).max() > 0

    # The filters' spectra are the weights' (the first Conv1d with more than one tap).
    conv = s.state.model.module.blocks[0].dilated
    name, dilation, taps, freqs, magnitude = view.filters
    assert name == "blocks.0.dilated" and dilation == conv.dilation[0]
    weight = conv.weight.detach().numpy()
    np.testing.assert_allclose(taps, weight[:, 0])
    spectrum = np.abs(np.fft.rfft(weight, n=256, axis=2)).sum(1)
    np.testing.assert_allclose(10 ** (magnitude / 20), spectrum, rtol=1e-3)
    assert freqs[-1] == pytest.approx(SAMPLE_RATE / 2)

    # The timeline exports as CSV: a row per window, every class's probability.
    view.save_timeline(str(tmp_path / "timeline.csv"))
    table = np.loadtxt(tmp_path / "timeline.csv", delimiter=",", skiprows=1)
    assert table.shape[1] == 2 + len(s.state.model.labels) and len(table) == len(view.timeline)

    # A broken file is a message; the recording keeps its place and keeps playing.
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt ")
    messages = []
    s.message.connect(messages.append)
    player = view.player
    view.open_file(str(bad))
    qtbot.waitUntil(lambda: any("broken.wav" in m for m in messages), timeout=WAIT_MS)
    assert view.player is player and player.running and "malformed" in " ".join(messages)


def test_a_picture_model_gets_an_explanation_not_an_empty_tab(qtbot, open_window):
    w = open_window(model="digits_cnn")
    view = _signals_view(w)
    w.tabs.setCurrentWidget(view)
    assert view.empty.isVisible() and not view.body.isVisible()
    assert "takes pictures" in view.placeholder.text() and view.load_wavenet.isVisible()
    view.load_wavenet.click()
    qtbot.waitUntil(lambda: w.session.state.model.name == "signals_wavenet", timeout=WAIT_MS)
    assert "Open a .wav" in view.placeholder.text() and view.demo_button.isEnabled()
    view.open_demo()
    qtbot.waitUntil(lambda: view.result is not None, timeout=WAIT_MS)
    assert view.body.isVisible() and view.overview_curve.getData()[0] is not None


def test_a_1d_model_with_nothing_to_play_plays_the_demo_recording(qtbot, open_window):
    w = open_window(model="signals_wavenet")  # no recording given: the tab comes up playing the demo
    view = _signals_view(w)
    assert w.tabs.currentWidget() is view
    qtbot.waitUntil(lambda: view.result is not None, timeout=WAIT_MS)
    assert view.body.isVisible() and not view.empty.isVisible()
    assert Path(view.recording_name) == SAMPLE_SETS["signals"].path  # the bundled recording
    assert w.unit_pane.plot.isHidden()  # a picture unit's history: it would stay an empty axis
    # The picture docks say where a 1-D model's input goes, not "waiting for input".
    assert "Signals tab" in w.input_pane.raw.canvas.placeholder and w.input_pane.raw.canvas.qimage is None
    assert "Signals tab" in w.unit_pane.panel.canvas.placeholder and w.unit_pane.panel.badge.isHidden()
    assert "Signals tab" in w.predictions.text
    pictures = w.unit_pane.pictures  # optimized pictures are for picture models: not offered
    assert not pictures.compute.isEnabled() and "picture models" in pictures.optimized.canvas.placeholder
    # A picture model after it: the docks wait for pictures again.
    w.session.load_model("digits_cnn")
    qtbot.waitUntil(lambda: w.session.state.model.signal is None, timeout=WAIT_MS)
    assert "Signals tab" not in w.input_pane.raw.canvas.placeholder + w.unit_pane.panel.canvas.placeholder
    assert "Signals tab" not in w.predictions.text
    assert pictures.compute.isEnabled()


@pytest.mark.slow
def test_screenshots_of_a_1d_model_do_not_wait_for_pictures(tmp_path):
    """`--screenshot` waited for a picture result that a 1-D model never gives (180 s, then
    failed): it takes the Signals tab once it has drawn, or an asked tab once the model is in."""
    import os
    import subprocess
    import sys

    from deepvis.io.images import read_image

    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))
    for tab in (None, "Filters"):
        out = tmp_path / f"{tab}.png"
        command = [sys.executable, "-m", "deepvis", "gui", "--model", "signals_wavenet", "--screenshot", str(out)]
        proc = subprocess.run(command + (["--tab", tab] if tab else []), capture_output=True, text=True,
                              timeout=120, env=env)
        assert proc.returncode == 0, proc.stderr[-1500:]
        assert read_image(out).std() > 10
