"""Atlases in the window: opened from the session, the File menu, a dropped folder or
``--atlas``; the Embedding tab shows the atlas's map in the large map (hover, click, search,
colours), the unit pane shows its top-k patches for the same weights, and a million-row atlas
opens without stalling the GUI thread."""

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyarrow")
from deepvis.widgets.window import qtenv  # noqa: E402,F401
from PySide6.QtCore import QElapsedTimer, QEvent, QMimeData, QPointF, Qt, QTimer, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent, QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from deepvis.widgets.panes.largemap import DEBOUNCE_MS  # noqa: E402

from deepvis.atlas.store import Atlas, create_atlas  # noqa: E402
from deepvis.atlas.units import load_patches, load_visualizations  # noqa: E402
from deepvis.errors import DeepvisError  # noqa: E402
from deepvis.live.computethread import compute_thread  # noqa: E402
from deepvis.render.tiling import picture_grid  # noqa: E402
from test_gui import WAIT_MS, open_window, private_settings  # noqa: E402,F401

ROWS = 600
BIG = 1_000_000
VIS_UNITS = [0, 1, 2, 3]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPVIS_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def small_atlas(tmp_path_factory) -> Path:
    """A real atlas of 600 digit PNGs (and the demo's corrupt files): PCA maps of conv2 and
    relu4, patches of conv2 and the optimized images of a few of its units."""
    from deepvis.atlas.build import build_atlas
    from deepvis.atlas.demo import write_digit_folder
    from deepvis.atlas.layout import atlas_map
    from deepvis.atlas.units import unit_patches, visualize_units

    base = tmp_path_factory.mktemp("atlas")
    root, out = base / "digits", base / "digits-atlas"

    def make():
        write_digit_folder(root, ROWS)
        build_atlas({"source": "digits_cnn", "device": "cpu"}, root, out, layers=["conv2", "relu4"], engine="local")
        atlas = Atlas(out)
        atlas_map(atlas, "conv2", "pca")
        atlas_map(atlas, "relu4", "pca")
        unit_patches(atlas, "conv2")
        visualize_units(atlas, "conv2", engine="local", size=16, steps=8, units=VIS_UNITS)

    compute_thread().call(make)  # torch stays on the one thread the app runs it on
    return out


def write_synthetic_atlas(path: Path, rows: int, layer: str = "relu4") -> Path:
    """An atlas of ``rows`` rows written directly, as ``_PartWriter.commit`` lays one out (one
    Parquet part, listed in units.npz) with a PCA map; its images do not exist."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, rows)
    atlas = create_atlas(path, {
        "model": {"name": "digits_cnn", "fingerprint": "synthetic", "labels": [str(i) for i in range(10)]},
        "layers": [layer], "channels": {layer: 1}, "dataset": {"root": str(path / "images-elsewhere")},
        "counts": {"images": rows, "skipped": 0, "parts": 1}})

    def fixed(values, width):
        return pa.FixedSizeListArray.from_arrays(pa.array(values), width)

    top = np.repeat(labels[:, None], 5, 1).astype(np.int32)
    pq.write_table(pa.table({
        "path": pa.array([f"{label}/img-{i:07d}.png" for i, label in enumerate(labels)], pa.string()),
        "label": pa.array([str(label) for label in labels], pa.string()),
        "top_index": fixed(top.reshape(-1), 5),
        "top_prob": fixed(np.full(rows * 5, 0.2, np.float32), 5),
        f"feat:{layer}": fixed(rng.random(rows).astype(np.float32), 1),
    }), path / "images" / "part-00000.parquet")
    np.savez(path / "units.npz", parts=np.array(["part-00000.parquet"]))
    coords = rng.normal(0, 1, (rows, 2)).astype(np.float32) + labels[:, None].astype(np.float32) * 4
    atlas.save_map(layer, "pca", coords, {"knn": 0.9, "trust": 0.95})
    return path


@pytest.fixture(scope="module")
def big_atlas(tmp_path_factory) -> Path:
    return write_synthetic_atlas(tmp_path_factory.mktemp("big") / "million", BIG)


def embedding_view(window):
    return next(v for v in window.views if v.title == "Embedding")


def opened(qtbot, window, path):
    """Open the atlas at ``path`` through the session; returns the tab's atlas mode once its map shows."""
    mode = embedding_view(window).atlas_mode
    window.session.open_atlas(path)
    qtbot.waitUntil(lambda: mode.prepared is not None and mode.prepared.atlas.path == Path(path), timeout=WAIT_MS)
    return mode


def map_coords(plot) -> np.ndarray:
    """The points the large map holds, back in row order."""
    index = plot.index
    coords = np.full((index.n, 2), np.nan, np.float32)
    coords[index.order] = np.c_[index.xs, index.ys]
    return coords


