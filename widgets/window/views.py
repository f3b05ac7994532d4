"""The main window's extension point.

A view is a tab in the centre of the window. It is constructed with the window's
``Session`` and reacts to its signals (model, layer, unit, live results), so a new view —
saliency, dreams, embeddings, latent space, 3-D — is written and registered without
touching the window:

    @register_view
    class DreamView(View):
        title = "Dream"
        def __init__(self, session, parent=None):
            super().__init__(session, parent)
            session.resultReady.connect(self.on_result)
"""

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QProgressBar, QWidget


class View(QWidget):
    title = "View"
    order = 100  # tab position: lower comes first

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self._working = ""
        self._working_bar: QProgressBar | None = None

    def shutdown(self) -> None:
        """Stop background work; called when the window closes."""

    # --- work towards the first look ----------------------------------------------------------

    def working(self) -> str:
        """What the view is doing before it can show its content ("" when it shows it, or shows
        why it has none): a screenshot waits for it, and a user sees it in a progress bar."""
        return self._working

    def set_working(self, text: str) -> None:
        """Show (or with "" hide) a busy bar saying ``text`` over the top of the view. An overlay,
        not a layout item: any view can say it is busy without making room for a bar."""
        self._working = text
        if not text:
            if self._working_bar is not None:
                self._working_bar.hide()
            return
        bar = self._working_bar
        if bar is None:
            bar = self._working_bar = QProgressBar(self)
            bar.setRange(0, 0)  # busy: how long the work takes is not known
            bar.setTextVisible(True)
            bar.setAlignment(Qt.AlignmentFlag.AlignCenter)
        bar.setFormat(text)
        bar.setToolTip(text)
        self._place_working_bar()
        bar.show()
        bar.raise_()

    def _place_working_bar(self) -> None:
        bar = self._working_bar
        width = min(max(bar.fontMetrics().horizontalAdvance(bar.format()) + 40, 240), max(self.width() - 20, 0))
        bar.setGeometry((self.width() - width) // 2, max(self.height() // 2 - 12, 0), width, 24)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._working_bar is not None and self._working_bar.isVisible():
            self._place_working_bar()


_registry: list[type[View]] = []


def register_view(cls: type[View]) -> type[View]:
    if cls not in _registry:
        _registry.append(cls)
    return cls


def registered_views() -> list[type[View]]:
    return sorted(_registry, key=lambda cls: cls.order)


class DrawnWhenShown:
    """For widgets redrawn on every live result. While hidden (another tab is in front, or
    their dock is closed) a result only marks them out of date; showing them draws the newest
    result. Mix in before the Qt class and call ``hidden_now()`` first in the per-frame slot."""

    _missed_result = False

    def hidden_now(self) -> bool:
        if self.isVisible():
            return False
        self._missed_result = True
        return True

    def showEvent(self, event):
        super().showEvent(event)
        if self._missed_result:
            self._missed_result = False
            self.draw_missed()

    def draw_missed(self) -> None:
        """Draw the newest result (called when shown after results were skipped)."""
