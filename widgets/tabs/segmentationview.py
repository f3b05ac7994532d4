"""The Segmentation tab: a segmentation net's labels over what it sees, live.

Class colours with a legend (colour, name, share of pixels, IoU against ground truth; untick
to hide a class, double-click a colour to change it: remembered per model), opacity, class
edges, and the confidence, entropy or margin instead of the labels. Hovering reads out the
class, the two best scores and the truth. With ground truth (a mask file, or a folder
matched to the input's file names) the tab shows per-class IoU, the confusion matrix (click
a cell to see those pixels), the ignored pixels hatched, and for the selected class its true
positives, false positives and false negatives. A click on the picture explains the clicked
blob's class inside that blob in the saliency pane (Seg-Grad-CAM's "class c in region R").
"""

import json
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QCheckBox, QColorDialog, QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton,
                               QSizePolicy, QSlider, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from deepvis.errors import DeepvisError
from deepvis.segmentation.dense import MODES
from deepvis.segmentation.masks import IGNORE, find_mask, mask_as_seen, read_mask
from deepvis.segmentation.metrics import confusion, scores
from deepvis.segmentation.regions import blob_region
from deepvis.render.colormaps import voc_palette
from deepvis.segmentation.render import hatch_ignored, overlay, value_map
from deepvis.widgets.panes.imagepanel import ImagePanel
from deepvis.widgets.window.views import DrawnWhenShown, View, register_view

# Hover wants the two best classes at any pixel; that costs a softmax and a top-2 over every
# class and pixel, so it is made every frame only for maps up to this many scores (an 11-class
# 64x64 net: 45k; a 21-class 520x520 one: 5.7M, 100 ms a frame on two cores).
HOVER_SCORES_LIMIT = 1_000_000
ERROR_COLOURS = {"TP": (60, 200, 90), "FP": (230, 60, 60), "FN": (60, 120, 240)}
LEGEND_COLUMNS = ("", "class", "share", "IoU")


BUNDLED_SEGMENTER = "digits_fcn"  # offered in one click while the model in view does not segment


