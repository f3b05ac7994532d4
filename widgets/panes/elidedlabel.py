"""A one-line label that elides what does not fit, with the whole text in its tooltip.

A QLabel asks its layout for the width of its whole text: a long status note made the status
bar, and with it the main window, wider than the screen's 1440 px, and the rest was cut at the
window's edge; one told to ignore that width (a pane's title) was cut mid-word. This label asks
for no width and shows "…" where the text is cut.
"""

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QLabel, QSizePolicy


class ElidedLabel(QLabel):
    def __init__(self, text: str = "", parent=None, mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight):
        super().__init__(parent)
        self.mode = mode
        self._own_tooltip = ""  # a tooltip set by the caller, shown whether or not the text is cut
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setText(text)

    # Set to wrap words, it is a QLabel again: its lines take the room they need.

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        return hint if self.wordWrap() else QSize(0, hint.height())

    def displayed_text(self) -> str:
        """The text as drawn: elided to the label's width."""
        if self.wordWrap():
            return self.text()
        return self.fontMetrics().elidedText(self.text(), self.mode, max(0, self._text_rect().width()))

    def _text_rect(self):
        """Where QLabel draws: inside the margin, and the indent on the aligned side (by default
        half an 'x' when the label has a frame, a style sheet's padding included)."""
        m = self.margin()
        rect = self.contentsRect().adjusted(m, m, -m, -m)
        indent = self.indent()
        if indent < 0:
            indent = self.fontMetrics().horizontalAdvance("x") // 2 if self.frameWidth() > 0 else 0
        align = self.alignment()
        if align & Qt.AlignmentFlag.AlignLeft:
            rect.setLeft(rect.left() + indent)
        elif align & Qt.AlignmentFlag.AlignRight:
            rect.setRight(rect.right() - indent)
        if align & Qt.AlignmentFlag.AlignTop:
            rect.setTop(rect.top() + indent)
        elif align & Qt.AlignmentFlag.AlignBottom:
            rect.setBottom(rect.bottom() - indent)
        return rect

    def setText(self, text: str) -> None:
        super().setText(text)
        self._update_tooltip()

    def setToolTip(self, text: str) -> None:
        self._own_tooltip = text
        self._update_tooltip()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._update_tooltip()

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:  # a style sheet's bold arrives when it is polished
            self._update_tooltip()

    def _update_tooltip(self) -> None:
        # The whole text where it is cut, before what the caller asked for; otherwise the latter.
        text, own = self.text(), self._own_tooltip
        cut = self.displayed_text() != text
        super().setToolTip("\n".join(filter(None, (text, own))) if cut and text not in own else own)

    def paintEvent(self, event) -> None:
        if self.wordWrap():
            super().paintEvent(event)
            return
        painter = QPainter(self)
        self.drawFrame(painter)
        self.style().drawItemText(painter, self._text_rect(), int(self.alignment().value) | int(
            Qt.TextFlag.TextSingleLine.value), self.palette(), self.isEnabled(), self.displayed_text(),
            self.foregroundRole())
