"""The Sample tab: an autoregressive model (a PixelCNN) draws pictures pixel by pixel, and the
distribution each pixel was drawn from is shown as bars.

The pictures grow in a grid, the pixel drawn next marked in red in every one. Clicking a
picture selects it: the bars show its conditional distribution for the pixel just drawn (or,
clicking on a pixel already drawn, the one that pixel was drawn from), the drawn level in
orange. The model is the main window's when it is autoregressive; otherwise a bundled
PixelCNN, so the tab is useful whatever the window shows.
"""

import math
import threading
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QProgressBar, QPushButton,
                               QSizePolicy, QSpinBox, QVBoxLayout)

from deepvis.autoregressive.sampling import Step, sample_steps
from deepvis.core.loading import LoadedModel, load_model
from deepvis.io.images import write_image
from deepvis.live.computethread import compute_thread, outcome
from deepvis.render.tiling import GridLayout, grid_layout, picture_grid, upscale
from deepvis.widgets.panes.export import save_dialog, write_or_say
from deepvis.widgets.panes.imagepanel import ImagePanel
from deepvis.widgets.window.views import View, register_view

THIS_MODEL = "the model in view"  # listed while the main window's model is autoregressive
BUNDLED = ("digits_pixelcnn", "digits_pixelcnn_plain")
# Seconds for a whole picture: at full speed 8x8 digits are done before the eye sees them grow.
# The pace is kept by the GUI between one-pixel jobs, so the compute thread is never held idle.
SPEEDS = {"watch (about 3 s)": 3.0, "slow (about 10 s)": 10.0, "as fast as it runs": 0.0}
BORDER = 1  # pixels of frame around each picture: touching 8x8 digits read as stripes without it
FRAME = (45, 45, 45)  # picture_grid's default fill, as the CLI's sheets have it
SELECTED = (240, 160, 48)
NEXT_PIXEL = (230, 40, 40)
BAR = "#5b8fd6"
DRAWN_BAR = "#f0a030"


def entropy_bits(probabilities: np.ndarray) -> np.ndarray:
    """Entropy in bits of distributions over the last axis (0 log 0 = 0)."""
    p = np.asarray(probabilities, np.float64)
    return -(p * np.log2(np.where(p > 0, p, 1.0))).sum(axis=-1)


@dataclass(eq=False)
class SampleRun:
    """One press of Sample. The GUI thread owns ``active`` and ``in_flight``; the compute
    thread fills ``steps`` and ``history`` (rows up to the newest step posted are final)."""

    name: str
    model: LoadedModel | None  # None: a bundled model, loaded on the compute thread
    count: int
    seed: int
    temperature: float
    picture_s: float  # seconds a picture takes at the pace chosen; 0: one job draws every pixel
    cancel: threading.Event = field(default_factory=threading.Event)
    size: tuple[int, int] | None = None
    steps: object = None  # the engine's generator, advanced only on the compute thread
    history: np.ndarray | None = None  # (pixels, count, levels): each pixel's distribution when drawn
    active: bool = True
    in_flight: bool = False


