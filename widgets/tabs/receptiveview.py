"""The Receptive field tab: which input pixels (or time steps) one output position of the
selected layer depends on, measured by gradients, against the theory of its convolutions.

Click the picture: the click picks a position of the selected layer's grid, and the picture
shows the measured field (cyan), the theoretical box (yellow outline), the position (red) and,
for an autoregressive model on the input's own grid, the blind spot (orange): earlier pixels in
raster order the position cannot see. Beside it the field grows layer by layer, measured and
in theory, for the same place. 1-D models (a WaveNet) show the input as a strip over time.
The measuring and the growth run on the compute thread, cancellable, and the window keeps
running meanwhile.
"""

import math
import threading
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy,
                               QSplitter, QVBoxLayout, QWidget)

from deepvis.autoregressive.receptive import (Causality, Theory, all_positions, causality, example_input, input_dims,
                                              measured_fields, theoretical_box, theoretical_fields)
from deepvis.core.probe import ACTIVATION_TYPES, OUTPUT, PLUMBING
from deepvis.errors import Cancelled, DeepvisError
from deepvis.live.computethread import compute_thread, outcome
from deepvis.widgets.panes.export import save_dialog, save_picture_or_array
from deepvis.widgets.panes.imagepanel import ImagePanel
from deepvis.widgets.panes.elidedlabel import ElidedLabel
from deepvis.widgets.window.views import DrawnWhenShown, View, register_view

CYAN = np.array((0, 220, 255), np.float32)
FIELD_ALPHA = 0.55
YELLOW = (255, 220, 0)
RED = (230, 40, 40)
ORANGE = (240, 150, 40)
GREY = 128
CAUSALITY_LIMIT = 4096  # positions: one query each, batched; more would be a long wait for one verdict
PICTURE_SIDE = 640  # small inputs are enlarged to about this, so outlines can be thinner than a pixel
STRIP_WIDTH = 1024
STRIP_HEIGHT = 220
RULER_HEIGHT = 30
# Layers whose field is their input's, position by position: measuring them again only costs time.
ELEMENTWISE = PLUMBING | ACTIVATION_TYPES | {"BatchNorm1d", "BatchNorm2d", "InstanceNorm1d", "InstanceNorm2d",
                                              "GroupNorm", "LayerNorm", "Dropout1d"}


@dataclass(frozen=True)
class Query:
    """One measured field and what goes with it, as the job returns it."""
    model: object  # the ModelState it was measured on
    layer: str
    position: tuple[int, ...]  # on the layer's grid
    grid: tuple[int, ...]
    size: tuple[int, ...]  # the input's (H, W) or (T,)
    field: np.ndarray  # bool at the input size
    theory: Theory | None  # None: no convolution before the layer
    box: tuple | None  # the theoretical box clipped to the input, (lo, hi) per axis
    blind_spot: np.ndarray | None  # bool: earlier raster positions not in the field (autoregressive, 2-D)
    verdict: Causality | str | None  # str: why it was not checked; None: not an autoregressive model
    signal: np.ndarray | None  # a 1-D model's example input (channels, T), drawn as the strip

    @property
    def inside_box(self) -> bool:
        """Whether the measured field lies in the theoretical box, as it does for one chain of
        convolutions; two stacks (a gated PixelCNN) or padding outside the convolutions break it."""
        if self.box is None:
            return True
        box = np.zeros(self.size, bool)
        box[tuple(slice(lo, hi + 1) for lo, hi in self.box)] = True
        return not (self.field & ~box).any()


@dataclass(frozen=True)
class GrowthPoint:
    layer: str
    index: int  # in the probe's layer list
    position: tuple[int, ...]
    measured: int  # input positions
    theory: int | None  # input positions in the theoretical box, clipped to the input


class LayerAxis(pg.AxisItem):
    """Layer names under whole-number ticks, as many as fit without overlapping."""

    def __init__(self):
        super().__init__("bottom")
        self.names: list[str] = []

    def tickValues(self, minVal, maxVal, size):
        if not self.names:
            return []
        lo, hi = max(0, math.ceil(minVal)), min(len(self.names) - 1, math.floor(maxVal))
        if hi < lo:
            return []
        # As many as fit side by side: the widest label among them, plus a gap (a fixed 80 px let
        # "3.expand_conv" and "6.expand_conv" run into each other).
        metrics = QFontMetrics(self.style.get("tickFont") or QFont())
        width = max(metrics.horizontalAdvance(short_name(n)) for n in self.names[lo:hi + 1]) + 16
        fit = max(1, int(size / width))
        step = max(1, math.ceil((hi - lo + 1) / fit))
        return [(step, list(range(lo, hi + 1, step)))]

    def tickStrings(self, values, scale, spacing):
        return [short_name(self.names[int(v)]) if 0 <= int(v) < len(self.names) else "" for v in values]


