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

from PySide6.QtWidgets import QWidget


class View(QWidget):
    title = "View"
    order = 100  # tab position: lower comes first

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session

    def shutdown(self) -> None:
        """Stop background work; called when the window closes."""


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