@register_view
class SegmentationView(DrawnWhenShown, View):
    title = "Segmentation"
    order = 5

    explainRegion = Signal(int, object)  # class, (x0, y0, x1, y1) fractions: explain it in the saliency pane

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.palette = voc_palette()
        self.hidden: set[int] = set()
        self.truth_file: Path | None = None  # a mask for one picture, or a folder matched by name
        self.truth_bundled = False  # the truth came with a bundled sample set, not from the user
        self.truth: np.ndarray | None = None  # at the model input's resolution, for the frame shown
        self.truth_key = None
        self.matrix: np.ndarray | None = None
        self.highlight: tuple[int, int] | None = None  # (true, predicted) cell of the confusion matrix
        self.classes_shown: list[int] = []
        self.picture: np.ndarray | None = None  # what the panel shows, before Qt

        self.mode = QComboBox()
        self.mode.addItems(MODES)
        self.mode.setToolTip("labels, or the top class's probability, the entropy, or top-1 minus top-2")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(55)
        self.opacity.setMaximumWidth(120)
        self.edges = QCheckBox("edges")
        self.edges.setChecked(True)
        self.load_truth = QPushButton("Ground truth...")
        self.load_truth.setToolTip("a mask (palette or grey PNG, .npy) for this picture, or a folder of masks "
                                   "matched to the input's file names")
        self.clear_truth = QPushButton("Clear")
        self.errors = QCheckBox("errors of the selected class")
        self.errors.setToolTip("true positives green, false positives red, false negatives blue")
        self.panel = ImagePanel("Segmentation", session=session, placeholder="the model in view does not segment")
        self.readout = QLabel("")
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.legend = QTableWidget(0, len(LEGEND_COLUMNS))
        self.legend.setHorizontalHeaderLabels(LEGEND_COLUMNS)
        self.legend.verticalHeader().hide()
        self.legend.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.legend.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.legend.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        # Every column in view: the figures take their width, the class name the rest (elided,
        # whole in its tooltip). A stretched last column at its 100 px minimum went past the edge.
        header = self.legend.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(1, header.ResizeMode.Stretch)
        for column in (2, 3):
            header.setSectionResizeMode(column, header.ResizeMode.ResizeToContents)
        self.legend.setColumnWidth(0, 34)
        self.metrics = QLabel("no ground truth")
        self.matrix_panel = ImagePanel("Confusion (rows: truth) · click a cell", session=session,
                                       placeholder="load ground truth for per-class IoU and confusions")
        self.matrix_panel.setMinimumHeight(160)

        # One click to a model this tab is for, as the Signals tab offers signals_wavenet.
        self.load_segmenter = QPushButton(f"Load {BUNDLED_SEGMENTER}")
        self.load_segmenter.setToolTip(f"the bundled {BUNDLED_SEGMENTER} segments scenes of digits; it opens on "
                                       f"them, with their ground truth")
        self.load_segmenter.clicked.connect(lambda: self.session.load_model(BUNDLED_SEGMENTER))
        self.load_segmenter.hide()
        bar = QHBoxLayout()
        for w in (QLabel("show"), self.mode, QLabel("opacity"), self.opacity, self.edges, self.load_truth,
                  self.clear_truth, self.errors):
            bar.addWidget(w)
        bar.addStretch(1)
        left = QVBoxLayout()
        left.addWidget(self.panel, 1)
        left.addWidget(self.load_segmenter, 0, Qt.AlignmentFlag.AlignCenter)
        left.addWidget(self.readout)
        left_box = QWidget()
        left_box.setLayout(left)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.legend)
        right.addWidget(self.metrics)
        right.addWidget(self.matrix_panel)
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(left_box)
        body.addWidget(right)
        body.setSizes([700, 330])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(body, 1)

        self.mode.currentTextChanged.connect(lambda _t: self._apply_modes())
        self.opacity.valueChanged.connect(lambda _v: self.redraw())
        self.edges.toggled.connect(lambda _on: self.redraw())
        self.errors.toggled.connect(lambda _on: self.redraw())
        self.load_truth.clicked.connect(self._truth_dialog)
        self.clear_truth.clicked.connect(lambda: self.set_truth(None))
        self.legend.cellChanged.connect(self._legend_toggled)
        self.legend.cellDoubleClicked.connect(self._legend_double_clicked)
        self.legend.itemSelectionChanged.connect(self.redraw)
        self.panel.hovered.connect(self._hovered)
        self.panel.clicked.connect(self._clicked)
        self.panel.canvas.drawable = True
        self.panel.drawn.connect(self.explain_drawn)
        self.matrix_panel.clicked.connect(self._matrix_clicked)
        session.resultReady.connect(self.on_result)
        session.modelChanged.connect(self._model_changed)

    # --- model and settings ----------------------------------------------------------------

    def _segments(self) -> bool:
        state = self.session.state
        return state is not None and state.model.task == "segmentation"

    def _model_changed(self, state) -> None:
        self.hidden.clear()
        self.highlight = None
        self.matrix = None
        self.palette = voc_palette()
        for k, colour in self._saved_colours().items():
            if 0 <= k < len(self.palette):
                self.palette[k] = colour
        self.load_segmenter.setVisible(not self._segments())
        if not self._segments():
            self.panel.clear("the model in view does not segment: open a segmentation net (digits_fcn, "
                             "lraspp_mobilenet_v3_large, ...)")
            self.legend.setRowCount(0)
        self._apply_modes()

    def _apply_modes(self) -> None:
        if not self._segments():
            return
        output = next(layer for layer in self.session.state.probe.layers if not layer.path)
        size = int(np.prod(output.shape))
        modes = ["labels"]
        if self.mode.currentText() != "labels":
            modes.append(self.mode.currentText())
        if size <= HOVER_SCORES_LIMIT and "margin" not in modes:
            modes.append("margin")  # the hover's two best classes
        if tuple(modes) != self.session.settings.dense_modes:
            self.session.update_settings(dense_modes=tuple(modes))
        self.redraw()

    def _settings_key(self) -> str:
        return f"segmentation/colours/{self.session.state.model.name}" if self.session.state else ""

    def _saved_colours(self) -> dict[int, tuple[int, int, int]]:
        raw = QSettings("deepvis", "deepvis").value(self._settings_key()) if self.session.state else None
        try:
            return {int(k): tuple(int(c) for c in v) for k, v in json.loads(raw).items()} if raw else {}
        except (ValueError, TypeError, AttributeError):
            return {}

    def set_colour(self, k: int, rgb: tuple[int, int, int]) -> None:
        """Give class ``k`` a colour, remembered for this model."""
        self.palette[k] = rgb
        saved = self._saved_colours()
        saved[k] = tuple(int(c) for c in rgb)
        QSettings("deepvis", "deepvis").setValue(self._settings_key(), json.dumps({str(a): b for a, b in saved.items()}))
        self.redraw()

    def set_hidden(self, k: int, hidden: bool) -> None:
        (self.hidden.add if hidden else self.hidden.discard)(k)
        self.redraw()

    # --- ground truth --------------------------------------------------------------------------

    def _truth_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Ground-truth mask (or pick a file in a folder of masks)", "",
                                              "Masks (*.png *.npy *.bmp *.tif *.tiff)")
        if path:
            self.set_truth(path)

    def set_truth(self, path, bundled: bool = False) -> None:
        """A mask for the picture in view, a folder of masks matched by name, or None.
        ``bundled``: the truth of a bundled sample set, dropped when another input opens."""
        self.truth_file = Path(path) if path else None
        self.truth_bundled = bundled and self.truth_file is not None
        self.truth, self.truth_key, self.matrix, self.highlight = None, None, None, None
        if self.truth_file is not None and not self.truth_file.exists():
            self.session.message.emit(f"no ground truth at {self.truth_file}")
            self.truth_file = None
        self.on_result()

    def _truth_for(self, result) -> np.ndarray | None:
        """The ground truth of the result's frame, at the model input's resolution (cached per frame)."""
        if self.truth_file is None:
            return None
        frame = result.frame
        key = (frame.name, frame.image.shape, self.session.state.model.spec)
        if key == self.truth_key:
            return self.truth
        self.truth_key, self.truth = key, None
        path = self.truth_file
        if path.is_dir():
            path = find_mask(Path(frame.name), path) if frame.name else None
            if path is None:
                self.session.message.emit(f"segmentation: no ground truth for {frame.name} in {self.truth_file}")
                return None
        spec = self.session.state.model.spec
        try:
            truth = mask_as_seen(read_mask(path), frame.image.shape[:2], spec.size, spec.fit, path.name)
            classes = result.dense.classes
            bad = np.unique(truth[(truth != IGNORE) & ((truth < 0) | (truth >= classes))])
            if bad.size:
                raise DeepvisError(f"{path.name} has class {int(bad[0])}, but the model has {classes} classes")
        except DeepvisError as exc:
            self.session.message.emit(f"segmentation: {exc}")
            self.truth_file = None
            return None
        self.truth = truth
        return truth

    # --- drawing ---------------------------------------------------------------------------------

    def on_result(self) -> None:
        result = self.session.result
        if result is None or result.dense is None or self.hidden_now():
            return
        truth = self._truth_for(result)
        self.matrix = confusion(truth, result.dense.labels, result.dense.classes) if truth is not None else None
        self._fill_legend(result)
        self.redraw()

    def draw_missed(self) -> None:
        self.on_result()

    def selected_class(self) -> int | None:
        rows = self.legend.selectionModel().selectedRows() if self.legend.selectionModel() else []
        return self.classes_shown[rows[0].row()] if rows and rows[0].row() < len(self.classes_shown) else None

    def redraw(self) -> None:
        result = self.session.result
        if result is None or result.dense is None or not self._segments():
            return
        maps, image = result.dense, result.model_input
        mode = self.mode.currentText()
        values = getattr(maps, mode) if mode != "labels" else None
        if values is not None:
            levels = (0.0, float(np.log(maps.classes))) if mode == "entropy" else (0.0, 1.0)
            picture = value_map(image, values, levels)
        else:
            picture = overlay(image, maps.labels, self.palette, self.opacity.value() / 100, self.hidden,
                              self.edges.isChecked())
        truth = self.truth if self.matrix is not None else None
        if truth is not None:
            selected = self.selected_class()
            if self.errors.isChecked() and selected is not None:
                picture = _errors(picture, truth, maps.labels, selected)
            if self.highlight is not None:
                t, p = self.highlight
                cell = (truth == t) & (maps.labels == p)
                picture = picture.copy()
                picture[cell] = (255, 230, 0)
            picture = hatch_ignored(picture, truth)
        self.picture = picture
        self.panel.set_rgb(picture)
        self.panel.set_stale(self.session.stale(result))
        self.panel.set_title(f"Segmentation · {mode} · {maps.classes} classes")
        self._draw_matrix()

    def _label(self, k: int) -> str:
        labels = self.session.state.model.labels if self.session.state else None
        return labels[k] if labels and 0 <= k < len(labels) else f"class {k}"

    def _fill_legend(self, result) -> None:
        from deepvis.segmentation.dense import shares as pixel_shares

        maps = result.dense
        share = pixel_shares(maps.labels, maps.classes)
        present = set(np.flatnonzero(share > 0).tolist()) | self.hidden
        if self.matrix is not None:
            present |= set(np.flatnonzero(self.matrix.sum(1) > 0).tolist())
        order = sorted(present, key=lambda k: (-share[k], k))
        iou = scores(self.matrix).iou if self.matrix is not None else None
        selected = self.selected_class()
        self.legend.blockSignals(True)
        self.legend.setRowCount(len(order))
        for row, k in enumerate(order):
            swatch = QTableWidgetItem("")
            swatch.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            swatch.setCheckState(Qt.CheckState.Unchecked if k in self.hidden else Qt.CheckState.Checked)
            swatch.setBackground(QBrush(QColor(*(int(c) for c in self.palette[k]))))
            swatch.setToolTip("untick to hide; double-click to change the colour")
            cells = [swatch, QTableWidgetItem(self._label(k)), QTableWidgetItem(f"{share[k]:.1%}"),
                     QTableWidgetItem("" if iou is None or np.isnan(iou[k]) else f"{iou[k]:.3f}")]
            cells[1].setToolTip(self._label(k))  # the whole name where the column elides it
            for col, item in enumerate(cells):
                self.legend.setItem(row, col, item)
        self.classes_shown = order
        if selected in order:
            self.legend.selectRow(order.index(selected))
        self.legend.blockSignals(False)
        if self.matrix is not None:
            s = scores(self.matrix)
            self.metrics.setText(f"mIoU {s.miou:.3f} · pixel accuracy {s.pixel_accuracy:.3f} · "
                                 f"{int(self.matrix.sum()):,} labelled pixels")
        else:
            self.metrics.setText("no ground truth" if self.truth_file is None else "no ground truth for this frame")

    def _draw_matrix(self) -> None:
        if self.matrix is None:
            self.matrix_panel.clear("load ground truth for per-class IoU and confusions")
            return
        # Rows normalized (each true class's pixels sum to 1): a small class's confusions show.
        rows = self.matrix.astype(np.float64)
        rows = rows / np.maximum(rows.sum(1, keepdims=True), 1)
        self.matrix_panel.set_map(rows.astype(np.float32), (0.0, 1.0), "viridis")

    # --- mouse ---------------------------------------------------------------------------------

    def _legend_toggled(self, row: int, col: int) -> None:
        if col == 0 and row < len(self.classes_shown):
            item = self.legend.item(row, 0)
            self.set_hidden(self.classes_shown[row], item.checkState() != Qt.CheckState.Checked)

    def _legend_double_clicked(self, row: int, col: int) -> None:
        if col != 0 or row >= len(self.classes_shown):
            return
        k = self.classes_shown[row]
        colour = QColorDialog.getColor(QColor(*(int(c) for c in self.palette[k])), self, f"Colour of {self._label(k)}")
        if colour.isValid():
            self.set_colour(k, (colour.red(), colour.green(), colour.blue()))

    def readout_at(self, x: float, y: float) -> str:
        """What the hover shows for image pixel (x, y)."""
        result = self.session.result
        if result is None or result.dense is None:
            return ""
        maps = result.dense
        h, w = maps.labels.shape
        row, col = int(y), int(x)
        if not (0 <= row < h and 0 <= col < w):
            return ""
        k = int(maps.labels[row, col])
        text = f"({col}, {row}) {self._label(k)}"
        if maps.confidence is not None:
            text += f" {maps.confidence[row, col]:.2f}"
        if maps.runner_up is not None and maps.margin is not None:
            second = maps.confidence[row, col] - maps.margin[row, col]
            text += f" · 2nd {self._label(int(maps.runner_up[row, col]))} {second:.2f}"
        if self.truth is not None and self.matrix is not None:
            t = int(self.truth[row, col])
            text += " · truth " + ("ignored" if t == IGNORE else self._label(t))
        return text

    def _hovered(self, x: float, y: float) -> None:
        self.readout.setText(self.readout_at(x, y) if x >= 0 else "")

    def _clicked(self, x: float, y: float) -> None:
        """Explain the clicked blob's class inside that blob."""
        result = self.session.result
        if result is None or result.dense is None:
            return
        try:
            k, region = blob_region(result.dense.labels, x, y)
        except DeepvisError as exc:
            self.session.message.emit(str(exc))
            return
        self.explainRegion.emit(k, region)

    def explain_drawn(self, kind: str, points) -> None:
        """A dragged box or a brush stroke: explain the class covering most of it (background
        only when nothing else is there) inside exactly that region."""
        from deepvis.attribution.saliency import RegionMask

        result = self.session.result
        if result is None or result.dense is None:
            return
        labels = result.dense.labels
        h, w = labels.shape
        pts = np.array(points, np.float64)
        if kind == "box":
            x0, y0 = np.clip(pts.min(0), 0, [w, h])
            x1, y1 = np.clip(pts.max(0), 0, [w, h])
            if x1 - x0 < 1 or y1 - y0 < 1:
                return
            region = (x0 / w, y0 / h, x1 / w, y1 / h)
            inside = np.zeros((h, w), bool)
            inside[int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))] = True
        else:
            from deepvis.io.images import quiet_cv2

            cv2 = quiet_cv2()
            inside = np.zeros((h, w), np.uint8)
            radius = max(1, round(min(h, w) / 40))  # the brush: a 40th of the picture wide
            ends = np.round(pts).astype(np.int32)
            for a, b in zip(ends, ends[1:]):
                cv2.line(inside, tuple(int(v) for v in a), tuple(int(v) for v in b), 1, 2 * radius + 1)
            inside = inside.astype(bool)
            if not inside.any():
                return
            region = RegionMask.of(inside)
        counts = np.bincount(labels[inside & (labels >= 0)], minlength=result.dense.classes)
        if counts.sum() == 0:
            return
        foreground = counts.copy()
        foreground[0] = 0
        k = int(np.argmax(foreground) if foreground.any() else 0)
        self.explainRegion.emit(k, region)

    def _matrix_clicked(self, x: float, y: float) -> None:
        if self.matrix is None:
            return
        cell = (int(y), int(x))
        self.highlight = None if cell == self.highlight else cell
        t, p = cell
        if self.highlight is not None:
            self.session.message.emit(f"{int(self.matrix[t, p]):,} pixels of {self._label(t)} labelled "
                                      f"{self._label(p)}")
        self.redraw()


def _errors(picture: np.ndarray, truth: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    out = picture.copy()
    valid = truth != IGNORE
    for name, hit in (("TP", (truth == k) & (labels == k)), ("FP", valid & (truth != k) & (labels == k)),
                      ("FN", (truth == k) & (labels != k))):
        out[hit] = ERROR_COLOURS[name]
    return out
