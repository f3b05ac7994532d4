"""The selected unit: its channel enlarged (optionally over the input), stats and history, and
for a transformer's token layer the CLS token's vector, which the patch grid leaves out."""

import time
from collections import deque

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QSlider, QVBoxLayout, QWidget
from PySide6.QtCore import Qt

from deepvis.render.colormaps import apply_colormap
from deepvis.widgets.panes.imagepanel import ImagePanel
from deepvis.widgets.panes.readout import Readout
from deepvis.widgets.panes.unitpictures import UnitPictures
from deepvis.widgets.window.views import DrawnWhenShown

HISTORY = 120
PLOT_INTERVAL_S = 0.2
DEAD_COLORMAP = "gray"


class UnitPane(DrawnWhenShown, QWidget):
    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.colormap = "viridis"
        self.panel = ImagePanel("Unit", session=session)
        self.overlay = QCheckBox("overlay on input")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(60)
        self.opacity.setMaximumWidth(90)
        self.stats = Readout(lines=2)
        self.plot = pg.PlotWidget()
        self.plot.setMaximumHeight(110)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.setLabel("left", "max")
        self.curve = self.plot.plot(pen=pg.mkPen("#f0a030", width=1.5))
        self.history: deque[float] = deque(maxlen=HISTORY)
        # A token layer's CLS vector over all units, the selected unit marked.
        self.prefix_plot = pg.PlotWidget()
        # Room for three tick labels beside the curve and the unit axis below it: at 75 px the
        # plot was 30 px tall and its tick labels overlapped and ran off its top.
        self.prefix_plot.setFixedHeight(110)
        # The top tick's label is centred on the plot's top edge: half of it went past the widget.
        self.prefix_plot.getPlotItem().setContentsMargins(1, 8, 1, 1)
        self.prefix_plot.setMouseEnabled(False, False)
        self.prefix_plot.hideButtons()
        self.prefix_plot.setLabel("left", "CLS")
        self.prefix_plot.setLabel("bottom", "unit")
        self.prefix_curve = self.prefix_plot.plot(pen=pg.mkPen("#7fb0e0", width=1))
        self.prefix_mark = self.prefix_plot.plot(pen=None, symbol="o", symbolSize=7, symbolBrush="#f0a030")
        self.prefix_plot.hide()
        self.cls_value: float | None = None
        self.dead = False  # the unit shown has no positive activation on its frame
        self._plotted_at = 0.0
        row = QHBoxLayout()
        row.addWidget(self.overlay)
        row.addWidget(self.opacity)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.panel, 3)
        layout.addLayout(row)
        layout.addWidget(self.stats)
        layout.addWidget(self.prefix_plot)
        layout.addWidget(self.plot)
        self.pictures = UnitPictures(session)
        layout.addWidget(self.pictures, 2)
        session.resultReady.connect(self.on_result)
        session.modelChanged.connect(self._model_changed)
        session.unitChanged.connect(self._selection_changed)
        session.layerChanged.connect(self._selection_changed)
        self.overlay.toggled.connect(lambda _v: self.on_result())
        self.opacity.valueChanged.connect(lambda _v: self.on_result())

    def _model_changed(self, state) -> None:
        # A 1-D model's units are in the Signals tab: no picture results come to draw them, and
        # the history of their maxima would be an empty axis (on_result shows it for live input).
        for w in (self.plot, self.overlay, self.opacity):
            w.setVisible(not self.session.takes_signals)
        if self.session.takes_signals:  # no picture results will come: say where the units are shown
            self.panel.clear(f"{state.model.name} takes signals: the Signals tab maps the layer's channels over time")
            self.panel.set_stale(False)
        elif self.panel.data is None:
            self.panel.clear("waiting for input...")

    def _selection_changed(self, *_):
        self.history.clear()
        self.curve.setData([])
        self.on_result()

    def on_result(self) -> None:
        result, session = self.session.result, self.session
        if self.hidden_now():
            return
        if result is None or result.settings.grid_layer != session.layer:
            self.panel.set_stale(not self.session.takes_signals)
            return
        try:
            channel = result.channel(session.unit)
        except (KeyError, IndexError):
            return
        lo, hi = (float(channel.min()), float(channel.max()))
        # A unit that does not fire on this frame is drawn in grey, so it is not read as a response.
        self.dead = hi <= 0
        self.panel.set_title(f"Unit {session.unit} of {session.layer}" + (" · dead on this frame" if self.dead else ""))
        colormap = DEAD_COLORMAP if self.dead else self.colormap
        if self.overlay.isChecked() and channel.size > 1:
            self.panel.set_rgb(self._overlay(result.model_input, channel, lo, hi, colormap))
        else:
            if self.dead:  # its own pattern, low-contrast in the middle greys
                span = hi - lo if hi > lo else 1.0
                levels = (lo - span, hi + span)
            elif result.settings.normalization == "layer":
                levels = result.grid_levels
            else:
                levels = (lo, hi if hi > lo else lo + 1)
            self.panel.set_map(np.ascontiguousarray(channel, np.float32), levels, colormap)
        self.panel.set_stale(session.stale(result))
        y, x = np.unravel_index(int(np.argmax(channel)), channel.shape)
        cls = self._show_prefix(result.prefix, session.unit)
        # Where a dead unit peaks says nothing (often a tie of zeros).
        peak = f"dead on this frame (max {hi:.4g} ≤ 0)" if self.dead else f"max {hi:.4g} at (y {y}, x {x})"
        self.stats.setText(f"{peak}\nmean {float(channel.mean()):.4g}   min {lo:.4g}"
                           + (f"   CLS {cls:.4g}" if cls is not None else ""))
        # The history is of frames: a still image has one value and the plot would be an empty
        # axis, so it shows only for live input (camera, video, pattern).
        source = session.source
        live = source is not None and source.is_live
        if live != self.plot.isVisibleTo(self):
            self.plot.setVisible(live)
        if not live:
            return
        self.history.append(hi)
        # Axis layout is the costly part of a plot update; a few updates a second read the same.
        now = time.monotonic()
        if now - self._plotted_at > PLOT_INTERVAL_S:
            self._plotted_at = now
            self.curve.setData(np.fromiter(self.history, float), skipFiniteCheck=True)

    def _show_prefix(self, prefix: np.ndarray | None, unit: int) -> float | None:
        """Plot the CLS vector of a token layer; its value at ``unit``, or None for other layers."""
        shown = prefix is not None and 0 <= unit < prefix.shape[1]
        if shown != self.prefix_plot.isVisibleTo(self):
            self.prefix_plot.setVisible(shown)
        if not shown:
            self.cls_value = None
            return None
        cls = prefix[0]
        self.cls_value = float(cls[unit])
        self.prefix_curve.setData(cls, skipFiniteCheck=True)
        self.prefix_mark.setData([unit], [self.cls_value])
        return self.cls_value

    def draw_missed(self) -> None:
        self.on_result()

    def _overlay(self, base: np.ndarray, channel: np.ndarray, lo: float, hi: float, colormap: str) -> np.ndarray:
        scaled = (channel - lo) / (hi - lo) if hi > lo else np.zeros_like(channel)
        heat = apply_colormap(cv2.resize(scaled.astype(np.float32), (base.shape[1], base.shape[0]),
                                         interpolation=cv2.INTER_LINEAR), colormap)
        alpha = self.opacity.value() / 100.0
        return cv2.addWeighted(heat, alpha, base, 1.0 - alpha, 0.0)
