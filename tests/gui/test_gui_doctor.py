"""The Doctor tab driven like a user would: it examines the model over its own digits at first
look, finds a planted dead layer, selects it in every view on click, and fixes a wrong
preprocessing for the session in one click."""

import pytest

pytest.importorskip("PySide6")
from deepvis.widgets.window import qtenv  # noqa: E402,F401
from PySide6.QtCore import Qt  # noqa: E402

from deepvis.live.computethread import compute_thread  # noqa: E402
from test_gui import WAIT_MS, open_window, private_settings  # noqa: E402,F401


def _doctor(window):
    view = next(v for v in window.views if v.title == "Doctor")
    window.tabs.setCurrentWidget(view)
    return view


def test_the_doctor_finds_a_planted_dead_layer_and_selects_it_on_click(qtbot, open_window):
    w = open_window(model="digits_cnn", input_spec="pattern", autostart=True)
    view = _doctor(w)
    qtbot.waitUntil(lambda: view.report is not None, timeout=WAIT_MS)  # the first look ran by itself
    assert view.report["inputs"] == 1797 and view.report["flags"] == []
    assert view.table.rowCount() == len(view.report["layers"])

    module = w.session.state.model.module
    compute_thread().call(lambda: module.conv3.bias.data.fill_(-1000.0))  # every relu3 channel dies
    view.report = None
    view.run_button.click()
    qtbot.waitUntil(lambda: view.report is not None, timeout=WAIT_MS)
    relu3 = next(row for row in view.report["layers"] if row["name"] == "relu3")
    assert relu3["dead_fraction"] == 1.0 and "dead" in relu3["flags"]
    items = [view.findings.item(i) for i in range(view.findings.count())]
    finding = next(item for item in items if item.text().startswith("relu3:"))
    assert w.session.layer != "relu3"
    rect = view.findings.visualItemRect(finding)
    qtbot.mouseClick(view.findings.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: w.session.layer == "relu3", timeout=WAIT_MS)
    assert view.table.item(view.table.currentRow(), 0).text() == "relu3"


def test_a_wrong_preprocessing_is_fixed_for_the_session_in_one_click(qtbot, open_window):
    w = open_window(model="digits_cnn", input_spec="pattern")
    view = _doctor(w)
    state = w.session.state
    # A digits net whose declared input is off by 255: the doctor reads it best as x255.
    compute_thread().call(lambda: state.model.__setattr__("spec", state.model.spec.with_overrides(
        mean=(0.0,), std=(1 / 255,))))
    state.model.__dict__.pop("preprocessor", None)
    view.start()
    qtbot.waitUntil(lambda: view.report is not None, timeout=WAIT_MS)
    assert view.report["preprocessing"]["best"] == "unnormalized" and view.fix.isVisibleTo(view)
    before = view.report["preprocessing"]
    view.fix.click()
    qtbot.waitUntil(lambda: w.session.state.model.spec.std == (1.0,), timeout=WAIT_MS)
    view.report = None
    view.start()
    qtbot.waitUntil(lambda: view.report is not None, timeout=WAIT_MS)
    after = view.report["preprocessing"]
    assert after["best"] == "declared" and not view.fix.isVisibleTo(view)
    declared = next(v for v in after["variants"] if v["name"] == "declared")["accuracy"]
    assert declared == max(v["accuracy"] for v in before["variants"])
