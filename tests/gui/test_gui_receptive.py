"""The Receptive field tab driven like a user would: click a pixel of the model input (or a time
step of a signal) and check the field drawn against the engine's measurement, the PixelCNN's
blind spot and causality, the growth over the layers, a layer without pixels, and the export.
Small models only: the bundled 8x8 PixelCNNs and digits CNN, and the 1-D WaveNet."""

import numpy as np
import pytest

pytest.importorskip("PySide6")
from deepvis.widgets.window import qtenv  # noqa: E402,F401
from PySide6.QtCore import Qt  # noqa: E402

from deepvis.autoregressive.receptive import (all_positions, causality, example_input, measured_fields,  # noqa: E402
                                              theoretical_box, theoretical_field)
from deepvis.io.images import read_image  # noqa: E402
from deepvis.live.computethread import compute_thread  # noqa: E402
from deepvis.widgets.tabs.receptiveview import ORANGE, RED  # noqa: E402
from test_gui import WAIT_MS, open_window, private_settings  # noqa: E402,F401


def receptive_view(window):
    view = next(v for v in window.views if v.title == "Receptive field")
    window.tabs.setCurrentWidget(view)
    return view


def switch_model(qtbot, w, name):
    w.load_model(name)
    qtbot.waitUntil(lambda: w.session.state.model.name == name, timeout=WAIT_MS)


def last_spatial(state, dims=2):
    return [layer for layer in state.probe.layers if len(layer.shape) == dims + 1 and layer.path][-1].name


