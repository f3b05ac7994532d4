"""The Signals tab: a 1-D model playing a long recording.

Top: the whole recording with the window the model sees (drag it to seek), and under it the
class timeline, each class's probability at every window played so far. Middle: the window's
waveform with the top class's gradient over time, and the selected layer's activation map
(channels x time, on the same time axis). Right: the top-k predictions and the first
convolution's filters as waveforms and magnitude spectra.

Playback is a ``SignalPlayer`` on the compute thread; its results reach this view latest-wins
through one queued signal, so a slow repaint skips windows instead of queueing them.
"""

import threading
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QGridLayout, QHBoxLayout, QLabel, QPushButton,
                               QSpinBox, QSplitter, QVBoxLayout, QWidget)

from deepvis.errors import DeepvisError
from deepvis.io.signals import Signal as Recording
from deepvis.io.signals import read_signal
from deepvis.live.computethread import compute_thread, outcome
from deepvis.live.signalplayer import PlaybackSettings, SignalPlayer
from deepvis.render.colormaps import lut
from deepvis.render.signals import filter_responses
from deepvis.resources import SAMPLE_SETS
from deepvis.widgets.panes.export import save_dialog
from deepvis.widgets.window.views import View, register_view

TIME_AXIS_WIDTH = 34  # px: the left axes of the two plots over the recording's time, lined up
SPEEDS = {"0.25x": 0.25, "0.5x": 0.5, "1x (real time)": 1.0, "2x": 2.0, "4x": 4.0, "as fast as it runs": 0.0}
OVERVIEW_POINTS = 4000  # min/max pairs drawn for the whole recording, however long it is
MAX_FILTERS_DRAWN = 16
BAR_CELLS = 12  # a probability bar's full width, in characters
BAR_EIGHTHS = " \u258f\u258e\u258d\u258c\u258b\u258a\u2589"  # partial blocks, 1/8 to 7/8
CLASS_COLOURS = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
                 "#bab0ac"]


