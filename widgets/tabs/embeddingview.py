"""The Embedding tab: a t-SNE / PCA / UMAP map of a layer's features over a dataset.

Parameters are chosen before computing; the map animates while t-SNE runs and can be
cancelled (the previous map stays). Points are coloured by label; zoomed in far enough,
they become their thumbnails. Hover previews, click opens the image as the input, Ctrl+click
lists its nearest neighbours in feature space, Shift+drag selects a box and counts its
labels, and the search box highlights labels or file names. While the live input runs on the
map's model, its frame is a moving star on the map. While an atlas is open, the tab shows its
map instead (``atlasmode``).
"""

import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QProgressBar,
                               QPushButton, QSizePolicy, QStackedWidget, QVBoxLayout, QWidget)

from deepvis.core.zoo import sample_kind
from deepvis.live.computethread import compute_thread, outcome
from deepvis.io.datasets import Dataset, digits_dataset, folder_dataset, frames_dataset, samples_dataset
from deepvis.embed.projection import METHODS, EmbeddingMap, knn_score, knn_words, project, trustworthiness
from deepvis.embed.render import label_colors, render_map, write_csv
from deepvis.errors import DeepvisError
from deepvis.embed.features import Features, extract_features, pool
from deepvis.io.images import write_image
from deepvis.widgets.tabs.atlasmode import AtlasMode
from deepvis.widgets.window.views import View, register_view

LOD_POINTS = 400  # at most this many points visible: draw thumbnails instead of dots
MAX_RECORDED = 2000  # frames are kept as the model sees them: 2000 of 224x224 RGB are 300 MB
RECORD_INTERVAL_S = 0.1
HOVER_RADIUS_PX = 8
FIRST_HINT = "Pick a dataset, a layer and a method, then compute; or click Digits map for a first look."


@dataclass
class MapState:
    features: Features
    result: EmbeddingMap
    dataset: Dataset
    model_state: object  # the session's ModelState it was computed with
    knn: tuple[float | None, int | None]  # k-NN accuracy and its k (projection.knn_score)
    trust: float | None
    note: str = ""  # a setting changed to make the map (a small map's perplexity)


class _MapViewBox(pg.ViewBox):
    """Shift+drag draws a selection box instead of panning."""

    selected = Signal(QRectF)

    def __init__(self):
        super().__init__()
        self._band = None

    def mouseDragEvent(self, event, axis=None):
        if not (event.modifiers() & Qt.KeyboardModifier.ShiftModifier) or event.button() != Qt.MouseButton.LeftButton:
            super().mouseDragEvent(event, axis)
            return
        event.accept()
        a, b = self.mapToView(event.buttonDownPos()), self.mapToView(event.pos())
        rect = QRectF(a, b).normalized()
        if self._band is None:
            self._band = pg.QtWidgets.QGraphicsRectItem()
            self._band.setPen(pg.mkPen("#f0c040", width=1, style=Qt.PenStyle.DashLine))
            self.addItem(self._band, ignoreBounds=True)
        self._band.setRect(rect)
        if event.isFinish():
            self.removeItem(self._band)
            self._band = None
            self.selected.emit(rect)


PHOTOS = "bundled photos"  # the dataset of deepvis.resources' photos and random crops of them
FOLDER_ITEM = 4  # the dataset combo's item for a folder picked by the user


