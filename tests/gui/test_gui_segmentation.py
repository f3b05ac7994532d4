"""The Segmentation tab driven like a user would, on the bundled FCN and a held-out scene:
overlay colours against the legend, hiding a class, the hover readout, ground truth with
per-class IoU, a confusion cell's pixels, a clicked blob explained in the saliency pane, and
a changed colour remembered."""

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("PySide6")
from deepvis.widgets.window import qtenv  # noqa: E402,F401
from PySide6.QtCore import QEvent, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402

from deepvis.attribution.saliency import RegionMask  # noqa: E402
from deepvis.models import digits_fcn  # noqa: E402
from deepvis.segmentation.metrics import confusion, scores  # noqa: E402
from deepvis.segmentation.regions import blob_region  # noqa: E402
from test_gui import WAIT_MS, open_window, private_settings  # noqa: E402,F401


@pytest.fixture
def scene(tmp_path):
    images, masks = digits_fcn.make_scenes(1, seed=3, split="test")
    Image.fromarray((images[0, 0] * 255).round().astype(np.uint8)).convert("RGB").save(tmp_path / "scene.png")
    truth = masks[0].copy()
    truth[:2] = 255  # an unlabelled strip: ignored, hatched
    np.save(tmp_path / "scene_gt.npy", truth)
    return tmp_path / "scene.png", tmp_path / "scene_gt.npy", truth


def _inner_pixel(labels, k):
    """A pixel of class k whose 3x3 neighbourhood is all k (no edge drawn there)."""
    ys, xs = np.nonzero(labels == k)
    for y, x in zip(ys, xs):
        if 0 < y < labels.shape[0] - 1 and 0 < x < labels.shape[1] - 1 and (labels[y - 1:y + 2, x - 1:x + 2] == k).all():
            return int(y), int(x)
    raise AssertionError(f"no inner pixel of class {k}")


def test_segmentation_tab(qtbot, open_window, scene):
    image_path, truth_path, truth = scene
    w = open_window(model="digits_fcn", input_spec=str(image_path))
    view = next(v for v in w.views if v.title == "Segmentation")
    w.tabs.setCurrentWidget(view)
    s = w.session
    qtbot.waitUntil(lambda: s.result is not None and s.result.dense is not None and
                    s.result.dense.runner_up is not None and view.picture is not None, timeout=WAIT_MS)
    result = s.result
    labels, image = result.dense.labels, result.model_input.astype(np.float64)
    digits = [k for k in np.unique(labels) if k > 0]
    assert len(digits) >= 2

    # A digit's inside has its legend colour, blended at the set opacity.
    k = digits[0]
    row = view.classes_shown.index(k)
    swatch = view.legend.item(row, 0).background().color()
    colour = np.array([swatch.red(), swatch.green(), swatch.blue()])
    y, x = _inner_pixel(labels, k)
    alpha = view.opacity.value() / 100
    np.testing.assert_allclose(view.picture[y, x], (1 - alpha) * image[y, x] + alpha * colour, atol=1.01)
    assert view.legend.item(row, 1).text() == str(k - 1)

    # Unticking the class in the legend hides it: the picture shows what the model sees there.
    view.legend.item(row, 0).setCheckState(Qt.CheckState.Unchecked)
    assert k in view.hidden
    np.testing.assert_array_equal(view.picture[y, x], result.model_input[y, x])
    view.legend.item(view.classes_shown.index(k), 0).setCheckState(Qt.CheckState.Checked)
    assert k not in view.hidden

    # The hover reads out the class, its probability and the runner-up.
    text = view.readout_at(x + 0.5, y + 0.5)
    conf = result.dense.confidence[y, x]
    second = conf - result.dense.margin[y, x]
    assert text.startswith(f"({x}, {y}) {k - 1} {conf:.2f}") and "2nd" in text and f"{second:.2f}" in text

    # Ground truth: IoU per class in the legend and mIoU equal an independent count.
    view.set_truth(truth_path)
    qtbot.waitUntil(lambda: view.matrix is not None, timeout=WAIT_MS)
    independent = scores(confusion(truth, labels, 11))
    for r, cls in enumerate(view.classes_shown):
        expected = independent.iou[cls]
        shown = view.legend.item(r, 3).text()
        assert shown == ("" if np.isnan(expected) else f"{expected:.3f}")
    assert view.metrics.text().startswith(f"mIoU {independent.miou:.3f}")
    assert "truth" in view.readout_at(x + 0.5, y + 0.5)
    # Ignored pixels are hatched (white stripes), never drawn as a class.
    assert (view.picture[:2] == 255).all(axis=2).any()

    # A confusion cell: its pixels are highlighted.
    t, p = 0, k
    view._matrix_clicked(p + 0.5, t + 0.5)
    cell = (truth == t) & (labels == p)
    if cell.any():
        assert (view.picture[cell] == (255, 230, 0)).all()
    view._matrix_clicked(p + 0.5, t + 0.5)
    assert view.highlight is None

    # A click on a blob explains its class inside it, in the saliency pane.
    k2 = digits[-1]
    y2, x2 = _inner_pixel(labels, k2)
    view._clicked(x2 + 0.5, y2 + 0.5)
    _, region = blob_region(labels, x2 + 0.5, y2 + 0.5)
    qtbot.waitUntil(lambda: s.result.saliency is not None and s.result.saliency.target.region is not None,
                    timeout=WAIT_MS)
    target = s.result.saliency.target
    assert target.kind == "class" and target.index == k2
    np.testing.assert_allclose(target.region, region)
    assert w.saliency.method.currentText() == "gradcam"

    # Shift+drag a box: the class filling most of it, explained inside exactly that box.
    canvas = view.panel.canvas
    ys, xs = np.nonzero(labels == k2)
    a = canvas.image_to_widget(float(xs.min()), float(ys.min())).toPoint()
    b = canvas.image_to_widget(float(xs.max() + 1), float(ys.max() + 1)).toPoint()
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, a)
    for t in np.linspace(0, 1, 5)[1:]:
        at = QPointF(a.x() + t * (b.x() - a.x()), a.y() + t * (b.y() - a.y()))
        canvas.mouseMoveEvent(QMouseEvent(QEvent.Type.MouseMove, at, at, Qt.MouseButton.NoButton,
                                          Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier, b)
    qtbot.waitUntil(lambda: s.result.saliency is not None and s.result.saliency.target.region is not None and
                    s.result.saliency.target.region != target.region, timeout=WAIT_MS)
    box = s.result.saliency.target.region
    assert s.result.saliency.target.index == k2
    np.testing.assert_allclose(box, (xs.min() / 64, ys.min() / 64, (xs.max() + 1) / 64, (ys.max() + 1) / 64),
                               atol=1.5 / 64)

    # A brush stroke (Ctrl+drag) across the first digit: a drawn region of that class.
    y1, x1 = _inner_pixel(labels, k)
    view.explain_drawn("brush", [(x1 - 2.0, y1 + 0.0), (x1 + 2.0, y1 + 0.0)])
    qtbot.waitUntil(lambda: isinstance(s.result.saliency.target.region, RegionMask), timeout=WAIT_MS)
    drawn = s.result.saliency.target.region.array()
    assert s.result.saliency.target.index == k and drawn[y1, x1] and drawn.sum() < 100

    # A colour changed for a class is remembered for the model.
    view.set_colour(k, (10, 20, 30))
    view.palette[:] = 0
    view._model_changed(s.state)
    assert tuple(view.palette[k]) == (10, 20, 30)
