"""The large map at a million points: the whole view is one density picture holding every
point, a view of a few hundred points shows exactly their thumbnails (upright, where the points
are), a few thousand are dots, and the mouse finds the point under it through the index."""

import numpy as np
import pytest

pytest.importorskip("PySide6")
from deepvis.widgets.window import qtenv  # noqa: E402,F401
from PySide6.QtCore import QPointF, Qt  # noqa: E402

from deepvis.widgets.bench.largemap import synthetic_atlas, synthetic_thumbnail  # noqa: E402
from deepvis.widgets.panes.largemap import DENSITY_ABOVE, THUMBNAILS_BELOW, LargeMapPlot  # noqa: E402

N = 1_000_000


@pytest.fixture(scope="module")
def atlas():
    return synthetic_atlas(N, seed=5)


@pytest.fixture
def shown(qtbot, atlas):
    coords, codes, names = atlas
    calls = []
    thumbnail = synthetic_thumbnail(codes)

    def counted(i):
        calls.append(i)
        return thumbnail(i)

    widget = LargeMapPlot()
    qtbot.addWidget(widget)
    widget.resize(1200, 800)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_points(coords, codes, names, thumbnail=counted)
    widget.thumbnail_calls = calls
    return widget


def in_view(coords, rect):
    x0, x1, y0, y1 = rect
    x, y = coords[:, 0].astype(np.float64), coords[:, 1].astype(np.float64)
    return np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))


def zoom_to(qtbot, widget, coords, center, count):
    """Set the view around ``center`` so that about ``count`` points are in it; returns the view
    rectangle (as the view box has it after locking the aspect ratio)."""
    cx, cy = center
    lo, hi = 1e-5, 100.0
    for _ in range(50):
        mid = (lo * hi) ** 0.5
        if widget.index.count_inside(cx - 1.5 * mid, cx + 1.5 * mid, cy - mid, cy + mid) > count:
            hi = mid
        else:
            lo = mid
    widget.box.setRange(xRange=(cx - 1.5 * hi, cx + 1.5 * hi), yRange=(cy - hi, cy + hi), padding=0)
    widget.update_view()
    # Thumbnails load within a time budget per update; the rest follow in later updates.
    qtbot.waitUntil(lambda: not widget._more_thumbs.isActive(), timeout=10_000)
    return widget.view_rect()


def test_full_view_is_one_density_picture_of_every_point(shown, atlas):
    coords, codes, _ = atlas
    w = shown
    assert w.level == "density" and w.in_view == N
    counts = w.density_counts
    assert counts.sum() == N
    # The picture has the view's pixel size, and its label colours are the atlas's labels.
    assert counts.shape == (round(w.box.height()), round(w.box.width()))
    labels = w.density_map.labels
    assert labels.min() >= 0 and labels.max() < 50
    assert w.density.isVisible() and not w.dots.isVisible() and len(w.thumbnail_indices) == 0
    # Upright: the topmost point of the map lands in the picture's first non-empty row.
    top = coords[np.argmax(coords[:, 1])]
    rows = np.flatnonzero(counts.sum(1))
    x0, x1, y0, y1 = w.view_rect()
    h = counts.shape[0]
    assert rows[0] == h - 1 - min(int(np.floor((float(top[1]) - y0) * (h / (y1 - y0)))), h - 1)
    assert rows[0] < h / 4 and counts[rows[0]].sum() <= 3
    assert not w.thumbnail_calls  # nothing loaded for a view of a million points


