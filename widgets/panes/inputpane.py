"""The input: the raw frame as captured, and what the model sees after preprocessing."""

from PySide6.QtWidgets import QVBoxLayout, QWidget

from deepvis.widgets.panes.imagepanel import ImagePanel
from deepvis.widgets.window.views import DrawnWhenShown


OPEN_INPUT = "open an image, folder, video or camera"


class InputPane(DrawnWhenShown, QWidget):
    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.raw = ImagePanel("Input", placeholder=OPEN_INPUT, session=session)
        self.seen = ImagePanel("What the model sees", session=session)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.raw, 3)
        layout.addWidget(self.seen, 2)
        session.frameReady.connect(self.on_frame)
        session.resultReady.connect(self.on_result)
        session.sourceChanged.connect(lambda name: self.raw.set_title(f"Input · {name}"))
        session.modelChanged.connect(self.on_model)

    def on_model(self, state) -> None:
        # A 1-D model gets no pictures: say where its input goes instead of "waiting".
        if self.session.takes_signals:
            self.raw.clear(f"{state.model.name} takes signals, not pictures: the Signals tab plays "
                           f"recordings through it")
            self.seen.clear("")
        elif self.raw.data is None:
            self.raw.clear(OPEN_INPUT)
            self.seen.clear("waiting for input...")

    def on_frame(self) -> None:
        frame = self.session.frame
        if frame is not None and not self.hidden_now():
            self.raw.set_rgb(frame.image)

    def on_result(self) -> None:
        result = self.session.result
        if result is None or self.hidden_now():
            return
        frame = self.session.frame
        if frame is None or frame.timestamp <= result.frame.timestamp:
            self.raw.set_rgb(result.frame.image)  # frames of files and fast video come with results
        spec = self.session.state.model.spec if self.session.state else None
        if spec is not None:
            self.seen.set_title(f"What the model sees · {spec.channels}x{spec.height}x{spec.width}")
        self.seen.set_rgb(result.model_input)
        self.seen.set_stale(self.session.stale(result))

    def draw_missed(self) -> None:
        self.on_result()
