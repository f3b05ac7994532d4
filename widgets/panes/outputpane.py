"""An image model's output beside its input: the output picture, the difference from the
input and the reconstruction error, live. Hidden for models whose output is not a picture."""

from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from deepvis.widgets.panes.imagepanel import ImagePanel
from deepvis.widgets.window.views import DrawnWhenShown

# |output - input| of this much (in [0, 1] pixel units) shows at full brightness: most
# reconstruction errors are small, and a scale up to 1 would draw them all black.
DIFFERENCE_LEVELS = (0.0, 0.5)


class OutputPane(DrawnWhenShown, QWidget):
    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.output = ImagePanel("Output", placeholder="the model's output picture", session=session)
        self.difference = ImagePanel("Difference |output - input|", placeholder="", session=session)
        self.error = QLabel("")
        self.error.setStyleSheet("padding: 2px 4px;")
        pictures = QHBoxLayout()
        pictures.setContentsMargins(0, 0, 0, 0)
        pictures.addWidget(self.output, 1)
        pictures.addWidget(self.difference, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(pictures, 1)
        layout.addWidget(self.error)
        self.hide()
        session.modelChanged.connect(self.on_model)
        session.resultReady.connect(self.on_result)

    def on_model(self, state) -> None:
        image_model = state is not None and state.model.task == "image"
        self.setVisible(image_model)
        if image_model:
            self.output.clear("waiting for input...")
            self.difference.clear("")
            self.error.setText("")

    def on_result(self) -> None:
        result = self.session.result
        if result is None or result.image_output is None or self.hidden_now():
            return
        picture = result.image_output
        h, w = picture.picture.shape[:2]
        self.output.set_title(f"Output · {w}x{h}")
        self.output.set_rgb(picture.picture)
        stale = self.session.stale(result)
        self.output.set_stale(stale)
        if picture.difference is not None:
            self.difference.set_map(picture.difference, DIFFERENCE_LEVELS, "magma")
            self.difference.set_stale(stale)
            self.error.setText(picture.error.text())
        else:
            self.difference.clear("the output's size differs from the input's: no difference")
            self.error.setText("")

    def draw_missed(self) -> None:
        self.on_result()
