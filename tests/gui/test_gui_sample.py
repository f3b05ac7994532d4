"""The Sample tab driven like a user would: a PixelCNN's pictures grow pixel by pixel and are
the engine's exactly, the bars are the distribution a clicked pixel was drawn from, Stop keeps
the partial pictures, a slow GUI skips steps but shows the last, a model that is not
PixelCNN-style is one message, and a classifier in the window still lets the bundled
PixelCNNs be sampled."""

import time
from itertools import islice

import numpy as np
import pytest

pytest.importorskip("PySide6")
from deepvis.widgets.window import qtenv  # noqa: E402,F401
from PySide6.QtCore import Qt  # noqa: E402

from deepvis.autoregressive.sampling import sample, sample_steps  # noqa: E402
from deepvis.core.loading import load_model  # noqa: E402
from deepvis.io.images import read_image  # noqa: E402
from deepvis.live.computethread import compute_thread  # noqa: E402
from deepvis.render.tiling import picture_grid, upscale  # noqa: E402
from deepvis.widgets.tabs.sampleview import BORDER, NEXT_PIXEL, THIS_MODEL  # noqa: E402
from test_gui import WAIT_MS, open_window, private_settings  # noqa: E402,F401

FAST, SLOW = "as fast as it runs", "slow (about 10 s)"


def sample_view(window):
    view = next(v for v in window.views if v.title == "Sample")
    window.tabs.setCurrentWidget(view)
    return view


def draw(qtbot, view, seed, count, speed=FAST, temperature=1.0):
    view.seed.setValue(seed)
    view.count.setValue(count)
    view.temperature.setValue(temperature)
    view.speed.setCurrentText(speed)
    qtbot.mouseClick(view.sample_button, Qt.MouseButton.LeftButton)
    assert not view.sample_button.isEnabled() and view.stop.isEnabled()


def finished(qtbot, view):
    qtbot.waitUntil(lambda: view.job is not None and not view.job.active, timeout=WAIT_MS)


def click_pixel(qtbot, view, sample_index, r, c):
    y, x = view.layout_.origin(sample_index)
    at = view.grid.canvas.image_to_widget(x + BORDER + c + 0.5, y + BORDER + r + 0.5).toPoint()
    qtbot.mouseClick(view.grid.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)


def engine_steps(module, seed, count, pixels=64):
    """The engine's first ``pixels`` steps, on the compute thread as the CLI runs them
    (``sample`` returns the last one's pictures)."""
    return compute_thread().call(lambda: list(islice(sample_steps(module, (8, 8), count, seed, 1.0), pixels)))


def bar_colours(view):
    return [brush.color().name() for brush in view.bars.opts["brushes"]]


