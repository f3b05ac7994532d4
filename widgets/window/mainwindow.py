"""The main window: input and layers on the left, views in the centre, the unit and the
predictions on the right, timings in the status bar; keys like the Deep Visualization
Toolbox and the mouse for everything."""

import json
import os
import time
from pathlib import Path

from PySide6.QtCore import QPoint, QRect, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QImage, QKeySequence, QPainter, QPixmap
from PySide6.QtWidgets import (QApplication, QDockWidget, QFileDialog, QLabel, QMainWindow, QProgressBar, QSplitter,
                               QTabWidget, QVBoxLayout, QWidget)

from deepvis.atlas.store import MANIFEST
from deepvis.errors import DeepvisError
from deepvis.io.images import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from deepvis.resources import IMAGES_DIR, RESOURCES_DIR, SAMPLE_SETS, sample_set_of
from deepvis.io.sources import ImageFileSource, list_cameras
from deepvis.io.signals import is_signal_file
from deepvis.core.hfsource import is_hf_folder
from deepvis.core.zoo import sample_kind
# Imported to register the built-in views.
from deepvis.widgets.tabs import (activationgrid, attentionview, cloudview, correspondenceview,  # noqa: F401
                                  doctorview, dreamview, embeddingview, filterview, graphview, latentview,
                                  receptiveview, sampleview, segmentationview, signalview)
from deepvis.widgets.window.helpoverlay import HelpOverlay
from deepvis.widgets.panes.inputpane import InputPane
from deepvis.widgets.panes.elidedlabel import ElidedLabel
from deepvis.widgets.panes.layerlist import LayerList
from deepvis.widgets.panes.outputpane import OutputPane
from deepvis.widgets.panes.headselector import HeadSelector
from deepvis.widgets.panes.predictionpane import PredictionPane
from deepvis.widgets.panes.readout import Readout
from deepvis.widgets.window.recorder import Recorder
from deepvis.widgets.panes.saliencypane import SaliencyPane
from deepvis.widgets.window.session import Session
from deepvis.widgets.window.tabstyle import compact_tab_bar
from deepvis.widgets.panes.unitpane import UnitPane
from deepvis.shapes3d.readers import SUPPORTED_3D_SUFFIXES
from deepvis.widgets.window.views import registered_views

MODEL_SUFFIXES = {".pt", ".pth", ".ckpt", ".ts", ".jit", ".tar", ".bin"}
SETTINGS = ("deepvis", "deepvis")
SCREENSHOT_TIMEOUT_MS = 180_000
SETTLE_TIMEOUT_S = 120.0  # longest a screenshot waits for the tab in front to finish its first work
STATUS_INTERVAL_S = 0.25


SESSION_OPTIONS = ("device", "trust_pickle")
"""Model options that hold for every model opened in the window, not only the command line's."""


