"""A titled image pane with a 'stale' badge: the building block of every image view.

Frames are painted straight from numpy memory with QPainter (a zero-copy QImage), and float
maps go through a 256-entry colormap after being thinned to about the pixels on screen.
pyqtgraph's ImageItem did the same with several milliseconds of Python per paint; at video
rate on a small machine that time is taken from the forward pass (measured: the window's
frame rate rose from 23 to 32 fps when the input panes moved to this path).
"""

import functools
import math
import time

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from deepvis.render.colormaps import NAN_COLOR, lut
from deepvis.widgets.panes.elidedlabel import ElidedLabel
from deepvis.io.images import quiet_cv2

cv2 = quiet_cv2()

BACKGROUND = QColor("#1e1f22")
NAN_PIXEL = np.uint32(0xFF000000 | int(NAN_COLOR[0]) << 16 | int(NAN_COLOR[1]) << 8 | int(NAN_COLOR[2]))


class ImageCanvas(QWidget):
    hovered = Signal(float, float)  # image (x, y) under the mouse; (-1, -1) when outside
    clicked = Signal(float, float)
    # Shift+drag draws a box, Ctrl+drag a brush stroke, where ``drawable``: ("box" | "brush",
    # [(x, y), ...] image points), emitted on release.
    drawn = Signal(str, object)

    def __init__(self, placeholder: str, on_paint=None):
        super().__init__()
        self.placeholder = placeholder
        self.on_paint = on_paint  # called with each paint's milliseconds
        self.shape: tuple[int, int] | None = None  # (H, W) of the image in image coordinates
        self.qimage: QImage | None = None
        self._buffer: np.ndarray | None = None  # the memory the QImage borrows
        self._reused: np.ndarray | None = None  # 32-bit pixels written in place frame after frame
        self._scale = 1  # image pixels per displayed pixel (maps are thinned before colouring)
        self.source: QRectF | None = None  # zoomed region in image coordinates; None = all
        self.cursor: QRectF | None = None
        self.drawable = False
        self._stroke: tuple[str, list] | None = None  # a box or brush being drawn
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(80, 60)
        self.setMouseTracking(True)
        # We paint every pixel: without this Qt repaints the docks and splitters beneath on
        # every frame.
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def show_rgb(self, image: np.ndarray, scale: int = 1, shape=None) -> None:
        # 32-bit pixels, the raster engine's own format: it draws them scaled 3-4x faster than
        # 24-bit RGB (0.13 against 0.51 ms for a 224 px input shown at 400 px), and the
        # conversion costs a tenth of that saving. (Little-endian memory order: B, G, R, 255.)
        h, w = image.shape[:2]
        pixels = self.reused_pixels(h, w)
        cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGRA, dst=pixels.view(np.uint8).reshape(h, w, 4))
        self.show_pixels(pixels, scale, shape)

    def reused_pixels(self, h: int, w: int) -> np.ndarray:
        """An (h, w) uint32 array that this canvas hands out again on the next frame of that
        size: a new 1-2 MB array a frame for each pane is allocator churn the live soak sees."""
        if self._reused is None or self._reused.shape != (h, w):
            self._reused = np.empty((h, w), np.uint32)
        return self._reused

    def show_pixels(self, pixels: np.ndarray, scale: int = 1, shape=None) -> None:
        """(H, W) uint32 pixels 0xffRRGGBB (Qt's RGB32)."""
        pixels = np.ascontiguousarray(pixels)
        h, w = pixels.shape
        self._buffer, self._scale = pixels, scale
        self.shape = shape or (h, w)
        self.qimage = QImage(pixels.data, w, h, pixels.strides[0], QImage.Format.Format_RGB32)
        self.update()

    def clear(self, text: str) -> None:
        self.placeholder, self.qimage, self._buffer, self.shape = text, None, None, None
        self.update()

    def visible_region(self) -> QRectF:
        h, w = self.shape
        return self.source if self.source is not None else QRectF(0, 0, w, h)

    def target_rect(self) -> QRectF:
        region = self.visible_region()
        scale = min(self.width() / region.width(), self.height() / region.height())
        return QRectF((self.width() - region.width() * scale) / 2, (self.height() - region.height() * scale) / 2,
                      region.width() * scale, region.height() * scale)

    def image_to_widget(self, x: float, y: float) -> QPointF:
        region, target = self.visible_region(), self.target_rect()
        s = target.width() / region.width()
        return QPointF(target.x() + (x - region.x()) * s, target.y() + (y - region.y()) * s)

    def widget_to_image(self, pos) -> tuple[float, float] | None:
        if self.shape is None:
            return None
        region, target = self.visible_region(), self.target_rect()
        if not target.contains(pos):
            return None
        s = region.width() / target.width()
        return region.x() + (pos.x() - target.x()) * s, region.y() + (pos.y() - target.y()) * s

    def paintEvent(self, event) -> None:
        start = time.perf_counter()
        self._paint(event)
        if self.on_paint is not None:
            self.on_paint((time.perf_counter() - start) * 1000)

    def _paint(self, _event) -> None:
        p = QPainter(self)
        if self.qimage is None:
            p.fillRect(self.rect(), BACKGROUND)
            p.setPen(QColor("#8a8a8a"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            return
        target = self.target_rect()
        # Only the bars beside the picture: filling the whole pane first was a tenth of the GUI
        # thread's time live (perf). The bars reach into the picture's edge pixels, which a
        # fractional target may only partly cover.
        for bar in _bars(self.rect(), target):
            p.fillRect(bar, BACKGROUND)
        # Big photos scale smoothly; small maps and model inputs stay crisp pixels.
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform,
                        self._scale == 1 and target.width() < self.qimage.width())
        region = self.visible_region()
        src = QRectF(region.x() / self._scale, region.y() / self._scale, region.width() / self._scale,
                     region.height() / self._scale)
        p.drawImage(target, self.qimage, src)
        if self.cursor is not None:
            p.setPen(QPen(QColor(255, 80, 80), 2))
            a = self.image_to_widget(self.cursor.x(), self.cursor.y())
            b = self.image_to_widget(self.cursor.right(), self.cursor.bottom())
            p.drawRect(QRectF(a, b))
        if self._stroke is not None and len(self._stroke[1]) > 1:
            kind, points = self._stroke
            p.setPen(QPen(QColor(255, 220, 0), 2))
            if kind == "box":
                p.drawRect(QRectF(self.image_to_widget(*points[0]), self.image_to_widget(*points[-1])))
            else:
                for a, b in zip(points, points[1:]):
                    p.drawLine(self.image_to_widget(*a), self.image_to_widget(*b))

    def mouseMoveEvent(self, event) -> None:
        at = self.widget_to_image(event.position())
        self.hovered.emit(*(at if at is not None else (-1.0, -1.0)))
        if self._stroke is not None and at is not None:
            self._stroke[1].append(at)
            self.update()

    def mouseReleaseEvent(self, event) -> None:
        stroke, self._stroke = self._stroke, None
        if stroke is not None and len(stroke[1]) > 1:
            self.update()
            self.drawn.emit(*stroke)
        elif stroke is not None and stroke[1]:
            self.clicked.emit(*stroke[1][0])  # a modified click that never moved is a click

    def leaveEvent(self, _event) -> None:
        self.hovered.emit(-1.0, -1.0)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            at = self.widget_to_image(event.position())
            if at is None:
                return
            modifiers = event.modifiers()
            if self.drawable and modifiers & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier):
                kind = "box" if modifiers & Qt.KeyboardModifier.ShiftModifier else "brush"
                self._stroke = (kind, [at])
                return
            self.clicked.emit(*at)


