"""The real window, driven like a user would (pytest-qt under Xvfb): keys, clicks, files."""

import threading
import time

import numpy as np
import pytest
import torch

pytest.importorskip("PySide6")
from deepvis.widgets.window import qtenv  # noqa: E402,F401
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402

from deepvis.live.computethread import compute_thread  # noqa: E402
from deepvis.io.images import read_image, write_image, write_video  # noqa: E402
from deepvis.widgets.window.mainwindow import MainWindow  # noqa: E402

WAIT_MS = 60_000


@pytest.fixture(autouse=True, scope="module")
def private_settings(tmp_path_factory):
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope,
                      str(tmp_path_factory.mktemp("qsettings")))


@pytest.fixture
def clip(tmp_path):
    """A short video of moving white squares on black, like a digit drawn on a dark pad."""
    frames = []
    for i in range(30):
        f = np.zeros((96, 128, 3), np.uint8)
        f[20 + i % 10: 60 + i % 10, 30 + 2 * i: 60 + 2 * i] = 255
        frames.append(f)
    path = tmp_path / "clip.mp4"
    write_video(path, frames, 30)
    return path


@pytest.fixture
def open_window(qtbot):
    # As in the app: no cycle collection off the GUI thread while Qt objects live (a compute
    # thread finalizing a closed view's pyqtgraph items crashes Qt).
    import gc

    gc.disable()
    # What lived before this test is left out of the collection at its end: a full collection
    # over the whole session's objects took 0.5 s a test; this test's window, the only thing
    # to finalize here, is among what is made after the freeze.
    gc.freeze()
    windows = []

    def make(size=(1280, 800), **kwargs):
        kwargs.setdefault("restore", False)
        # The tabs' own first-look runs (a dream, a map, samples) would compete with what a test
        # drives; tests of the first look turn them on.
        kwargs.setdefault("autostart", False)
        window = MainWindow(**kwargs)
        qtbot.addWidget(window)
        window.resize(*size)
        window.show()
        qtbot.waitExposed(window)
        # Shortcuts go to the active window; there is no window manager under Xvfb to make it so.
        window.activateWindow()
        qtbot.waitUntil(window.isActiveWindow, timeout=5000)
        qtbot.waitUntil(lambda: window.session.state is not None, timeout=WAIT_MS)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
        window.deleteLater()
    qtbot.wait(50)
    gc.collect()
    gc.unfreeze()
    gc.enable()
    # Nothing may outlive the window: no pipeline step, no capture thread.
    assert not compute_thread()._idle
    deadline = time.monotonic() + 5
    while any(t.name == "deepvis-capture" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [t for t in threading.enumerate() if t.name == "deepvis-capture"]


def wait_results(qtbot, window, count):
    target = window.session.results_seen + count
    qtbot.waitUntil(lambda: window.session.results_seen >= target, timeout=WAIT_MS)
    return window.session.result


def fresh_result(qtbot, window):
    """A result computed with the current selection (not one in flight from before a change)."""
    qtbot.waitUntil(lambda: not window.session.stale() and window.session.result.settings.grid_layer
                    == window.session.layer, timeout=WAIT_MS)
    return window.session.result


def reference_activation(window, result, layer):
    state = window.session.state
    x = state.model.input_tensor(result.frame.image)
    with torch.inference_mode():
        _, acts = state.probe.capture(x, [layer])  # while the pipeline runs on the compute thread
    return acts[layer][0].numpy()


def test_live_video_layers_units_and_freeze(qtbot, open_window, clip):
    w = open_window(model="digits_cnn", input_spec=str(clip))
    first = wait_results(qtbot, w, 5)
    assert first.summary.kind == "classification"
    s = w.session

    # Layers by key: o = next, u = previous.
    start = s.layer
    names = s.state.probe.names()
    qtbot.keyClick(w, Qt.Key.Key_O)
    assert s.layer == names[names.index(start) + 1]
    qtbot.keyClick(w, Qt.Key.Key_U)
    assert s.layer == start

    # A layer by clicking it in the list.
    tree = w.layer_list.tree
    item = w.layer_list._items["conv2"]
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=tree.visualItemRect(item).center())
    assert s.layer == "conv2"
    result = fresh_result(qtbot, w)
    assert result.grid_layout.count == s.state.probe.layer("conv2").channels

    # A unit by clicking its tile in the grid.
    layout = result.grid_layout
    y, x = layout.origin(13)
    panel = w.grid.panel
    at = panel.canvas.image_to_widget(x + layout.tile_w / 2, y + layout.tile_h / 2)
    qtbot.mouseClick(panel.canvas, Qt.MouseButton.LeftButton, pos=at.toPoint())
    assert s.unit == 13

    # Arrows move the cursor like the toolbox: right then down.
    qtbot.keyClick(w, Qt.Key.Key_Right)
    assert s.unit == 14
    qtbot.keyClick(w, Qt.Key.Key_Down)
    assert s.unit == 14 + layout.cols

    # The unit pane shows exactly that channel of the frame it was computed on.
    wait_results(qtbot, w, 2)
    result = s.result
    shown = w.unit_pane.panel.data
    expected = reference_activation(w, result, "conv2")[s.unit]
    np.testing.assert_allclose(shown, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.channel(s.unit), expected, rtol=1e-5, atol=1e-6)

    # Freeze: the frame stops changing; f again goes live.
    qtbot.keyClick(w, Qt.Key.Key_F)
    assert s.settings.frozen
    frozen = wait_results(qtbot, w, 1).frame.serial
    time.sleep(0.3)
    qtbot.wait(50)
    assert s.result.frame.serial == frozen
    qtbot.keyClick(w, Qt.Key.Key_F)
    qtbot.waitUntil(lambda: s.result.frame.serial != frozen, timeout=WAIT_MS)