class CountAxis(pg.AxisItem):
    """Counts on a log scale written as counts ("2k"), not as powers of ten."""

    def __init__(self):
        super().__init__("left")

    def logTickStrings(self, values, scale, spacing):
        return [_count(10 ** v) for v in values]


def _count(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.3g}M"
    if value >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:.3g}"


def short_name(name: str, limit: int = 15) -> str:
    """The last two parts of a layer path, without private underscores: "10.project_conv"."""
    parts = [p.lstrip("_") for p in name.split(".")]
    text = ".".join(parts[-2:]) if len(parts) > 1 else parts[0]
    return text if len(text) <= limit else text[:limit - 1] + "…"


@register_view
class ReceptiveFieldView(DrawnWhenShown, View):
    title = "Receptive field"
    order = 47

    _posted = Signal(object, object)  # callback, value: results of compute-thread work
    _posted_progress = Signal(int, int, int)  # job, layers done, layers in all
    _posted_point = Signal(int, object)  # job, GrowthPoint: the growth plot fills in as it is measured

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.query: Query | None = None
        self.picture: np.ndarray | None = None  # what the panel shows and "Save PNG..." writes
        self.scale = 1  # picture pixels per input pixel (2-D)
        self.growth: list[GrowthPoint] = []
        self._at: tuple[float, ...] | None = None  # the clicked place in input coordinates
        self._job = 0  # results of older jobs are dropped
        self._cancel: threading.Event | None = None
        self._verdicts: dict[tuple[int, str], Causality | str] = {}
        self._growth_cache: dict[tuple[int, str, tuple], GrowthPoint] = {}
        self._shown_input = None  # the model input under the picture (None: grey)
        self._drawn_from = None  # the model input of the result last drawn, whether it fitted or not
        self._unavailable = ""  # why this model or layer has no field to show

        self._hint = "Click the picture: the input positions the selected layer's output there depends on."
        self.hint = QLabel(self._hint)
        self.hint.setWordWrap(True)
        self.with_growth = QCheckBox("growth plot")
        self.with_growth.setChecked(True)
        self.with_growth.setToolTip("after each query, measure the field of the same place at every earlier layer "
                                    "(one backward pass per layer)")
        self.stop = QPushButton("Stop")
        self.stop.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setFormat("%v/%m layers")
        self.progress.hide()
        self.save = QPushButton("Save PNG...")
        self.save.setToolTip("the picture with its overlay; pick a .npy name for the measured field (bool)")
        self.panel = ImagePanel("Input", session=session, placeholder="load a convolutional model")
        # The title carries the colour legend: long, and it must not set the window's minimum width.
        self.panel.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.panel.title.setWordWrap(True)
        self.plot_axis = LayerAxis()
        self.plot = pg.PlotWidget(axisItems={"bottom": self.plot_axis, "left": CountAxis()})
        self.plot.setToolTip("hover for a layer's numbers; click a layer to select it")
        self.plot.setLabel("left", "field (input positions)")
        self.plot.showGrid(x=False, y=True, alpha=0.25)
        self.plot.setLimits(yMin=0)  # a field has at least one position: 10^0 on the log scale
        self.plot.setMenuEnabled(False)
        # Top left: fields grow up and to the right, and the theory line runs along the bottom where
        # the model is not a chain of convolutions (a ViT's field is whole after its first block).
        self.plot.addLegend(offset=(10, 10))
        self.measured_curve = self.plot.plot(pen=pg.mkPen("#40dcff", width=2), symbol="o", symbolSize=6,
                                             symbolBrush="#40dcff", symbolPen=None, name="measured")
        self.theory_curve = self.plot.plot(pen=pg.mkPen("#ffdc00", width=1.5, style=Qt.PenStyle.DashLine),
                                           name="theory (chain, clipped)")
        self.selected_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#e64040", width=1))
        self.plot.addItem(self.selected_line)
        self.selected_line.hide()
        self.readout = ElidedLabel(" ")  # under a narrow plot: elided, the whole line in its tooltip
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.setStyleSheet("padding: 2px 4px;")

        top = QHBoxLayout()
        top.addWidget(self.hint, 1)
        for w in (self.with_growth, self.stop, self.progress, self.save):
            top.addWidget(w)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        caption = QLabel("Growth: the same place's field at each layer up to the selected one")
        caption.setWordWrap(True)
        right_layout.addWidget(caption)
        right_layout.addWidget(self.plot, 1)
        right_layout.addWidget(self.readout)
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(self.panel)
        body.addWidget(right)
        body.setStretchFactor(0, 3)
        body.setStretchFactor(1, 2)
        body.setSizes([3000, 2000])  # in proportion: the picture's title no longer asks for its width
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(body, 1)
        layout.addWidget(self.summary)

        self._posted.connect(lambda callback, value: callback(value))
        self._posted_progress.connect(self._show_progress)
        self._posted_point.connect(self._add_point)
        self.panel.clicked.connect(self.query_at)
        self.panel.hovered.connect(self._picture_hovered)
        self.stop.clicked.connect(self.halt)
        self.save.clicked.connect(self._save_dialog)
        self._hover = pg.SignalProxy(self.plot.scene().sigMouseMoved, rateLimit=30, slot=self._plot_hovered)
        self.plot.scene().sigMouseClicked.connect(self._plot_clicked)
        session.modelChanged.connect(self._model_changed)
        session.layerChanged.connect(self._layer_changed)
        session.resultReady.connect(self._on_result)

    # --- what the model and layer allow -----------------------------------------------------

    def dims(self) -> int | None:
        state = self.session.state
        if state is None:
            return None
        try:
            return input_dims(state.model.module)
        except DeepvisError:
            return None

    def input_size(self) -> tuple[int, ...]:
        model = self.session.state.model
        if model.signal is not None:
            return (int(model.signal.length),)
        return (int(model.spec.height), int(model.spec.width))

    def _check(self) -> str:
        """Why there is nothing to measure now ("" when there is)."""
        state = self.session.state
        if state is None:
            return "load a model first"
        try:
            dims = input_dims(state.model.module)
        except DeepvisError:
            return (f"{state.model.name} has no convolutions: a receptive field is the patch of input a convolution "
                    f"stack sees, so there is nothing to show here.")
        if state.model.signal is None and dims != 2 or state.model.signal is not None and dims != 1:
            return f"{state.model.name}: its first convolution is {dims}-D but its input is not"
        layer = state.probe.layer(self.session.layer) if self.session.layer in state.probe else None
        if layer is None:
            return "select a layer in the layer list"
        if len(layer.shape) != dims + 1:
            what = "time steps" if dims == 1 else "pixels"
            return (f"{layer.name} has no {what} (its output is {'x'.join(map(str, layer.shape)) or 'a number'}): "
                    f"select a layer with {what} in the layer list for its receptive field.")
        return ""

    def layer_grid(self, name: str | None = None) -> tuple[int, ...]:
        return tuple(self.session.state.probe.layer(name or self.session.layer).shape[1:])

    def position_for(self, at, grid, size) -> tuple[int, ...]:
        """The grid position over input coordinates ``at``: scaled by the grid over the input."""
        return tuple(min(g - 1, max(0, int(a * g / s))) for a, g, s in zip(at, grid, size))

    # --- queries ----------------------------------------------------------------------------

    def query_at(self, x: float, y: float) -> None:
        """A click on the picture, in its image coordinates."""
        if self.session.state is None or self._unavailable:
            return
        self.query_input(self._input_place(x, y))

    def _input_place(self, x: float, y: float) -> tuple[float, ...]:
        """Picture coordinates to input coordinates: (y, x), or (t,) along the strip."""
        size = self.input_size()
        if len(size) == 1:
            width = self.picture.shape[1] if self.picture is not None else STRIP_WIDTH
            return ((x / width) * size[0],)
        return (y, x)

    def _picture_hovered(self, x: float, y: float) -> None:
        """Where a click would land, before clicking: the strip is finer than the screen."""
        if x < 0 or self.session.state is None or self._unavailable or self._check():
            self.hint.setText(self._hint)
            return
        at = self._input_place(x, y)
        size, grid = self.input_size(), self.layer_grid()
        place = _place(tuple(int(a) for a in at))
        self.hint.setText(f"input {place} → {self.session.layer} {_place(self.position_for(at, grid, size))}"
                          + ("" if grid == size else f" of {'x'.join(map(str, grid))}"))

    def query_position(self, position) -> None:
        """A position of the selected layer's grid ((y, x) or (t,))."""
        if self.session.state is None or self._check():
            return
        grid, size = self.layer_grid(), self.input_size()
        self.query_input(tuple((p + 0.5) * s / g for p, g, s in zip(position, grid, size)))

    def query_input(self, at) -> None:
        """Measure at the place ``at`` in input coordinates, at the selected layer."""
        self._at = tuple(float(a) for a in at)
        self._start_query()

    def _start_query(self) -> None:
        reason = self._check()
        if reason:
            self._show_unavailable(reason)
            return
        self._unavailable = ""
        state, layer = self.session.state, self.session.layer
        size, grid = self.input_size(), self.layer_grid()
        if self._at is None:
            self._at = tuple(s / 2 for s in size)
        position = self.position_for(self._at, grid, size)
        autoregressive = state.model.task == "autoregressive"
        cached = self._verdicts.get((id(state), layer))
        cancel = self._begin()
        job = self._job
        module, probe = state.model.module, state.probe
        dims = len(size)
        compute = compute_thread()

        def work():
            x = example_input(module, size)
            field = measured_fields(module, probe, x, layer, [position], cancel=cancel)[0]
            try:
                theory = theoretical_fields(module, probe, [layer], x[:1])[layer]
                box = clipped_box(theory, position, size)
            except DeepvisError:  # the layer runs before any convolution
                theory = box = None
            blind = None
            if autoregressive and dims == 2 and grid == size:
                earlier = np.zeros(size, bool)
                earlier.reshape(-1)[:int(np.ravel_multi_index(position, size))] = True
                blind = earlier & ~field
            verdict = None
            if autoregressive:
                verdict = cached
                if verdict is None:
                    if grid != size:
                        verdict = (f"not checked: {layer}'s {'x'.join(map(str, grid))} positions are not the "
                                   f"input's {'x'.join(map(str, size))}")
                    elif math.prod(grid) > CAUSALITY_LIMIT:
                        verdict = f"not checked: {math.prod(grid)} positions (at most {CAUSALITY_LIMIT})"
                    else:
                        compute.breathe()
                        positions = all_positions(grid)
                        verdict = causality(measured_fields(module, probe, x, layer, positions, cancel=cancel),
                                            positions)
            signal = x[0].detach().cpu().numpy() if dims == 1 else None
            return Query(state, layer, position, grid, size, field, theory, box, blind, verdict, signal)

        def finish(future):
            self._posted.emit(self._query_done, (job, *outcome(future)))

        self.progress.hide()
        self._say(f"measuring {layer} at {_place(position)}...")
        if self.query is None:  # nothing to show yet: say so over the empty picture
            self.set_working(f"measuring the receptive field of {layer}...")
        compute.submit(work).add_done_callback(finish)

    def _say(self, text: str) -> None:
        """The line above the picture (hovering shows where a click lands instead, for a while)."""
        self._hint = text
        self.hint.setText(text)

    def _begin(self) -> threading.Event:
        """A new job: the running one is told to stop and its results are dropped."""
        self.halt()
        self._job += 1
        self._cancel = threading.Event()
        self.stop.setEnabled(True)
        return self._cancel

    def halt(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def _query_done(self, value) -> None:
        job, query, error = value
        if job != self._job:
            return
        self.set_working("")
        if query is None:
            self._idle()
            self._say("stopped" if not error else "the field could not be measured")
            if error:
                self.session.message.emit(f"receptive field: {error}")
            return
        self.query = query
        if isinstance(query.verdict, Causality):
            self._verdicts[(id(query.model), query.layer)] = query.verdict
        self._say("Click the picture for another position; another layer in the layer list measures "
                          "the same place there.")
        self.redraw()
        self.summary.setText(self.describe(query))
        if self.with_growth.isChecked():
            self.grow()
        else:
            self._idle()

    def _idle(self) -> None:
        self.stop.setEnabled(False)
        self.progress.hide()
        self._cancel = None

    # --- growth -----------------------------------------------------------------------------

    def growth_layers(self) -> list:
        """Layers with pixels (time steps) up to the selected one, without those that only act
        value by value (their field is their input's)."""
        state = self.session.state
        dims = len(self.input_size())
        layers = state.probe.layers
        selected = state.probe.layer(self.session.layer)
        stop = layers.index(selected)
        return [(i, info) for i, info in enumerate(layers[:stop + 1])
                if len(info.shape) == dims + 1 and (info is selected or (info.type_name not in ELEMENTWISE
                                                                         and info.name != OUTPUT))]

    def grow(self) -> None:
        """Measure the field of the clicked place at every layer up to the selected one."""
        if self.session.state is None or self._at is None or self._check():
            return
        state, size, at = self.session.state, self.input_size(), self._at
        layers = [(i, info.name, self.position_for(at, tuple(info.shape[1:]), size))
                  for i, info in self.growth_layers()]
        known = {name: self._growth_cache.get((id(state), name, pos)) for _, name, pos in layers}
        if self._cancel is None or self._cancel.is_set():
            cancel = self._begin()
        else:
            cancel = self._cancel  # the query's job goes on into its growth
        job = self._job
        self.growth = []
        self._draw_growth()
        self.progress.setRange(0, len(layers))
        self.progress.setValue(0)
        self.progress.show()
        module, probe = state.model.module, state.probe
        compute = compute_thread()

        def work():
            x = example_input(module, size)
            theories = {}
            try:
                theories = theoretical_fields(module, probe, [name for _, name, _ in layers], x[:1])
            except DeepvisError:  # some layers run before any convolution: per layer then
                for _, name, _ in layers:
                    try:
                        theories.update(theoretical_fields(module, probe, [name], x[:1]))
                    except DeepvisError:
                        pass
            points = []
            for k, (index, name, pos) in enumerate(layers):
                if cancel.is_set():
                    raise Cancelled()
                point = known.get(name)
                if point is None:
                    measured = int(measured_fields(module, probe, x, name, [pos], cancel=cancel)[0].sum())
                    theory = theories.get(name)
                    # Placed and clipped to the input: near a border the field is cut, measured or not.
                    clipped = None if theory is None else math.prod(
                        hi - lo + 1 for lo, hi in clipped_box(theory, pos, size))
                    point = GrowthPoint(name, index, pos, measured, clipped)
                points.append(point)
                self._posted_point.emit(job, point)
                self._posted_progress.emit(job, k + 1, len(layers))
                compute.breathe()  # the live view takes a turn between layers
            return points

        def finish(future):
            self._posted.emit(self._growth_done, (job, *outcome(future)))

        compute.submit(work).add_done_callback(finish)

    def working(self) -> str:
        # The growth plot counts as the first look too: a screenshot of its first point alone
        # read as a broken plot (the tab's own progress bar counts the layers meanwhile).
        if super().working():
            return super().working()
        growing = self.progress.isVisibleTo(self) and self._cancel is not None and self.query is not None
        return f"measuring the field at each layer ({self.progress.value()}/{self.progress.maximum()})" \
            if growing else ""

    def _show_progress(self, job: int, done: int, total: int) -> None:
        if job == self._job:
            self.progress.setRange(0, total)
            self.progress.setValue(done)

    def _add_point(self, job: int, point: GrowthPoint) -> None:
        if job != self._job:
            return
        self._growth_cache[(id(self.session.state), point.layer, point.position)] = point
        self.growth.append(point)
        self._draw_growth()

    def _growth_done(self, value) -> None:
        job, points, error = value
        if job != self._job:
            return
        self._idle()
        if error:
            self.session.message.emit(f"receptive field growth: {error}")
        elif points is None:
            self.readout.setText(f"growth stopped after {len(self.growth)} layer{'s' * (len(self.growth) != 1)}")
        else:
            self.readout.setText(self._growth_words())

    def _growth_words(self) -> str:
        if not self.growth:
            return " "
        last = self.growth[-1]
        return (f"{len(self.growth)} layers; at {last.layer}: {last.measured} measured"
                + ("" if last.theory is None else f", {last.theory} in theory"))

    def _draw_growth(self) -> None:
        points = self.growth
        self.plot_axis.names = [p.layer for p in points]
        if not points:
            self.measured_curve.setData([], [])
            self.theory_curve.setData([], [])
            self.selected_line.hide()
            return
        xs = np.arange(len(points), dtype=float)
        measured = np.array([max(1, p.measured) for p in points], float)
        theory = [(i, p.theory) for i, p in enumerate(points) if p.theory is not None]
        values = np.concatenate([measured, [t for _, t in theory]])
        # From one pixel to the whole picture is a factor of thousands: read on a log scale.
        self.plot.setLogMode(y=bool(values.max() / max(1.0, values.min()) > 30))
        self.measured_curve.setData(xs, measured)
        self.theory_curve.setData([i for i, _ in theory], [max(1, t) for _, t in theory])
        if points[-1].layer == self.session.layer:
            self.selected_line.setValue(len(points) - 1)
            self.selected_line.show()
        self.plot.setXRange(-0.5, max(len(points) - 0.5, 0.5), padding=0.02)
        self.plot.enableAutoRange(axis="y")
        self.plot_axis.picture = None  # names changed: redraw the ticks
        self.plot_axis.update()

    def _plot_index(self, scene_pos) -> int | None:
        if not self.growth or not self.plot.sceneBoundingRect().contains(scene_pos):
            return None
        x = self.plot.getPlotItem().vb.mapSceneToView(scene_pos).x()
        i = int(round(x))
        return i if 0 <= i < len(self.growth) else None

    def _plot_hovered(self, event) -> None:
        i = self._plot_index(event[0])
        if i is None:
            self.readout.setText(self._growth_words())
            return
        p = self.growth[i]
        self.readout.setText(f"{p.layer} at {_place(p.position)}: {p.measured} measured"
                             + ("" if p.theory is None else f", {p.theory} in theory"))

    def _plot_clicked(self, event) -> None:
        i = self._plot_index(event.scenePos())
        if i is not None and self._cancel is None:
            self.session.set_layer(self.growth[i].layer)

    # --- the model, the layer and live results ------------------------------------------------

    def _model_changed(self, _state) -> None:
        self.halt()
        self._job += 1
        self._idle()
        self.set_working("")
        self.query, self._at, self.picture = None, None, None
        self.growth = []
        self._draw_growth()
        self._verdicts.clear()
        self._growth_cache.clear()
        self._shown_input = None
        self.summary.setText("")
        self.readout.setText(" ")
        self.redraw()  # the session's layerChanged follows and measures there

    def _layer_changed(self, _name: str) -> None:
        if self.isVisible():
            self._start_query()
        else:
            self._missed_result = True  # drawn (and measured) when shown

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.session.state is not None and (self.query is None or self.query.layer != self.session.layer
                                               or self.query.model is not self.session.state):
            if self._cancel is None:
                self._start_query()

    def draw_missed(self) -> None:
        self.redraw()

    def _on_result(self) -> None:
        if self.hidden_now():
            return
        result = self.session.result
        if result is not None and result.model_input is not self._drawn_from and self.picture is not None:
            self.redraw()

    def _show_unavailable(self, reason: str) -> None:
        self.set_working("")
        self.halt()
        self._job += 1
        self._idle()
        self._unavailable = reason
        self.query = None
        self.growth = []
        self._draw_growth()
        self._say(reason)
        self.summary.setText("")
        if self.dims() is None:
            self.picture = None
            self.panel.clear(reason)
            self.panel.set_title("Receptive field")
        else:
            self.redraw()

    # --- the picture ----------------------------------------------------------------------

    def redraw(self) -> None:
        state = self.session.state
        if state is None or self.dims() is None:
            self.picture = None
            self.panel.clear(self._unavailable or "load a convolutional model")
            return
        size = self.input_size()
        if len(size) == 1:
            self.picture = self._strip(size[0])
            self.panel.set_rgb(self.picture)
            rate = state.model.signal.rate
            self.panel.set_title(f"Input signal, {size[0]} samples" + (f" at {rate:g} Hz" if rate else "")
                                 + " (a random example) · click a time step · cyan: measured, yellow: theory, "
                                   "red: the step")
            return
        self.picture = self._picture(size)
        # The picture is enlarged: clicks still come back in input pixels.
        self.panel.data = self.picture
        self.panel.canvas.show_rgb(self.picture, scale=1 / self.scale, shape=size)
        legend = "cyan: measured field, yellow: theory, red: the position"
        if self.query is not None and self.query.blind_spot is not None:
            legend += ", orange: blind spot" + ("" if self.query.blind_spot.any() else " (none here)")
        source = "the current model input" if self._shown_input is not None else "grey until the first frame"
        self.panel.set_title(f"Input {size[0]}x{size[1]} ({source}) · click a position · {legend}")

    def _base(self, size) -> np.ndarray:
        result = self.session.result
        image = self._drawn_from = getattr(result, "model_input", None)
        if image is not None and tuple(image.shape[:2]) == tuple(size):
            self._shown_input = image
            return np.asarray(image, np.uint8)
        self._shown_input = None
        return np.full((*size, 3), GREY, np.uint8)

    def _picture(self, size) -> np.ndarray:
        h, w = size
        s = self.scale = max(1, math.ceil(PICTURE_SIDE / max(h, w)))
        base = self._base(size)
        q = self.query if self.query is not None and self.query.size == tuple(size) else None
        if q is not None:
            base = base.astype(np.float32)
            base[q.field] = base[q.field] * (1 - FIELD_ALPHA) + CYAN * FIELD_ALPHA
            base = base.round().astype(np.uint8)
            if q.blind_spot is not None:
                base[q.blind_spot] = ORANGE
        out = np.ascontiguousarray(np.repeat(np.repeat(base, s, 0), s, 1))
        if s >= 12:  # big pixels: a faint grid makes them countable
            out[::s] = (out[::s] * 0.75).astype(np.uint8)
            out[:, ::s] = (out[:, ::s] * 0.75).astype(np.uint8)
        if q is None:
            return out
        width = 3 if s >= 16 else 2
        if q.box is not None:
            (y0, y1), (x0, x1) = q.box
            # Dashed when the field reaches outside: the theory does not hold for this model.
            _outline(out, y0 * s, y1 * s + s - 1, x0 * s, x1 * s + s - 1, YELLOW, width,
                     dash=0 if q.inside_box else 4 * width)
        # The queried position covers this much of the input: one pixel on the input's own grid.
        cy0, cy1, cx0, cx1 = _cell(q.position[0], q.grid[0], h) + _cell(q.position[1], q.grid[1], w)
        if (cy1 - cy0, cx1 - cx0) == (1, 1):
            out[cy0 * s:cy1 * s, cx0 * s:cx1 * s] = RED
        else:
            _outline(out, cy0 * s, cy1 * s - 1, cx0 * s, cx1 * s - 1, RED, width)
        return out

    def _strip(self, length: int) -> np.ndarray:
        from deepvis.render.signals import waveform

        q = self.query if self.query is not None and self.query.size == (length,) else None
        signal = q.signal if q is not None and q.signal is not None else np.zeros((1, length), np.float32)
        strip = waveform(signal, width=STRIP_WIDTH, height=STRIP_HEIGHT).astype(np.float32)
        starts = (np.arange(STRIP_WIDTH) * length) // STRIP_WIDTH  # the first time step under each column
        if q is not None:
            columns = np.logical_or.reduceat(q.field, starts)
            strip[:, columns] = strip[:, columns] * (1 - FIELD_ALPHA) + CYAN * FIELD_ALPHA
        strip = strip.round().astype(np.uint8)
        if q is not None:
            col = _columns_of(starts, length)
            if q.box is not None:
                (t0, t1), = q.box
                _outline(strip, 0, STRIP_HEIGHT - 1, col(t0)[0], col(t1)[1], YELLOW, 2, dash=0 if q.inside_box else 8)
            c0, c1 = _cell(q.position[0], q.grid[0], length)
            a, b = col(c0)[0], col(c1 - 1)[1]
            if b - a < 3:  # a time step narrower than a line: a line three columns wide
                a, b = max(0, a - 1), min(STRIP_WIDTH - 1, max(b, a + 1))
                strip[:, a:b + 1] = RED
            else:
                _outline(strip, 0, STRIP_HEIGHT - 1, a, b, RED, 2)
        ruler = _ruler(length, STRIP_WIDTH)
        if q is not None:  # the step marked under the strip too, where no outline covers it
            centre = (a + b) // 2
            for row in range(7):
                ruler[row, max(0, centre - row // 2 - 1):centre + row // 2 + 2] = RED
        return np.ascontiguousarray(np.vstack([strip, ruler]))

    # --- words ----------------------------------------------------------------------------

    def describe(self, q: Query) -> str:
        n = int(q.field.sum())
        dims = len(q.size)
        extent = [int(np.ptp(np.nonzero(q.field)[a])) + 1 if n else 0 for a in range(dims)]
        lines = [f"<b>{q.layer}</b> at {_place(q.position)} of its {'x'.join(map(str, q.grid))} "
                 f"{'time steps' if dims == 1 else 'positions'}: depends on <b>{n}</b> input "
                 f"{'samples' if dims == 1 else 'pixels'}, spanning {'x'.join(map(str, extent))}"
                 + (f" (samples {np.flatnonzero(q.field).min()}–{np.flatnonzero(q.field).max()})" if dims == 1 and n
                    else "")]
        if q.theory is None:
            lines.append("theory: no convolution runs before this layer")
        else:
            t = q.theory
            span = ", ".join(f"{axis} {lo}–{hi}" for axis, (lo, hi) in
                             zip(("samples",) if dims == 1 else ("rows", "columns"), q.box))
            if not q.inside_box:
                note = (" · the field reaches outside the box: this model's paths are not one chain of its "
                        "convolutions (parallel stacks, padding outside them), so the theory is a rough guide here")
            elif n < math.prod(hi - lo + 1 for lo, hi in q.box):
                note = " · masks and rectifiers only cut it"
            else:
                note = ""
            lines.append(f"theory for a chain of its {t.convolutions} convolutions and pools: "
                         f"{'x'.join(map(str, t.size))} (stride {'x'.join(map(str, t.jump))}); box {span}, "
                         f"clipped to the input{note}")
        if isinstance(q.verdict, Causality):
            v = q.verdict
            if v.strict:
                words = "causal, strictly: no position depends on a later input nor on itself"
            elif v.causal:
                words = "causal, not strictly: no position depends on a later input, but some on their own"
            else:
                words = f"NOT causal: {v.violations} positions depend on later inputs, e.g. {_place(v.first)}"
            lines.append(f"causality of {q.layer} (all {math.prod(q.grid)} positions measured): {words}")
            if q.blind_spot is not None:
                missed = int(q.blind_spot.sum())
                lines.append(f"blind spot: {missed} earlier pixel{'s' if missed > 1 else ''} (raster order) this "
                             f"position cannot see" if missed else "no blind spot: every earlier pixel is seen")
        elif isinstance(q.verdict, str):
            lines.append(f"causality {q.verdict}")
        return "<br>".join(lines)

    # --- export ---------------------------------------------------------------------------

    def _save_dialog(self) -> None:
        save_dialog(self, "Save receptive field", "deepvis-receptive-field.png",
                    "PNG (*.png);;Measured field, NumPy (*.npy)", self.save_to)

    def save_to(self, path: str) -> None:
        """The overlay picture, or with a .npy name the measured field (bool, input size)."""
        field = None if self.query is None else self.query.field
        save_picture_or_array(self.session, path, self.picture, lambda: field,
                              "nothing measured yet: click the picture first")

    def shutdown(self) -> None:
        self.halt()


def clipped_box(theory: Theory, position, size) -> tuple[tuple[int, int], ...]:
    """The theoretical box of ``position`` cut to the input, (first, last) per axis."""
    return tuple((max(0, lo), min(n - 1, hi)) for (lo, hi), n in zip(theoretical_box(theory, position), size))


def _place(position) -> str:
    return f"t={position[0]}" if len(position) == 1 else f"({position[0]}, {position[1]})"


def _cell(p: int, grid: int, size: int) -> tuple[int, int]:
    """The input range [first, end) that grid position ``p`` stands for, scaled."""
    return (p * size) // grid, max((p * size) // grid + 1, ((p + 1) * size) // grid)


def _columns_of(starts: np.ndarray, length: int):
    """For a time step, the first and last strip column that show it (several when the strip
    is wider than the signal, one when it is narrower)."""
    def columns(t: int) -> tuple[int, int]:
        last = int(np.searchsorted(starts, min(max(t, 0), length - 1), side="right")) - 1
        return int(np.searchsorted(starts, starts[last], side="left")), last
    return columns


def _outline(image: np.ndarray, y0: int, y1: int, x0: int, x1: int, colour, width: int, dash: int = 0) -> None:
    """A rectangle's border, drawn inside [y0, y1] x [x0, x1] (inclusive); dashed with ``dash``."""
    h, w = image.shape[:2]
    y0, y1, x0, x1 = max(0, y0), min(h - 1, y1), max(0, x0), min(w - 1, x1)
    border = np.zeros((h, w), bool)
    border[y0:min(y0 + width, y1 + 1), x0:x1 + 1] = True
    border[max(y1 - width + 1, y0):y1 + 1, x0:x1 + 1] = True
    border[y0:y1 + 1, x0:min(x0 + width, x1 + 1)] = True
    border[y0:y1 + 1, max(x1 - width + 1, x0):x1 + 1] = True
    if dash:
        yy, xx = np.ogrid[:h, :w]
        border &= ((yy + xx) // dash) % 2 == 0
    image[border] = colour


def _ruler(length: int, width: int) -> np.ndarray:
    """Time-step ticks and numbers under the strip."""
    from deepvis.io.images import quiet_cv2

    cv2 = quiet_cv2()
    out = np.full((RULER_HEIGHT, width, 3), 30, np.uint8)
    step = next(n for n in (m * 10 ** e for e in range(10) for m in (1, 2, 5)) if length / n <= 10)
    for t in range(0, length, step):
        x = int(t * width / length)
        out[:5, x] = (200, 200, 200)
        cv2.putText(out, str(t), (min(x + 3, width - 48), 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (200, 200, 200), 1,
                    cv2.LINE_AA)
    return out
