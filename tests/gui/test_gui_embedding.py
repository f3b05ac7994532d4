"""The Embedding tab driven like a user would: compute a digits map, hover, click, select,
search, watch the live marker follow the input, and cancel a job without losing the map."""

import numpy as np
import pytest

pytest.importorskip("PySide6")
from deepvis.widgets.window import qtenv  # noqa: E402,F401
from PySide6.QtCore import QPointF, QRectF, Qt  # noqa: E402

from deepvis.io.datasets import digits_dataset  # noqa: E402
from deepvis.io.images import write_image  # noqa: E402
from test_gui import WAIT_MS, open_window, private_settings  # noqa: E402,F401


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPVIS_CACHE", str(tmp_path / "cache"))


def embedding_view(window):
    return next(v for v in window.views if v.title == "Embedding")


def computed(qtbot, view):
    view.start()
    qtbot.waitUntil(lambda: view.map is not None and view.compute.isEnabled(), timeout=WAIT_MS)
    return view.map


@pytest.mark.slow
def test_digits_map_hover_click_select_search(qtbot, open_window, tmp_path):
    w = open_window(model="digits_cnn", input_spec="pattern")
    view = embedding_view(w)
    w.tabs.setCurrentWidget(view)
    assert view.layer.currentText() == "relu4"  # the layer before the classifier head
    m = computed(qtbot, view)
    labels = np.array(m.features.labels)
    assert len(labels) == 1797 and m.knn[0] >= 0.95 and m.knn[1] == 10 and m.trust >= 0.95
    np.testing.assert_allclose(np.c_[view.scatter.data["x"], view.scatter.data["y"]], m.result.coords)
    view.color_by.setCurrentIndex(1)  # colour by the model's predicted class
    assert view.color_labels() == m.features.predictions
    view.color_by.setCurrentIndex(0)

    # Hover: the preview shows the point under the mouse.
    i = 5
    scene = view.box.mapViewToScene(QPointF(*m.result.coords[i]))
    view._hovered((scene,))
    assert view.hovered_point == view.nearest_on_screen(*m.result.coords[i])
    assert f"label: {labels[view.hovered_point]}" in view.info.text()

    # Search by label marks exactly that class.
    assert view.find("3") == int((labels == "3").sum())
    assert view.highlighted.sum() == (labels == "3").sum()

    # Box selection around the 3s' centre counts mostly 3s.
    c = m.result.coords[labels == "3"]
    lo, hi = np.percentile(c, 25, axis=0), np.percentile(c, 75, axis=0)
    chosen = view.select_box(QRectF(QPointF(*lo), QPointF(*hi)))
    assert len(chosen) > 20 and view.selection_counts.most_common(1)[0][0] == "3"
    assert view.selection_counts["3"] / len(chosen) > 0.9

    # Nearest neighbours in feature space share the class.
    found = view.neighbours(i)
    assert len(found) == 10 and i not in found
    agreement = np.mean([np.mean(labels[view.neighbours(j)] == labels[j]) for j in range(0, 1797, 40)])
    assert agreement >= 0.9, agreement

    # Click opens that digit as the input; the model then sees exactly that image.
    points = view.scatter.pointsAt(QPointF(*m.result.coords[i]))
    j = int(points[0].data())  # the topmost point there, which a click picks
    at = view.plot.mapFromScene(view.box.mapViewToScene(QPointF(*m.result.coords[i])))
    qtbot.mouseClick(view.plot.viewport(), Qt.MouseButton.LeftButton, pos=at)
    qtbot.waitUntil(lambda: w.session.result is not None
                    and w.session.result.frame.name.startswith("deepvis-embedding"), timeout=WAIT_MS)
    np.testing.assert_array_equal(w.session.result.frame.image[:, :, 0], digits_dataset().image(j))

    # Exports.
    view.export(str(tmp_path / "map.csv"))
    view.export(str(tmp_path / "map.png"))
    assert (tmp_path / "map.csv").read_text().startswith("x,y,label,path")
    assert (tmp_path / "map.png").stat().st_size > 10_000


@pytest.mark.slow
def test_live_marker_follows_the_input_and_cancel_keeps_the_map(qtbot, open_window, tmp_path):
    w = open_window(model="digits_cnn", input_spec="pattern")
    view = embedding_view(w)
    m = computed(qtbot, view)
    labels = np.array(m.features.labels)
    data = digits_dataset()
    positions = {}
    for digit in ("0", "6"):
        index = int(np.flatnonzero(labels == digit)[0])
        path = tmp_path / f"digit{digit}.png"
        write_image(path, data.image(index))
        w.open_input(str(path))
        qtbot.waitUntil(lambda p=path.name: w.session.result is not None and w.session.result.frame.name == p,
                        timeout=WAIT_MS)
        serial = w.session.result.frame.serial
        qtbot.waitUntil(lambda: getattr(view, "live_serial", None) == serial, timeout=WAIT_MS)
        positions[digit] = view.live_position
        # The star lands among its own class on the map.
        near = np.argsort(np.linalg.norm(m.result.coords - np.array(view.live_position), axis=1))[:10]
        assert np.mean(labels[near] == digit) >= 0.8, (digit, view.live_position)
    assert positions["0"] != positions["6"]

    # A cancelled job leaves the previous map as it was.
    view.method.setCurrentText("tsne")
    view.start()
    assert not view.compute.isEnabled() and view.cancel.isEnabled()
    view.stop()
    qtbot.waitUntil(lambda: view.compute.isEnabled(), timeout=WAIT_MS)
    assert view.map is m
    np.testing.assert_allclose(np.c_[view.scatter.data["x"], view.scatter.data["y"]], m.result.coords)


def test_recorded_frames_and_a_folder(qtbot, open_window, tmp_path):
    w = open_window(model="digits_cnn", input_spec="pattern")
    view = embedding_view(w)
    view.record.setChecked(True)
    qtbot.waitUntil(lambda: len(view.recorded) >= 12, timeout=WAIT_MS)
    view.record.setChecked(False)
    view.dataset.setCurrentText("recorded frames")
    view.method.setCurrentText("pca")
    m = computed(qtbot, view)
    assert len(m.features) == len(view.recorded) >= 12 and m.knn == (None, None)

    root = tmp_path / "imgs"
    for label in ("a", "b"):
        for i in range(5):
            write_image(root / label / f"{i}.png", np.full((8, 8, 3), 40 if label == "a" else 200, np.uint8))
    view.set_folder(str(root))
    messages = []
    w.session.message.connect(messages.append)
    m2 = computed(qtbot, view)
    assert m2 is not m and sorted(set(m2.features.labels)) == ["a", "b"]
    assert all(p.endswith(".png") for p in m2.features.paths)