def test_bad_files_leave_the_app_running_with_its_model(qtbot, open_window, clip, tmp_path):
    w = open_window(model="digits_cnn", input_spec=str(clip))
    wait_results(qtbot, w, 3)
    s = w.session
    model_before = s.state.model

    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    assert w.open_input(str(corrupt))  # opening is fine; reading fails and says so
    qtbot.waitUntil(lambda: "corrupt.png" in w.message_label.text(), timeout=WAIT_MS)

    good = tmp_path / "good.png"
    write_image(good, np.zeros((32, 32, 3), np.uint8))
    w.open_input(str(good))
    qtbot.waitUntil(lambda: s.result is not None and s.result.frame.name == "good.png", timeout=WAIT_MS)

    truncated = tmp_path / "truncated.pt"
    torch.save({"w": torch.zeros(1000)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:300])
    w.load_model("digits_cnn", str(truncated))
    qtbot.waitUntil(lambda: "truncated" in w.message_label.text(), timeout=WAIT_MS)
    assert s.state.model is model_before
    before = s.results_seen
    s.update_settings(normalization="channel")  # still computing with the old model
    qtbot.waitUntil(lambda: s.results_seen > before, timeout=WAIT_MS)

    w.open_input(str(tmp_path / "missing.png"))
    assert "not found" in w.message_label.text() and "missing.png" in w.message_label.text()


def test_drop_an_image_then_a_model(qtbot, open_window, tmp_path, clip):
    w = open_window(model="digits_cnn", input_spec=str(clip))
    wait_results(qtbot, w, 2)
    image = tmp_path / "dropped.png"
    write_image(image, np.full((40, 40, 3), 255, np.uint8))

    def drop(path):
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        event = QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                           Qt.KeyboardModifier.NoModifier)
        w.dropEvent(event)

    drop(image)
    qtbot.waitUntil(lambda: w.session.result is not None and w.session.result.frame.name == "dropped.png",
                    timeout=WAIT_MS)
    scripted = tmp_path / "tiny.pt"
    torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.ReLU())).save(str(scripted))
    drop(scripted)
    qtbot.waitUntil(lambda: w.session.state.model.name == "tiny.pt", timeout=WAIT_MS)
    assert w.session.state.model.scripted


def test_export_png_and_record_a_clip(qtbot, open_window, tmp_path):
    w = open_window(model="digits_cnn", input_spec="pattern")
    wait_results(qtbot, w, 3)
    for name, pane in w.panes().items():
        path = tmp_path / f"{name.replace(' ', '_')}.png"
        assert w.export_png(pane, path)
        image = read_image(path)
        assert image.shape[0] > 50 and image.shape[1] > 50
        assert image.std() > 1  # not a blank grab
    clip_path = tmp_path / "rec.mp4"
    w.start_recording(clip_path)
    qtbot.waitUntil(lambda: w.recorder.count >= 5, timeout=WAIT_MS)
    w.recorder.stop(wait=True)
    qtbot.waitUntil(lambda: "recording saved" in w.message_label.text(), timeout=WAIT_MS)
    import cv2

    cap = cv2.VideoCapture(str(clip_path))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert frames >= 5


