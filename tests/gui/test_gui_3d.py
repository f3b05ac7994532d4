"""The 3-D tab renders under Xvfb with vispy: open a bundled labelled cloud, the picture is not
blank and the colours drawn at points are their predicted parts' colours; a click picks the
point under it; errors mode counts the wrong points; voxel grids show as cubes with a slice
plane; a broken file leaves the shape shown; export writes the canvas."""

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("vispy")
from deepvis.widgets.window import qtenv  # noqa: E402,F401

from deepvis.io.images import read_image  # noqa: E402
from deepvis.shapes3d.render import part_colors  # noqa: E402
from deepvis.widgets.tabs.cloudview import SHAPES_DIR, CloudView  # noqa: E402
from test_gui import WAIT_MS, open_window, private_settings  # noqa: E402,F401


def _view(w) -> CloudView:
    """The 3-D tab, shown, once the bundled chair it opens on first sight is segmented (so a
    test's own file does not race it), with ``seg`` cleared for the test's own."""
    import time

    from PySide6.QtWidgets import QApplication

    view = next(v for v in w.views if isinstance(v, CloudView))
    w.tabs.setCurrentWidget(view)
    deadline = time.monotonic() + WAIT_MS / 1000
    while (view.seg is None or view._cancel is not None and not view._cancel.is_set() and view.stop.isVisible()) \
            and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.01)
    assert view.seg is not None and view.seg.category == "chair"
    view.seg = None  # the tests wait for their own file's segmentation
    return view


def _unoccluded(view, rendered, labels):
    """For each part, its point nearest the camera with no other point drawn near it on screen
    and nearer: its centre pixel must show that part's colour."""
    seg = view.seg
    screen = view.canvas.screen_positions(seg.points)
    eye = view.canvas.view.camera.transform.map([0, 0, 0, 1])[:3]
    depth = np.linalg.norm(seg.points - eye, axis=1)
    checked = 0
    for part in np.unique(labels):
        for i in np.flatnonzero(labels == part)[np.argsort(depth[labels == part])][:20]:
            near = np.hypot(*(screen - screen[i]).T) < view.canvas.point_size + 2
            if (depth[near] < depth[i] - 1e-6).any():
                continue
            x, y = np.round(screen[i]).astype(int)
            drawn = rendered[y, x].astype(int)
            assert np.abs(drawn - part_colors(np.array([part]))[0]).max() <= 12, (part, drawn)
            checked += 1
            break
    return checked


def test_open_a_labelled_cloud_colours_pick_errors_export(qtbot, open_window, tmp_path):
    w = open_window(model="digits_cnn", input_spec="pattern")
    view = _view(w)
    w.open_path(str(SHAPES_DIR / "chair_parts.pts"))
    qtbot.waitUntil(lambda: view.seg is not None, timeout=WAIT_MS)
    seg = view.seg
    assert seg.category == "chair" and seg.accuracy > 0.85 and len(seg.points) == 2048
    view.size_slider.setValue(8)
    qtbot.wait(100)
    rendered = view.canvas.render()
    assert rendered.std() > 10  # not blank
    assert _unoccluded(view, rendered, seg.labels) >= 2

    # A click on a point's pixel picks it (or a point drawn at the same place) and names its part.
    screen = view.canvas.screen_positions(seg.points)
    eye = view.canvas.view.camera.transform.map([0, 0, 0, 1])[:3]
    target = int(np.argmin(np.linalg.norm(seg.points - eye, axis=1)))
    picked = view.pick_at(*screen[target])
    assert np.linalg.norm(seg.points[picked] - seg.points[target]) < 0.05
    assert seg.part_names[seg.labels[picked]] in view.pick_label.text()

    view.color_mode.setCurrentText("errors")
    wrong = int((seg.labels != seg.truth).sum())
    assert f"wrong {wrong:,}" in view.legend.text()
    errors = view.colors()
    assert (errors == (255, 40, 40)).all(1).sum() == wrong

    view.color_mode.setCurrentText("feature")
    view.layer_box.setCurrentText("relu4")
    view.run()
    qtbot.waitUntil(lambda: "features" in view.seg.extras, timeout=WAIT_MS)
    view.channel.setValue(7)
    f = view.seg.extras["features"][:, 7]
    colours = view.colors()
    assert not np.array_equal(colours[np.argmax(f)], colours[np.argmin(f)])
    view.channel.setValue(-1)  # the norm over the channels
    np.testing.assert_allclose(view.feature_values(), np.linalg.norm(view.seg.extras["features"], axis=1))

    view.critical.setCurrentIndex(1)
    assert view.canvas.rings.visible and len(view.canvas.rings._data) == len(np.unique(view.seg.critical))
    view.critical.setCurrentIndex(2)
    view.global_channel.setValue(42)
    assert list(view.ringed()) == [view.seg.critical[42]] and len(view.canvas.rings._data) == 1
    view.background.setCurrentText("white")
    corner = view.canvas.render()[2, 2]
    assert (corner > 240).all()

    shown = view.seg
    bad = tmp_path / "bad.xyz"
    bad.write_text("1 2\n3 4\n")
    view.open_file(str(bad))
    qtbot.waitUntil(lambda: "columns" in view.info.text() or "column" in view.info.text(), timeout=WAIT_MS)
    assert view.seg is shown  # the shape shown stays

    out = tmp_path / "3d.png"
    assert view.save_png(str(out))
    assert read_image(out).std() > 10