@register_view
class EmbeddingView(View):
    title = "Embedding"
    order = 30

    _posted_progress = Signal(str, float)
    _posted_layout = Signal()
    _posted_done = Signal(object, str)  # MapState or None, error text ("" when cancelled)
    _posted_live = Signal(object)  # (x, y) of the live frame on the map
    _posted_demo_model = Signal(object)  # the digits CNN loaded for "Digits map"

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.map: MapState | None = None  # the committed map; a running job does not touch it
        self.recorded: list[np.ndarray] = []
        self.recording = False
        self._recorded_at = 0.0
        self._recorded_serial = None  # frame serial of the last recorded frame
        self._folder: str | None = None
        self._cancel: threading.Event | None = None
        self._layout_lock = threading.Lock()
        self._pending_layout = None
        self._live_busy = False
        self._live_vector = None
        self._thumb_items: list[pg.ImageItem] = []
        self._tree = None
        self._nn = None
        self.highlighted: np.ndarray = np.zeros(0, bool)
        self._map_text = ""  # the info line of the committed map, shown again when an atlas closes
        self._first_look_done = False  # the first look's map was started
        # A job runs and no map is finished: the layout animating meanwhile is the early, squeezed
        # one (a screenshot waits for the finished map).
        self._awaiting_first_map = False

        self.dataset = QComboBox()
        self.dataset.addItems(["digits", PHOTOS, "folder...", "recorded frames"])
        self.layer = QComboBox()
        self.layer.setMinimumWidth(110)
        self.layer.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.layer.setMinimumContentsLength(10)
        self.method = QComboBox()
        self.method.addItems(METHODS)
        self.perplexity = QDoubleSpinBox()
        self.perplexity.setRange(2, 200)
        self.perplexity.setValue(30)
        self.perplexity.setPrefix("perplexity ")
        self.exaggeration = QDoubleSpinBox()
        self.exaggeration.setRange(1, 8)
        self.exaggeration.setSingleStep(0.5)
        self.exaggeration.setValue(1)
        self.exaggeration.setPrefix("exaggeration ")
        self.compute = QPushButton("Compute map")
        self.digits_demo = QPushButton("Digits map")
        self.digits_demo.setToolTip("one click to a first map: t-SNE of the bundled digits CNN's penultimate layer "
                                    "over scikit-learn's 1,797 digits (the window's model stays as it is)")
        self.cancel = QPushButton("Cancel")
        self.cancel.setEnabled(False)
        self.record = QPushButton("Record frames")
        self.record.setCheckable(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setMaximumWidth(200)
        self.progress.hide()
        self.color_by = QComboBox()
        self.color_by.addItems(["colour: label", "colour: predicted class"])
        self.search = QLineEdit()
        self.search.setPlaceholderText("search label or file name")
        self.search.setMaximumWidth(220)
        # Room for the whole placeholder (Qt cuts it silently), its margins and frame.
        self.search.setMinimumWidth(self.search.fontMetrics().horizontalAdvance(self.search.placeholderText()) + 16)
        self.export_png = QPushButton("PNG...")
        self.export_csv = QPushButton("CSV...")

        self.box = _MapViewBox()
        self.plot = pg.PlotWidget(viewBox=self.box)
        self.plot.setAspectLocked(True)
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.scatter = pg.ScatterPlotItem(size=6, pen=None, pxMode=True)
        self.plot.addItem(self.scatter)
        self.marks = pg.ScatterPlotItem(size=12, pen=pg.mkPen("#ffffff", width=1.5), brush=None, pxMode=True)
        self.plot.addItem(self.marks)
        self.live = pg.ScatterPlotItem(size=22, symbol="star", pen=pg.mkPen("#000000"), brush=pg.mkBrush("#ffe040"))
        self.live.setZValue(10)
        self.plot.addItem(self.live)

        self.preview = QLabel()
        self.preview.setFixedSize(150, 150)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setStyleSheet("background: #15161a;")
        self.info = QLabel(FIRST_HINT)
        self.info.setWordWrap(True)
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.info.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setAlignment(Qt.AlignmentFlag.AlignTop)

        self.atlas_mode = AtlasMode(session, self.preview, self.info, self.legend, self.color_by)
        self.stack = QStackedWidget()  # this tab's own map, or an open atlas's
        self.stack.addWidget(self.plot)
        self.stack.addWidget(self.atlas_mode)

        self.dataset_row = QWidget()  # what makes a map here; an atlas's maps are made by deepvis atlas map
        # Two lines, the progress beside the buttons that start and stop the work: on one line the
        # row was 875 px at its narrowest, and with the progress bar the next one was 770, wider
        # than the centre of the 1440 px window, which then squeezed the docks and cut their text.
        rows = QVBoxLayout(self.dataset_row)
        rows.setContentsMargins(0, 0, 0, 0)
        for line in ((self.dataset, self.layer, self.method, self.perplexity, self.exaggeration),
                     (self.compute, self.cancel, self.digits_demo, self.progress)):
            row = QHBoxLayout()
            for w in line:
                row.addWidget(w)
            row.addStretch(1)
            rows.addLayout(row)
        row2 = QHBoxLayout()
        row2.addWidget(self.record)
        row2.addWidget(self.color_by)
        row2.addWidget(self.search)
        row2.addStretch(1)
        self.export_label = QLabel("export")
        row2.addWidget(self.export_label)
        row2.addWidget(self.export_png)
        row2.addWidget(self.export_csv)
        side = QVBoxLayout()
        side.addWidget(self.preview)
        side.addWidget(self.info, 1)
        side.addWidget(self.legend, 1)
        side_box = QWidget()
        side_box.setLayout(side)
        side_box.setFixedWidth(200)
        body = QHBoxLayout()
        body.addWidget(self.stack, 1)
        body.addWidget(side_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.dataset_row)
        layout.addLayout(row2)
        layout.addLayout(body, 1)

        self.compute.clicked.connect(lambda: self.start())
        self.digits_demo.clicked.connect(self.start_digits)
        self._posted_demo_model.connect(lambda state: self.start(state, digits_dataset(), None))
        self.cancel.clicked.connect(self.stop)
        self.record.toggled.connect(self._set_recording)
        self.dataset.activated.connect(self._dataset_picked)
        self.search.textChanged.connect(self._search_changed)
        self.color_by.currentIndexChanged.connect(lambda _i: self._colour_changed())
        self.export_png.clicked.connect(lambda: self._export("png"))
        self.export_csv.clicked.connect(lambda: self._export("csv"))
        self.scatter.sigClicked.connect(self._clicked)
        self.box.selected.connect(self.select_box)
        self.box.sigRangeChanged.connect(lambda *_: self._lod_timer.start())
        self._hover_proxy = pg.SignalProxy(self.plot.scene().sigMouseMoved, rateLimit=30, slot=self._hovered)
        self._lod_timer = QTimer(self, singleShot=True, interval=60)
        self._lod_timer.timeout.connect(self._update_thumbnails)
        self._posted_progress.connect(self._show_progress)
        self._posted_layout.connect(self._show_layout)
        self._posted_done.connect(self._finished)
        self._posted_live.connect(self._show_live)
        session.modelChanged.connect(self._model_changed)
        session.resultReady.connect(self._on_result)
        session.atlasChanged.connect(self._atlas_changed)

    # --- atlas mode --------------------------------------------------------------------------

    @property
    def atlas_shown(self) -> bool:
        return self.stack.currentWidget() is self.atlas_mode

    def _atlas_changed(self, atlas) -> None:
        on = atlas is not None
        # The controls that make and export this tab's own maps, and the frame recorder that
        # feeds them, have nothing to do with an atlas's map.
        for w in (self.dataset_row, self.record, self.export_label, self.export_png, self.export_csv):
            w.setVisible(not on)
        if on:
            self.stack.setCurrentWidget(self.atlas_mode)
            self.atlas_mode.search(self.search.text())
            return
        self.stack.setCurrentWidget(self.plot)
        self.preview.clear()
        self.info.setText(self._map_text if self.map is not None else FIRST_HINT)
        self.legend.setText("")
        self._redraw()

    def _search_changed(self, text: str) -> None:
        if self.atlas_shown:
            self.atlas_mode.search(text)
        else:
            self.find(text)

    def _colour_changed(self) -> None:
        if self.atlas_shown:
            self.atlas_mode.recolour()
        else:
            self._redraw()

    # --- parameters and jobs ---------------------------------------------------------------

    def _model_changed(self, state) -> None:
        names = state.probe.names()
        self.layer.clear()
        self.layer.addItems(names)
        self.layer.setCurrentText(state.probe.feature_layer().name)
        self.live.setData([])
        self._first_look()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._first_look()

    def _first_look(self) -> None:
        """The first time the tab is seen, a map makes itself: the digits through the window's
        model when it reads digits, else the bundled digits CNN's map (the Digits map button)."""
        state = self.session.state
        if self._first_look_done or not self.isVisible() or not self.session.autostart or state is None or \
                self.map is not None or self._cancel is not None or self.atlas_shown:
            return
        self._first_look_done = True
        kind = sample_kind(state.model.name)
        if kind == "digits":
            self.dataset.setCurrentText("digits")
            self.info.setText(f"A first map: {state.model.name}'s feature layer over scikit-learn's 1,797 digits. "
                              f"Pick a dataset, a layer and a method for your own.")
            self.start(state, digits_dataset(), None)
        elif kind == "photos" and state.model.spec.channels == 3 and state.model.signal is None:
            # A photo model's own map: its feature layer over the bundled photos and crops of them.
            self.dataset.setCurrentText(PHOTOS)
            self.info.setText(f"A first map: {state.model.name}'s feature layer over the {PHOTOS} (4 photos and "
                              f"15 crops of each). Pick a dataset, a layer and a method for your own.")
            self.start(state, samples_dataset(), None)
        else:
            self.info.setText("A first map: the bundled digits CNN's penultimate layer over scikit-learn's 1,797 "
                              "digits. Pick a dataset, a layer and a method for a map of this model.")
            self.start_digits()

    def working(self) -> str:
        return self.progress.format() if self._awaiting_first_map else ""

    def _dataset_picked(self, index: int) -> None:
        if self.dataset.itemText(index).startswith("folder"):
            path = QFileDialog.getExistingDirectory(self, "Folder of images (subfolders are labels)")
            if path:
                self.set_folder(path)

    def set_folder(self, path: str) -> None:
        self._folder = path
        text = f"folder: {Path(path).name}"
        if self.dataset.count() > FOLDER_ITEM:
            self.dataset.setItemText(FOLDER_ITEM, text)
        else:
            self.dataset.addItem(text)
        self.dataset.setCurrentIndex(FOLDER_ITEM)

    def _set_recording(self, on: bool) -> None:
        self.recording = on
        self.record.setText(f"Recording ({len(self.recorded)})" if on else "Record frames")

    def current_dataset(self) -> Dataset:
        choice = self.dataset.currentText()
        if choice == "digits":
            return digits_dataset()
        if choice == PHOTOS:
            return samples_dataset()
        if choice.startswith("recorded"):
            return frames_dataset(list(self.recorded))
        if choice.startswith("folder:") and self._folder:
            return folder_dataset(self._folder)
        raise DeepvisError("pick a folder first (Dataset > folder...)")

    def start_digits(self) -> None:
        """The digits map of the bundled digits CNN, whatever model the window runs."""
        from deepvis.core.loading import load_model
        from deepvis.core.probe import Probe
        from deepvis.widgets.window.session import ModelState

        def work():
            model = load_model("digits_cnn", device="cpu")
            return ModelState(model, Probe(model.module, model.example_input()), "digits_cnn")

        def done(future):
            state, error = outcome(future)
            if state is not None:
                self._posted_demo_model.emit(state)
            else:  # the progress bar goes and the message says why
                self._posted_done.emit(None, error)

        self.progress.show()
        self.progress.setFormat("loading digits_cnn...")
        self._awaiting_first_map = self.map is None
        compute_thread().submit(work).add_done_callback(done)

    def start(self, state=None, dataset: Dataset | None = None, layer: str | None = "") -> None:
        """A map of ``dataset`` (default: the chosen one) through ``state``'s model (default: the
        window's) at ``layer`` ("" for the chosen one, None for the model's feature layer)."""
        state = state or self.session.state
        if state is None:
            self.session.message.emit("load a model first")
            return
        try:
            dataset = dataset or self.current_dataset()
        except DeepvisError as exc:
            self.session.message.emit(str(exc))
            return
        self.stop()
        cancel = self._cancel = threading.Event()
        layer = self.layer.currentText() if layer == "" else layer
        method = self.method.currentText()
        perplexity, exaggeration = self.perplexity.value(), self.exaggeration.value()
        self.compute.setEnabled(False)
        self.cancel.setEnabled(True)
        self.progress.show()
        self.progress.setValue(0)
        self.progress.setFormat("features...")
        self._awaiting_first_map = self.map is None
        self._job_started = time.perf_counter()
        compute = compute_thread()
        last = [0.0]

        def breathe():
            now = time.perf_counter()
            if now - last[0] > 0.1:  # the live view gets a frame at most ten times a second
                last[0] = now
                compute.breathe()

        def on_layout(coords):
            with self._layout_lock:
                self._pending_layout = coords
            self._posted_layout.emit()

        def work():
            features = extract_features(state.model, dataset, layer, probe=state.probe, cancel=cancel,
                                        progress=lambda done, total: (self._posted_progress.emit(
                                            f"features {done}/{total}", 0.3 * done / max(total, 1)), breathe()))

            def on_step(it, total, coords):
                self._posted_progress.emit(f"{method} {it}/{total}", 0.3 + 0.7 * it / max(total, 1))
                if coords is not None:
                    on_layout((features, coords))
                breathe()

            result = project(features.vectors, method, perplexity=perplexity,
                             exaggeration=None if exaggeration == 1 else exaggeration, progress=on_step, cancel=cancel)
            knn = knn_score(result.coords, features.labels)
            trust = trustworthiness(features.vectors, result.coords)
            return MapState(features, result, dataset, state, knn, trust, result.note(perplexity))

        future = compute.submit(work)

        future.add_done_callback(lambda f: self._posted_done.emit(*outcome(f)))  # the previous map stays on errors

    def stop(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def _show_progress(self, text: str, fraction: float) -> None:
        self.progress.setValue(int(100 * fraction))
        self.progress.setFormat(text)

    def _show_layout(self) -> None:
        with self._layout_lock:
            pending, self._pending_layout = self._pending_layout, None
        if pending is not None and self._cancel is not None and not self._cancel.is_set():
            features, coords = pending
            self._draw(coords, features.labels, autorange=True)

    def _finished(self, state: MapState | None, error: str) -> None:
        self.compute.setEnabled(True)
        self.cancel.setEnabled(False)
        self.progress.hide()
        self._cancel = None
        self._awaiting_first_map = False
        if state is None:
            if error:
                self.session.message.emit(f"embedding: {error}")
            self._redraw()  # back to the previous map
            return
        self.map = state
        self._tree = self._nn = None
        self._redraw()
        f, r = state.features, state.result
        quality = f"{knn_words(*state.knn)}\n" if state.knn[0] is not None else ""
        skipped = f"\n{len(f.skipped)} unreadable files skipped" if f.skipped else ""
        self._map_text = (f"{r.method} of {f.layer}\n{len(f)} points from {f.dataset}\n{quality}"
                          f"trustworthiness {'n/a' if state.trust is None else f'{state.trust:.3f}'}\n{r.seconds:.1f} s"
                          f"{', features cached' if f.cached else ''}{skipped}"
                          + (f"\n{state.note}" if state.note else ""))
        if not self.atlas_shown:
            self.info.setText(self._map_text)
        self._request_live_layer()

    # --- drawing -----------------------------------------------------------------------------

    def _redraw(self) -> None:
        if self.map is None:
            self.scatter.setData([])
            self.marks.setData([])
            return
        self._draw(self.map.result.coords, self.color_labels(), autorange=True)
        self.highlighted = np.zeros(len(self.map.features), bool)
        self.find(self.search.text())

    def color_labels(self) -> list[str | None]:
        """What the points are coloured by: their labels, or the model's predicted classes."""
        f = self.map.features
        if self.color_by.currentIndex() == 1:
            if f.predictions is None:
                self.session.message.emit("this model does not classify: colouring by label")
                return f.labels
            return f.predictions
        return f.labels

    def _draw(self, coords, labels, autorange=False) -> None:
        colors, names = label_colors(labels)
        # One brush per colour, shared by its points: 50k brushes would take a second to make.
        cache = {}
        brushes = [cache.setdefault(key, pg.mkBrush(*key, 220)) for key in map(tuple, colors.tolist())]
        self.scatter.setData(x=coords[:, 0], y=coords[:, 1], brush=brushes, data=np.arange(len(coords)))
        if autorange:
            self.box.autoRange(padding=0.05)
        html = " ".join(f"<span style='color: rgb{tuple(int(v) for v in colors[labels.index(n)])}'>■</span> {n}"
                        for n in names[:30])
        if not self.atlas_shown:  # the legend is the atlas's while its map shows
            self.legend.setText(html)
        self._lod_timer.start()

    def _update_thumbnails(self) -> None:
        """Level of detail: thumbnails for the points in view once few enough are in view."""
        for item in self._thumb_items:
            item.hide()
        if self.map is None:
            return
        coords = self.map.result.coords
        (x0, x1), (y0, y1) = self.box.viewRange()
        x, y = coords[:, 0], coords[:, 1]
        inside = np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
        if len(inside) == 0 or len(inside) > LOD_POINTS:
            return
        side = (x1 - x0) / 24
        thumbs = self.map.features.thumbnails
        while len(self._thumb_items) < len(inside):
            item = pg.ImageItem(axisOrder="row-major")
            item.setZValue(5)
            self.plot.addItem(item)
            self._thumb_items.append(item)
        for item, i in zip(self._thumb_items, inside):
            # Image rows go down, the map's y goes up: flip so digits stand upright.
            item.setImage(thumbs[i][::-1], autoLevels=False, levels=(0, 255))
            item.setRect(QRectF(coords[i, 0] - side / 2, coords[i, 1] - side / 2, side, side))
            item.show()

    @property
    def thumbnails_shown(self) -> int:
        return sum(item.isVisible() for item in self._thumb_items)

    # --- interaction -------------------------------------------------------------------------

    def nearest_on_screen(self, x: float, y: float) -> int | None:
        """The point drawn nearest to view coordinates (x, y), within a few pixels."""
        if self.map is None:
            return None
        from scipy.spatial import cKDTree

        if self._tree is None:
            self._tree = cKDTree(self.map.result.coords)
        px = self.box.viewPixelSize()[0]
        dist, i = self._tree.query((x, y))
        return int(i) if dist <= HOVER_RADIUS_PX * px else None

    def _hovered(self, event) -> None:
        pos = event[0]
        if self.map is None or not self.box.sceneBoundingRect().contains(pos):
            return
        p = self.box.mapSceneToView(pos)
        i = self.nearest_on_screen(p.x(), p.y())
        if i is not None:
            self.show_point(i)

    def show_point(self, i: int) -> None:
        f = self.map.features
        thumb = np.ascontiguousarray(f.thumbnails[i])
        image = QImage(thumb.data, thumb.shape[1], thumb.shape[0], thumb.strides[0], QImage.Format.Format_RGB888)
        self.preview.setPixmap(QPixmap.fromImage(image.copy()).scaled(
            146, 146, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation))
        self.preview.setToolTip(f"{f.labels[i] or 'no label'}  {f.paths[i] or ''}")
        self.hovered_point = i
        self.info.setText(f"#{i}  label: {f.labels[i] or '-'}\n{Path(f.paths[i]).name if f.paths[i] else ''}")

    def _clicked(self, _item, points, event=None) -> None:
        if len(points) == 0 or self.map is None:
            return
        i = int(points[0].data())
        modifiers = pg.QtWidgets.QApplication.keyboardModifiers()
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            self.neighbours(i)
        else:
            self.open_point(i)

    def open_point(self, i: int) -> None:
        """Make point ``i``'s image the current input."""
        m = self.map
        path = m.features.paths[i]
        if path is None:  # digits and recorded frames live in memory: hand the app a file
            image = m.dataset.image(self._dataset_index(i))
            path = str(Path(tempfile.gettempdir()) / f"deepvis-embedding-{i}.png")
            write_image(path, image)
        self.show_point(i)
        self.session.open_input(path)
        self.session.start()

    def _dataset_index(self, i: int) -> int:
        # Features skip unreadable items; paths and labels line up with features, not items.
        if not self.map.features.skipped:
            return i
        path = self.map.features.paths[i]
        return self.map.dataset.paths.index(path) if path else i

    def neighbours(self, i: int, k: int = 10) -> list[int]:
        """The ``k`` nearest points to ``i`` in feature space (not on screen), marked on the map."""
        from sklearn.neighbors import NearestNeighbors

        vectors = self.map.features.vectors
        if self._nn is None:
            self._nn = NearestNeighbors().fit(vectors)
        found = self._nn.kneighbors(vectors[i:i + 1], n_neighbors=min(k + 1, len(vectors)))[1][0]
        found = [int(j) for j in found if j != i][:k]
        self._mark(np.array([i, *found]))
        labels = Counter(self.map.features.labels[j] or "-" for j in found)
        self.info.setText(f"#{i} ({self.map.features.labels[i] or '-'}): {k} nearest in feature space\n"
                          + ", ".join(f"{label} x{n}" for label, n in labels.most_common()))
        return found

    def select_box(self, rect: QRectF) -> list[int]:
        if self.map is None:
            return []
        c = self.map.result.coords
        inside = np.flatnonzero((c[:, 0] >= rect.left()) & (c[:, 0] <= rect.right()) &
                                (c[:, 1] >= rect.top()) & (c[:, 1] <= rect.bottom()))
        self._mark(inside)
        counts = Counter(self.map.features.labels[j] or "-" for j in inside)
        self.selection_counts = counts
        lines = [f"{label}: {n}" for label, n in counts.most_common(15)]
        self.info.setText(f"{len(inside)} selected\n" + "\n".join(lines))
        return [int(j) for j in inside]

    def find(self, text: str) -> int:
        """Mark the points whose label or file name contains ``text``; returns how many."""
        if self.map is None:
            return 0
        text = text.strip().lower()
        if not text:
            self.marks.setData([])
            return 0
        f = self.map.features
        hits = np.array([text in (label or "").lower() or text in Path(path or "").name.lower()
                         for label, path in zip(f.labels, f.paths)])
        self._mark(np.flatnonzero(hits))
        return int(hits.sum())

    def _mark(self, indices: np.ndarray) -> None:
        c = self.map.result.coords[indices]
        self.marks.setData(x=c[:, 0], y=c[:, 1])
        self.highlighted = np.zeros(len(self.map.features), bool)
        self.highlighted[indices] = True

    def _export(self, kind: str) -> None:
        if self.map is None:
            self.session.message.emit("compute a map first")
            return
        path, _ = QFileDialog.getSaveFileName(self, f"Export map as {kind.upper()}", f"deepvis-embedding.{kind}",
                                              f"{kind.upper()} (*.{kind})")
        if path:
            self.export(path)

    def export(self, path: str) -> None:
        m = self.map
        try:
            if path.lower().endswith(".csv"):
                write_csv(path, m.result.coords, m.features.labels, m.features.paths)
            else:
                write_image(path, render_map(m.result.coords, m.features.labels, m.features.thumbnails))
        except (OSError, DeepvisError) as exc:
            self.session.message.emit(f"could not write {path}: {exc}")
            return
        self.session.message.emit(f"saved {path}")

    # --- live input --------------------------------------------------------------------------

    def _request_live_layer(self) -> None:
        """Ask the pipeline to publish the map's layer, so the live frame can be placed."""
        m = self.map
        if m is None or m.model_state is not self.session.state:
            return
        layers = tuple(dict.fromkeys((*self.session.settings.layers, m.features.layer)))
        self.session.update_settings(layers=layers)

    def _on_result(self) -> None:
        result = self.session.result
        if result is None:
            return
        now = time.monotonic()
        if self.recording and len(self.recorded) < MAX_RECORDED and now - self._recorded_at > RECORD_INTERVAL_S:
            if result.frame.serial != self._recorded_serial:
                self.recorded.append(result.model_input)
                self._recorded_serial = result.frame.serial
                self._recorded_at = now
                self.record.setText(f"Recording ({len(self.recorded)})")
        m = self.map
        if m is None or m.model_state is not self.session.state or m.features.layer not in result.activations:
            return
        import torch

        vector = pool(torch.from_numpy(np.array(result.activations[m.features.layer]))[None], "avg").numpy()
        if vector.shape[1] != m.features.vectors.shape[1]:
            return  # the map was made with flattened features
        self._live_vector = (vector, result.frame.serial)
        if not self._live_busy:
            self._place_live()

    def _place_live(self) -> None:
        """Place the newest live vector (latest wins; one placement at a time)."""
        pending, self._live_vector = self._live_vector, None
        if pending is None or self.map is None:
            return
        vector, serial = pending
        self._live_busy = True
        placer = self.map.result

        def work():
            return placer.transform(vector)[0], serial

        def done(f):
            if f.cancelled():  # the window closed first
                return
            try:
                self._posted_live.emit(f.result())
            except Exception as exc:  # a map that cannot place points: no marker, say why once
                self._posted_live.emit(exc)

        compute_thread().submit(work).add_done_callback(done)

    def _show_live(self, placed) -> None:
        self._live_busy = False
        if isinstance(placed, Exception):
            self.session.message.emit(f"embedding: cannot place the live frame ({placed})")
            return
        xy, self.live_serial = placed
        self.live_position = (float(xy[0]), float(xy[1]))
        self.live.setData([self.live_position[0]], [self.live_position[1]])
        if self._live_vector is not None:
            self._place_live()

    def shutdown(self) -> None:
        self.stop()
        self.atlas_mode.shutdown()
