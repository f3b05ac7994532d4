"""A few lines of figures that change every frame (a unit's max and mean), drawn without
asking the layout for room.

A QLabel's setText invalidates the layout above it whatever its size policy: counted live,
the unit pane's stats label made the pane, its dock, the dock splitter and the main window
relayout once a frame, and the main window repaint twice. A readout's height is fixed by its
line count and its text only repaints its own pixels.
"""

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFontDatabase, QPainter, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

MARGIN = 3


class Readout(QWidget):
    """``sample``: the longest text expected, which sets the width asked of the layout (the
    text itself never does); without one the readout takes the width it is given."""

    def __init__(self, lines: int = 1, sample: str = "", parent=None):
        super().__init__(parent)
        self._text = ""
        self.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.setFixedHeight(lines * self.fontMetrics().lineSpacing() + 2 * MARGIN)
        self._hint = QSize(self.fontMetrics().horizontalAdvance(sample) + 2 * MARGIN + 2 if sample else 0,
                           self.height())
        self.setSizePolicy(QSizePolicy.Policy.Preferred if sample else QSizePolicy.Policy.Ignored,
                           QSizePolicy.Policy.Fixed)
        # It paints its whole rectangle, so nothing beneath repaints with it.
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def sizeHint(self) -> QSize:
        return self._hint

    def text(self) -> str:
        return self._text

    def setText(self, text: str) -> None:
        if text != self._text:
            self._text = text
            self.update()

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        palette = self.palette()
        p.fillRect(self.rect(), palette.color(QPalette.ColorRole.Window))
        p.setPen(palette.color(QPalette.ColorRole.WindowText))
        p.drawText(self.rect().adjusted(MARGIN + 1, MARGIN, -MARGIN, -MARGIN),
                   Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, self._text)
