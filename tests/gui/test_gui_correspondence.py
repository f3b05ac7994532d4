"""The Correspondence tab driven like a user would: it opens on the bundled photo and a random
view of it, scored; a click on a distinctive point of either picture puts the best match within
4 px of where the homography says it is; a drag is followed to its last point; another layer,
the mutual neighbours and the live frame are one control away."""

import numpy as np
import pytest

pytest.importorskip("PySide6")
from deepvis.widgets.window import qtenv  # noqa: E402,F401
from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from deepvis.matching.hpatches import BORDER, warp  # noqa: E402
from test_gui import WAIT_MS, open_window, private_settings  # noqa: E402,F401


def _view(window):
    view = next(v for v in window.views if v.title == "Correspondence")
    window.tabs.setCurrentWidget(view)
    return view


def _distinctive_point(picture: np.ndarray, homography: np.ndarray) -> tuple[int, int]:
    """The pixel of A with the most grey-level structure around it (the sum of squared
    gradients over 9x9) among those whose true position lies inside B by the protocol's border."""
    import cv2

    grey = cv2.cvtColor(picture, cv2.COLOR_RGB2GRAY).astype(np.float32)
    energy = cv2.boxFilter(cv2.Sobel(grey, cv2.CV_32F, 1, 0) ** 2 + cv2.Sobel(grey, cv2.CV_32F, 0, 1) ** 2, -1, (9, 9))
    h, w = grey.shape
    ys, xs = np.mgrid[:h, :w]
    truth = warp(homography, np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64))
    inside = ((truth[:, 0] >= BORDER) & (truth[:, 0] < w - BORDER) & (truth[:, 1] >= BORDER) &
              (truth[:, 1] < h - BORDER) & (xs.ravel() >= BORDER) & (xs.ravel() < w - BORDER) &
              (ys.ravel() >= BORDER) & (ys.ravel() < h - BORDER))
    best = int(np.argmax(np.where(inside, energy.ravel(), -1)))
    return best % w, best // w


def _click(view, side, x, y):
    at = view.canvas.to_widget(side, x, y)
    QTest.mouseClick(view.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(round(at.x()), round(at.y())))


def _answered_at(view, side, x, y):
    a = view.answer
    return a is not None and a.side == side and abs(a.found.query[0] - x) <= 1 and abs(a.found.query[1] - y) <= 1


def test_a_click_on_the_photo_or_its_view_is_matched_within_4_px(qtbot, open_window):
    w = open_window(model="digits_cnn", autostart=True)
    view = _view(w)
    qtbot.waitUntil(lambda: view.answer is not None, timeout=WAIT_MS)  # the first look: a query answered
    described = view.described
    assert described.layer == "output" and described.homography is not None
    assert described.score.mma["3"] >= 0.7  # the bundled photo against its view (0.91 measured)
    a, b = described.pictures
    assert max(a.shape[:2]) == 320 and a.shape == b.shape

    x, y = _distinctive_point(a, described.homography)
    _click(view, 0, x, y)
    qtbot.waitUntil(lambda: _answered_at(view, 0, x, y), timeout=WAIT_MS)
    query = view.answer
    tx, ty = warp(described.homography, np.array([[query.found.query[0], query.found.query[1]]]))[0]
    assert np.hypot(query.found.best[0] - tx, query.found.best[1] - ty) <= 4, (query.found, (tx, ty))
    assert query.error == pytest.approx(np.hypot(query.found.best[0] - tx, query.found.best[1] - ty))
    # What is drawn: the heat map over B, the best match and the truth in B.
    assert view.canvas.best == query.found.best and view.canvas.truth == pytest.approx((tx, ty))
    assert query.overlay.shape == b.shape

    # The other way: a distinctive point of B comes back to its true position in A.
    bx, by = _distinctive_point(b, np.linalg.inv(described.homography))
    _click(view, 1, bx, by)
    qtbot.waitUntil(lambda: _answered_at(view, 1, bx, by), timeout=WAIT_MS)
    back = view.answer
    ax, ay = warp(np.linalg.inv(described.homography), np.array([back.found.query], np.float64))[0]
    assert np.hypot(back.found.best[0] - ax, back.found.best[1] - ay) <= 4

    # A drag: the answer shown at the end is the last point's, whatever was in flight.
    path = [(x - 20 + 4 * k, y) for k in range(8)]
    start = view.canvas.to_widget(0, *path[0])
    QTest.mousePress(view.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(round(start.x()), round(start.y())))
    for px, py in path[1:]:
        at = view.canvas.to_widget(0, px, py)
        QTest.mouseMove(view.canvas, QPoint(round(at.x()), round(at.y())))
    QTest.mouseRelease(view.canvas, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _answered_at(view, 0, *path[-1]) and not view.queries.busy, timeout=WAIT_MS)


def test_layers_lines_a_new_view_the_live_frame_and_a_broken_file(qtbot, open_window, tmp_path):
    w = open_window(model="digits_cnn", autostart=False)
    view = _view(w)
    assert view.described is None  # no first-look run when the window is opened without them
    view.random_view()
    qtbot.waitUntil(lambda: view.answer is not None, timeout=WAIT_MS)
    first = view.described
    assert "stem" in first.layers and first.layers[-1] == "output"

    view.layer_box.setCurrentText("stem")
    view.layer_box.activated.emit(view.layer_box.currentIndex())
    qtbot.waitUntil(lambda: view.described.layer == "stem" and view.answer.found.heatmap is not None and
                    not view.queries.busy, timeout=WAIT_MS)
    assert view.described.maps[0].grid.shape[0] == 24  # the stem's 24 channels
    assert view.described.score.mma["3"] < first.score.mma["3"]  # the first layer alone matches worse

    view.lines_box.setChecked(True)
    qtbot.waitUntil(lambda: bool(view.described.lines), timeout=WAIT_MS)
    assert len(view.canvas.lines) == len(view.described.lines) > 0

    seed = view.view_seed
    view.new_view.click()
    qtbot.waitUntil(lambda: view.described.request > first.request and view.view_seed == seed + 1 and
                    not np.array_equal(view.described.homography, first.homography), timeout=WAIT_MS)

    # B the live frame (here the window's still digit): described as it is, no homography.
    qtbot.waitUntil(lambda: w.session.result is not None, timeout=WAIT_MS)
    view.source_b.setCurrentText("live frame")
    view.source_b.activated.emit(view.source_b.currentIndex())
    qtbot.waitUntil(lambda: view.described.homography is None, timeout=WAIT_MS)
    from deepvis.matching.pair import working_picture

    assert np.array_equal(view.described.pictures[1], working_picture(w.session.result.frame.image))

    # A picture that cannot be read is one message; the window goes on, and a view comes back.
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    with qtbot.waitSignal(w.session.message, timeout=WAIT_MS) as said:
        view.set_file(1, str(broken))
    assert "broken.png" in said.args[0] and view.canvas.placeholder.startswith("Could not match")
    view.random_view()
    qtbot.waitUntil(lambda: view.described.homography is not None and view.canvas.shapes[1] is not None,
                    timeout=WAIT_MS)