def viewport_pos(plot, xy):
    return plot.plot.mapFromScene(plot.box.mapViewToScene(QPointF(float(xy[0]), float(xy[1]))))


def mouse_move(widget, pos) -> None:
    """A mouse move event at ``pos``: QTest moves the real cursor, which stops at the edge of
    the virtual screen (800x600 under pytest-xvfb), left of where this window's map is."""
    event = QMouseEvent(QEvent.Type.MouseMove, QPointF(pos), QPointF(widget.mapToGlobal(pos)),
                        Qt.MouseButton.NoButton, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def hover(qtbot, plot, xy) -> None:
    """Move the mouse onto ``xy`` once the map has stopped moving, as a user's hand would: the
    view's range is settled by a debounced update (and a relayout after the colour legend
    changed), and a move sent before that lands where the point no longer is."""
    def settled():
        pos = viewport_pos(plot, xy)
        qtbot.wait(2 * DEBOUNCE_MS)
        return not plot._timer.isActive() and viewport_pos(plot, xy) == pos
    qtbot.waitUntil(settled, timeout=WAIT_MS)
    mouse_move(plot.plot.viewport(), viewport_pos(plot, xy))


def test_the_map_of_an_atlas_hover_click_search_and_colours(qtbot, open_window, small_atlas):
    w = open_window(model="digits_cnn")
    view = embedding_view(w)
    mode = opened(qtbot, w, small_atlas)
    assert w.tabs.currentWidget() is view and view.atlas_shown
    assert not view.dataset_row.isVisible() and not view.export_png.isVisible()
    atlas = Atlas(small_atlas)
    rows = atlas.rows()
    plot = mode.plot
    # The first map shows; the combo lists them all, and picking one shows it.
    assert [mode.maps.itemText(i) for i in range(mode.maps.count())] == ["conv2 · pca", "relu4 · pca"]
    assert mode.maps.currentIndex() == 0 and mode.prepared.key == ("conv2", "pca")
    np.testing.assert_array_equal(map_coords(plot), atlas.load_map("conv2", "pca")[0])
    mode.maps.setCurrentIndex(1)
    mode.maps.activated.emit(1)
    qtbot.waitUntil(lambda: mode.prepared.key == ("relu4", "pca"), timeout=WAIT_MS)
    coords, info = atlas.load_map("relu4", "pca")
    assert plot.index.n == len(atlas) == ROWS
    np.testing.assert_array_equal(map_coords(plot), coords)
    assert plot.level == "points" and plot.in_view == ROWS
    assert f"{ROWS:,} images" in mode.line.text() and f"10-NN accuracy {info['knn']:.3f}" in mode.line.text()
    assert f"trustworthiness {info['trust']:.3f}" in mode.line.text()
    qtbot.waitUntil(lambda: mode.same_model is not None, timeout=WAIT_MS)
    assert mode.same_model and "other weights" not in mode.line.text()

    # Colours: each row's label, in the order the legend lists them; then the predicted class.
    codes = np.empty(ROWS, np.int64)
    codes[plot.index.order] = plot.index.codes
    assert plot.label_names == [str(d) for d in range(10)]
    np.testing.assert_array_equal(np.array(plot.label_names)[codes], rows["label"].astype(str))
    view.color_by.setCurrentIndex(1)
    codes[plot.index.order] = plot.index.codes
    np.testing.assert_array_equal(np.array(plot.label_names)[codes].astype(int), rows["top_index"][:, 0])
    view.color_by.setCurrentIndex(0)

    # Hover with the mouse: the preview shows the row under it, with its path.
    i = 17
    j = plot.point_at(*coords[i])  # the point found there (another may lie on top of row i)
    assert j >= 0 and np.allclose(coords[j], coords[i], atol=np.abs(coords).max() / 50)
    hover(qtbot, plot, coords[i])
    qtbot.waitUntil(lambda: mode.hovered_row == j, timeout=WAIT_MS)
    assert rows["path"][j] in view.info.text() and f"label: {rows['label'][j]}" in view.info.text()
    assert view.preview.pixmap() is not None and not view.preview.pixmap().isNull()

    # A click opens that image as the live input.
    qtbot.mouseClick(plot.plot.viewport(), Qt.MouseButton.LeftButton, pos=viewport_pos(plot, coords[i]))
    path = atlas.image_path(j)
    assert w.session.source_spec == str(path)
    qtbot.waitUntil(lambda: w.session.result is not None and w.session.result.frame.name == path.name,
                    timeout=WAIT_MS)

    # Search: "3/" rings exactly the rows of folder 3; a label search its class.
    hits = []
    mode.searched.connect(hits.append)
    view.search.setText("3/")
    qtbot.waitUntil(lambda: len(hits) == 1, timeout=WAIT_MS)
    expected = np.flatnonzero([p.startswith("3/") for p in rows["path"]])
    assert len(expected) > 30
    np.testing.assert_array_equal(mode.highlighted, expected)
    np.testing.assert_array_equal(plot._highlight, expected)
    assert f"{len(expected)} of {ROWS} images match" in view.info.text()
    view.search.setText("")
    qtbot.waitUntil(lambda: len(hits) == 2, timeout=WAIT_MS)
    assert len(mode.highlighted) == 0

    # Close atlas: back to the tab's own maps and controls.
    mode.close_button.click()
    assert w.session.atlas is None and not view.atlas_shown and view.dataset_row.isVisible()
    assert plot.index is None


def test_unit_pane_shows_the_atlas_top_patches_for_the_same_weights(qtbot, open_window, small_atlas, tmp_path):
    w = open_window(model="digits_cnn")
    pictures = w.unit_pane.pictures
    w.session.set_layer("conv2")
    w.session.set_unit(5)
    opened(qtbot, w, small_atlas)
    qtbot.waitUntil(lambda: pictures.atlas_pictures is not None, timeout=WAIT_MS)
    atlas = Atlas(small_atlas)
    patches = load_patches(atlas, "conv2")
    images, done = load_visualizations(atlas, "conv2")
    assert patches.shape[:2] == (64, 9) and done.tolist() == [u in VIS_UNITS for u in range(64)]
    # Unit 5 never fires on the atlas's digits: no "top" images, which would be arbitrary.
    dead = np.flatnonzero(atlas.units("conv2").stats["max"] <= 0)
    assert 5 in dead and 2 not in dead and not patches[dead].any()
    assert pictures.top.data is None and pictures.top.title.text() == "Top 9: none (dead unit)"
    assert pictures.info.text().startswith(f"dead over {ROWS} images of atlas {small_atlas.name}: max")
    assert pictures.optimized.data is None  # unit 5 was not visualized in the atlas, nor computed here
    w.session.set_unit(2)
    np.testing.assert_array_equal(pictures.top.data, picture_grid(patches[2], 3, border=1, fill=30))
    assert pictures.info.text().startswith(f"atlas {small_atlas.name}: top 9 of {ROWS} images")
    np.testing.assert_array_equal(pictures.optimized.data, images[2])

    # A layer without patches in the atlas: the pane as without an atlas.
    w.session.set_layer("relu4")
    qtbot.wait(300)
    assert pictures.atlas_pictures is None and pictures.top.data is None
    assert pictures.info.text() == ""

    # The same atlas built with other weights: the map shows, says so, and clicks still open
    # images; the unit pane leaves it alone.
    other = tmp_path / "other-weights"
    shutil.copytree(small_atlas, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["model"]["fingerprint"] = "0" * 32
    (other / "manifest.json").write_text(json.dumps(manifest))
    w.session.set_layer("conv2")
    mode = opened(qtbot, w, other)
    qtbot.waitUntil(lambda: mode.same_model is False, timeout=WAIT_MS)
    assert "built with other weights than the window's digits_cnn" in mode.line.text()
    qtbot.wait(300)
    assert pictures.atlas_pictures is None and pictures.top.data is None
    mode.plot.clicked.emit(3)
    assert w.session.source_spec == str(Atlas(other).image_path(3))

    # Closing the atlas: the pane's own pictures again.
    opened(qtbot, w, small_atlas)
    qtbot.waitUntil(lambda: pictures.atlas_pictures is not None, timeout=WAIT_MS)
    w.session.close_atlas()
    qtbot.waitUntil(lambda: pictures.top.data is None, timeout=WAIT_MS)


def test_ways_in_and_folders_that_are_not_atlases(qtbot, open_window, small_atlas, tmp_path, monkeypatch):
    w = open_window(model="digits_cnn", atlas=str(small_atlas))  # as `deepvis gui --atlas` passes it
    view = embedding_view(w)
    qtbot.waitUntil(lambda: view.atlas_mode.prepared is not None, timeout=WAIT_MS)
    assert w.tabs.currentWidget() is view
    first = w.session.atlas
    assert first.path == small_atlas
    assert "Open atlas..." in [a.text() for a in w.menuBar().actions()[0].menu().actions()]

    # A folder of images (one of the atlas's own) opens as a folder of images, as before.
    images = small_atlas.parent / "digits" / "3"
    w.tabs.setCurrentIndex(0)
    w.open_path(str(images))
    qtbot.waitUntil(lambda: w.session.source_spec == str(images), timeout=WAIT_MS)
    assert w.session.atlas is first and w.tabs.currentIndex() == 0

    # A broken manifest: one message line; the window keeps the atlas it had.
    broken = tmp_path / "broken"
    (broken / "images").mkdir(parents=True)
    (broken / "manifest.json").write_text("{not json")
    messages = []
    w.session.message.connect(messages.append)
    w.open_path(str(broken))
    qtbot.waitUntil(lambda: any("broken" in m for m in messages), timeout=WAIT_MS)
    said = next(m for m in messages if "broken" in m)
    assert said.startswith(f"cannot read {broken / 'manifest.json'}") and "\n" not in said, messages
    assert w.session.atlas is first and view.atlas_mode.atlas is first and view.atlas_shown
    assert w.session.source_spec == str(images)  # nor opened as an image folder
    # Another format: said so.
    future = tmp_path / "future"
    future.mkdir()
    (future / "manifest.json").write_text(json.dumps({"format": 99, "layers": []}))
    w.open_path(str(future))
    qtbot.waitUntil(lambda: any("format 99" in m for m in messages), timeout=WAIT_MS)
    assert w.session.atlas is first

    # Dropping an atlas folder opens it (and brings the Embedding tab to the front).
    w.session.close_atlas()
    w.tabs.setCurrentIndex(0)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(small_atlas))])
    w.dropEvent(QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                           Qt.KeyboardModifier.NoModifier))
    qtbot.waitUntil(lambda: w.session.atlas is not None, timeout=WAIT_MS)
    assert w.tabs.currentWidget() is view and w.session.source_spec == str(images)

    # An atlas with no map yet: the tab says how to make one.
    bare = tmp_path / "bare"
    shutil.copytree(small_atlas, bare, ignore=shutil.ignore_patterns("maps"))
    w.session.open_atlas(bare)
    qtbot.waitUntil(lambda: w.session.atlas is not None and w.session.atlas.path == bare, timeout=WAIT_MS)
    assert f"deepvis atlas map {bare}" in view.info.text() and view.atlas_mode.plot.index is None
    assert "no map yet" in view.atlas_mode.line.text()

    # The command line: --atlas reaches the window; a folder that is not an atlas stops before it opens.
    from deepvis.cli import build_parser
    from deepvis.widgets.window import app

    seen = {}
    monkeypatch.setattr(app, "run_gui", lambda **kwargs: seen.update(kwargs) or 0)
    args = build_parser().parse_args(["gui", "--atlas", str(small_atlas)])
    args.func(args)
    assert seen["atlas"] == str(small_atlas)
    monkeypatch.undo()
    with pytest.raises(DeepvisError, match="not an atlas"):
        app.run_gui(atlas=str(tmp_path))