def envelope(data: np.ndarray, points: int = OVERVIEW_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """x (sample index) and y of a min/max outline of a (samples,) trace: a long recording drawn
    with a few thousand vertices that still shows every peak."""
    n = data.shape[0]
    if n <= 2 * points:
        return np.arange(n, dtype=np.float64), data.astype(np.float64)
    edges = np.linspace(0, n, points + 1).astype(np.int64)
    lo = np.minimum.reduceat(data, edges[:-1])
    hi = np.maximum.reduceat(data, edges[:-1])
    x = np.repeat(edges[:-1], 2).astype(np.float64)
    y = np.stack([lo, hi], 1).reshape(-1).astype(np.float64)
    return x, y


def first_filters(model):
    """(layer name, dilation, taps, freqs, magnitude) of the first Conv1d that filters in time:
    WaveNets open with a 1x1 convolution, whose one tap per filter has a flat spectrum."""
    for name, module in model.module.named_modules():
        if isinstance(module, torch.nn.Conv1d) and module.kernel_size[0] > 1:
            taps, freqs, magnitude = filter_responses(module.weight.detach().float().cpu().numpy(),
                                                      model.signal.rate)
            return name, int(module.dilation[0]), taps, freqs, magnitude
    return None


@register_view
class SignalView(View):
    title = "Signals"
    order = 46

    _posted_result = Signal()
    _posted_error = Signal(str)
    _posted_player = Signal(object, object, str)  # SignalPlayer or None, filter responses, error
    drawn = Signal(int)  # results drawn so far (a --screenshot waits for them)

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.player: SignalPlayer | None = None
        self.recording: Recording | None = None
        self.recording_name = ""
        self.result = None  # the newest SignalResult drawn
        self.drawn_count = 0
        self.timeline: dict[int, np.ndarray] = {}  # window start -> every class's probability
        self.filters = None  # (taps, freqs, magnitude) of the first convolution
        self._pending = None
        self._unrecorded: list[tuple] = []  # (player, start, probabilities) of results not yet in the timeline
        self._pending_lock = threading.Lock()
        self._building = 0  # players requested; a slower older request is dropped
        self._waiting_file: str | None = None  # opened before a 1-D model was loaded

        self.open_button = QPushButton("Open signal...")
        self.demo_button = QPushButton("Demo recording")
        self.demo_button.setToolTip("the bundled recording: 15 s of held-out sine, square, sawtooth, chirp and noise-burst "
                                    "signals, one per window, the kinds signals_wavenet was trained on")
        self.play_button = QPushButton("Pause")
        self.speed = QComboBox()
        self.speed.addItems(list(SPEEDS))
        self.speed.setCurrentText("1x (real time)")
        self.hop = QSpinBox()
        self.hop.setRange(1, 1_000_000)
        self.hop.setPrefix("hop ")
        self.hop.setSuffix(" samples")
        self.loop = QCheckBox("loop")
        self.loop.setChecked(True)
        self.saliency = QCheckBox("gradient over time")
        self.save_button = QPushButton("Save PNG...")
        self.timeline_button = QPushButton("Timeline CSV...")
        self.info = QLabel("")
        self.info.setWordWrap(True)
        # Two rows, files and playback, so the tab does not widen the window's minimum.
        files, playback = QHBoxLayout(), QHBoxLayout()
        for w in (self.open_button, self.demo_button, self.save_button, self.timeline_button):
            files.addWidget(w)
        for w in (self.play_button, self.speed, self.hop, self.loop, self.saliency):
            playback.addWidget(w)
        files.addStretch(1)
        playback.addStretch(1)

        self.overview = pg.PlotWidget()
        self.overview.setMenuEnabled(False)
        self.overview.setMouseEnabled(x=True, y=False)
        self.overview.setLabel("bottom", "time", units="s")
        # The class timeline below is x-linked to this plot, and pyqtgraph lines linked views up
        # on the screen: with this plot's left axis hidden and the timeline's shown, the
        # timeline's view began 2.4 s into the recording and its first windows were cut off.
        # Both left axes take the same width; this one shows no values.
        self.overview.getAxis("left").setStyle(showValues=False)
        self.overview.getAxis("left").setWidth(TIME_AXIS_WIDTH)
        self.overview_curve = self.overview.plot(pen=pg.mkPen("#78beff", width=1))
        self.region = pg.LinearRegionItem(brush=pg.mkBrush(255, 200, 60, 60), pen=pg.mkPen("#ffc83c", width=2))
        self.region.setZValue(10)
        self.overview.addItem(self.region)
        self.region.sigRegionChangeFinished.connect(self._region_moved)

        self.classes_plot = pg.PlotWidget()
        self.classes_plot.setMenuEnabled(False)
        self.classes_plot.setMouseEnabled(x=True, y=False)
        self.classes_plot.setYRange(0, 1)
        self.classes_plot.setLabel("left", "p")
        self.classes_plot.getAxis("left").setWidth(TIME_AXIS_WIDTH)
        self.classes_plot.setXLink(self.overview)
        self._legend()
        self.class_curves: list[pg.PlotDataItem] = []
        # A model with one output per window: its value over time against a threshold the user drags.
        self.threshold = pg.InfiniteLine(0.5, angle=0, movable=True,
                                         pen=pg.mkPen("#ffc83c", width=1, style=Qt.PenStyle.DashLine),
                                         label="threshold {value:.2f}", labelOpts={"position": 0.55, "color": "#ffc83c"})
        self.threshold.sigPositionChangeFinished.connect(lambda _: self._threshold_moved())

        self.window_plot = pg.PlotWidget()
        self.window_plot.setMenuEnabled(False)
        self.window_plot.setLabel("bottom", "sample in window")
        self.window_plot.hideAxis("left")
        self.window_curve = self.window_plot.plot(pen=pg.mkPen("#78beff", width=1))
        # |gradient| drawn as a filled band under the trace, scaled to the trace's height.
        self.saliency_curve = pg.PlotDataItem(pen=pg.mkPen("#ff8c28", width=1), brush=pg.mkBrush(255, 140, 40, 90),
                                              fillLevel=-1.0)
        self.window_plot.addItem(self.saliency_curve)

        self.map_plot = pg.PlotWidget()
        self.map_plot.setMenuEnabled(False)
        self.map_plot.setLabel("left", "channel")
        self.map_plot.setXLink(self.window_plot)
        self.map_plot.invertY(True)
        self.map_image = pg.ImageItem(axisOrder="row-major")
        self.map_image.setLookupTable(lut("viridis"))
        self.map_plot.addItem(self.map_image)
        self.map_title = QLabel("")

        self.predictions = QLabel("")
        self.predictions.setTextFormat(Qt.TextFormat.RichText)
        self.predictions.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.taps_plot = pg.PlotWidget(title="first-layer filters")
        self.taps_plot.setMenuEnabled(False)
        self.taps_plot.setLabel("bottom", "tap")
        self.spectra_plot = pg.PlotWidget(title="their magnitude spectra")
        self.spectra_plot.setMenuEnabled(False)
        self.spectra_plot.setLabel("left", "dB")
        self.filter_curves: list[tuple[pg.PlotDataItem, pg.PlotDataItem]] = []

        self.placeholder = QLabel("")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.load_wavenet = QPushButton("Load signals_wavenet")
        self.load_wavenet.clicked.connect(lambda: self.session.load_model("signals_wavenet"))

        left = QSplitter(Qt.Orientation.Vertical)
        for w in (self.overview, self.classes_plot, self.window_plot):
            left.addWidget(w)
        map_box = QWidget()
        map_layout = QVBoxLayout(map_box)
        map_layout.setContentsMargins(0, 0, 0, 0)
        map_layout.addWidget(self.map_title)
        map_layout.addWidget(self.map_plot, 1)
        left.addWidget(map_box)
        left.setSizes([110, 110, 150, 230])
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.predictions)
        right.addWidget(self.taps_plot)
        right.addWidget(self.spectra_plot)
        right.setSizes([150, 200, 200])
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(left)
        body.addWidget(right)
        body.setSizes([900, 320])
        self.body = body
        empty = QWidget()
        empty_layout = QVBoxLayout(empty)
        empty_layout.addStretch(1)
        empty_layout.addWidget(self.placeholder)
        empty_layout.addWidget(self.load_wavenet, 0, Qt.AlignmentFlag.AlignCenter)
        empty_layout.addStretch(1)
        self.empty = empty
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(files)
        layout.addLayout(playback)
        layout.addWidget(self.info)
        grid = QGridLayout()
        grid.addWidget(body, 0, 0)
        grid.addWidget(empty, 0, 0)
        layout.addLayout(grid, 1)

        self.open_button.clicked.connect(self._open_dialog)
        self.demo_button.clicked.connect(self.open_demo)
        self.play_button.clicked.connect(lambda: self.set_playing(not self.playing))
        self.speed.currentTextChanged.connect(lambda _: self._apply_settings())
        self.hop.valueChanged.connect(lambda _: self._apply_settings())
        self.loop.toggled.connect(lambda _: self._apply_settings())
        self.saliency.toggled.connect(lambda _: self._apply_settings())
        self.save_button.clicked.connect(self._save_dialog)
        self.timeline_button.clicked.connect(self._timeline_dialog)
        self._posted_result.connect(self._draw_pending)
        self._posted_error.connect(lambda text: self.session.message.emit(f"signals: {text}"))
        self._posted_player.connect(self._player_ready)
        session.modelChanged.connect(self._model_changed)
        session.layerChanged.connect(lambda _: self._apply_settings())
        self.playing = True
        self._show_state()

    # --- what the tab holds --------------------------------------------------------------------

    @property
    def model(self):
        state = self.session.state
        return state.model if state is not None else None

    def _show_state(self) -> None:
        ready = self.session.takes_signals and self.recording is not None
        self.body.setVisible(ready)
        self.empty.setVisible(not ready)
        for w in (self.open_button, self.demo_button):
            w.setEnabled(self.session.takes_signals)
        for w in (self.play_button, self.save_button, self.timeline_button):
            w.setEnabled(ready)
        self.load_wavenet.setVisible(not self.session.takes_signals)
        if self.model is None:
            self.placeholder.setText("loading a model...")
        elif not self.session.takes_signals:
            self.placeholder.setText(f"{self.model.name} takes pictures. This tab plays recordings through 1-D "
                                     f"models (a Conv1d first): .wav, .npy or .csv signals, live as a sliding "
                                     f"window. The bundled signals_wavenet classifies sine, square, sawtooth, "
                                     f"chirp and noise bursts.")
        else:
            s = self.model.signal
            self.placeholder.setText(f"{self.model.name} takes {s.describe()}. Open a .wav, .npy or .csv "
                                     f"recording (or drop one on the window), or play the demo recording.")

    def _model_changed(self, state) -> None:
        self._stop_player()
        self.filters = None
        if state.model.signal is not None:
            self._scale_timeline()
        if state.model.signal is not None:
            self.hop.blockSignals(True)
            self.hop.setValue(max(state.model.signal.length // 4, 1))
            self.hop.blockSignals(False)
            if self._waiting_file is not None:
                path, self._waiting_file = self._waiting_file, None
                self._build_player(None, path)
            elif self.recording is not None:
                self._build_player(self.recording, self.recording_name)
        self._show_state()
        self._first_look()

    def _first_look(self) -> None:
        # A 1-D model with nothing to play, in view: the demo recording plays, as the 3-D tab
        # opens on the bundled chair, so that a first look shows what the tab does.
        # Only before anything was asked to play: a recording given on the command line is still
        # being read when the model arrives.
        if self.isVisible() and self.session.takes_signals and self._building == 0 and self._waiting_file is None:
            self.open_demo()

    # --- opening recordings ----------------------------------------------------------------------

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a signal", "", "Signals (*.wav *.npy *.csv);;All files (*)")
        if path:
            self.open_file(path)

    def open_demo(self) -> None:
        self.open_file(str(SAMPLE_SETS["signals"].path))

    def open_file(self, path: str) -> None:
        """Read a recording and play it; a file that fails leaves the current one playing."""
        if not self.session.takes_signals:
            # Kept for the next 1-D model: at start-up the recording is opened before the model loads.
            self._waiting_file = path
            if self.session.state is not None:
                self.session.message.emit(f"{Path(path).name} plays when a 1-D model is loaded (signals_wavenet or "
                                          f"your own Conv1d model)")
            return
        self._build_player(None, path)

    def _build_player(self, recording: Recording | None, name: str) -> None:
        state = self.session.state
        self._building += 1
        request = self._building
        settings = self._settings()

        def work():
            signal = recording if recording is not None else read_signal(name)
            player = SignalPlayer(state.model, signal, settings, probe=state.probe, on_error=self._posted_error.emit)
            player.on_result = lambda result: self._result_arrived(player, result)
            return player, first_filters(state.model), signal

        def done(future):
            value, error = outcome(future)
            if request != self._building:
                if value is not None:
                    value[0].stop()
                return
            if error:
                self._posted_player.emit(None, None, f"{Path(name).name}: {error}")
            else:
                player, responses, signal = value
                self._posted_player.emit((player, signal, name), responses, "")

        compute_thread().submit(work).add_done_callback(done)

    def _player_ready(self, made, responses, error: str) -> None:
        if error:
            self.session.message.emit(error)  # the recording that was playing goes on
            return
        player, signal, name = made
        if self.session.state is None or player.model is not self.session.state.model:
            player.stop()  # the model changed while it was being built
            return
        self._stop_player()
        self.player, self.recording, self.recording_name = player, signal, name
        self.timeline = {}
        self.result = None
        self._draw_overview()
        self._draw_filters(responses)
        self._show_state()
        player.start()
        self.session.message.emit(f"playing {Path(name).name}: {player.samples / (player.rate or 1):.1f} s"
                                  if player.rate else f"playing {Path(name).name}: {player.samples} samples")

    def _stop_player(self) -> None:
        player, self.player = self.player, None
        if player is not None:
            player.stop()

    # --- playback control -----------------------------------------------------------------------

    def _settings(self) -> PlaybackSettings:
        layer = self.session.layer
        state = self.session.state
        if layer is not None and state is not None and layer in state.probe:
            if len(state.probe.layer(layer).shape) != 2:
                layer = None  # no time axis (the classifier head): no map, the rest plays on
        else:
            layer = None
        labels = self.model.labels if self.model is not None else None
        return PlaybackSettings(layer=layer, hop=self.hop.value(), speed=SPEEDS[self.speed.currentText()],
                                playing=self.playing, loop=self.loop.isChecked(),
                                topk=min(len(labels), len(CLASS_COLOURS)) if labels else 5,
                                saliency=self.saliency.isChecked())

    def _apply_settings(self) -> None:
        if self.player is None:
            return
        try:
            self.player.update(**vars(self._settings()))
        except DeepvisError as exc:
            self.session.message.emit(f"signals: {exc}")

    def set_playing(self, playing: bool) -> None:
        self.playing = playing
        self.play_button.setText("Pause" if playing else "Play")
        self._apply_settings()

    def seek_seconds(self, seconds: float) -> None:
        if self.player is not None:
            self.player.seek(int(round(seconds * (self.player.rate or 1))))

    def _region_moved(self) -> None:
        if self.player is None:
            return
        lo, _ = self.region.getRegion()
        self.seek_seconds(lo)

    # --- results ---------------------------------------------------------------------------------

    def _result_arrived(self, player, result) -> None:
        """On the compute thread: every result's class probabilities are kept for the timeline;
        only the newest result is drawn, posted when none is waiting. (Played faster than the
        window paints, a timeline of the drawn results only had holes until the recording had
        looped many times.)"""
        row = self._timeline_row(result)
        with self._pending_lock:
            if row is not None:
                self._unrecorded.append((player, result.start, row))
            post = self._pending is None
            self._pending = (player, result)
        if post:
            self._posted_result.emit()

    def _draw_pending(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, None
            rows, self._unrecorded = self._unrecorded, []
        for player, start, probs in rows:
            if player is self.player:  # not a player stopped since (another file or model)
                self.timeline[start] = probs
        if pending is None or pending[0] is not self.player:
            return
        if not self.isVisible():
            return  # drawn when shown: the timeline was recorded all the same
        self.draw(pending[1])

    def timeline_columns(self) -> list[str]:
        """The timeline's curves: a classifier's classes (their labels, else "class k"), or the one
        value of a model with one output per window (a speech probability); [] for others."""
        model = self.model
        if model is None:
            return []
        shape = model.head.shape
        if model.task == "classification" and len(shape) == 1:
            return list(model.labels[:shape[0]]) if model.labels else [f"class {k}" for k in range(shape[0])]
        if not model.head.detections and int(np.prod(shape)) == 1:
            return [model.head.name if len(model.outputs) > 1 else "output"]
        return []

    @property
    def one_value(self) -> bool:
        """One output per window: plotted as a value over time with a threshold line."""
        model = self.model
        return model is not None and model.task != "classification" and len(self.timeline_columns()) == 1

    def _timeline_row(self, result) -> np.ndarray | None:
        """Every class's probability in ``result`` (a classifier's), or its one value, for the timeline."""
        columns = self.timeline_columns()
        if not columns:
            return None
        if result.summary.kind != "classification":
            return np.asarray(result.summary.values[:1], np.float32) if result.summary.values else None
        probs = np.zeros(len(columns), np.float32)
        for p in result.summary.predictions:
            if 0 <= p.index < len(probs):
                probs[p.index] = p.score
        return probs

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.result is None and self.player is not None and self.player.latest() is not None:
            self.draw(self.player.latest())
        self._first_look()

    def draw(self, result) -> None:
        self.result = result
        player = self.player
        rate = player.rate or 1
        length = player.length
        self.region.blockSignals(True)
        self.region.setRegion((result.start / rate, (result.start + length) / rate))
        self.region.blockSignals(False)
        trace = result.window.mean(0)
        x = np.arange(length, dtype=np.float64)
        self.window_curve.setData(x, trace)
        if result.saliency is not None:
            g = np.abs(result.saliency)
            peak = float(g.max()) or 1.0
            scale = float(np.abs(trace).max()) or 1.0
            self.saliency_curve.setFillLevel(-scale)
            self.saliency_curve.setData(x, -scale + 2 * scale * g / peak)
            self.saliency_curve.show()
        else:
            self.saliency_curve.hide()
        if result.activation is not None:
            a = result.activation
            lo, hi = float(a.min()), float(a.max())
            self.map_image.setImage(a, levels=(lo, hi if hi > lo else lo + 1), autoLevels=False)
            self.map_image.setRect(0, 0, length, a.shape[0])  # strided layers: stretched to the window
            self.map_title.setText(f"{result.settings.layer}: {a.shape[0]} channels x {a.shape[1]} steps, "
                                   f"{lo:.3g} .. {hi:.3g}")
            self.map_image.show()
            self.map_plot.show()
        else:
            layer = self.session.layer
            self.map_title.setText(f"{layer} has no time axis: pick a convolution in the layer list"
                                   if layer else "pick a layer in the layer list for its channels x time map")
            self.map_image.hide()
            self.map_plot.hide()  # an empty channel axis would read as a map of nothing
        self._draw_predictions(result)
        self._draw_timeline()
        seconds = result.start / rate
        self.info.setText(f"{Path(self.recording_name).name} · window {seconds:.2f}-{(result.start + length) / rate:.2f} s"
                          f" of {player.samples / rate:.1f} s · {result.fps:.0f} windows/s · forward "
                          f"{result.timings['forward']:.1f} ms" +
                          (f" · gradient {result.timings['saliency']:.1f} ms" if result.saliency is not None else ""))
        self.drawn_count += 1
        self.drawn.emit(self.drawn_count)

    def _draw_predictions(self, result) -> None:
        if self.one_value and result.summary.values:
            value, threshold = result.summary.values[0], self.threshold.value()
            side = "above" if value >= threshold else "below"
            self.predictions.setText(f"<b>prediction</b><br>{self.timeline_columns()[0]}: <b>{value:.3f}</b>"
                                     f"<br>{side} the threshold {threshold:.3g}")
            return
        rows = []
        for p in result.summary.predictions[:5]:
            eighths = int(round(BAR_CELLS * 8 * max(0.0, min(1.0, p.score))))
            bar = "\u2588" * (eighths // 8) + (BAR_EIGHTHS[eighths % 8] if eighths % 8 else "")
            rows.append(f"<tr><td>{p.label}</td><td align='right'>{p.score:.1%}</td>"
                        f"<td style='color:#4e79a7'>{bar}</td></tr>")
        text = "" if rows else f"<br>{result.summary.text}"
        self.predictions.setText("<b>prediction</b><table cellspacing='3'>" + "".join(rows) + "</table>" + text)

    def _draw_timeline(self) -> None:
        columns = self.timeline_columns()
        if not columns or not self.timeline:
            return
        shown = min(len(columns), len(CLASS_COLOURS))
        if len(self.class_curves) != shown:
            self.classes_plot.clear()  # the legend stays, emptied with its curves
            self.class_curves = [self.classes_plot.plot(pen=pg.mkPen(CLASS_COLOURS[k], width=1.5), name=columns[k])
                                 for k in range(shown)]
            if self.one_value:
                self.classes_plot.addItem(self.threshold)
        starts = np.array(sorted(self.timeline))
        values = np.stack([self.timeline[s] for s in starts])
        rate = self.player.rate or 1
        centres = (starts + self.player.length / 2) / rate
        for k, curve in enumerate(self.class_curves):
            curve.setData(centres, values[:, k])
        if self.one_value:
            above = float((values[:, 0] >= self.threshold.value()).mean())
            self.classes_plot.setTitle(f"{columns[0]} per window · {above:.0%} of the windows played at or above "
                                       f"the threshold (drag the line)", size="8pt")

    def _threshold_moved(self) -> None:
        if self.result is not None:
            self._draw_predictions(self.result)
        self._draw_timeline()

    def _scale_timeline(self) -> None:
        """Probabilities on [0, 1] with the threshold at 0.5; a raw value (a logit) on its own
        range, the threshold at 0."""
        model = self.model
        probability = model is not None and (model.task == "classification" or model.head.activation is not None)
        self.classes_plot.setLabel("left", "p" if probability else "value")
        if probability:
            self.classes_plot.setYRange(0, 1)
        else:
            self.classes_plot.enableAutoRange(axis="y")
        self.threshold.setValue(0.5 if probability else 0.0)
        self.classes_plot.setTitle(None)

    def _legend(self) -> None:
        # At the right edge: the timeline fills from the left.
        self.classes_plot.addLegend(offset=(-5, 2), labelTextSize="8pt", brush=pg.mkBrush(30, 31, 34, 210),
                                    verSpacing=-6)

    def _draw_overview(self) -> None:
        player = self.player
        rate = player.rate or 1
        x, y = envelope(player.data.mean(0))
        self.overview_curve.setData(x / rate, y)
        self.overview.setXRange(0, player.samples / rate, padding=0.01)
        self.overview.setLabel("bottom", "time", units="s" if player.rate else "")
        self.classes_plot.clear()
        self.class_curves = []

    def _draw_filters(self, responses) -> None:
        self.taps_plot.clear()
        self.spectra_plot.clear()
        self.filters = responses
        if responses is None:
            self.taps_plot.setTitle("no Conv1d filters", size="9pt")
            self.spectra_plot.setTitle("", size="9pt")
            return
        name, dilation, taps, freqs, magnitude = responses
        shown = min(len(taps), MAX_FILTERS_DRAWN)
        for f in range(shown):
            colour = pg.intColor(f, hues=shown, alpha=200)
            self.taps_plot.plot(np.arange(taps.shape[1]) * dilation, taps[f], pen=pg.mkPen(colour, width=1.5),
                                symbol="o", symbolSize=5, symbolBrush=colour)
            self.spectra_plot.plot(freqs, magnitude[f], pen=pg.mkPen(colour, width=1))
        self.taps_plot.setTitle(f"{name}: {shown}/{len(taps)} filters", size="9pt")
        self.spectra_plot.setTitle("their magnitude spectra", size="9pt")
        self.taps_plot.setLabel("bottom", "tap (samples back)" if dilation > 1 else "tap")
        self.spectra_plot.setLabel("bottom", "frequency", units="Hz" if self.model.signal.rate else "")

    # --- export ------------------------------------------------------------------------------------

    def _save_dialog(self) -> None:
        save_dialog(self, "Save the Signals view", "deepvis-signals.png", "PNG (*.png)", self.save_png)

    def save_png(self, path: str) -> None:
        if not self.grab().save(path):
            self.session.message.emit(f"could not write {path}")
            return
        self.session.message.emit(f"saved {path}")

    def _timeline_dialog(self) -> None:
        save_dialog(self, "Save the class timeline", "deepvis-timeline.csv", "CSV (*.csv)", self.save_timeline)

    def save_timeline(self, path: str) -> None:
        """One row per window played: its start and end in seconds and every class's probability
        (or the one value of a model with one output per window)."""
        columns = self.timeline_columns()
        if not self.timeline or not columns:
            self.session.message.emit("no class timeline yet: play the recording first")
            return
        rate = self.player.rate or 1
        lines = ["start_s,end_s," + ",".join(columns[:len(next(iter(self.timeline.values())))])]
        for start in sorted(self.timeline):
            values = ",".join(f"{v:.6f}" for v in self.timeline[start])
            lines.append(f"{start / rate:.6f},{(start + self.player.length) / rate:.6f},{values}")
        try:
            Path(path).write_text("\n".join(lines) + "\n")
        except OSError as exc:
            self.session.message.emit(f"could not write {path}: {exc.strerror or exc}")
            return
        self.session.message.emit(f"saved {path}")

    def shutdown(self) -> None:
        self._building += 1  # a player still being built is stopped when it arrives
        self._stop_player()
