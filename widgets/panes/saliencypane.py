"""The back-prop pane: a saliency map of the live input for the top class, a chosen class or the
selected unit, shown the toolbox's ways (raw, gray, norm, normblur) or over the input.

Light methods are computed in the same forward pass as the activation grid; heavy ones
(integrated gradients, SmoothGrad) run in chunks between live frames, with a progress bar and
a cancel button, and the pane marks the map stale while it lags the frame.
"""

from dataclasses import replace

import numpy as np

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QCompleter, QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton,
                               QSizePolicy, QSlider, QVBoxLayout, QWidget)

from deepvis.render.colormaps import COLORMAPS
from deepvis.errors import DeepvisError
from deepvis.live.pipeline import SaliencySettings
from deepvis.attribution.saliency import CLASS_AGNOSTIC, METHODS, RegionMask, Target, applicable_methods, parse_target
from deepvis.attribution.render import DEFAULT_MODE, MODES, default_display, render_saliency
from deepvis.widgets.panes.imagepanel import ImagePanel
from deepvis.widgets.window.views import DrawnWhenShown

OFF = "off"
TARGETS = ("top prediction", "selected unit", "class")
# An image model explains its output picture: its brightness, or its distance from the input.
PICTURE_TARGETS = {"output picture": "output", "reconstruction error": "error"}
# Region picked on the map for dense targets (segmentation classes, conv units): this much of
# the width and height around the click.
REGION_SIZE = 0.25