def click(qtbot, view, x, y, exact=False):
    """A left click on the picture at image coordinates (x, y), as the mouse would; ``exact``
    sends the canvas's click signal itself, for a place finer than a screen pixel."""
    view.query = None
    if exact:
        view.panel.canvas.clicked.emit(float(x), float(y))
    else:
        at = view.panel.canvas.image_to_widget(x, y).toPoint()
        qtbot.mouseClick(view.panel.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
    qtbot.waitUntil(lambda: view.query is not None and view._cancel is None, timeout=WAIT_MS)
    return view.query


def engine_field(state, size, layer, position):
    """The field as the headless engine measures it, on the compute thread like the view."""
    module, probe = state.model.module, state.probe
    return compute_thread().call(lambda: measured_fields(module, probe, example_input(module, size), layer,
                                                         [position])[0])


def at_pixel_centres(view, size):
    s = view.scale
    return view.picture[s // 2::s, s // 2::s][:size[0], :size[1]]


def test_pixelcnn_blind_spot_causality_and_export(qtbot, open_window, tmp_path):
    w = open_window(model="digits_pixelcnn_plain", input_spec="pattern")
    view = receptive_view(w)
    s = w.session
    layer = last_spatial(s.state)
    s.set_layer(layer)
    qtbot.waitUntil(lambda: s.result is not None and view.picture is not None, timeout=WAIT_MS)

    q = click(qtbot, view, 3.5, 4.5)  # x = column 3, y = row 4
    assert (q.layer, q.position, q.grid, q.size) == (layer, (4, 3), (8, 8), (8, 8))
    expected = engine_field(s.state, (8, 8), layer, (4, 3))
    np.testing.assert_array_equal(q.field, expected)

    # The blind spot: earlier pixels in raster order that the field misses, drawn in orange.
    earlier = np.zeros((8, 8), bool)
    earlier.reshape(-1)[:4 * 8 + 3] = True
    blind = earlier & ~expected
    assert blind.any()
    np.testing.assert_array_equal(q.blind_spot, blind)
    centres = at_pixel_centres(view, (8, 8))
    np.testing.assert_array_equal((centres == ORANGE).all(-1), blind)
    assert (centres[4, 3] == RED).all()
    assert not expected[5:].any() and not expected[4, 3:].any()  # strictly causal at this pixel

    # Causality of the layer over all 64 positions, and the words under the picture.
    positions = all_positions((8, 8))
    module, probe = s.state.model.module, s.state.probe
    verdict = compute_thread().call(lambda: causality(measured_fields(module, probe, example_input(module, (8, 8)),
                                                                      layer, positions), positions))
    assert verdict.strict and q.verdict == verdict
    text = view.summary.text()
    assert "causal, strictly" in text and f"<b>{int(expected.sum())}</b> input pixels" in text
    assert f"blind spot: {int(blind.sum())} earlier pixel" in text

    # Export: the picture as drawn, the field as .npy.
    view.save_to(str(tmp_path / "field.png"))
    view.save_to(str(tmp_path / "field.npy"))
    np.testing.assert_array_equal(read_image(tmp_path / "field.png"), view.picture)
    np.testing.assert_array_equal(np.load(tmp_path / "field.npy"), expected)

    # The gated PixelCNN has no blind spot: nothing orange, still strictly causal.
    view.with_growth.setChecked(False)
    switch_model(qtbot, w, "digits_pixelcnn")
    layer = last_spatial(s.state)
    s.set_layer(layer)
    q = click(qtbot, view, 3.5, 4.5)
    np.testing.assert_array_equal(q.field, engine_field(s.state, (8, 8), layer, (4, 3)))
    assert q.blind_spot is not None and not q.blind_spot.any()
    assert not (at_pixel_centres(view, (8, 8)) == ORANGE).all(-1).any()
    assert q.verdict.strict and "causal, strictly" in view.summary.text() and "no blind spot" in view.summary.text()


def test_growth_over_the_layers_of_a_cnn_and_a_layer_without_pixels(qtbot, open_window):
    w = open_window(model="digits_cnn", input_spec="pattern")
    view = receptive_view(w)
    s = w.session
    layer = last_spatial(s.state)  # relu3, 4x4 after the pool
    s.set_layer(layer)
    q = click(qtbot, view, 3.5, 4.5)
    assert q.grid == (4, 4) and q.position == (2, 1)  # the click scaled to the layer's grid
    np.testing.assert_array_equal(q.field, engine_field(s.state, (8, 8), layer, (2, 1)))

    names = [p.layer for p in view.growth]
    assert names[0] == "conv1" and names[-1] == layer and "pool" in names
    measured = [p.measured for p in view.growth]
    assert all(a <= b for a, b in zip(measured, measured[1:]))
    assert measured[-1] == int(q.field.sum())
    # One chain of convolutions: the measured field never outgrows the theory placed over it.
    assert all(p.measured <= p.theory for p in view.growth)
    assert view.growth[0].measured == 9 and view.growth[0].position == (4, 3)  # conv1's 3x3 on the input grid
    theory = compute_thread().call(lambda: theoretical_field(s.state.model.module, s.state.probe, layer))
    box = tuple((max(0, lo), min(7, hi)) for lo, hi in theoretical_box(theory, (2, 1)))
    assert q.box == box and q.inside_box

    # A layer without pixels: a message in the tab, nothing measured, no error.
    messages = []
    s.message.connect(messages.append)
    s.set_layer("fc1")
    qtbot.waitUntil(lambda: "has no pixels" in view.hint.text(), timeout=WAIT_MS)
    assert view.query is None and not view.growth and not messages


def test_stop_ends_a_growth_run_between_layers_and_keeps_what_was_measured(qtbot, open_window, monkeypatch):
    """The growth run's cancel (issue 31): Stop during the second layer ends the run there, the
    first layer's point stays, the tab is idle and says so; the next click measures them all."""
    import threading

    from deepvis.widgets.tabs import receptiveview

    w = open_window(model="digits_cnn", input_spec="pattern")
    view = receptive_view(w)
    w.session.set_layer(last_spatial(w.session.state))
    names = [info.name for _, info in view.growth_layers()]
    holding = threading.Event()
    real = receptiveview.measured_fields

    def measuring(module, probe, x, layer, positions, cancel=None):
        if layer == names[1] and not holding.is_set():  # hold the second layer until Stop is pressed
            holding.set()
            cancel.wait(30)
        return real(module, probe, x, layer, positions, cancel=cancel)

    monkeypatch.setattr(receptiveview, "measured_fields", measuring)
    view.query = None
    at = view.panel.canvas.image_to_widget(3.5, 4.5).toPoint()
    qtbot.mouseClick(view.panel.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
    qtbot.waitUntil(holding.is_set, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: len(view.growth) == 1, timeout=WAIT_MS)
    assert view.stop.isEnabled() and view.working()
    qtbot.mouseClick(view.stop, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view._cancel is None, timeout=WAIT_MS)
    assert [p.layer for p in view.growth] == names[:1]
    assert view.readout.text() == "growth stopped after 1 layer"
    assert not view.stop.isEnabled() and not view.progress.isVisibleTo(view) and view.working() == ""
    assert view.query is not None  # the query itself had finished: its field is still shown

    click(qtbot, view, 2.5, 2.5)
    assert [p.layer for p in view.growth] == names


def test_wavenet_time_step_field_is_causal(qtbot, open_window):
    w = open_window(model="signals_wavenet")
    view = receptive_view(w)
    view.with_growth.setChecked(False)
    s = w.session
    layer = [info.name for info in s.state.probe.layers if info.type_name == "Conv1d"][-1]
    s.set_layer(layer)
    qtbot.waitUntil(lambda: view.picture is not None and view.query is not None and view._cancel is None,
                    timeout=WAIT_MS)
    length = s.state.model.signal.length
    width = view.picture.shape[1]
    # The 1024-column strip is drawn narrower than that: a screen pixel spans more than a step.
    q = click(qtbot, view, (600 + 0.5) * width / length, 40, exact=True)
    assert q.position == (600,) and q.size == (length,)
    net = s.state.model.module
    reach = 1 + sum((net.kernel_size - 1) * d for d in net.dilations)
    covered = np.flatnonzero(q.field)
    assert covered.max() == 600 and covered.min() >= 600 - reach + 1 and len(covered) <= reach
    np.testing.assert_array_equal(q.field, engine_field(s.state, (length,), layer, (600,)))
    assert q.box == ((600 - reach + 1, 600),)  # the theory ends at the step too: causal padding is on the left
    assert "samples 89–600" in view.summary.text()


def mlp():
    """A model without convolutions (loaded by the window as ``test_gui_receptive:mlp``)."""
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))


def test_a_model_without_convolutions_is_a_message_in_the_tab(qtbot, open_window):
    w = open_window(model="test_gui_receptive:mlp", model_options={"input_size": (8, 8), "channels": 1})
    messages = []
    w.session.message.connect(messages.append)
    view = receptive_view(w)
    qtbot.waitUntil(lambda: "has no convolutions" in view.hint.text(), timeout=WAIT_MS)
    assert view.query is None and view.picture is None and view.panel.canvas.placeholder == view.hint.text()
    view.save_to("unused.png")  # nothing to save: said, not raised
    assert messages and "no picture to save" in messages[-1]
