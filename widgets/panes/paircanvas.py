"""Two pictures side by side (or one above the other, whichever shows them larger) at one
scale, for correspondence: a press or drag on either asks
where that point is in the other; the other shows the answer's heat map, the best match
(green cross) and, when known, the true position (white ring); lines join pairs of points.

Coordinates are pixel centres (pixel (x, y) has its centre at integer (x, y)), the convention
of ``deepvis.matching``.
"""

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

BACKGROUND = QColor("#1e1f22")
GAP = 12  # px between the pictures
QUERY = QColor(255, 70, 40)
FOUND = QColor(60, 230, 90)
TRUTH = QColor(255, 255, 255)


def _qimage(picture: np.ndarray) -> tuple[QImage, np.ndarray]:
    """An RGB888 QImage over ``picture``'s memory, and the array it borrows (keep both)."""
    pixels = np.ascontiguousarray(picture)
    h, w = pixels.shape[:2]
    return QImage(pixels.data, w, h, pixels.strides[0], QImage.Format.Format_RGB888), pixels


class PairCanvas(QWidget):
    queried = Signal(int, float, float)  # side (0: left, 1: right), x, y in that picture

    def __init__(self, placeholder: str = "", parent=None):
        super().__init__(parent)
        self.placeholder = placeholder
        self._images: list = [None, None]  # (QImage, borrowed array) per side
        self.shapes: list[tuple[int, int] | None] = [None, None]  # (H, W) per side
        self.query: tuple[int, float, float] | None = None
        self.best: tuple[float, float] | None = None  # in the other picture
        self.truth: tuple[float, float] | None = None  # in the other picture
        self.lines: list[tuple[tuple[float, float], tuple[float, float], float]] = []  # a, b, 0..1 strength
        self._dragging: int | None = None  # the side a drag started on
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(200, 120)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    # --- content ---------------------------------------------------------------------------

    def set_pictures(self, left: np.ndarray, right: np.ndarray) -> None:
        self._images = [_qimage(left), _qimage(right)]
        self.shapes = [left.shape[:2], right.shape[:2]]
        self.update()

    def set_picture(self, side: int, picture: np.ndarray) -> None:
        """Replace one side (a heat map over it) without moving anything: same size."""
        self._images[side] = _qimage(picture)
        self.shapes[side] = picture.shape[:2]
        self.update()

    def set_marks(self, query, best, truth) -> None:
        self.query, self.best, self.truth = query, best, truth
        self.update()

    def set_lines(self, lines) -> None:
        self.lines = list(lines)
        self.update()

    def clear(self, text: str) -> None:
        self.placeholder = text
        self._images, self.shapes = [None, None], [None, None]
        self.query = self.best = self.truth = None
        self.lines = []
        self.update()

    # --- geometry --------------------------------------------------------------------------

    def _layout(self) -> tuple[float, list[QPointF]] | None:
        """The scale (screen px per picture px) and each picture's top-left corner: side by
        side, or one above the other where that shows them larger (a tall pane)."""
        if None in self.shapes:
            return None
        (ha, wa), (hb, wb) = self.shapes
        width, height = self.width(), self.height()
        beside = min((width - GAP) / (wa + wb), height / max(ha, hb))
        above = min(width / max(wa, wb), (height - GAP) / (ha + hb))
        scale = max(beside, above)
        if scale <= 0:
            return None
        if beside >= above:
            left = (width - GAP - scale * (wa + wb)) / 2
            corners = [QPointF(left, (height - scale * ha) / 2),
                       QPointF(left + scale * wa + GAP, (height - scale * hb) / 2)]
        else:
            top = (height - GAP - scale * (ha + hb)) / 2
            corners = [QPointF((width - scale * wa) / 2, top),
                       QPointF((width - scale * wb) / 2, top + scale * ha + GAP)]
        return scale, corners

    def to_widget(self, side: int, x: float, y: float) -> QPointF:
        """Picture ``side``'s point (x, y) (pixel centres) on the widget."""
        scale, corners = self._layout()
        return QPointF(corners[side].x() + (x + 0.5) * scale, corners[side].y() + (y + 0.5) * scale)

    def to_picture(self, pos: QPointF) -> tuple[int, float, float] | None:
        """(side, x, y) under widget position ``pos``; None between or beside the pictures."""
        layout = self._layout()
        if layout is None:
            return None
        scale, corners = layout
        for side, (h, w) in enumerate(self.shapes):
            x = (pos.x() - corners[side].x()) / scale - 0.5
            y = (pos.y() - corners[side].y()) / scale - 0.5
            if -0.5 <= x < w - 0.5 and -0.5 <= y < h - 0.5:
                return side, min(max(x, 0.0), w - 1.0), min(max(y, 0.0), h - 1.0)
        return None

    # --- painting and the mouse ------------------------------------------------------------

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), BACKGROUND)
        layout = self._layout()
        if layout is None:
            p.setPen(QColor("#8a8a8a"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            return
        scale, corners = layout
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        for side in (0, 1):
            image = self._images[side][0]
            h, w = self.shapes[side]
            p.drawImage(QRectF(corners[side].x(), corners[side].y(), w * scale, h * scale), image)
        for a, b, strength in self.lines:
            colour = QColor(int(255 * (1 - strength)), int(80 + 175 * strength), 60)
            p.setPen(QPen(colour, 1))
            p.drawLine(self.to_widget(0, *a), self.to_widget(1, *b))
        if self.query is not None:
            side, x, y = self.query
            self._ring(p, self.to_widget(side, x, y), QUERY, 7)
            other = 1 - side
            if self.truth is not None:
                self._ring(p, self.to_widget(other, *self.truth), TRUTH, 9)
            if self.best is not None:
                self._cross(p, self.to_widget(other, *self.best), FOUND, 8)

    @staticmethod
    def _ring(p: QPainter, at: QPointF, colour: QColor, radius: float) -> None:
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QPen(QColor(0, 0, 0, 160), 4))
        p.drawEllipse(at, radius, radius)
        p.setPen(QPen(colour, 2))
        p.drawEllipse(at, radius, radius)

    @staticmethod
    def _cross(p: QPainter, at: QPointF, colour: QColor, arm: float) -> None:
        for pen in (QPen(QColor(0, 0, 0, 160), 4), QPen(colour, 2)):
            p.setPen(pen)
            p.drawLine(QPointF(at.x() - arm, at.y()), QPointF(at.x() + arm, at.y()))
            p.drawLine(QPointF(at.x(), at.y() - arm), QPointF(at.x(), at.y() + arm))

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            at = self.to_picture(event.position())
            self._dragging = None if at is None else at[0]
            if at is not None:
                self.queried.emit(*at)

    def mouseMoveEvent(self, event) -> None:
        # A drag stays a query of the picture it started on, even when it strays over the other.
        if event.buttons() & Qt.MouseButton.LeftButton and self._dragging is not None:
            at = self.to_picture(event.position())
            if at is not None and at[0] == self._dragging:
                self.queried.emit(*at)