@pytest.mark.slow
def test_pictures_bars_stop_and_errors(qtbot, open_window, tmp_path):
    w = open_window(model="digits_pixelcnn")
    view = sample_view(w)
    messages = []
    w.session.message.connect(messages.append)
    assert view.source.currentText() == THIS_MODEL
    module = w.session.state.model.module

    # The finished pictures are the engine's for the same seed, count and temperature.
    draw(qtbot, view, seed=3, count=4)
    finished(qtbot, view)
    steps = engine_steps(module, 3, 4)
    np.testing.assert_array_equal(view.pictures, steps[-1].pictures)
    assert (view.progress.value(), view.progress.maximum()) == (64, 64)
    assert "4 samples of digits_pixelcnn, seed 3" in view.grid.title.text()
    assert not (view.grid.data == NEXT_PIXEL).all(-1).any()  # no "next pixel" once done

    # Clicking the last pixel of sample 2: the bars are its distribution at the last step, the
    # drawn level (picture value x 16) in the other colour.
    click_pixel(qtbot, view, 2, 7, 7)
    assert view.selected == 2 and view.shown_pixel() == 63
    heights = np.asarray(view.bars.opts["height"])
    np.testing.assert_allclose(heights, steps[-1].probabilities[2], rtol=1e-6)
    assert abs(heights.sum() - 1) < 1e-5 and len(heights) == 17
    level = int(round(steps[-1].pictures[2, 0, 7, 7] * 16))
    assert view.drawn_level == level
    colours = bar_colours(view)
    assert len(set(colours)) == 2 and colours.count(colours[level]) == 1
    assert f"pixel (7, 7) of sample 2: level {level} drawn with p={heights[level]:.2f}" in view.pixel_info.text()

    # An earlier pixel: the distribution it was drawn from, with its entropy.
    click_pixel(qtbot, view, 2, 3, 4)
    assert view.shown_pixel() == 3 * 8 + 4
    p = steps[3 * 8 + 4].probabilities[2]
    np.testing.assert_allclose(view.bars.opts["height"], p, rtol=1e-6)
    level = int(round(steps[-1].pictures[2, 0, 3, 4] * 16))
    assert view.drawn_level == level and bar_colours(view)[level] != bar_colours(view)[(level + 1) % 17]
    entropy = -(p[p > 0] * np.log2(p[p > 0])).sum()
    assert f"level {level} drawn with p={p[level]:.2f}; entropy {entropy:.2f} bits" in view.pixel_info.text()

    # The PNG is the CLI's sheet: the grid of pictures upscaled, without the marks.
    view.save_png(str(tmp_path / "samples.png"))
    grey = (steps[-1].pictures[:, 0] * 255).round().astype(np.uint8)
    expected = upscale(picture_grid(np.repeat(grey[..., None], 3, axis=3), 2, 1), 512)
    np.testing.assert_array_equal(read_image(tmp_path / "samples.png"), expected)

    # Paced, the next pixel is marked red in every picture; Stop ends the job between pixels and
    # leaves the partial pictures: the engine's up to the last pixel, 0 after it.
    draw(qtbot, view, seed=5, count=4, speed=SLOW)
    qtbot.waitUntil(lambda: view.run is view.job and view.step.index >= 3, timeout=WAIT_MS)
    r, c = divmod(view.step.index + 1, 8)
    y, x = view.layout_.origin(1)
    assert tuple(view.grid.data[y + BORDER + r, x + BORDER + c]) == NEXT_PIXEL
    qtbot.mouseClick(view.stop, Qt.MouseButton.LeftButton)
    finished(qtbot, view)
    assert view.sample_button.isEnabled() and not view.stop.isEnabled()
    last = view.step.index
    assert 3 <= last < 20
    flat = view.pictures.reshape(4, -1)
    assert not flat[:, last + 1:].any()
    levels = flat[:, :last + 1] * 16
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-5)
    np.testing.assert_array_equal(view.pictures, engine_steps(module, 5, 4, last + 1)[last].pictures)
    assert f"stopped after {last + 1} of 64 pixels" in view.grid.title.text()
    assert not (view.grid.data == NEXT_PIXEL).all(-1).any()

    # Latest wins: while the GUI thread is busy the sampler runs on; it then shows the last step
    # only, not all 64.
    before = view.steps_shown
    draw(qtbot, view, seed=7, count=2)
    deadline = time.monotonic() + 60
    while not (view._newest[0] is view.job and view._newest[1].index == 63) and time.monotonic() < deadline:
        time.sleep(0.02)  # no Qt events are processed here, as in a long paint
    finished(qtbot, view)
    assert view.step.index == 63 and view.steps_shown - before <= 3
    assert view.progress.value() == 64 and "2 samples of digits_pixelcnn, seed 7" in view.grid.title.text()

    # A model that is not PixelCNN-style: one message, and the pictures stay.
    shown = view.pictures.copy()
    view.start(model=load_model("digits_cnn"))
    finished(qtbot, view)
    assert any(m.startswith("sample: not a PixelCNN-style model") for m in messages), messages
    assert not any("Traceback" in m for m in messages)
    assert view.sample_button.isEnabled()
    np.testing.assert_array_equal(view.pictures, shown)


@pytest.mark.slow
def test_a_classifier_in_the_window_samples_a_bundled_pixelcnn(qtbot, open_window):
    w = open_window(model="digits_cnn")
    view = sample_view(w)
    assert view.source.findText(THIS_MODEL) < 0 and view.source.currentText() == "digits_pixelcnn"
    text = view.grid.canvas.placeholder
    assert "autoregressive models (PixelCNN)" in text and "digits_pixelcnn" in text and "digits_cnn" in text
    assert view.grid.data is None

    draw(qtbot, view, seed=1, count=3)
    finished(qtbot, view)
    gated = load_model("digits_pixelcnn").module
    np.testing.assert_array_equal(view.pictures, compute_thread().call(sample, gated, (8, 8), 3, 1, 1.0))

    view.source.setCurrentText("digits_pixelcnn_plain")
    draw(qtbot, view, seed=1, count=3, temperature=0.5)
    finished(qtbot, view)
    plain = load_model("digits_pixelcnn_plain").module
    np.testing.assert_array_equal(view.pictures, compute_thread().call(sample, plain, (8, 8), 3, 1, 0.5))

    # A PixelCNN opened in the window becomes the source.
    w.session.load_model("digits_pixelcnn")
    qtbot.waitUntil(lambda: view.source.currentText() == THIS_MODEL, timeout=WAIT_MS)