class MainWindow(QMainWindow):
    def __init__(self, model: str | None = None, weights: str | None = None, input_spec: str | None = None,
                 tab: str | None = None, model_options: dict | None = None, screenshot: str | None = None,
                 after_frames: int = 1, restore: bool = True, persist: bool = True, saliency: str | None = None,
                 without_views: tuple[str, ...] = (), atlas: str | None = None, autostart: bool = True):
        super().__init__()
        self.setWindowTitle("deepvis")
        self.setAcceptDrops(True)
        self.settings = QSettings(*SETTINGS)
        # Screenshots and benchmarks must not overwrite the user's saved session.
        self.persist = persist and not screenshot
        self.session = Session(self)
        # Tabs that show nothing until asked (Dream, Embedding, Sample) start a cheap run the first
        # time they are shown; the GUI benchmark turns it off so its figures stay comparable.
        self.session.autostart = autostart
        self.model_options = dict(model_options or {})
        self._screenshot = (screenshot, max(1, after_frames)) if screenshot else None
        self._tab_asked = bool(tab)  # then a 1-D model does not bring the Signals tab to the front
        self._previous_input: str | None = None
        self._status_at = 0.0
        self.failure: str | None = None  # why a --screenshot run gave up
        self._loaded_spec: str | None = None  # the spec of the model now running (weights apply to it)

        self.input_pane = InputPane(self.session)
        self.output_pane = OutputPane(self.session)
        self.layer_list = LayerList(self.session)
        self.unit_pane = UnitPane(self.session)
        self.predictions = PredictionPane(self.session)
        self.head_selector = HeadSelector(self.session)
        self.saliency = SaliencyPane(self.session)
        self.predictions.classClicked.connect(self.saliency.set_class)
        self.tabs = QTabWidget()
        compact_tab_bar(self.tabs.tabBar())  # every title in view beside the docks
        # without_views: tab titles left out (the GUI benchmark's window without the 3-D view).
        self.views = [cls(self.session) for cls in registered_views() if cls.title not in without_views]
        for view in self.views:
            self.tabs.addTab(view, view.title)
        self.grid = next(v for v in self.views if isinstance(v, activationgrid.ActivationGridView))
        for view in self.views:
            if isinstance(view, segmentationview.SegmentationView):
                view.explainRegion.connect(self.saliency.explain_region)
        self.setCentralWidget(self.tabs)
        self._docks()
        self._status_bar()
        self.help = HelpOverlay(self)
        self.recorder = Recorder(self, parent=self)
        self.recorder.finished.connect(self._recording_written)
        self._menus()

        s = self.session
        s.message.connect(self.show_message)
        s.busy.connect(self._busy)
        s.resultReady.connect(self._on_result)
        s.frameReady.connect(self._refresh_stale)
        s.modelChanged.connect(self._model_changed)
        s.layerChanged.connect(lambda name: self._remember("layer", name))
        s.atlasChanged.connect(self._atlas_changed)
        for view in self.views:
            if isinstance(view, signalview.SignalView):
                view.drawn.connect(self._signal_drawn)
        if self._screenshot:
            # A model or input that fails leaves nothing to photograph: fail instead of waiting.
            s.message.connect(self._screenshot_failed_on_error)
            QTimer.singleShot(SCREENSHOT_TIMEOUT_MS, lambda: self._give_up_screenshot("no result in time"))

        self.grid.colormaps.currentTextChanged.connect(self._set_unit_colormap)
        geometry = self.settings.value("geometry") if restore else None
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1440, 900)
        if restore and self.settings.value("colormap"):
            self.grid.set_colormap(str(self.settings.value("colormap")))
        if atlas and model is None:
            # `deepvis gui --atlas A` shows A's model live, as its build loaded it.
            model, weights, options = self._atlas_model(atlas)
            self.model_options = {**options, **self.model_options}
        self._initial_layer = self.settings.value("layer") if restore and not model else None
        if model is None and restore:
            model = self.settings.value("model") or None
            weights = weights or (self.settings.value("weights") or None)
        # The command line's input holds for its model; any other start opens the model's own
        # kind of bundled input (digits for a digit classifier, not the astronaut).
        self._input_given = input_spec is not None
        if input_spec is None and restore:
            saved = self.settings.value("input")
            if saved and (str(saved).startswith(("camera", "pattern")) or Path(str(saved)).exists()) and \
                    sample_set_of(saved) is None:
                input_spec = str(saved)
        if input_spec is None:
            self.open_sample(sample_kind(model))
        else:
            self.open_input(input_spec)
        self._options_model = model  # the model the input options (--input-size, --mean...) were given for
        self.load_model(model, weights)
        saliency = saliency or (self.settings.value("saliency") if restore else None)
        if saliency and self.saliency.method.findText(str(saliency)) >= 0:
            self.saliency.method.setCurrentText(str(saliency))
        elif saliency:
            self.show_message(f"no back-prop method {saliency!r}; the saliency pane lists them")
        self.saliency.method.currentTextChanged.connect(lambda text: self._remember("saliency", text))
        if tab:
            names = [self.tabs.tabText(i).lower() for i in range(self.tabs.count())]
            if tab.lower() in names:
                self.tabs.setCurrentIndex(names.index(tab.lower()))
            else:
                self.show_message(f"no tab named {tab!r}; tabs are {', '.join(names)}")
        if atlas:
            self.open_atlas(atlas)

    # --- layout ----------------------------------------------------------------------------

    def _docks(self) -> None:
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.input_pane)
        left.addWidget(self.output_pane)  # shown for image models only
        left.addWidget(self.layer_list)
        left.setSizes([440, 240, 300])
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.unit_pane)
        right.addWidget(self.saliency)
        predictions = QWidget()
        column = QVBoxLayout(predictions)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.head_selector)
        column.addWidget(self.predictions, 1)
        right.addWidget(predictions)
        right.setSizes([520, 380, 140])  # the saliency map about as large as the input pane
        # A few pixels between the panes and the window's edge: flush against it, the right dock's
        # frames and fields looked cut off.
        left.setContentsMargins(3, 0, 0, 0)
        right.setContentsMargins(0, 0, 3, 0)
        for title, widget, area in (("Input and layers", left, Qt.DockWidgetArea.LeftDockWidgetArea),
                                    ("Unit, saliency and predictions", right, Qt.DockWidgetArea.RightDockWidgetArea)):
            dock = QDockWidget(title, self)
            dock.setObjectName(title)
            dock.setWidget(widget)
            dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable |
                             QDockWidget.DockWidgetFeature.DockWidgetFloatable)
            self.addDockWidget(area, dock)
        # At the default 1440 px the centre keeps the tab bar's whole width (761 px with the
        # Graph tab): wider docks sent the last tabs behind the bar's scroll arrows.
        self.resizeDocks([self.findChild(QDockWidget, "Input and layers"),
                          self.findChild(QDockWidget, "Unit, saliency and predictions")], [330, 330], Qt.Orientation.Horizontal)

    def _status_bar(self) -> None:
        bar = self.statusBar()
        # Readouts, not labels: a label's new text relayouted the status bar and repainted the
        # main window four times a second.
        self.fps_label = Readout(sample="still image")
        self.fps_label.setMinimumWidth(80)
        self.stage_label = Readout(sample="capture 00.0  preprocess 0.0  forward 000.0  saliency 000.0  tile 0.0  "
                                          "predict 0.0  render 00.0 ms")
        self.stage_label.setMinimumWidth(380)
        self.model_label = QLabel("")
        # Elided, the whole note in its tooltip: a QLabel asked for the whole text's width and a long
        # note widened the window past the screen.
        self.message_label = ElidedLabel("")
        self.message_label.setStyleSheet("color: #f0b050;")
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setMaximumWidth(140)
        self.progress.hide()
        bar.addWidget(self.fps_label)
        bar.addWidget(self.stage_label)
        bar.addWidget(self.message_label, 1)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.model_label)

    def _action(self, menu, text, slot, shortcut=None, checkable=False):
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _menus(self) -> None:
        file = self.menuBar().addMenu("&File")
        self._action(file, "Open image...", lambda: self._open_dialog("image"), "Ctrl+O")
        self._action(file, "Open folder...", lambda: self._open_dialog("folder"))
        self._action(file, "Open video...", lambda: self._open_dialog("video"))
        self._action(file, "Open model...", lambda: self._open_dialog("model"))
        self._action(file, "Open weights...", lambda: self._open_dialog("weights"))
        self._action(file, "Open atlas...", lambda: self._open_dialog("atlas"))
        samples = file.addMenu("Samples")
        for sample in SAMPLE_SETS.values():
            self._action(samples, sample.title, lambda _=False, k=sample.kind: self.open_sample(k))
        shapes = samples.addMenu("3-D shapes (PointNet, VoxNet)")
        for path in sorted((RESOURCES_DIR / "shapes").iterdir()):
            if path.suffix.lower() in SUPPORTED_3D_SUFFIXES:
                self._action(shapes, path.name, lambda _=False, p=str(path): self.open_path(p))
        file.addSeparator()
        export = file.addMenu("Export pane as PNG")
        export.aboutToShow.connect(lambda: self._fill_export_menu(export))
        self._action(file, "Export window as PNG...", lambda: self._export_dialog(self, "window"), "Ctrl+E")
        self.record_action = self._action(file, "Record window...", self._toggle_recording, "Ctrl+R",
                                          checkable=True)
        file.addSeparator()
        self._action(file, "Quit", self.close, "Q")

        inp = self.menuBar().addMenu("&Input")
        self.camera_menu = inp.addMenu("Camera")
        self.camera_menu.aboutToShow.connect(self._fill_camera_menu)
        self._action(inp, "Camera on/off", self.toggle_camera, "C")
        self._action(inp, "Next file", lambda: self.session.next_item(1), "E")
        self._action(inp, "Previous file", lambda: self.session.next_item(-1), "W")
        self.freeze_action = self._action(inp, "Freeze frame", self.toggle_freeze, "F", checkable=True)
        self.mirror_action = self._action(inp, "Mirror", lambda on: self.session.update_settings(mirror=on), "M",
                                          checkable=True)
        fit = inp.addMenu("Fit to the model")
        group = QActionGroup(self)
        for mode in ("crop", "stretch"):
            a = self._action(fit, mode, lambda _=False, m=mode: self.session.update_settings(fit=m), checkable=True)
            group.addAction(a)
            a.setChecked(mode == "crop")

        view = self.menuBar().addMenu("&View")
        self._action(view, "Previous layer", lambda: self.session.step_layer(-1), "U")
        self._action(view, "Next layer", lambda: self.session.step_layer(1), "O")
        self._action(view, "Zoom cycle", self.grid.cycle_zoom, "Z")
        self._action(view, "Normalize per layer/channel", self._toggle_normalization, "N")
        for key, (dr, dc) in {"Up": (-1, 0), "Down": (1, 0), "Left": (0, -1), "Right": (0, 1)}.items():
            self._action(view, f"Unit {key.lower()}", lambda _=False, d=(dr, dc): self.grid.move_unit(*d), key)
        self._action(view, "Next back-prop mode", self.saliency.cycle_method, "B")
        self._action(view, "Keyboard help", lambda: self.help.toggle(), "H")

    def _fill_export_menu(self, menu) -> None:
        menu.clear()  # the panes on offer depend on the model (an image model's output pane)
        for name, widget in self.panes().items():
            self._action(menu, name, lambda _=False, w=widget, n=name: self._export_dialog(w, n))

    def panes(self) -> dict:
        panes = {"input": self.input_pane.raw, "model input": self.input_pane.seen, "layers": self.layer_list,
                 "unit": self.unit_pane, "saliency": self.saliency.panel, "predictions": self.predictions}
        if self.output_pane.isVisible():
            panes["output"] = self.output_pane
        panes.update({v.title.lower(): v for v in self.views})
        return panes

    # --- actions ---------------------------------------------------------------------------

    def load_model(self, spec, weights=None) -> None:
        self._requested_model = (spec, weights)
        options = self.model_options
        if spec != self._options_model:
            # --input-size, --mean, --labels and the like describe the command line's model; another
            # model opened here brings its own (a 32x32 size made digits_cnn fail to load). The
            # device and the pickle opt-in stay for the session.
            options = {k: v for k, v in options.items() if k in SESSION_OPTIONS}
        self.session.load_model(spec, weights, **options)

    def open_input(self, spec, show_signals: bool = True) -> bool:
        if self._is_signal(spec):
            view = next(v for v in self.views if isinstance(v, signalview.SignalView))
            if show_signals:
                self.tabs.setCurrentWidget(view)
            view.open_file(str(spec))
            return True
        sample = sample_set_of(spec)
        start = sample.first if sample is not None and Path(str(spec)).resolve() == sample.path else None
        if self.session.open_input(spec, start=start):
            if not str(spec).startswith("camera"):
                self._previous_input = str(spec)
            self._remember("input", _absolute(spec))
            self._bundled_truth(sample)
            self.session.start()
            return True
        return False

    def open_sample(self, kind: str) -> None:
        """Open a bundled sample set (deepvis.resources.SAMPLE_SETS). A recording goes to the
        Signals tab, and the picture views keep (or get) the bundled photos."""
        sample = SAMPLE_SETS[kind]
        if kind == "signals":
            # Brought to the front only from the menu: at start-up a 1-D model does that itself.
            self.open_input(str(sample.path), show_signals=self.session.state is not None)
            if self.session.source_spec is None:
                self.open_input(str(IMAGES_DIR))
            return
        self.open_input(str(sample.path))

    def _bundled_truth(self, sample) -> None:
        """A bundled set's ground truth comes with it (digit scenes), and goes when another input
        opens; a user's own ground truth stays until they clear it."""
        for view in self.views:
            if isinstance(view, segmentationview.SegmentationView):
                if sample is not None and sample.truth is not None and \
                        (view.truth_file is None or view.truth_bundled):
                    view.set_truth(str(sample.truth), bundled=True)
                elif view.truth_bundled:
                    view.set_truth(None)

    def toggle_camera(self) -> None:
        if self.session.source_spec and self.session.source_spec.startswith("camera"):
            self.open_input(self._previous_input or str(IMAGES_DIR))
            return
        cameras = list_cameras()
        if not cameras:
            self.show_message("No camera found (nothing at /dev/video*); open an image, folder or video instead")
            return
        self.open_input(f"camera:{cameras[0]}")

    def _fill_camera_menu(self) -> None:
        self.camera_menu.clear()
        cameras = list_cameras()
        if not cameras:
            action = self.camera_menu.addAction("no camera found")
            action.setEnabled(False)
        for index in cameras:
            self._action(self.camera_menu, f"Camera {index}", lambda _=False, i=index: self.open_input(f"camera:{i}"))

    def _set_unit_colormap(self, name: str) -> None:
        self.unit_pane.colormap = name
        self.unit_pane.on_result()

    def toggle_freeze(self) -> None:
        frozen = not self.session.settings.frozen
        self.session.update_settings(frozen=frozen)
        self.freeze_action.setChecked(frozen)
        self.show_message("frozen: press f to go live again" if frozen else "")

    def _toggle_normalization(self) -> None:
        mode = "channel" if self.session.settings.normalization == "layer" else "layer"
        self.grid.normalization.setCurrentText(mode)

    def _open_dialog(self, kind: str) -> None:
        if kind == "folder":
            path = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        elif kind == "atlas":
            path = QFileDialog.getExistingDirectory(self, "Open an atlas (a folder made by deepvis atlas build)")
        else:
            filters = {"image": "Images (" + " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)) + ")",
                       "video": "Videos (" + " ".join(f"*{s}" for s in sorted(VIDEO_SUFFIXES)) + ")",
                       "model": "Models and checkpoints (*.pt *.pt2 *.onnx *.pth *.ckpt *.ts *.jit *.tar);;All files (*)",
                       "weights": "Weights (*.safetensors *.pt *.pth *.ckpt *.tar *.bin);;All files (*)"}[kind]
            path, _ = QFileDialog.getOpenFileName(self, f"Open {kind}", "", filters)
        if not path:
            return
        if kind == "model":
            self.load_model(path)
        elif kind == "atlas":
            self.open_atlas(path)
        elif kind == "weights":
            self.load_weights(path)
        else:
            self.open_input(path)

    def load_weights(self, path: str) -> None:
        """Weights for the architecture now loaded (a zoo name, a factory)."""
        spec = self._loaded_spec or (self.session.state.model.name if self.session.state else None)
        self.load_model(spec, path)

    def open_path(self, path: str) -> None:
        """Whatever a file is (image, folder, video, model), open it as that."""
        p = Path(path)
        if p.suffix.lower() == ".safetensors":  # tensors without an architecture: weights for this one
            self.load_weights(str(p))
        elif is_hf_folder(p):  # a Hugging Face model folder, not a folder of images
            self.load_model(str(p))
        elif p.suffix.lower() in MODEL_SUFFIXES:
            self.load_model(str(p))
        elif self._is_signal(p):
            self.open_input(str(p))
        elif is_atlas_folder(p):  # before the image folders: an atlas holds no images of its own
            self.open_atlas(str(p))
        elif p.suffix.lower() in SUPPORTED_3D_SUFFIXES and p.is_file():
            view = next(v for v in self.views if isinstance(v, cloudview.CloudView))
            self.tabs.setCurrentWidget(view)
            view.open_file(str(p))
        else:
            self.open_input(str(p))

    def _atlas_model(self, path) -> tuple[str | None, str | None, dict]:
        from deepvis.atlas.store import Atlas
        from deepvis.atlas.units import atlas_model_source

        try:
            return atlas_model_source(Atlas(Path(str(path))))
        except (DeepvisError, KeyError, TypeError):  # the atlas's own error is shown when it opens
            return None, None, {}

    def open_atlas(self, path) -> None:
        """Open an atlas (off the GUI thread); its map comes up in the Embedding tab."""
        self.session.open_atlas(path)

    def _atlas_changed(self, atlas) -> None:
        if atlas is None:
            return
        view = next((v for v in self.views if isinstance(v, embeddingview.EmbeddingView)), None)
        if view is not None:  # a window made without it (benchmarks) has nowhere to show the map
            self.tabs.setCurrentWidget(view)
        self.show_message(f"atlas {atlas.path.name}: {len(atlas):,} images")

    def _export_dialog(self, widget, name: str) -> None:
        path, _ = QFileDialog.getSaveFileName(self, f"Export {name} as PNG", f"deepvis-{name.replace(' ', '-')}.png",
                                              "PNG (*.png)")
        if path:
            self.export_png(widget, path)

    def grab_with_gl(self, widget) -> QPixmap:
        """``widget.grab()`` with the GL views inside it painted in: a grab leaves out the 3-D
        view, which is a native window of its own (its picture was blank in every screenshot)."""
        pixmap = widget.grab()
        painter = None
        for view in self.views:
            snapshot = getattr(view, "gl_snapshot", None)
            got = snapshot() if snapshot is not None else None
            if got is None:
                continue
            host, rgb = got
            if host is not widget and not widget.isAncestorOf(host):
                continue
            h, w = rgb.shape[:2]
            image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
            painter = painter or QPainter(pixmap)
            painter.drawImage(QRect(host.mapTo(widget, QPoint(0, 0)), host.size()), image)
        if painter is not None:
            painter.end()
        return pixmap

    def export_png(self, widget, path) -> bool:
        if self.grab_with_gl(widget).save(str(path), "PNG"):
            self.show_message(f"saved {path}")
            return True
        self.show_message(f"could not write {path}")
        return False

    def _toggle_recording(self) -> None:
        if self.recorder.recording:
            self.recorder.stop()
            self.record_action.setChecked(False)
            return
        path, _ = QFileDialog.getSaveFileName(self, "Record window to", "deepvis-recording.mp4",
                                              "MP4 video (*.mp4);;GIF (*.gif)")
        if path:
            self.start_recording(path)
        else:
            self.record_action.setChecked(False)

    def start_recording(self, path) -> None:
        try:
            self.recorder.start(path)
            self.record_action.setChecked(True)
            self.show_message(f"recording to {path}: Ctrl+R stops")
        except DeepvisError as exc:
            self.record_action.setChecked(False)
            self.show_message(str(exc))

    def _recording_written(self, path: str, error: str) -> None:
        self.record_action.setChecked(False)  # also after a stop the recorder made by itself
        self.show_message(f"could not write {path}: {error}" if error else f"recording saved to {path}")

    # --- session events ----------------------------------------------------------------------

    def show_message(self, text: str) -> None:
        self.message_label.setText(text)
        self.message_label.setToolTip(text)

    def _busy(self, text: str) -> None:
        self.progress.setVisible(bool(text))
        self.progress.setFormat(text)
        self.progress.setToolTip(text)
        if text:
            self.show_message(text)

    def _model_changed(self, state) -> None:
        model = state.model
        shape = (model.signal.describe() if model.signal is not None else
                 f"{model.spec.channels}x{model.spec.height}x{model.spec.width}")
        self.model_label.setText(f"{model.name} · {model.device} · {shape}")
        if model.signal is not None:
            signals = next(v for v in self.views if isinstance(v, signalview.SignalView))
            if not self._tab_asked:
                # The picture views have nothing to show a 1-D model: its tab comes to the front.
                self.tabs.setCurrentWidget(signals)
            if self._screenshot and self.tabs.currentWidget() is not signals:
                # No picture results will come for a 1-D model: the asked tab as it is now.
                self._screenshot_in(500)
        self._tab_asked = False  # the command line's tab holds for its model, not later ones
        kind = sample_kind(model.name)
        current = sample_set_of(self.session.source_spec) if self.session.source_spec else None
        if not self._input_given and current is not None and current.kind != kind and kind != "signals":
            # A bundled input of another kind (the photos, after a digit model): this model's own.
            self.open_sample(kind)
        self._input_given = False  # the command line's input holds for its model, not later ones
        # Random weights said where the name is: a random net's bars carry real class names.
        # Where the weights came from: random ones read as chance, whatever the class names say.
        self.setWindowTitle(" · ".join(["deepvis", model.name] + ([model.weights_words] if model.weights_words else [])))
        spec, weights = self._requested_model
        if (spec or model.name) != state.spec_text:  # loaded by a tab's own button, not through the window
            spec, weights = state.spec_text, None
        self._loaded_spec = spec
        self._remember("model", _absolute(spec) if spec else "")
        self._remember("weights", _absolute(weights) if weights else "")
        if self._initial_layer and self._initial_layer in state.probe:
            self.session.set_layer(str(self._initial_layer))
        self._initial_layer = None
        if not self.message_label.text().startswith(model.name):
            self.show_message("")

    def _is_signal(self, spec) -> bool:
        """A recording for the Signals tab: .wav and .csv always; .npy only while a 1-D model is
        loaded (else it is a point cloud or a voxel grid for the 3-D tab)."""
        path = Path(str(spec))
        if not is_signal_file(path) or not path.is_file():
            return False
        state = self.session.state
        return path.suffix.lower() != ".npy" or (state is not None and state.model.signal is not None)

    def _on_result(self) -> None:
        result = self.session.result
        if result is None:
            return
        now = time.monotonic()
        if now - self._status_at > STATUS_INTERVAL_S:  # relayouting the status bar per frame costs fps
            self._status_at = now
            t = result.timings
            live = self.session.source is not None and self.session.source.is_live
            self.fps_label.setText(f"{result.fps:5.1f} fps" if live else "still image")
            stages = "  ".join(f"{k} {t[k]:.1f}" for k in ("capture", "preprocess", "forward", "saliency", "tile",
                                                            "predict") if t.get(k) or k != "saliency")
            self.stage_label.setText(f"{stages}  render {self.session.render_ms:.1f} ms")
        if self.session.results_seen == 1 and os.environ.get("DEEPVIS_FIRST_FRAME_LOG"):
            # For `bench gui-live`'s start-up time: when the first result has been painted (the
            # zero timer runs after the paint events this result posted).
            QTimer.singleShot(0, lambda: Path(os.environ["DEEPVIS_FIRST_FRAME_LOG"]).write_text(
                repr(time.monotonic())))
        source = self.session.source
        still = source is not None and not source.is_live  # a still image gives one result, not N
        if self._screenshot and (self.session.results_seen >= self._screenshot[1] or
                                 (still and not self.session.stale(result))):
            self._screenshot_in(50)

    def _signal_drawn(self, count: int) -> None:
        # A 1-D model's results are the Signals tab's windows, not the picture pipeline's.
        if self._screenshot and count >= self._screenshot[1]:
            self._screenshot_in(50)

    def _remember(self, key: str, value) -> None:
        if self.persist:
            self.settings.setValue(key, value)

    def _screenshot_failed_on_error(self, text: str) -> None:
        if not self._screenshot:
            return
        still = isinstance(self.session.source, ImageFileSource)  # a broken still image never recovers
        pipeline = self.session.pipeline
        dead = pipeline is not None and pipeline.source_dead  # a camera that is not there
        if text.startswith("Could not load") or "not found" in text or "unsupported" in text or \
                (still and "cannot read" in text) or dead:
            self._give_up_screenshot(text)

    def _give_up_screenshot(self, why: str) -> None:
        if self._screenshot:
            self._screenshot = None
            self.failure = f"no screenshot: {why}"
            # Queued: a failure found while the window is built comes before the event loop
            # runs, and an exit() called then is lost (the run waited for its timeout).
            QTimer.singleShot(0, lambda: QApplication.instance().exit(2))

    def _screenshot_in(self, ms: int) -> None:
        """Take the pending screenshot once the paint events now queued have run and the tab in
        front has finished the work its first look needs (a generator loading, a measurement)."""
        path, self._screenshot = self._screenshot[0], None
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        QTimer.singleShot(ms, lambda: self._take_screenshot_when_settled(path, deadline))

    def _take_screenshot_when_settled(self, path: str, deadline: float) -> None:
        view = self.tabs.currentWidget()
        if (view.working() or self.saliency.computing()) and time.monotonic() < deadline:
            QTimer.singleShot(100, lambda: self._take_screenshot_when_settled(path, deadline))
            return
        # One more turn of the event loop: what the finished work posted is painted first.
        QTimer.singleShot(50, lambda: self._take_screenshot(path))

    def _take_screenshot(self, path: str) -> None:
        ok = self.export_png(self, path)
        if not ok:
            self.failure = f"could not write the screenshot {path}"
        QApplication.instance().exit(0 if ok else 2)

    def _refresh_stale(self) -> None:
        stale = self.session.stale()
        self.grid.panel.set_stale(stale)
        self.unit_pane.panel.set_stale(stale)
        self.input_pane.seen.set_stale(stale)

    # --- drag and drop, keys, closing --------------------------------------------------------

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.open_path(url.toLocalFile())
        event.acceptProposedAction()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.help.isVisible():
            self.help.toggle()
            self.help.toggle()

    def closeEvent(self, event) -> None:
        self._remember("geometry", self.saveGeometry())
        self._remember("colormap", self.grid.colormap)
        self.recorder.stop(wait=True)
        for view in self.views:
            view.shutdown()
        self.unit_pane.pictures.shutdown()
        self.session.close()
        super().closeEvent(event)


def is_atlas_folder(path: Path) -> bool:
    """A folder with an atlas's manifest.json; one that cannot be parsed counts when the folder
    is laid out as an atlas, so opening it says what is wrong instead of listing no images."""
    manifest = path / MANIFEST
    if not manifest.is_file():
        return False
    try:
        data = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return (path / "images").is_dir() or (path / "units.npz").is_file()
    return isinstance(data, dict) and "format" in data and "layers" in data


def _absolute(spec) -> str:
    """File specs as absolute paths, so a restored session works from any folder."""
    text = str(spec)
    return os.path.abspath(text) if os.path.exists(text) else text