@register_view
class SampleView(View):
    title = "Sample"
    order = 45

    _posted_step = Signal()  # the newest step waits in self._newest
    _posted_chunk = Signal(object, object, str)  # run, finished (True, False: more to come, None), error

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.job: SampleRun | None = None  # the run last started: running, or done
        self.run: SampleRun | None = None  # the run whose pictures are shown (the job once its first pixel is in)
        self.step: Step | None = None  # its newest step shown
        self.pictures: np.ndarray | None = None  # float32 (N, 1, H, W), as the step has them
        self.layout_: GridLayout | None = None
        self.selected = 0
        self.pixel: int | None = None  # the raster index whose distribution is shown; None: the newest
        self._newest: tuple[SampleRun, Step] | None = None
        self._newest_lock = threading.Lock()
        self._step_posted = False
        self._closed = False
        self.steps_shown = 0  # steps drawn; fewer than pixels when the GUI was slower than the sampler
        self._first_look_done = False  # the first look's sampling was started
        self._first_run: SampleRun | None = None
        self._bundled: dict[str, LoadedModel] = {}  # touched on the compute thread only

        self.source = QComboBox()
        self.source.addItems(BUNDLED)
        self.source.setToolTip("the model to sample: the main window's when it is autoregressive, or a bundled "
                               "PixelCNN of 8x8 digits (gated, or plain with its blind spot)")
        self.seed = QSpinBox()
        self.seed.setRange(0, 1_000_000)
        self.seed.setPrefix("seed ")
        self.count = QSpinBox()
        self.count.setRange(1, 64)
        self.count.setValue(16)
        self.count.setPrefix("count ")
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.05, 5.0)
        self.temperature.setSingleStep(0.05)
        self.temperature.setDecimals(2)
        self.temperature.setValue(1.0)
        self.temperature.setPrefix("temperature ")
        self.temperature.setToolTip("divides the logits: below 1 the likeliest levels win, above 1 noise grows")
        self.speed = QComboBox()
        self.speed.addItems(SPEEDS)
        self.sample_button = QPushButton("Sample")
        self.stop = QPushButton("Stop")
        self.stop.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(200)
        self.progress.setFormat("%v / %m pixels")
        self.save = QPushButton("Save PNG...")
        self.grid = ImagePanel("Samples", placeholder="")
        # The title says which pixel is being drawn: its length must not move the bars' pane.
        self.grid.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumWidth(300)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        self.plot.setLabel("left", "probability")
        self.plot.setLabel("bottom", "level (0 black)")
        self.plot.setYRange(0, 1.0, padding=0.02)
        self.plot.showGrid(y=True, alpha=0.25)
        self.plot.setTitle("Next-pixel distribution", size="11pt")
        self.bars = pg.BarGraphItem(x=np.arange(2), height=np.zeros(2), width=0.8, brush=BAR, pen=None)
        self.plot.addItem(self.bars)
        self.drawn_level: int | None = None
        self.pixel_info = QLabel("")
        self.pixel_info.setWordWrap(True)
        # Text that changes every pixel must not change the label's size (a relayout per step).
        self.pixel_info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.pixel_info.setMinimumHeight(2 * self.pixel_info.fontMetrics().lineSpacing() + 4)
        self.pixel_info.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

        top = QHBoxLayout()
        for w in (self.source, self.seed, self.count, self.temperature, self.speed):
            top.addWidget(w)
        top.addStretch(1)
        actions = QHBoxLayout()
        for w in (self.sample_button, self.stop, self.progress, self.save):
            actions.addWidget(w)
        actions.addStretch(1)
        right = QVBoxLayout()
        right.addWidget(self.plot, 1)
        right.addWidget(self.pixel_info)
        body = QHBoxLayout()
        body.addWidget(self.grid, 3)
        body.addLayout(right, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(actions)
        layout.addLayout(body, 1)

        self._pace = QTimer(self)
        self._pace.setSingleShot(True)
        self._pace.timeout.connect(lambda: self._advance(self.job))
        self._posted_step.connect(self._show_newest)
        self._posted_chunk.connect(self._chunk_done)
        self.sample_button.clicked.connect(lambda: self.start())
        self.stop.clicked.connect(self.halt)
        self.save.clicked.connect(self._save_dialog)
        self.grid.clicked.connect(self._grid_clicked)
        self.source.currentTextChanged.connect(lambda _t: self._show_placeholder())
        self.count.valueChanged.connect(lambda _v: self._show_placeholder())
        session.modelChanged.connect(self._model_changed)
        self._model_changed(session.state)

    # --- the model ----------------------------------------------------------------------------

    def _window_model(self) -> LoadedModel | None:
        state = self.session.state
        return state.model if state is not None and state.model.task == "autoregressive" else None

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._first_look()

    def _first_look(self) -> None:
        """The first time the tab is seen, it samples by itself: the window's model when it is
        autoregressive, else the bundled PixelCNN (at the "watch" pace: pictures grow for 3 s)."""
        if self._first_look_done or not self.isVisible() or not self.session.autostart or \
                self.session.state is None or self.pictures is not None or (self.job is not None and self.job.active):
            return
        self._first_look_done = True
        self.start()
        self._first_run = self.job

    def working(self) -> str:
        # Until the first look's pictures are whole (3 s at the watch pace): a screenshot of their
        # first pixels shows black squares; later runs count as shown from their first pixel.
        run = self.job
        if run is None or not run.active:
            return ""
        return f"sampling from {run.name}..." if self.run is not run or run is self._first_run else ""

    def _model_changed(self, _state) -> None:
        here = self.source.findText(THIS_MODEL)
        if self._window_model() is not None:
            if here < 0:
                self.source.insertItem(0, THIS_MODEL)
            self.source.setCurrentIndex(0)
        elif here >= 0:
            self.source.removeItem(here)
        if self.job is not None and self.job.active and self.job.model is not None:
            self.halt()  # the window's model was replaced under this run
        self._show_placeholder()
        self._first_look()

    def _show_placeholder(self) -> None:
        if self.pictures is not None or (self.job is not None and self.job.active):
            return
        chosen = self.source.currentText()
        model = self._window_model()
        if model is not None and chosen == THIS_MODEL:
            text = f"Press Sample to draw {self.count.value()} pictures from {model.name}, pixel by pixel."
        else:
            state = self.session.state
            here = "" if state is None else (
                f"{state.model.name} in the main window is a {state.model.task} model, not autoregressive. ")
            text = (f"This tab samples autoregressive models (PixelCNN) pixel by pixel. {here}Open digits_pixelcnn "
                    f"in the main window, or press Sample to draw from the bundled {chosen}.")
        self.grid.clear(text)
        self.grid.set_title("Samples")

    def _bundled_model(self, name: str) -> LoadedModel:  # compute thread
        if name not in self._bundled:
            self._bundled[name] = load_model(name)
        return self._bundled[name]

    # --- sampling: one-pixel (or all-pixel) jobs on the compute thread -------------------------

    def start(self, model: LoadedModel | None = None) -> None:
        """Sample the chosen source, or ``model`` when given (any loaded model: one that is not
        PixelCNN-style is refused with a message)."""
        self.halt()
        chosen = self.source.currentText()
        if model is None and chosen == THIS_MODEL:
            model = self._window_model()
            if model is None:
                self.session.message.emit("sample: the model in view is not autoregressive; pick a bundled PixelCNN")
                return
        run = SampleRun(model.name if model is not None else chosen, model, self.count.value(), self.seed.value(),
                        self.temperature.value(), SPEEDS[self.speed.currentText()])
        self.job = run  # what is shown stays until its first pixel is in: an error keeps the pictures
        self.sample_button.setEnabled(False)
        self.stop.setEnabled(True)
        self.progress.setValue(0)
        self.grid.set_title(f"Sampling from {run.name}...")
        self._advance(run)

    def halt(self) -> None:
        run = self.job
        if run is None or not run.active:
            return
        run.cancel.set()
        if not run.in_flight and self._pace.isActive():
            # Waiting for its next pixel: one more job meets the cancel and ends the engine's loop.
            self._pace.stop()
            self._advance(run)

    def _advance(self, run: SampleRun | None) -> None:
        if run is None or not run.active or run.in_flight or self._closed:
            return
        run.in_flight = True
        compute = compute_thread()

        def work():
            if run.steps is None:
                model = run.model or self._bundled_model(run.name)
                run.size = (model.spec.height, model.spec.width)
                run.steps = sample_steps(model.module, run.size, run.count, run.seed, run.temperature, run.cancel)
            total = run.size[0] * run.size[1]
            for step in run.steps:
                if run.history is None:
                    run.history = np.zeros((total, *step.probabilities.shape), np.float32)
                run.history[step.index] = step.probabilities
                self._offer(run, step)
                if step.index == total - 1:
                    run.steps.close()  # the engine puts the model back in its training mode
                    return True
                if run.picture_s:
                    return False
                compute.breathe()  # the live view keeps moving between pixels
            return True

        compute.submit(work).add_done_callback(lambda future: self._posted_chunk.emit(run, *outcome(future)))

    def _offer(self, run: SampleRun, step: Step) -> None:  # compute thread
        # Latest wins: a slow GUI skips steps instead of queueing them; the last is always shown.
        with self._newest_lock:
            self._newest = (run, step)
            post, self._step_posted = not self._step_posted, True
        if post:
            self._posted_step.emit()

    def _show_newest(self) -> None:
        with self._newest_lock:
            newest, self._step_posted = self._newest, False
        if newest is None or newest[0] is not self.job:
            return  # a step of a run replaced since
        run, step = newest
        if self.run is not run:
            self.run, self.pixel, self.selected = run, None, min(self.selected, run.count - 1)
        self.step, self.pictures = step, step.pictures
        self.steps_shown += 1
        total = run.history.shape[0]
        self.progress.setMaximum(total)
        self.progress.setValue(step.index + 1)
        self._draw()

    def _chunk_done(self, run: SampleRun, finished, error: str) -> None:
        run.in_flight = False
        if finished is False and run.cancel.is_set():
            self._advance(run)  # stopped or replaced between pixels: one more job ends the engine's loop
            return
        if finished is False and run is self.job:
            self._pace.start(max(1, round(1000 * run.picture_s / (run.size[0] * run.size[1]))))
            return
        run.active = False
        if run is not self.job:  # replaced by a newer run
            if run is self.run:
                self._draw()  # still shown until the newer one's first pixel: without its marks
            return
        self._pace.stop()
        self.sample_button.setEnabled(True)
        self.stop.setEnabled(False)
        if error:
            self.session.message.emit(f"sample: {error}")
        if self.run is None:
            self._show_placeholder()
            return
        if self.run is run and self.pixel is None and run.history is not None:
            # The last pixel drawn is a corner, nearly always certain black: its bars say nothing.
            # Shown instead: the selected picture's most uncertain pixel (a click picks another).
            self.pixel = int(np.argmax(entropy_bits(run.history[:self.step.index + 1, self.selected])))
        self._draw()  # this run's last pixel, or (when it drew none) what was shown before, without the marks

    # --- drawing ------------------------------------------------------------------------------

    def _tiles(self) -> np.ndarray:
        return np.repeat((self.pictures[:, 0] * 255).round().astype(np.uint8)[..., None], 3, axis=3)

    def _columns(self) -> int:
        return math.ceil(math.sqrt(len(self.pictures)))

    def _draw(self) -> None:
        run, step = self.run, self.step
        count, _, h, w = self.pictures.shape
        cols = self._columns()
        self.layout_ = grid_layout(count, h + 2 * BORDER, w + 2 * BORDER, pad=0, cols=cols)
        sheet = picture_grid(self._tiles(), cols, BORDER, FRAME[0])
        y, x = self.layout_.origin(self.selected)
        sheet[y:y + h + 2 * BORDER, x:x + w + 2 * BORDER][[0, -1]] = SELECTED
        sheet[y:y + h + 2 * BORDER, x:x + w + 2 * BORDER][:, [0, -1]] = SELECTED
        if run.active and step.index + 1 < h * w:
            r, c = divmod(step.index + 1, w)
            for k in range(count):
                ty, tx = self.layout_.origin(k)
                sheet[ty + BORDER + r, tx + BORDER + c] = NEXT_PIXEL
        self.grid.set_rgb(sheet)
        self.grid.set_title(self._title())
        shown = self.shown_pixel()
        r, c = divmod(shown, w)
        self.grid.set_cursor((x + BORDER + c, y + BORDER + r, 1, 1))
        self._draw_distribution(shown)

    def _title(self) -> str:
        run, done, total = self.run, self.step.index + 1, self.pictures.shape[2] * self.pictures.shape[3]
        if run.active:
            return f"Sampling from {run.name}: pixel {done} of {total} · click a picture"
        what = f"{run.count} samples of {run.name}, seed {run.seed}, temperature {run.temperature:g}"
        if done < total:
            what += f": stopped after {done} of {total} pixels"
        return f"{what} · click a pixel for its distribution"

    def shown_pixel(self) -> int:
        """The raster index whose distribution the bars show."""
        if self.pixel is not None and self.pixel <= self.step.index:
            return self.pixel
        return self.step.index

    def _draw_distribution(self, index: int) -> None:
        probabilities = self.run.history[index, self.selected]
        levels = len(probabilities)
        w = self.pictures.shape[3]
        r, c = divmod(index, w)
        level = int(round(float(self.pictures[self.selected, 0, r, c]) * (levels - 1)))
        self.drawn_level = level
        brushes = [pg.mkBrush(DRAWN_BAR if k == level else BAR) for k in range(levels)]
        self.bars.setOpts(x=np.arange(levels), height=probabilities, width=0.8, brushes=brushes)
        self.plot.setXRange(-0.6, levels - 0.4, padding=0)
        entropy = float(entropy_bits(probabilities))
        newest = index == self.step.index
        self.plot.setTitle("The pixel just drawn" if newest and self.run.active else
                           f"Pixel ({r}, {c}) of sample {self.selected}", size="11pt")
        self.pixel_info.setText(f"pixel ({r}, {c}) of sample {self.selected}: level {level} drawn with "
                                f"p={probabilities[level]:.2f}; entropy {entropy:.2f} bits "
                                f"(of {math.log2(levels):.2f} at most)")

    def select(self, sample: int, pixel: int | None = None) -> None:
        """Show sample ``sample``'s distribution for raster index ``pixel`` (None: the newest)."""
        if self.pictures is None or not 0 <= sample < len(self.pictures):
            return
        self.selected, self.pixel = sample, pixel
        self._draw()

    def _grid_clicked(self, x: float, y: float) -> None:
        if self.layout_ is None:
            return
        sample = self.layout_.tile_at(y, x)
        if sample is None:
            return
        ty, tx = self.layout_.origin(sample)
        h, w = self.pictures.shape[2:]
        r, c = int(y) - ty - BORDER, int(x) - tx - BORDER
        on_drawn_pixel = 0 <= r < h and 0 <= c < w and r * w + c <= self.step.index
        # While running, a click on the newest pixel follows the drawing rather than pinning it.
        pinned = on_drawn_pixel and not (self.run.active and r * w + c == self.step.index)
        self.select(sample, r * w + c if pinned else None)

    # --- saving and closing ---------------------------------------------------------------------

    def _save_dialog(self) -> None:
        save_dialog(self, "Save samples", "deepvis-samples.png", "PNG (*.png)", self.save_png)

    def save_png(self, path: str) -> None:
        """The pictures as the CLI's ``sample`` writes them: a grid upscaled to at least 512 pixels,
        without the selection and the marks."""
        if self.pictures is None:
            self.session.message.emit("nothing sampled yet")
            return
        write_or_say(self.session, path,
                     lambda: write_image(path, upscale(picture_grid(self._tiles(), self._columns(), 1), 512)))

    def shutdown(self) -> None:
        self._closed = True
        self._pace.stop()
        if self.job is not None:
            self.job.cancel.set()
