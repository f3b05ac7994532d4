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