def _bars(whole: QRect, inner: QRectF) -> list[QRect]:
    """``whole`` less the pixels entirely inside ``inner``: up to four rectangles."""
    left, top = math.ceil(inner.left()), math.ceil(inner.top())
    right, bottom = math.floor(inner.right()), math.floor(inner.bottom())  # exclusive
    if right <= left or bottom <= top:
        return [whole]
    w, h = whole.width(), whole.height()
    bars = [QRect(0, 0, w, top), QRect(0, bottom, w, h - bottom),
            QRect(0, top, left, bottom - top), QRect(right, top, w - right, bottom - top)]
    return [bar for bar in bars if bar.width() > 0 and bar.height() > 0]


class ImagePanel(QWidget):
    """Shows uint8 RGB images, or float maps through explicit levels and a colormap."""

    def __init__(self, title: str, parent=None, placeholder: str = "waiting for input...", session=None):
        super().__init__(parent)
        self.setObjectName(title)
        # Elided, whole in its tooltip: a long title (a sampling run's settings and what a click
        # does) was cut mid-word at the pane's edge, or widened the pane's dock past the window.
        self.title = ElidedLabel(title)
        self.title.setStyleSheet("font-weight: 600; padding: 2px 4px;")
        self.canvas = ImageCanvas(placeholder, on_paint=session.add_paint_time if session is not None else None)
        self.hovered, self.clicked, self.drawn = self.canvas.hovered, self.canvas.clicked, self.canvas.drawn
        self.data: np.ndarray | None = None  # what was last given to show (before colouring)
        self.badge = QLabel("stale", self.canvas)
        self.badge.setStyleSheet("background: rgba(200, 120, 0, 200); color: white; padding: 1px 6px;"
                                 "border-radius: 3px; font-size: 10px;")
        self.badge.move(6, 6)
        self.badge.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(0)
        layout.addWidget(self.title)
        layout.addWidget(self.canvas, 1)

    def set_title(self, text: str) -> None:
        if self.title.text() != text:  # a changed label relayouts its parent
            self.title.setText(text)

    def set_rgb(self, image: np.ndarray) -> None:
        self.data = image
        self.canvas.show_rgb(image)

    def set_map(self, values: np.ndarray, levels: tuple[float, float], colormap: str = "viridis") -> None:
        """A float map; NaN (tile padding) shows as the background grey."""
        self.data = values
        h, w = values.shape[:2]
        # Colour only about as many pixels as the screen shows: a 1130x1130 grid in a 600 px pane
        # is thinned by 2 first. Zoomed views keep every pixel.
        step = 1
        if self.canvas.source is None:
            step = max(1, int(min(h / max(1, self.canvas.height()), w / max(1, self.canvas.width()))))
        thin = values[::step, ::step] if step > 1 else values
        pixels = colorize(thin, levels, colormap, out=self.canvas.reused_pixels(*thin.shape[:2]))
        self.canvas.show_pixels(pixels, scale=step, shape=(h, w))

    def clear(self, text: str = "") -> None:
        self.data = None
        self.canvas.clear(text)

    def set_stale(self, stale: bool) -> None:
        if stale != self.badge.isVisible():
            self.badge.setVisible(stale)

    def zoom_to(self, rect) -> None:
        """Show the (x, y, w, h) region of the image, or everything with None."""
        self.canvas.source = None if rect is None else QRectF(*rect)
        self.canvas.update()

    def set_cursor(self, rect) -> None:
        """Outline (x, y, w, h) in image coordinates, or nothing with None."""
        self.canvas.cursor = None if rect is None else QRectF(*rect)
        self.canvas.update()