def test_default_start_grayscale_model_and_help(qtbot, open_window):
    w = open_window()  # the bundled model on the bundled photos
    result = wait_results(qtbot, w, 1)
    assert w.session.state.model.name == "efficientnet_lite0"
    assert result.summary.predictions[0].score > 0
    qtbot.keyClick(w, Qt.Key.Key_H)
    assert w.help.isVisible()
    qtbot.keyClick(w, Qt.Key.Key_H)
    assert not w.help.isVisible()
    qtbot.keyClick(w, Qt.Key.Key_C)  # no camera here: a message, not a crash
    assert "camera" in w.message_label.text().lower()
    w.load_model("digits_cnn")
    qtbot.waitUntil(lambda: w.session.state.model.name == "digits_cnn", timeout=WAIT_MS)
    result = fresh_result(qtbot, w)
    assert result.model_input.shape == (8, 8, 3)


def test_settings_persist_across_sessions(qtbot, open_window, clip):
    w = open_window(model="digits_cnn", input_spec=str(clip))
    wait_results(qtbot, w, 2)
    w.session.set_layer("conv1")
    w.grid.set_colormap("magma")
    w.close()
    again = open_window(restore=True)  # a bare start restores the last session
    qtbot.waitUntil(lambda: again.session.layer == "conv1", timeout=WAIT_MS)
    assert again.session.state.model.name == "digits_cnn"
    assert again.session.source_spec == str(clip)
    assert again.grid.colormap == "magma"
    qtbot.waitUntil(lambda: "render" in again.stage_label.text(), timeout=WAIT_MS)


@pytest.mark.slow
def test_screenshot_command(tmp_path):
    import subprocess
    import sys

    import os

    out = tmp_path / "shot.png"
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))  # keep the user's settings untouched
    proc = subprocess.run([sys.executable, "-m", "deepvis", "gui", "--model", "digits_cnn", "--input", "pattern",
                           "--screenshot", str(out), "--after-frames", "3"], capture_output=True, text=True,
                          timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-1500:]
    image = read_image(out)
    assert image.shape[0] >= 600 and image.shape[1] >= 900
    assert image.std() > 10


