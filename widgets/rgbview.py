"""A plain RGB image widget: a numpy frame painted straight from memory, scaled to fit.

The input panes need no zoom or hover, and at video rate pyqtgraph's per-paint Python work
is a visible share of a small machine's CPU; QPainter.drawImage on a zero-copy QImage is not.
"""

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget


class _Canvas(QWidget):
    def __init__(self, placeholder: str):
        super().__init__()
        self.placeholder = placeholder
        self.array: np.ndarray | None = None
        self.qimage: QImage | None = None
        self.smooth = True
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(80, 60)

    def set_rgb(self, image: np.ndarray) -> None:
        image = np.ascontiguousarray(image)
        h, w = image.shape[:2]
        # The QImage borrows the array's memory; keep the array alive as long as it is shown.
        self.array = image
        self.qimage = QImage(image.data, w, h, image.strides[0], QImage.Format.Format_RGB888)
        self.update()

    def target_rect(self) -> QRectF:
        h, w = self.array.shape[:2]
        scale = min(self.width() / w, self.height() / h)
        return QRectF((self.width() - w * scale) / 2, (self.height() - h * scale) / 2, w * scale, h * scale)

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#1e1f22"))
        if self.qimage is None:
            p.setPen(QColor("#8a8a8a"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            return
        # Small model inputs (8x8 digits) should look like pixels, not blur; and filtered
        # scaling of every video frame costs a small machine more than it shows.
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.smooth and self.array.shape[0] >= 64)
        p.drawImage(self.target_rect(), self.qimage)


class RgbView(QWidget):
    """A titled RGB image with a 'stale' badge, the same face as ``ImagePanel``."""

    def __init__(self, title: str, parent=None, placeholder: str = "waiting for input..."):
        super().__init__(parent)
        self.setObjectName(title)
        self.title = QLabel(title)
        self.title.setStyleSheet("font-weight: 600; padding: 2px 4px;")
        self.canvas = _Canvas(placeholder)
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
        if self.title.text() != text:
            self.title.setText(text)

    def set_rgb(self, image: np.ndarray) -> None:
        self.canvas.set_rgb(image)

    @property
    def shown(self) -> np.ndarray | None:
        return self.canvas.array

    def set_stale(self, stale: bool) -> None:
        if stale != self.badge.isVisible():
            self.badge.setVisible(stale)
