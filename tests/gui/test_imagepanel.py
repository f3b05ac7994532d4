"""The image panes' fast paths paint what the core's colour mapping gives: maps coloured as
32-bit pixels in one table lookup, grey where the grid pads tiles, and RGB pictures handed
to Qt as 32-bit pixels."""

import numpy as np
import pytest

pytest.importorskip("PySide6")
from deepvis.widgets.window import qtenv  # noqa: E402,F401

from deepvis.render.colormaps import NAN_COLOR, apply_colormap  # noqa: E402
from deepvis.widgets.panes.imagepanel import BACKGROUND, ImageCanvas, colorize  # noqa: E402


@pytest.mark.parametrize("shape", [(640, 640), (7, 9), (1, 1), (3, 1)])
def test_colorize_equals_the_core_colormap_with_grey_padding(shape):
    rng = np.random.default_rng(sum(shape))
    values = rng.normal(0.5, 2.0, shape).astype(np.float32)
    values[::2, ::3] = np.nan
    lo, hi = -1.0, 3.0
    pixels = colorize(values, (lo, hi), "viridis")
    assert pixels.shape == shape and pixels.dtype == np.uint32 and (pixels >> 24 == 255).all()
    fast = np.stack([(pixels >> 16) & 255, (pixels >> 8) & 255, pixels & 255], -1)
    core = apply_colormap((values - lo) / (hi - lo), "viridis")
    assert (fast[np.isnan(values)] == NAN_COLOR).all()
    # Rounding differs by at most one step of the colour table.
    assert np.abs(fast.astype(int) - core.astype(int)).max() <= 3
    assert np.array_equal(pixels, colorize(values, (lo, hi), "viridis"))  # the kept table is not written to
    out = np.zeros(shape, np.uint32)
    assert colorize(values, (lo, hi), "viridis", out=out) is out and np.array_equal(out, pixels)


def test_canvas_pixels_are_the_rgb_given(qtbot):
    """Frame after frame, in the memory kept between them, and at a new size."""
    canvas = ImageCanvas("")
    qtbot.addWidget(canvas)
    rng = np.random.default_rng(1)
    for shape in [(5, 7, 3), (5, 7, 3), (4, 9, 3)]:
        rgb = rng.integers(0, 256, shape, dtype=np.uint8)
        canvas.show_rgb(rgb[:, ::-1])  # a view with negative strides, as flipped frames are
        image = canvas.qimage
        assert (image.width(), image.height()) == shape[1::-1]
        for y, x in [(0, 0), (shape[0] - 1, shape[1] - 1), (2, 3)]:
            colour = image.pixelColor(x, y)
            assert (colour.red(), colour.green(), colour.blue()) == tuple(int(c) for c in rgb[y, shape[1] - 1 - x])


def test_canvas_fills_only_beside_the_picture_and_leaves_nothing_of_the_last_frame(qtbot):
    """The pane paints the bars beside the picture, not the whole pane (a tenth of the GUI
    thread live); a narrower frame after a wide one must still leave no old pixels."""
    canvas = ImageCanvas("")
    qtbot.addWidget(canvas)
    canvas.resize(301, 100)
    canvas.show()
    qtbot.waitExposed(canvas)
    red = np.zeros((10, 10, 3), np.uint8)
    red[..., 0] = 255
    green = np.zeros((10, 30, 3), np.uint8)
    green[..., 1] = 255
    background = (BACKGROUND.red(), BACKGROUND.green(), BACKGROUND.blue())
    for frame in (red, green, red):
        canvas.show_rgb(frame)
        image = canvas.grab().toImage()
        rgb = np.array([[image.pixelColor(x, y).getRgb()[:3] for x in range(0, 301)] for y in (0, 50, 99)])
        if frame is green:
            assert (rgb[:, 1:300] == (0, 255, 0)).all()  # 300 px wide at x = 0.5
            continue
        # A 100x100 picture centred in 301 px: columns 100.5-200.5, the edge columns shared.
        # (Within 8: pytest-xvfb's screen has 16-bit colour.)
        assert np.abs(rgb[:, :100] - background).max() <= 8 and np.abs(rgb[:, 202:] - background).max() <= 8
        assert (rgb[:, 101:200] == (255, 0, 0)).all()