class SaliencyPane(DrawnWhenShown, QWidget):
    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.labels: list[str] | None = None
        self.region: tuple[float, float, float, float] | None = None
        self.panel = ImagePanel("Saliency", session=session, placeholder="back-prop off: pick a method (b)")
        self.method = QComboBox()
        self.method.addItems([OFF, *METHODS])
        self.method.setToolTip("back-prop method (b cycles)")
        self.target = QComboBox()
        self.target.addItems(TARGETS)
        self.target.setToolTip("what the map explains; a click on a prediction bar picks that class")
        self.class_edit = QLineEdit()
        # A short placeholder: beside the two combos the field is a few characters wide in the
        # dock, and Qt cut "class name or index" to "cl…". The tooltip says the rest.
        self.class_edit.setPlaceholderText("class")
        self.class_edit.setToolTip("the class to explain, by name or index (target 'class'); a click on a "
                                   "prediction bar fills it in")
        self.class_edit.setMinimumWidth(self.class_edit.fontMetrics().horizontalAdvance("class") + 16)
        self.class_edit.setEnabled(False)
        self.mode = QComboBox()
        self.mode.addItems(MODES)
        self.mode.setCurrentText(DEFAULT_MODE)
        self.mode.setToolTip("clip99: the magnitude clipped at its 99th percentile (as the SmoothGrad paper); "
                             "signed: blue negative, red positive; abs/norm: scaled to the maximum")
        self.colormap = QComboBox()
        self.colormap.addItems([c for c in COLORMAPS if c not in ("gray", "redgreen")])
        self.colormap.setCurrentText("inferno")
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(60)  # over the input, as maps are shown in the papers
        self.opacity.setMaximumWidth(80)
        self.opacity.setToolTip("overlay on the input: 0 shows the map alone")
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setMaximumHeight(12)
        self.progress.setTextVisible(False)
        self.cancel = QPushButton("cancel")
        self.cancel.setMaximumHeight(20)
        self.info = QLabel("")
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        for w in (self.progress, self.cancel):
            w.hide()

        row1 = QHBoxLayout()
        row1.addWidget(self.method)
        row1.addWidget(self.target)
        row1.addWidget(self.class_edit, 1)
        row2 = QHBoxLayout()
        row2.addWidget(self.mode)
        row2.addWidget(self.colormap)
        row2.addWidget(QLabel("overlay"))
        row2.addWidget(self.opacity)
        row2.addStretch(1)
        row3 = QHBoxLayout()
        row3.addWidget(self.progress, 1)
        row3.addWidget(self.cancel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.panel, 1)
        layout.addLayout(row1)
        layout.addLayout(row2)
        layout.addLayout(row3)
        layout.addWidget(self.info)

        self.method.currentTextChanged.connect(self._method_changed)
        self._mode_chosen = False  # the user picked a display: it stays when the method changes
        self.mode.activated.connect(lambda _i: setattr(self, "_mode_chosen", True))
        self.target.currentTextChanged.connect(self._target_mode_changed)
        self.class_edit.editingFinished.connect(self.apply)
        for combo in (self.mode, self.colormap):
            combo.currentTextChanged.connect(lambda _t: self.redraw())
        self.opacity.valueChanged.connect(lambda _v: self.redraw())
        self._cancelled = False  # the user stopped the map: the pane says so instead of "computing"
        self.cancel.clicked.connect(self._cancel)
        self.panel.clicked.connect(self._pick_region)
        session.resultReady.connect(self.redraw)
        session.unitChanged.connect(self._selection_changed)
        session.layerChanged.connect(self._selection_changed)
        session.modelChanged.connect(self._model_changed)
        session.saliencyProgress.connect(self._progress)

    # --- controls -----------------------------------------------------------------------

    def cycle_method(self) -> None:
        """The toolbox's b key: the next back-prop mode, wrapping through off."""
        self.method.setCurrentIndex((self.method.currentIndex() + 1) % self.method.count())

    def set_class(self, index: int) -> None:
        """Explain ``index`` (a click on a prediction bar)."""
        label = self.labels[index] if self.labels and 0 <= index < len(self.labels) else str(index)
        self.class_edit.setText(label)
        if self.target.currentText() != "class":
            self.target.setCurrentText("class")  # applies
        else:
            self.apply()

    def explain_region(self, index: int, region) -> None:
        """Explain class ``index`` inside ``region`` (a clicked blob of a segmentation), with
        Grad-CAM when no method is on."""
        label = self.labels[index] if self.labels and 0 <= index < len(self.labels) else str(index)
        self.class_edit.setText(label)
        for combo, value in ((self.target, "class"), (self.method, "gradcam" if self.method.currentText() == OFF
                                                       else self.method.currentText())):
            combo.blockSignals(True)
            combo.setCurrentText(value)
            combo.blockSignals(False)
        self.class_edit.setEnabled(True)
        self.region = region if isinstance(region, RegionMask) else tuple(float(v) for v in region)
        self.apply()

    def _target_mode_changed(self, mode: str) -> None:
        self.class_edit.setEnabled(mode == "class")
        self.region = None
        self.apply()

    def _selection_changed(self, *_):
        if self.target.currentText() == "selected unit":
            self.apply()

    def _model_changed(self, state) -> None:
        self.labels = state.model.labels
        # Only what this model can run: b cycles through them, and the rollouts are for ViTs.
        methods = [OFF, *applicable_methods(state.model.module, state.probe)]
        if [self.method.itemText(i) for i in range(self.method.count())] != methods:
            current = self.method.currentText()
            self.method.blockSignals(True)
            self.method.clear()
            self.method.addItems(methods)
            self.method.setCurrentText(current if current in methods else OFF)
            self.method.blockSignals(False)
        wanted = [*PICTURE_TARGETS, "selected unit"] if state.model.task == "image" else list(TARGETS)
        if [self.target.itemText(i) for i in range(self.target.count())] != wanted:
            self.target.blockSignals(True)
            self.target.clear()
            self.target.addItems(wanted)
            self.target.blockSignals(False)
            self.class_edit.setEnabled(False)
        completer = QCompleter(self.labels or [], self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.class_edit.setCompleter(completer)
        self.region = None
        self.apply()

    def _pick_region(self, x: float, y: float) -> None:
        """On a dense target, a click explains only the pixels around it; a second click there clears it."""
        result = self.session.result
        if result is None or result.saliency is None:
            return
        h, w = result.saliency.map.shape
        fx, fy = x / w, y / h
        if isinstance(self.region, RegionMask):
            inside = bool(self.region.at(h, w)[min(int(y), h - 1), min(int(x), w - 1)])
        else:
            inside = self.region is not None and self.region[0] <= fx <= self.region[2] \
                and self.region[1] <= fy <= self.region[3]
        if inside:
            self.region = None
        else:
            half = REGION_SIZE / 2
            self.region = (max(0.0, fx - half), max(0.0, fy - half), min(1.0, fx + half), min(1.0, fy + half))
        if not self.apply():
            self.region = None
            self.apply()

    def settings(self) -> SaliencySettings | None:
        """What the controls ask for; raises DeepvisError for a target that does not parse."""
        method = self.method.currentText()
        if method == OFF:
            return None
        mode, state, session = self.target.currentText(), self.session.state, self.session
        target = None
        if mode == "selected unit" and session.layer is not None:
            target = Target("unit", session.unit, session.layer)
        elif mode in PICTURE_TARGETS:
            target = Target(PICTURE_TARGETS[mode])
        elif mode == "class":
            text = self.class_edit.text().strip()
            target = parse_target(text, self.labels, state.probe if state else None) if text else None
        if self.region is not None:
            target = replace(target or Target("top"), region=self.region)
        return SaliencySettings(method, target)

    def apply(self) -> bool:
        self._cancelled = False
        try:
            wanted = self.settings()
        except DeepvisError as exc:
            self.session.message.emit(str(exc))
            return False
        if wanted is None:
            self.panel.clear("back-prop off: pick a method (b)")
            self.info.setText("")
            self._progress(-1.0)
        ok = self.session.update_settings(saliency=wanted)
        if not ok and wanted is not None:
            self.panel.clear("this method does not work here: see the message below")
        elif wanted is not None and self.panel.canvas.qimage is None:
            # Until its first map: what is being done, not the "back-prop off" of before.
            self.panel.clear(f"computing {wanted.method}...")
        self.redraw()
        return ok

    def _method_changed(self, method: str) -> None:
        if not self._mode_chosen:  # each method as its paper shows it (Grad-CAM unclipped)
            self.mode.blockSignals(True)
            self.mode.setCurrentText(default_display(method))
            self.mode.blockSignals(False)
        self.apply()

    def _cancel(self) -> None:
        self._cancelled = True
        self.session.cancel_saliency()

    def _progress(self, fraction: float) -> None:
        if fraction < 0 and self._cancelled and self.panel.data is None:
            method = self.method.currentText()
            self.panel.clear(f"{method} cancelled: pick it again to compute")
            self.info.setText("cancelled")
        running = 0.0 <= fraction < 1.0
        self.progress.setVisible(running)
        self.cancel.setVisible(running)
        if running:
            self.progress.setValue(int(fraction * 100))

    def computing(self) -> bool:
        """A method is on and its map for the current settings has not come yet (a screenshot
        waits for it, as it waits for a tab's first work)."""
        result, wanted = self.session.result, self.session.settings.saliency
        if wanted is None:
            return False
        sal = result.saliency if result is not None else None
        return sal is None or sal.settings != wanted

    # --- drawing ------------------------------------------------------------------------

    def draw_missed(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        result, wanted = self.session.result, self.session.settings.saliency
        if result is None or wanted is None or self.hidden_now():
            return
        sal = result.saliency
        if sal is None:
            # Stale only over an older map; over the "computing" placeholder there is nothing to be stale.
            self.panel.set_stale(self.panel.data is not None)
            if wanted.heavy and not self._cancelled:
                self.info.setText(f"computing {wanted.method}...")
            return
        opacity = self.opacity.value() / 100.0
        try:
            rgb = render_saliency(sal.map, self.mode.currentText(), self.colormap.currentText(),
                                  image=sal.model_input if opacity > 0 else None, opacity=opacity)
        except DeepvisError as exc:
            self.info.setText(str(exc))
            return
        self.panel.set_rgb(rgb)
        if isinstance(sal.target.region, RegionMask):
            ys, xs = np.nonzero(sal.target.region.at(*sal.map.shape))  # its bounding box outlined
            self.panel.set_cursor((xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()))
        elif sal.target.region is not None:
            x0, y0, x1, y1 = sal.target.region
            h, w = sal.map.shape
            self.panel.set_cursor((x0 * w, y0 * h, (x1 - x0) * w, (y1 - y0) * h))
        else:
            self.panel.set_cursor(None)
        target = sal.target.describe(self.labels)
        method = sal.settings.method
        self.panel.set_title(f"{method}: {target}" if method not in CLASS_AGNOSTIC else
                             f"{method}: class-agnostic (the same map for every class)")
        self.info.setText(f"{sal.ms:.0f} ms per map")
        # Stale: the map explains an older frame than the one on screen, or older settings.
        self.panel.set_stale(sal.settings != wanted or sal.frame.serial != result.frame.serial
                             or self.session.stale(result))