def test_zoomed_in_shows_thumbnails_for_exactly_the_points_in_view(qtbot, shown, atlas):
    coords, codes, _ = atlas
    w = shown
    center = coords[12345].astype(float)
    rect = zoom_to(qtbot, w, coords, center, 200)
    expected = in_view(coords, rect)
    assert 100 < len(expected) <= THUMBNAILS_BELOW
    assert w.level == "thumbnails" and w.in_view == len(expected)
    np.testing.assert_array_equal(w.thumbnail_indices, expected)
    np.testing.assert_array_equal(np.sort(w.dot_indices), expected)
    visible = [item for item in w._thumb_items if item.isVisible()]
    assert len(visible) == len(expected)
    # Each thumbnail is centred on its point, upside up (negative height: row 0 at the top).
    side = 40 * w.box.viewPixelSize()[0]
    for i, item in w._thumb_of_item.items():
        r = item.mapRectToParent(item.boundingRect())
        assert abs(r.center().x() - coords[i, 0]) < 1e-3 * side and abs(r.center().y() - coords[i, 1]) < 1e-3 * side
        assert abs(r.width() - side) < 1e-6 * side
        top_left = item.mapToParent(QPointF(0, 0))  # the image's first row is the top edge
        assert top_left.y() > coords[i, 1]
    assert sorted(set(w.thumbnail_calls)) == expected.tolist()

    # A small pan: points that stay keep their items (no new thumbnail calls for them), the
    # new ones come in, and the shown set still equals the view.
    before = len(w.thumbnail_calls)
    x0, x1, y0, y1 = rect
    step = (x1 - x0) * 0.1
    w.box.setRange(xRange=(x0 + step, x1 + step), yRange=(y0, y1), padding=0)
    w.update_view()
    qtbot.waitUntil(lambda: not w._more_thumbs.isActive(), timeout=10_000)
    moved = in_view(coords, w.view_rect())
    came_in = np.setdiff1d(moved, expected)
    assert w.level == "thumbnails" and len(came_in) > 0 and len(np.intersect1d(moved, expected)) > 0
    np.testing.assert_array_equal(w.thumbnail_indices, moved)
    assert len(w.thumbnail_calls) - before == len(came_in)

    # Further out: dots only, exactly the points in view; further still: the density picture.
    zoom_to(qtbot, w, coords, center, 5000)
    assert w.level == "points" and len(w.thumbnail_indices) == 0
    np.testing.assert_array_equal(np.sort(w.dot_indices), in_view(coords, w.view_rect()))
    assert THUMBNAILS_BELOW < w.in_view <= DENSITY_ABOVE
    w.show_all()
    assert w.level == "density" and w.density_counts.sum() == N


def test_hover_and_click_name_the_point_under_the_mouse(qtbot, shown, atlas):
    coords, _, _ = atlas
    w = shown
    rect = zoom_to(qtbot, w, coords, coords[777].astype(float), 300)
    inside = in_view(coords, rect)
    # A point at least 4 px from any other and well inside the view, so the mouse's whole
    # pixel is nearer to it than to anything else.
    px = w.box.viewPixelSize()[0]
    x0, x1, y0, y1 = rect
    p = coords[inside].astype(np.float64)
    d = np.hypot(p[:, None, 0] - p[None, :, 0], p[:, None, 1] - p[None, :, 1]) / px
    np.fill_diagonal(d, np.inf)
    ok = (d.min(1) > 4) & (p[:, 0] > x0 + 20 * px) & (p[:, 0] < x1 - 20 * px) & (p[:, 1] > y0 + 20 * px) & \
         (p[:, 1] < y1 - 20 * px)
    i = int(inside[np.flatnonzero(ok)[0]])
    at = w.plot.mapFromScene(w.box.mapViewToScene(QPointF(*coords[i].astype(float))))
    with qtbot.waitSignal(w.hovered, timeout=5000) as hovered:
        qtbot.mouseMove(w.plot.viewport(), pos=at)
    assert hovered.args == [i] and w.hovered_index == i
    with qtbot.waitSignal(w.clicked, timeout=5000) as clicked:
        qtbot.mouseClick(w.plot.viewport(), Qt.MouseButton.LeftButton, pos=at)
    assert clicked.args == [i]
    # Nothing within 8 px: -1 (this corner of the view is empty for 10 px around).
    ex, ey = x0 + 2 * px, y0 + 2 * px
    assert w.index.count_inside(ex - 10 * px, ex + 10 * px, ey - 10 * px, ey + 10 * px) == 0
    assert w.point_at(ex, ey) == -1
    # The same lookup at the density level, where a million points are in view.
    w.show_all()
    x, y = coords[i].astype(float)
    j = w.point_at(x, y)
    assert j >= 0 and np.hypot(*(coords[j] - coords[i])) <= 8 * w.box.viewPixelSize()[0] * 1.0001


def test_highlight_rings_the_points_in_view(qtbot, shown, atlas):
    coords, codes, _ = atlas
    w = shown
    hits = np.flatnonzero(codes == 3)
    w.highlight(hits)
    assert len(w.rings.data) == min(len(hits), 20_000)
    rect = zoom_to(qtbot, w, coords, coords[hits[0]].astype(float), 2000)
    expected = np.intersect1d(hits, in_view(coords, rect))
    assert len(w.rings.data) == len(expected) > 0
    np.testing.assert_allclose(np.sort(w.rings.data["x"]), np.sort(coords[expected, 0]), rtol=1e-6)
    w.highlight([])
    assert len(w.rings.data) == 0
    w.highlight(expected)
    w.clear()
    assert w.level == "empty" and w.in_view == 0 and len(w.rings.data) == 0 and len(w.dots.data) == 0
    assert not any(item.isVisible() for item in w._thumb_items)