def colorize(values: np.ndarray, levels: tuple[float, float], colormap: str, out: np.ndarray | None = None) -> np.ndarray:
    """Float map -> (H, W) uint32 pixels 0xffRRGGBB through ``levels`` and a colormap; NaN
    (tile padding) in grey. ``out``: an (H, W) uint32 array to write them into."""
    values = np.asarray(values, np.float32)
    lo, hi = levels
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    # OpenCV's saturating scale-and-cast is several times faster than numpy's here; values
    # below ``lo`` are clipped first because convertScaleAbs takes |x|.
    index = cv2.convertScaleAbs(np.maximum(values, lo), alpha=scale, beta=-lo * scale)
    # One lookup of whole 32-bit pixels (OpenCV's table takes 32-bit entries): 0.25 ms for a
    # 640x640 grid, against 3 ms for a per-channel table and the conversion to Qt's format,
    # 3.4 ms more for the padding as a boolean-mask assignment into RGB, and 0.6 ms for numpy's
    # take, which widens the indices first.
    if out is None:
        out = np.empty(index.shape, np.uint32)
    cv2.LUT(index, _packed_lut(colormap).view(np.int32), dst=out.view(np.int32))
    nan = np.isnan(values)
    if nan.any():
        np.copyto(out, NAN_PIXEL, where=nan)
    return out


@functools.lru_cache(maxsize=None)
def _packed_lut(colormap: str) -> np.ndarray:
    table = lut(colormap).astype(np.uint32)
    packed = np.uint32(0xFF000000) | table[:, 0] << 16 | table[:, 1] << 8 | table[:, 2]
    packed.flags.writeable = False
    return packed
