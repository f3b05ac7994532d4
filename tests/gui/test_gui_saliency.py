"""The saliency pane driven like a user would: b cycles methods, targets follow the selected
unit or a clicked prediction bar, heavy maps show progress and cancel, bad combinations a message."""

import numpy as np
import pytest

pytest.importorskip("PySide6")
from deepvis.widgets.window import qtenv  # noqa: E402,F401
from PySide6.QtCore import QPoint, Qt  # noqa: E402

from deepvis.resources import sample_image  # noqa: E402
from deepvis.attribution.saliency import METHODS, Target, applicable_methods, attribute  # noqa: E402
from deepvis.attribution.render import render_saliency  # noqa: E402
from test_gui import WAIT_MS, open_window, private_settings  # noqa: E402,F401


def map_for(qtbot, window, check):
    """The first result whose saliency map satisfies ``check`` (settings apply a frame later)."""
    s = window.session
    qtbot.waitUntil(lambda: s.result is not None and s.result.saliency is not None and check(s.result.saliency),
                    timeout=WAIT_MS)
    return s.result.saliency


def test_b_cycles_methods_and_the_pane_shows_the_live_map(qtbot, open_window):
    w = open_window(model="digits_cnn", input_spec="pattern")
    pane, s = w.saliency, w.session
    assert s.settings.saliency is None
    methods = applicable_methods(s.state.model.module, s.state.probe)
    assert set(METHODS) - set(methods) == {"attention-rollout", "grad-rollout"}  # a CNN: no rollouts offered
    assert [pane.method.itemText(i) for i in range(1, pane.method.count())] == list(methods)
    seen = []
    for _ in methods:
        qtbot.keyClick(w, Qt.Key.Key_B)
        seen.append(s.settings.saliency.method)
    assert seen == list(methods)
    qtbot.keyClick(w, Qt.Key.Key_B)
    assert s.settings.saliency is None  # wraps through off

    pane.method.setCurrentText("gradient")
    sal = map_for(qtbot, w, lambda m: m.settings.method == "gradient")
    top = s.result.summary.predictions[0].index
    assert sal.target == Target("class", top)
    # As the papers show maps: over the input, the magnitude clipped at its 99th percentile.
    assert pane.mode.currentText() == "clip99" and pane.opacity.value() == 60
    qtbot.waitUntil(lambda: pane.panel.data is not None and np.array_equal(pane.panel.data, render_saliency(
        s.result.saliency.map, "clip99", image=s.result.saliency.model_input, opacity=0.6)), timeout=WAIT_MS)
    # What the pane shows is the map rendered the way the mode says; alone with the overlay at 0.
    pane.opacity.setValue(0)
    pane.mode.setCurrentText("raw")
    qtbot.waitUntil(lambda: pane.panel.data is not None and
                    np.array_equal(pane.panel.data, render_saliency(s.result.saliency.map, "raw")), timeout=WAIT_MS)
    assert "gradient" in pane.panel.title.text()
    # Overlay: the photo shows through where the map is weak.
    pane.opacity.setValue(100)
    shown = pane.panel.data
    expected = render_saliency(s.result.saliency.map, "raw", image=s.result.saliency.model_input, opacity=1.0)
    assert shown.shape == expected.shape


def test_the_target_follows_the_selected_unit_and_a_clicked_class(qtbot, open_window):
    w = open_window(model="digits_cnn", input_spec="pattern")
    pane, s = w.saliency, w.session
    pane.method.setCurrentText("gradient")
    s.set_layer("conv2")
    pane.target.setCurrentText("selected unit")
    s.set_unit(5)
    sal = map_for(qtbot, w, lambda m: m.target == Target("unit", 5, "conv2"))
    state = s.state
    x = state.model.input_tensor(sal.frame.image)
    expected = attribute(state.model.module, state.probe, x, "gradient", Target("unit", 5, "conv2"))
    np.testing.assert_allclose(sal.map, expected, rtol=1e-4, atol=1e-7)
    qtbot.keyClick(w, Qt.Key.Key_Right)  # the arrow moves the unit, the map follows
    map_for(qtbot, w, lambda m: m.target == Target("unit", 6, "conv2"))

    # A click on the second prediction bar explains that class.
    qtbot.waitUntil(lambda: len(w.predictions.rows) >= 2, timeout=WAIT_MS)
    second = w.predictions.rows[1].index
    row_h = w.predictions._row_height()
    qtbot.mouseClick(w.predictions, Qt.MouseButton.LeftButton, pos=QPoint(40, 26 + row_h + row_h // 2))
    assert pane.target.currentText() == "class"
    map_for(qtbot, w, lambda m: m.target == Target("class", second))

    # A class typed by name, and a name that does not exist.
    messages = []
    s.message.connect(messages.append)
    pane.class_edit.setText("nine")
    pane.class_edit.editingFinished.emit()
    qtbot.waitUntil(lambda: bool(messages), timeout=5000)
    assert "nine" in messages[-1]  # digits are labelled 0-9: the message names the bad class
    pane.class_edit.setText("9")
    pane.class_edit.editingFinished.emit()
    map_for(qtbot, w, lambda m: m.target == Target("class", 9))


def test_heavy_map_shows_progress_and_cancels(qtbot, open_window):
    w = open_window(model="efficientnet_lite0", input_spec=str(sample_image("cat")))
    pane, s = w.saliency, w.session
    fractions = []
    s.saliencyProgress.connect(fractions.append)
    pane.method.setCurrentText("integrated-gradients")
    qtbot.waitUntil(lambda: pane.progress.isVisible() and pane.cancel.isVisible(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: any(0 < f < 1 for f in fractions), timeout=WAIT_MS)
    qtbot.mouseClick(pane.cancel, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: fractions and fractions[-1] == -1.0, timeout=WAIT_MS)
    assert not pane.progress.isVisible()
    # Nothing computed: the pane says it was cancelled (it said "computing" under a stale badge).
    assert s.result.saliency is None and not pane.panel.badge.isVisible()
    assert "cancelled" in pane.panel.canvas.placeholder and pane.info.text() == "cancelled"

    fractions.clear()
    pane.method.setCurrentText("smoothgrad")  # a new method starts again and finishes
    sal = map_for(qtbot, w, lambda m: m.settings.method == "smoothgrad")
    assert fractions[-1] == 1.0 and sal.map.shape == (224, 224)
    assert sal.target == Target("class", 285)  # the top prediction, Egyptian cat
    qtbot.waitUntil(lambda: not pane.progress.isVisible(), timeout=5000)


def test_bad_combinations_show_a_message_and_keep_the_app_running(qtbot, open_window, tmp_path):
    import torch
    from testnets import Functional

    w = open_window(model="digits_cnn", input_spec="pattern")
    s, pane = w.session, w.saliency
    messages = []
    s.message.connect(messages.append)
    pane.method.setCurrentText("gradcam")
    map_for(qtbot, w, lambda m: m.settings.method == "gradcam")
    # A region on a classifier's output is refused with a message; the map keeps going.
    pane._pick_region(3.0, 3.0)
    assert any("region" in m for m in messages) and pane.region is None
    assert s.settings.saliency.method == "gradcam"

    # TorchScript has no Python modules to hook: loading one with Grad-CAM on is a message, no crash.
    module = Functional().eval()
    path = tmp_path / "functional.pt"
    torch.jit.save(torch.jit.script(module), path)
    w.load_model(str(path))
    qtbot.waitUntil(lambda: s.state.spec_text == str(path), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: any("TorchScript" in m for m in messages), timeout=WAIT_MS)
    assert s.pipeline is not None and s.pipeline.running
