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


def _noisy_checkpoints(folder, scales):
    """The bundled digits_cnn with noise of each scale (times each tensor's std) added."""
    from deepvis.models.digits_cnn import weights_path

    import torch

    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)
    generator = torch.Generator().manual_seed(0)
    paths = []
    for step, scale in scales:
        noisy = {k: v + scale * v.std() * torch.randn(v.shape, generator=generator) if v.ndim else v
                 for k, v in state.items()}
        paths.append(folder / f"step{step}.pt")
        torch.save(noisy, paths[-1])
    return paths


def test_compare_mode_shows_both_models_their_difference_and_two_predictions(qtbot, open_window, tmp_path):
    from deepvis.doctor.sidebyside import look

    w = open_window(model="digits_cnn")
    qtbot.waitUntil(lambda: w.session.result is not None, timeout=WAIT_MS)
    view = _doctor(w)
    view.mode.setCurrentText("Compare")
    (path,) = _noisy_checkpoints(tmp_path, [(1, 0.5)])
    w.session.set_layer("relu2")
    view.compare.load_b(str(path))
    qtbot.waitUntil(lambda: view.compare.shown is not None and view.compare.shown["layer"] == "relu2",
                    timeout=WAIT_MS)
    shown = view.compare.shown
    state, frame = w.session.state, w.session.result.frame.image
    model_b, probe_b = view.compare.model_b
    a = compute_thread().call(lambda: look(state.model, state.probe, frame, "relu2"))
    b = compute_thread().call(lambda: look(model_b, probe_b, frame, "relu2"))
    assert (shown["delta"] == b.activation - a.activation).all() and abs(shown["delta"]).max() > 0
    lines = view.compare.predictions.text().splitlines()
    assert lines[0] == "A: " + ", ".join(f"{p.label} {p.score:.0%}" for p in a.summary.predictions[:3])
    assert lines[1] == "B: " + ", ".join(f"{p.label} {p.score:.0%}" for p in b.summary.predictions[:3])
    assert view.compare.panel_diff.canvas.qimage is not None


def test_the_timeline_slider_shows_the_frame_as_the_model_was_at_each_checkpoint(qtbot, open_window, tmp_path):
    from deepvis.core.loading import load_model
    from deepvis.doctor.weights import first_filters

    w = open_window(model="digits_cnn")
    qtbot.waitUntil(lambda: w.session.result is not None, timeout=WAIT_MS)
    view = _doctor(w)
    view.mode.setCurrentText("Timeline")
    paths = _noisy_checkpoints(tmp_path, [(10, 0.0), (2, 1.0)])  # step2 is the noisy, earlier one
    view.timeline.open_folder(str(tmp_path))
    qtbot.waitUntil(lambda: view.timeline.shown is not None and view.timeline.shown["name"] == "step10.pt",
                    timeout=WAIT_MS)
    view.timeline.slider.setValue(0)
    qtbot.waitUntil(lambda: view.timeline.shown["name"] == "step2.pt", timeout=WAIT_MS)
    frame = w.session.result.frame.image

    def independently():  # on the compute thread: a torch op on the GUI thread slows every later one
        earlier = load_model("digits_cnn", str(paths[1]))
        return first_filters(earlier.module), earlier.summarize(earlier.module(earlier.input_tensor(frame)), 3)

    filters, expected = compute_thread().call(independently)
    assert (view.timeline.shown["view"].filters == filters).all()
    assert view.timeline.prediction.text().startswith("step2.pt: " + expected.predictions[0].label)
