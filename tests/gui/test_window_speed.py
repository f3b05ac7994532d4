"""The window keeps up with the engine: no OpenGL in its composition, no work for hidden views.

A QOpenGLWidget anywhere in a top-level window makes Qt compose the whole window through
OpenGL on every repaint; on software GL that halved the live frame rate once the 3-D tab
existed. These tests pin down the cure: the GL view is made when its tab is first shown and
lives in a window of its own, embedded in the tab.
"""

import re
import sys

import pytest

pytest.importorskip("PySide6")
from deepvis.widgets.window import qtenv  # noqa: E402,F401
from PySide6.QtGui import QSurface  # noqa: E402
from PySide6.QtOpenGLWidgets import QOpenGLWidget  # noqa: E402

from test_gui import WAIT_MS, open_window, private_settings  # noqa: E402,F401


def _gl_widgets_in(window) -> list:
    return window.findChildren(QOpenGLWidget)


def test_no_gl_widget_is_in_the_main_window_before_or_after_the_3d_tab(open_window, qtbot):
    window = open_window(model="digits_cnn")
    cloud = next(v for v in window.views if v.title == "3-D")
    assert not cloud.has_canvas and _gl_widgets_in(window) == []
    window.tabs.setCurrentWidget(cloud)
    qtbot.waitUntil(lambda: cloud.has_canvas, timeout=WAIT_MS)
    # The 3-D view is made on first sight, in a window of its own: the main window still has
    # no GL widget in its tree, so it keeps raster composition.
    assert _gl_widgets_in(window) == []
    assert isinstance(cloud.canvas.native, QOpenGLWidget)
    assert cloud.canvas.native.window() is not window
    # What the slowdown came from, read off Qt itself: a GL widget in its tree switches the
    # top-level's surface to OpenGL, and every repaint of the window is then composed with GL.
    # (`deepvis bench gui-live --without-tab 3-D` measures the frame rate either way.)
    assert window.windowHandle().surfaceType() == QSurface.SurfaceType.RasterSurface
    # And the first look shows something: the bundled chair, segmented.
    qtbot.waitUntil(lambda: cloud.seg is not None, timeout=WAIT_MS)
    assert cloud.seg.category == "chair"
    window.tabs.setCurrentIndex(0)


def test_hidden_views_do_no_per_frame_work(open_window, qtbot, monkeypatch):
    window = open_window(model="digits_cnn", input_spec="pattern")
    grid = window.grid
    drawn = []
    original = grid.panel.set_map
    monkeypatch.setattr(grid.panel, "set_map", lambda *a, **k: (drawn.append(1), original(*a, **k)))
    qtbot.waitUntil(lambda: len(drawn) > 2, timeout=WAIT_MS)
    filters = next(v for v in window.views if v.title == "Filters")
    window.tabs.setCurrentWidget(filters)
    qtbot.wait(100)
    seen, count = window.session.results_seen, len(drawn)
    qtbot.waitUntil(lambda: window.session.results_seen > seen + 5, timeout=WAIT_MS)
    assert len(drawn) == count, "the hidden activation grid was redrawn"
    window.tabs.setCurrentWidget(grid)
    qtbot.waitUntil(lambda: len(drawn) > count, timeout=WAIT_MS)  # shown again: the newest result


# Ops that start an OpenMP parallel region on inputs of any size. One of them on the GUI thread
# starts a second libgomp team; from then on libgomp puts idle workers to sleep after every
# region and each live frame on the compute thread ran 2.5x slower (the 3-D tab's layer list
# did a dry run of PointNet on the GUI thread: EfficientNet-Lite0's bare forward fell from 45
# to 17 fps for the rest of the session). Benchmarks normalised by a bare loop in the same
# process did not see it: the bare loop slowed alike.
_MODEL_OPS = re.compile(r"conv|linear|[bm]m$|matmul|addmm|batch_norm|layer_norm|softmax|einsum|pool|interpolate")


@pytest.mark.slow
def test_no_tab_runs_the_model_on_the_gui_thread(open_window, qtbot):
    window = open_window(model="digits_cnn", input_spec="pattern")
    qtbot.waitUntil(lambda: window.session.results_seen > 2, timeout=WAIT_MS)
    calls = []

    def profile(_frame, event, func):
        if event == "c_call" and _MODEL_OPS.search(getattr(func, "__name__", "")):
            owner = getattr(func, "__self__", None)
            if "torch" in (getattr(func, "__module__", None) or type(owner).__module__ or ""):
                calls.append(func.__name__)

    sys.setprofile(profile)  # this thread only: the GUI thread
    try:
        for index in range(window.tabs.count()):
            window.tabs.setCurrentIndex(index)
            seen = window.session.results_seen
            qtbot.waitUntil(lambda: window.session.results_seen > seen + 2, timeout=WAIT_MS)
            qtbot.wait(300)
        cloud = next(v for v in window.views if v.title == "3-D")
        window.tabs.setCurrentWidget(cloud)
        qtbot.waitUntil(lambda: cloud.seg is not None and cloud.layer_box.count() > 1, timeout=WAIT_MS)
    finally:
        sys.setprofile(None)
    assert calls == [], sorted(set(calls))
    window.tabs.setCurrentIndex(0)


def test_latent_tab_samples_nothing_until_shown(open_window, qtbot):
    window = open_window(model="digits_cnn")
    latent = next(v for v in window.views if v.title == "Latent")
    qtbot.wait(500)
    assert latent.generator is None
    window.tabs.setCurrentWidget(latent)
    qtbot.waitUntil(lambda: latent.generator is not None, timeout=WAIT_MS)
