"""Top-k predictions as horizontal bars; a one-line summary for models that do not classify."""

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget


class PredictionPane(QWidget):
    classClicked = Signal(int)  # the class index of the bar clicked

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.rows = ()
        self.kind = "classification"
        self.text = "waiting for input..."
        self.stale = False
        self.setMinimumHeight(150)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.multilabel = False  # the model scores each class on its own (a sigmoid per class)
        self.random = False  # random weights: the bars carry real class names and mean nothing
        session.resultReady.connect(self.on_result)
        session.modelChanged.connect(self._model_changed)

    def _model_changed(self, state) -> None:
        self.multilabel = bool(state.model.multilabel)
        self.random = bool(state.model.random_weights)
        if state.model.signal is not None:  # its predictions are per window, in the Signals tab
            self.rows, self.kind, self.stale = (), "classification", False
            self.text = f"{state.model.name} takes signals: the Signals tab shows its predictions per window"
        elif not self.rows:
            self.text = "waiting for input..."
        self.update()

    def on_result(self) -> None:
        result = self.session.result
        if result is None or result.summary is None:
            return
        self.rows, self.kind, self.text = result.summary.predictions, result.summary.kind, result.summary.text
        self.stale = self.session.stale(result)
        self.update()

    def _row_height(self) -> int:
        return max(18, min(28, (self.height() - 30) // max(1, len(self.rows))))

    def mousePressEvent(self, event):
        row = int((event.position().y() - 26) // self._row_height())
        if self.rows and 0 <= row < len(self.rows) and event.position().y() >= 26:
            self.classClicked.emit(self.rows[row].index)

    def paintEvent(self, _event):
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#1e1f22"))
        p.setPen(QColor("#d0d0d0"))
        title = {"classification": "Top predictions", "segmentation": "Classes by share of pixels",
                 "detection": "Detections, best first"}.get(self.kind, "Output")
        if self.kind == "classification" and self.multilabel:
            # A sigmoid per class: the bars need not sum to 100 % (a mosaic of a 9 and a 2 has both).
            title = "Classes present, each scored alone"
        bold = QFont(self.font())
        bold.setBold(True)
        p.setFont(bold)
        head = title + ("   (stale)" if self.stale else "")
        p.drawText(6, 16, head)
        shown = 6 + p.fontMetrics().horizontalAdvance(head) + 14
        p.setFont(self.font())
        if self.random:  # said as the CLI's predictions say it (note_random_weights), in warning colour
            p.setPen(QColor("#e6a23c"))
            p.drawText(QRectF(shown, 2, self.width() - shown - 6, 18), Qt.AlignmentFlag.AlignVCenter,
                       p.fontMetrics().elidedText("random weights: chance", Qt.TextElideMode.ElideRight,
                                                  int(self.width() - shown - 6)))
            p.setPen(QColor("#d0d0d0"))
        if not self.rows:
            p.drawText(QRectF(6, 24, self.width() - 12, self.height() - 30), Qt.TextFlag.TextWordWrap, self.text)
            return
        top, row_h = 26, self._row_height()
        label_w = min(220, self.width() // 2)
        bar_w = self.width() - label_w - 70
        for i, row in enumerate(self.rows):
            y = top + i * row_h
            p.setPen(QColor("#d0d0d0"))
            p.drawText(QRectF(6, y, label_w - 10, row_h), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                       p.fontMetrics().elidedText(row.label, Qt.TextElideMode.ElideRight, label_w - 10))
            p.fillRect(QRectF(label_w, y + 3, bar_w, row_h - 6), QColor("#2c2e33"))
            colour = QColor("#4e9de6") if i == 0 else QColor("#3a6f9e")
            p.fillRect(QRectF(label_w, y + 3, max(1.0, bar_w * row.score), row_h - 6), colour)
            p.drawText(QRectF(label_w + bar_w + 6, y, 60, row_h), Qt.AlignmentFlag.AlignVCenter, f"{row.score:.1%}")
