"""The Dream tab: DeepDream on the current frame, for the layer (or unit) selected in the main
window, with a live preview of every step, stop and continue, save and "use as input"."""

import tempfile
import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QDoubleSpinBox, QHBoxLayout, QLabel, QProgressBar, QPushButton,
                               QSpinBox, QVBoxLayout)

from deepvis.live.computethread import compute_thread, outcome
from deepvis.optimize.dream import Dreamer, DreamSettings
from deepvis.io.images import write_image
from deepvis.widgets.panes.export import save_dialog, write_or_say
from deepvis.widgets.panes.imagepanel import ImagePanel
from deepvis.widgets.window.views import View, register_view


@register_view
class DreamView(View):
    title = "Dream"
    order = 20

    _posted_step = Signal(object)  # DreamStep
    _posted_done = Signal(str)  # "" when finished or stopped, else the error

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.image: np.ndarray | None = None  # the dream so far (what "continue" starts from)
        self.steps_seen = 0
        self._cancel: threading.Event | None = None
        self.unit_only = QCheckBox("selected unit only")
        self.octaves = QSpinBox()
        self.octaves.setRange(1, 8)
        self.octaves.setValue(3)
        self.octaves.setPrefix("octaves ")
        self.steps = QSpinBox()
        self.steps.setRange(1, 200)
        self.steps.setValue(10)
        self.steps.setPrefix("steps ")
        self.step_size = QDoubleSpinBox()
        self.step_size.setRange(0.001, 0.5)
        self.step_size.setSingleStep(0.005)
        self.step_size.setDecimals(3)
        self.step_size.setValue(0.02)
        self.step_size.setPrefix("step ")
        self.dream = QPushButton("Dream current frame")
        self.more = QPushButton("Continue")
        self.stop = QPushButton("Stop")
        self.stop.setEnabled(False)
        self.save = QPushButton("Save PNG...")
        self.use = QPushButton("Use as input")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.info = QLabel("")
        self.panel = ImagePanel("Dream", placeholder="dream the current frame with the selected layer")
        row = QHBoxLayout()
        for w in (self.unit_only, self.octaves, self.steps, self.step_size):
            row.addWidget(w)
        row.addStretch(1)
        actions = QHBoxLayout()
        for w in (self.dream, self.more, self.stop, self.progress, self.save, self.use):
            actions.addWidget(w)
        actions.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addLayout(actions)
        layout.addWidget(self.info)
        layout.addWidget(self.panel, 1)
        self.dream.clicked.connect(lambda: self.start(from_frame=True))
        self.more.clicked.connect(lambda: self.start(from_frame=False))
        self.stop.clicked.connect(self.halt)
        self.save.clicked.connect(self._save_dialog)
        self.use.clicked.connect(self.use_as_input)
        self._posted_step.connect(self._show_step)
        self._posted_done.connect(self._finished)
        self._first_look_done = False  # the dream started (or the frame shown) for this model
        session.resultReady.connect(self._first_look)
        session.modelChanged.connect(self._model_changed)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._first_look()

    def _model_changed(self, _state) -> None:
        self.halt()
        self._first_look_done = False  # a dream of the last model says nothing about this one
        if self.isVisible():
            self._first_look()

    def _first_look(self) -> None:
        """The first time the tab is seen with a frame: a dream starts by itself (a cheap one: the
        settings' octaves and steps, shown step by step, Stop ends it). With the first look's
        runs off (benchmarks), the frame a dream would start from and how to start it."""
        result = self.session.result
        if self._first_look_done or not self.isVisible() or result is None or self.session.state is None:
            return
        self._first_look_done = True
        if self.image is not None or self._cancel is not None:
            return
        if self.session.autostart:
            self.start(from_frame=True)
            return
        self.panel.set_rgb(result.frame.image)
        self.panel.set_title("Dream · the current frame, before dreaming")
        self.info.setText(f"Dream current frame amplifies what {self.session.layer} responds to in it "
                          f"(tick 'selected unit only' for unit {self.session.unit}).")

    def settings(self) -> DreamSettings:
        s = self.session
        return DreamSettings(s.layer, s.unit if self.unit_only.isChecked() else None, self.octaves.value(),
                             1.4, self.steps.value(), self.step_size.value())

    def start(self, from_frame: bool = True) -> None:
        s = self.session
        if s.state is None or s.layer is None:
            self.session.message.emit("load a model first")
            return
        source = s.result.frame.image if from_frame and s.result is not None else self.image
        if source is None:
            self.session.message.emit("no frame to dream yet")
            return
        self.halt()
        settings, state = self.settings(), s.state
        cancel = self._cancel = threading.Event()
        self.dream.setEnabled(False)
        self.more.setEnabled(False)
        self.stop.setEnabled(True)
        self.progress.setValue(0)
        self.set_working(f"dreaming with {settings.layer}...")
        compute = compute_thread()

        def work():
            dreamer = Dreamer(state.model, state.probe)
            before = dreamer.score(source, settings)
            for step in dreamer.run(source, settings, cancel=cancel):
                step.before = before
                self._posted_step.emit(step)
                compute.breathe()  # the live view keeps moving between steps

        compute.submit(work).add_done_callback(lambda future: self._posted_done.emit(outcome(future)[1]))

    def halt(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def _show_step(self, step) -> None:
        self.set_working("")  # the first step is on screen; the progress bar counts the rest
        self.image = step.image
        self.steps_seen += 1
        if self.steps_seen == 1:
            self.panel.set_title("Dream")
        self.panel.set_rgb(step.image)
        self.progress.setValue(int(100 * (step.octave * self.steps.value() + step.step + 1) / step.total_steps))
        self.info.setText(f"octave {step.octave + 1}, step {step.step + 1}: objective {step.objective:.4g} "
                          f"(frame: {step.before:.4g})")

    def _finished(self, error: str) -> None:
        self._cancel = None
        self.set_working("")
        self.dream.setEnabled(True)
        self.more.setEnabled(True)
        self.stop.setEnabled(False)
        if error:
            self.session.message.emit(f"dream: {error}")

    def _save_dialog(self) -> None:
        save_dialog(self, "Save dream", "deepvis-dream.png", "PNG (*.png)", self.save_png)

    def save_png(self, path: str) -> None:
        if self.image is None:
            self.session.message.emit("nothing dreamed yet")
            return
        write_or_say(self.session, path, lambda: write_image(path, self.image))

    def use_as_input(self) -> None:
        """The dream becomes the input image, so every other view looks at it."""
        if self.image is None:
            return
        path = Path(tempfile.gettempdir()) / "deepvis-dream-input.png"
        write_image(path, self.image)
        self.session.open_input(str(path))
        self.session.start()

    def shutdown(self) -> None:
        self.halt()