def test_voxel_grid_with_slice_plane(qtbot, open_window):
    w = open_window(model="digits_cnn", input_spec="pattern")
    view = _view(w)
    view.open_file(str(SHAPES_DIR / "table.binvox"))
    qtbot.waitUntil(lambda: view.seg is not None, timeout=WAIT_MS)
    assert view.model.kind == "voxels" and view.model_box.currentText() == "voxnet_parts"
    assert view.canvas.voxels.visible and not view.canvas.points.visible
    full = len(view.canvas.voxels._data)
    view.slice_slider.setValue(view.slice_slider.maximum() // 2)
    assert 0 < len(view.canvas.voxels._data) < full
    sliced = view.canvas.render()
    assert sliced.std() > 5

    # A channel of a layer as a volume (maximum intensity projection) over the grid.
    view.layer_box.setCurrentText("dec1.2")
    view.run()
    qtbot.waitUntil(lambda: "feature_volume" in view.seg.extras, timeout=WAIT_MS)
    view.channel.setValue(3)
    view.volume_box.setChecked(True)
    assert view.canvas.volume is not None and view.canvas.volume.visible
    with_volume = view.canvas.render()
    assert np.abs(with_volume.astype(int) - sliced.astype(int)).mean() > 1


def test_a_big_cloud_shows_progress_and_stops(qtbot, open_window, tmp_path):
    from deepvis.shapes3d import parts as parts3d

    w = open_window(model="digits_cnn", input_spec="pattern")
    view = _view(w)
    pts, _ = parts3d.make_shape("lamp", np.random.default_rng(3), 50_000)
    np.save(tmp_path / "lamp.npy", pts)
    progress = []
    view._posted_progress.connect(progress.append)
    view.open_file(str(tmp_path / "lamp.npy"))
    qtbot.waitUntil(lambda: view.seg is not None, timeout=4 * WAIT_MS)
    assert len(view.seg.points) == 50_000 and view.seg.category == "lamp"
    assert len(progress) >= 10 and progress == sorted(progress) and progress[-1] == 1.0
    assert not view.progress.isVisible()

    # Stop between chunks: the shape shown stays the last one segmented.
    shown = view.seg
    progress.clear()
    np.save(tmp_path / "bigger.npy", np.concatenate([pts] * 8))
    view.open_file(str(tmp_path / "bigger.npy"))
    qtbot.waitUntil(lambda: len(progress) >= 1, timeout=4 * WAIT_MS)
    view.stop.click()
    qtbot.waitUntil(lambda: "stopped" in view.info.text(), timeout=WAIT_MS)
    assert view.seg is shown and progress[-1] < 1.0
