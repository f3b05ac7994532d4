"""Image models in the window: the output pane beside the input with the difference and the
error, saliency of the output or of the error, and the VAE in the Latent tab projecting the
current frame through its encoder."""

import numpy as np
import pytest
import torch

pytest.importorskip("PySide6")
from deepvis.widgets.window import qtenv  # noqa: E402,F401

from deepvis.attribution.saliency import Target, attribute  # noqa: E402
from deepvis.core.imagemodel import image_output  # noqa: E402
from deepvis.io.images import read_image, write_image  # noqa: E402
from deepvis.models.digits_cnn import load_split  # noqa: E402
from deepvis.widgets.panes.outputpane import DIFFERENCE_LEVELS  # noqa: E402
from deepvis.widgets.tabs.latentview import THIS_MODEL  # noqa: E402
from test_gui import WAIT_MS, open_window, private_settings  # noqa: E402,F401


@pytest.fixture
def digit_png(tmp_path):
    _, X_test, _, _ = load_split()
    path = tmp_path / "digit.png"
    write_image(path, np.repeat((X_test[5, 0] * 255).round().astype(np.uint8)[:, :, None], 3, axis=2))
    return path


def test_output_pane_saliency_and_latent_projection(qtbot, open_window, digit_png):
    w = open_window(model="digits_vae", input_spec=str(digit_png))
    s = w.session
    qtbot.waitUntil(lambda: s.result is not None and s.result.image_output is not None, timeout=WAIT_MS)
    pane = w.output_pane
    assert pane.isVisible()

    # The pane shows what the engine computes for the frame the model saw.
    model, result = s.state.model, s.result
    x = torch.from_numpy(model.preprocessor.normalize(model.preprocessor.fit(result.frame.image)))[None]
    with torch.inference_mode():
        expected = image_output(model.module(x), x, model.output_range, model.spec)
    qtbot.waitUntil(lambda: pane.output.data is not None and pane.difference.data is not None, timeout=WAIT_MS)
    np.testing.assert_array_equal(pane.output.data, expected.picture)
    np.testing.assert_allclose(pane.difference.data, expected.difference, atol=1e-6)
    assert pane.error.text() == expected.error.text()
    assert s.result.summary.text == expected.error.text()
    # The difference is drawn through fixed levels: a pixel off by 0.5 is full brightness.
    assert DIFFERENCE_LEVELS == (0.0, 0.5)

    # Saliency targets for an image model: the output picture and the reconstruction error.
    sal = w.saliency
    targets = [sal.target.itemText(i) for i in range(sal.target.count())]
    assert targets[:2] == ["output picture", "reconstruction error"]
    sal.target.setCurrentText("reconstruction error")
    sal.method.setCurrentText("gradient")
    qtbot.waitUntil(lambda: s.result.saliency is not None and s.result.saliency.target.kind == "error",
                    timeout=WAIT_MS)
    direct = attribute(model.module, s.state.probe, x, "gradient", Target("error"), picture=model.picture)
    np.testing.assert_allclose(s.result.saliency.map, direct, rtol=1e-4, atol=1e-7)
    assert np.abs(direct).sum() > 0

    # The Latent tab lists the model in view; its encoder projects the current frame at once.
    view = next(v for v in w.views if v.title == "Latent")
    w.tabs.setCurrentWidget(view)
    assert view.source.findText(THIS_MODEL) >= 0
    view.source.setCurrentIndex(view.source.findText(THIS_MODEL))
    view._source_picked(view.source.findText(THIS_MODEL))
    qtbot.waitUntil(lambda: view.generator is not None and view.generator.encoder is not None and
                    view.grid_z is not None, timeout=WAIT_MS)
    assert view.refine.isVisibleTo(view) and view.two_pictures.isVisibleTo(view)
    view.project_input()
    qtbot.waitUntil(lambda: getattr(view, "projection_errors", None) is not None, timeout=WAIT_MS)
    with torch.inference_mode():
        mean, _ = model.module.encode(x)
    torch.testing.assert_close(view.a, mean, atol=1e-5, rtol=1e-4)
    assert len(view.projection_errors) == 1  # one pass, no optimization
    qtbot.waitUntil(lambda: view.current_image is not None and view.scrub.value() == 0, timeout=WAIT_MS)

    # A classifier again: the pane hides and the model leaves the Latent tab's list.
    w.tabs.setCurrentIndex(0)
    w.load_model("digits_cnn")
    qtbot.waitUntil(lambda: s.state.model.name == "digits_cnn", timeout=WAIT_MS)
    assert not pane.isVisible()
    assert view.source.findText(THIS_MODEL) < 0
    assert [sal.target.itemText(i) for i in range(sal.target.count())] == ["top prediction", "selected unit", "class"]


def test_latent_tab_lists_the_vae_and_interpolates_two_pictures(qtbot, open_window, tmp_path):
    _, X_test, _, y_test = load_split()
    files = []
    for digit in (0, 6):
        i = int(np.flatnonzero(y_test == digit)[0])
        path = tmp_path / f"d{digit}.png"
        write_image(path, np.repeat((X_test[i, 0] * 255).round().astype(np.uint8)[:, :, None], 3, axis=2))
        files.append(str(path))
    w = open_window(model="digits_cnn", input_spec="pattern")
    view = next(v for v in w.views if v.title == "Latent")
    w.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: view.generator is not None and view.grid_z is not None, timeout=WAIT_MS)
    index = view.source.findText("digits_vae")
    assert index >= 0
    view.source.setCurrentIndex(index)
    view._source_picked(index)
    qtbot.waitUntil(lambda: view.generator.name == "digits_vae" and view.grid_z is not None, timeout=WAIT_MS)
    assert not view.feature_loss.isVisibleTo(view)
    view.interpolate_files(*files)
    expected = view.generator.encode([read_image(f) for f in files])
    qtbot.waitUntil(lambda: view.a is not None and torch.allclose(view.a, expected[0:1], atol=1e-5), timeout=WAIT_MS)
    torch.testing.assert_close(view.b, expected[1:2], atol=1e-5, rtol=1e-4)
    qtbot.waitUntil(lambda: getattr(view, "strip_images", None) is not None and
                    np.array_equal(view.strip_images[0], view.generator.images(expected[0:1])[0]), timeout=WAIT_MS)

    # "Input as B": a frame (here given directly, as a live input would) becomes B, the path's end.
    third = np.repeat((X_test[int(np.flatnonzero(y_test == 2)[0]), 0] * 255).round().astype(np.uint8)[:, :, None],
                      3, axis=2)
    view.projection_errors = None
    view.project_input(third, which="b")
    qtbot.waitUntil(lambda: view.projection_errors is not None, timeout=WAIT_MS)
    torch.testing.assert_close(view.b, view.generator.encode([third]), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(view.a, expected[0:1], atol=1e-5, rtol=1e-4)
    assert view.scrub.value() == view.scrub.maximum()