@pytest.mark.slow
def test_screenshot_of_a_model_that_cannot_load_fails_fast(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))
    proc = subprocess.run([sys.executable, "-m", "deepvis", "gui", "--model", "no_such_net", "--input", "pattern",
                           "--screenshot", str(tmp_path / "x.png")], capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no screenshot") and "no_such_net" in lines[0]
    assert not (tmp_path / "x.png").exists()


def test_folders_open_off_the_gui_thread_and_the_latest_request_wins(qtbot, open_window, tmp_path, clip):
    w = open_window(model="digits_cnn", input_spec=str(clip))
    wait_results(qtbot, w, 2)
    folder = tmp_path / "many"
    for i in range(300):
        write_image(folder / f"img{i}.png", np.full((8, 8, 3), i % 255, np.uint8))
    assert w.open_input(str(folder))
    qtbot.waitUntil(lambda: w.session.result.frame.name == "img0.png", timeout=WAIT_MS)
    single = tmp_path / "single.png"
    write_image(single, np.zeros((8, 8, 3), np.uint8))
    w.open_input(str(folder))  # still listing when the next request comes
    w.open_input(str(single))
    qtbot.waitUntil(lambda: w.session.result.frame.name == "single.png", timeout=WAIT_MS)
    qtbot.wait(500)  # the folder listing finishes late and must not take over
    assert w.session.source_spec == str(single)
    assert w.session.result.frame.name == "single.png"


def grab_rgb(widget) -> np.ndarray:
    """What ``widget`` and its children show, as (H, W, 3) uint8."""
    from PySide6.QtGui import QImage

    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine() // 4, 4)
    return pixels[:, :image.width(), 2::-1].copy()


def test_the_unit_pane_starts_on_the_most_active_unit_and_dead_units_are_marked(qtbot, open_window, tmp_path, clip):
    from deepvis.io.datasets import digits_dataset

    digit = tmp_path / "three.png"  # a still picture: every result is of this one frame
    write_image(digit, np.repeat(digits_dataset().image(3)[:, :, None], 3, axis=2))
    w = open_window(model="digits_cnn", input_spec=str(digit))
    s, pane, grid = w.session, w.unit_pane, w.grid
    result = fresh_result(qtbot, w)
    assert s.layer == "relu2"  # the model's default layer

    # The model loads showing the unit with the largest spatial maximum on the frame, not unit 0.
    maxima = reference_activation(w, result, "relu2").reshape(64, -1).max(1)
    assert s.unit == int(np.argmax(maxima)) == 61
    assert not pane.dead and pane.stats.text().startswith(f"max {maxima[61]:.4g} at")

    # Units with no positive activation on the frame: dimmed and hatched in the grid, and only those.
    dead = np.flatnonzero(maxima <= 0)
    assert len(dead) == 9
    qtbot.waitUntil(lambda: len(grid.dead_tiles.units) == 9, timeout=WAIT_MS)
    np.testing.assert_array_equal(grid.dead_tiles.units, dead)
    canvas, layout = grid.panel.canvas, result.grid_layout
    grid.dead_tiles.hide()
    plain = grab_rgb(canvas)
    grid.dead_tiles.show()
    marked = grab_rgb(canvas)
    change = []
    for unit in range(64):
        y, x = layout.origin(unit)
        a, b = canvas.image_to_widget(x, y), canvas.image_to_widget(x + layout.tile_w, y + layout.tile_h)
        inside = (slice(int(a.y()) + 3, int(b.y()) - 3), slice(int(a.x()) + 3, int(b.x()) - 3))
        change.append(np.abs(marked[inside].astype(int) - plain[inside]).mean())
    change = np.array(change)
    assert (change[dead] > 20).all() and (np.delete(change, dead) == 0).all()

    # A dead unit in the unit pane: drawn in greys, and its readout says it is dead.
    s.set_unit(int(dead[0]))
    assert pane.dead and pane.stats.text().startswith(f"dead on this frame (max {maxima[dead[0]]:.4g} ≤ 0)")
    assert pane.panel.title.text() == f"Unit {dead[0]} of relu2 · dead on this frame"
    target = pane.panel.canvas.target_rect()

    def spread():  # of the colour channels over the unit's picture
        shown = grab_rgb(pane.panel.canvas)[int(target.top()) + 1:int(target.bottom()) - 1,
                                            int(target.left()) + 1:int(target.right()) - 1]
        return np.ptp(shown.astype(int), axis=2)

    # Grey: equal channels, up to a 16-bit screen's rounding; viridis's least coloured entry is 67 apart.
    assert spread().max() <= 3
    s.set_unit(int(np.argmax(maxima)))
    assert spread().min() > 20
    assert not pane.dead and pane.stats.text().startswith("max")

    # Another layer: its most active unit on the frame.
    s.set_layer("conv3")
    result = fresh_result(qtbot, w)
    conv3 = reference_activation(w, result, "conv3").reshape(32, -1).max(1)
    assert s.unit == int(np.argmax(conv3)) == 25

    # The user's unit stays while frames change: a video, whose maxima differ frame to frame.
    s.set_unit(3)
    w.open_input(str(clip))
    qtbot.waitUntil(lambda: s.result.frame.name != "three.png", timeout=WAIT_MS)
    wait_results(qtbot, w, 4)
    assert s.unit == 3


def test_ctrl_c_in_the_terminal_closes_the_window_as_its_close_button_does(qtbot, open_window):
    """Python's own SIGINT handler raised KeyboardInterrupt in whatever slot ran next (a
    traceback, and the window went on); the app's handler closes the window instead (issue 31)."""
    import os
    import signal

    from deepvis.widgets.window.app import _close_on_interrupt

    w = open_window(model="digits_cnn", input_spec="pattern")
    interrupted = _close_on_interrupt(w)
    try:
        os.kill(os.getpid(), signal.SIGINT)
        qtbot.waitUntil(lambda: not w.isVisible(), timeout=WAIT_MS)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert interrupted.is_set()