def test_a_million_rows_open_without_stalling_the_window(qtbot, open_window, big_atlas):
    w = open_window(model="digits_cnn")
    view = embedding_view(w)
    mode = view.atlas_mode
    # The GUI thread's pulse while the atlas opens: a 10 ms timer, and the longest wait between ticks.
    ticks = []
    clock = QElapsedTimer()
    clock.start()
    pulse = QTimer(interval=10)
    pulse.timeout.connect(lambda: ticks.append(clock.elapsed()))
    pulse.start()
    started = time.perf_counter()
    w.session.open_atlas(big_atlas)
    assert time.perf_counter() - started < 0.1  # the call itself returns at once
    qtbot.waitUntil(lambda: mode.prepared is not None, timeout=WAIT_MS)
    qtbot.wait(200)
    pulse.stop()
    gaps = np.diff([0, *ticks])
    assert len(ticks) > 20 and gaps.max() < 1000, (gaps.max(), len(ticks))

    plot = mode.plot
    assert plot.level == "density" and plot.in_view == BIG and plot.density_counts.sum() == BIG
    assert f"{BIG:,} images" in mode.line.text()
    qtbot.waitUntil(lambda: mode.same_model is False, timeout=WAIT_MS)
    assert "other weights" in mode.line.text()

    # Search over a million paths, off the GUI thread.
    rows = mode.atlas.rows()
    hits = []
    mode.searched.connect(hits.append)
    view.search.setText("7/")
    qtbot.waitUntil(lambda: bool(hits), timeout=WAIT_MS)
    np.testing.assert_array_equal(mode.highlighted, np.flatnonzero(rows["label"] == "7"))

    # Its images are not there: hovering says so instead of failing.
    mode.show_row(12)
    assert "moved or deleted" in view.info.text() and rows["path"][12] in view.info.text()


def test_an_atlas_named_alone_brings_its_model(qtbot, open_window, small_atlas):
    from deepvis.atlas.store import Atlas

    # `deepvis gui --atlas A` with no --model: A's model live, not the default EfficientNet.
    w = open_window(atlas=str(small_atlas))
    qtbot.waitUntil(lambda: w.session.state is not None and w.session.atlas is not None, timeout=WAIT_MS)
    assert w.session.state.model.name == Atlas(small_atlas).model_name == "digits_cnn"
