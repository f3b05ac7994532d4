"""The Latent tab driven like a user would: pick A and B on the sample grid, scrub, play,
move along directions, project an image, export."""

import numpy as np
import pytest
import torch

pytest.importorskip("PySide6")
from deepvis.widgets.window import qtenv  # noqa: E402,F401
from PySide6.QtCore import Qt  # noqa: E402

from deepvis.io.images import read_image, write_image  # noqa: E402
from deepvis.generative.latent import slerp  # noqa: E402
from test_gui import WAIT_MS, open_window, private_settings  # noqa: E402,F401


def latent_view(window):
    view = next(v for v in window.views if v.title == "Latent")
    window.tabs.setCurrentWidget(view)
    return view


def settled(qtbot, view):
    qtbot.waitUntil(lambda: view.grid_z is not None and view.current_image is not None and not view._scrub_pending,
                    timeout=WAIT_MS)


def test_pick_scrub_play_directions_export(qtbot, open_window, tmp_path):
    w = open_window(model="digits_cnn", input_spec="pattern")
    view = latent_view(w)
    settled(qtbot, view)
    g = view.generator
    assert g.name == "digits_gan" and view.grid_z.shape == (64, 16)

    # Click a grid sample for A, Shift+click another for B.
    cell = view.grid_images.shape[1] + 2
    for index, modifier in ((10, Qt.KeyboardModifier.NoModifier), (27, Qt.KeyboardModifier.ShiftModifier)):
        x, y = (index % 8 + 0.5) * cell, (index // 8 + 0.5) * cell
        at = view.grid_panel.canvas.image_to_widget(x, y).toPoint()
        qtbot.mouseClick(view.grid_panel.canvas, Qt.MouseButton.LeftButton, modifier, at)
    torch.testing.assert_close(view.a, view.grid_z[10:11])
    torch.testing.assert_close(view.b, view.grid_z[27:28])

    # The strip starts at A's sample and ends at B's.
    qtbot.waitUntil(lambda: getattr(view, "strip_images", None) is not None and
                    np.array_equal(view.strip_images[0], view.grid_images[10]) and
                    np.array_equal(view.strip_images[-1], view.grid_images[27]), timeout=WAIT_MS)

    # Scrub to 30%: the current sample is the slerp point there.
    view.scrub.setValue(60)
    expected = g.images(slerp(view.a[0], view.b[0], torch.tensor([0.3])))[0]
    qtbot.waitUntil(lambda: view.current_image is not None and np.array_equal(view.current_image, expected),
                    timeout=WAIT_MS)

    # A direction slider moves the current point along that direction.
    before = view.current_z.clone()
    view.sliders[0].setValue(20)
    qtbot.waitUntil(lambda: not torch.allclose(view.current_z, before), timeout=WAIT_MS)
    moved = (view.current_z - before)[0]
    torch.testing.assert_close(moved, 2.0 * view.directions[0], atol=1e-4, rtol=1e-4)
    view.sliders[0].setValue(0)

    # The generator's own layers are probed like any model's: the panel shows the current point's.
    view.layer.setCurrentIndex(0)
    layer = view.layer.currentText()
    qtbot.waitUntil(lambda: getattr(view, "layer_activation", None) is not None and
                    np.allclose(view.layer_activation, g.activations(view.current_z, layer)), timeout=WAIT_MS)
    with torch.inference_mode():
        first = g.module.main[0](view.current_z.reshape(1, 16, 1, 1))[0].numpy()
    if layer == "main.0":
        np.testing.assert_allclose(view.layer_activation, first, rtol=1e-5, atol=1e-6)

    # Play runs the slider forward, then back.
    view.scrub.setValue(190)
    view.set_playing(True)
    qtbot.waitUntil(lambda: view._direction_sign == -1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: view.scrub.value() < 170, timeout=WAIT_MS)
    view.set_playing(False)
    assert not view.timer.isActive()

    for suffix in ("png", "gif", "mp4"):
        view.export(str(tmp_path / f"latent.{suffix}"))
        assert (tmp_path / f"latent.{suffix}").stat().st_size > 1000
    assert read_image(tmp_path / "latent.png").shape[0] >= 512


@pytest.mark.slow
def test_project_input_finds_a_generated_digit(qtbot, open_window, tmp_path):
    w = open_window(model="digits_cnn", input_spec="pattern")
    view = latent_view(w)
    settled(qtbot, view)
    target = view.generator.images(view.generator.latent(4242))[0]
    path = tmp_path / "target.png"
    write_image(path, target)
    w.open_input(str(path))
    qtbot.waitUntil(lambda: w.session.result is not None and w.session.result.frame.name == "target.png",
                    timeout=WAIT_MS)
    view.feature_loss.setChecked(True)  # also match what digits_cnn sees
    view.project_input()
    qtbot.waitUntil(lambda: view.project.isEnabled() and hasattr(view, "projection_errors"), timeout=WAIT_MS)
    errors = view.projection_errors
    assert errors[-1] < errors[0] / 10
    found = view.generator.images(view.a)[0].astype(float)
    assert np.abs(found - target).mean() < 25
