"""The input: the raw frame as captured, and what the model sees after preprocessing."""

from PySide6.QtWidgets import QVBoxLayout, QWidget

from deepvis.widgets.panes.imagepanel import ImagePanel
from deepvis.widgets.window.views import DrawnWhenShown


OPEN_INPUT = "open an image, folder, video or camera"
MIN_DRAWN_SIDE = 320  # px: a detector's input is drawn at least this large, so its captions stay small
MAX_BOXES_DRAWN = 30  # a detector at a low --min-score returns hundreds; the best ones are what a user reads


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
        summary = result.summary
        if summary is not None and summary.detections:
            # A detector's boxes are in the model input's pixels: framed on what it saw.
            from deepvis.render.detections import draw_detections

            shown = summary.detections[:MAX_BOXES_DRAWN]
            # A small input is enlarged by whole pixels first: captions drawn at its own size
            # would cover it.
            k = max(1, -(-MIN_DRAWN_SIDE // max(result.model_input.shape[:2])))
            picture = result.model_input.repeat(k, 0).repeat(k, 1) if k > 1 else result.model_input
            self.seen.set_rgb(draw_detections(picture, [[v * k for v in d.box] for d in shown],
                                              [f"{d.label} {d.score:.0%}" for d in shown], [d.index for d in shown]))
        else:
            self.seen.set_rgb(result.model_input)
        self.seen.set_stale(self.session.stale(result))

    def draw_missed(self) -> None:
        self.on_result()
