"""The 3-D tab: part segmentation of point clouds, meshes and voxel grids in a vispy scene.

Points are coloured by predicted part (legend with shares), by the file's ground truth, by
errors (wrong points red, right ones dim) or by one channel of a layer's per-point features;
PointNet's critical points can be ringed. A turntable camera orbits the shape; a click picks
the nearest point and shows its label and part scores. Voxel models show their grid as cubes,
a slice plane that hides everything above it, and a volume rendering of a feature channel.
"""

import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QProgressBar,
                               QPushButton, QSlider, QSpinBox, QVBoxLayout, QWidget)

from deepvis.shapes3d import parts as parts3d
from deepvis.live.computethread import compute_thread, outcome
from deepvis.shapes3d.readers import SUPPORTED_3D_SUFFIXES, Voxels, read_3d
from deepvis.shapes3d.render import ERROR_COLOR, RIGHT_COLOR, legend_for, part_colors
from deepvis.resources import RESOURCES_DIR
from deepvis.shapes3d.segment import CHUNK, DEFAULT_3D_MODEL, load_point_model, segment_cloud, segment_voxels
from deepvis.widgets.panes.export import save_dialog, write_or_say
from deepvis.widgets.window.views import View, register_view

SHAPES_DIR = RESOURCES_DIR / "shapes"
MODELS = ["pointnet_parts", "voxnet_parts"]
COLOR_MODES = ["prediction", "ground truth", "errors", "feature"]
PICK_RADIUS_PX = 12
BACKGROUNDS = {"dark": "#1e1f22", "black": "#000000", "white": "#ffffff"}
FOREIGN_WINDOW_PLATFORMS = ("xcb", "windows")  # where a native window can be embedded by its id


def bundled_shapes() -> list[Path]:
    """Sample files a user can open at once (the .seg files belong to their .pts)."""
    if not SHAPES_DIR.is_dir():
        return []
    return sorted(p for p in SHAPES_DIR.iterdir() if p.suffix.lower() in SUPPORTED_3D_SUFFIXES)


def feature_colors(values: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 through the viridis-like map used by the activation grid."""
    from deepvis.render.colormaps import apply_colormap

    lo, hi = float(values.min()), float(values.max())
    scaled = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    return apply_colormap(scaled.astype(np.float32)[None, :], "viridis")[0]


class SceneCanvas3D:
    """The vispy scene: a points layer, a ring layer for critical points, a voxel layer and a
    volume, under a turntable camera. Kept apart from the Qt controls so the benchmark can
    time exactly what the tab draws."""

    def __init__(self, parent=None):
        import vispy

        vispy.use(app="pyside6")
        from vispy import scene

        self.scene = scene
        self.canvas = scene.SceneCanvas(keys=None, bgcolor="#1e1f22", parent=parent, show=False)
        self.view = self.canvas.central_widget.add_view()
        self.view.camera = scene.TurntableCamera(up="y", fov=40, distance=3.2, elevation=20, azimuth=30)
        self.points = scene.visuals.Markers(parent=self.view.scene)
        self.points.set_gl_state("translucent", depth_test=True)
        self.rings = scene.visuals.Markers(parent=self.view.scene)
        self.rings.visible = False
        self.voxels = scene.visuals.Markers(parent=self.view.scene, scaling="scene")
        self.voxels.visible = False
        self.volume = None
        self.point_size = 5.0

    @property
    def native(self):
        return self.canvas.native

    def show_points(self, points: np.ndarray, colors: np.ndarray) -> None:
        rgba = np.concatenate([colors.astype(np.float32) / 255, np.ones((len(colors), 1), np.float32)], 1)
        self.points.set_data(points, face_color=rgba, size=self.point_size, edge_width=0)
        self.points.visible = True
        self.canvas.update()

    def show_rings(self, points: np.ndarray | None) -> None:
        if points is None or len(points) == 0:
            self.rings.visible = False
        else:
            self.rings.set_data(points, face_color=(0, 0, 0, 0), edge_color="white", size=self.point_size + 8,
                                edge_width=1.5)
            self.rings.visible = True
        self.canvas.update()

    def show_voxels(self, centres: np.ndarray | None, colors: np.ndarray | None, side: float) -> None:
        if centres is None or len(centres) == 0:
            self.voxels.visible = False
        else:
            rgba = np.concatenate([colors.astype(np.float32) / 255, np.ones((len(colors), 1), np.float32)], 1)
            self.voxels.set_data(centres, face_color=rgba, size=side, edge_width=0, symbol="square")
            self.voxels.visible = True
        self.canvas.update()

    def show_volume(self, volume: np.ndarray | None) -> None:
        """A channel's activation over the grid (indexed x, y, z) as a translucent volume."""
        if volume is None:
            if self.volume is not None:
                self.volume.visible = False
            self.canvas.update()
            return
        from vispy.visuals.transforms import STTransform

        r = volume.shape[0]
        lo, hi = float(volume.min()), float(volume.max())
        data = ((volume - lo) / (hi - lo) if hi > lo else np.zeros_like(volume)).astype(np.float32)
        data = np.ascontiguousarray(data.transpose(2, 1, 0))  # vispy's volume is indexed (z, y, x)
        if self.volume is None:
            # Maximum intensity: where a channel fires strongest reads at once; translucent blending
            # of a mostly-low activation grid came out a dim haze.
            self.volume = self.scene.visuals.Volume(data, parent=self.view.scene, method="mip",
                                                    cmap="viridis", clim=(0, 1))
        else:
            self.volume.set_data(data, clim=(0, 1))
        self.volume.transform = STTransform(scale=(2 / r, 2 / r, 2 / r), translate=(-1, -1, -1))
        self.volume.visible = True
        self.canvas.update()

    def fit(self) -> None:
        """Frame the unit sphere the shapes are normalized to. The field of view is vertical, so
        a tall, narrow canvas needs the camera further away; the margin keeps perspective's
        nearer, larger half inside too."""
        w, h = self.canvas.size
        camera = self.view.camera
        camera.center = (0.0, 0.0, 0.0)
        camera.distance = 1.35 / np.tan(np.radians(camera.fov / 2)) * max(1.0, h / max(w, 1))

    def set_point_size(self, size: float) -> None:
        self.point_size = size

    def screen_positions(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) canvas pixel positions of scene points (for picking)."""
        mapped = self.points.get_transform("visual", "canvas").map(points)
        return mapped[:, :2] / mapped[:, 3:4]

    def render(self) -> np.ndarray:
        return self.canvas.render()[..., :3]

    def close(self) -> None:
        self.canvas.close()


def gl_host(gl_widget: QWidget, parent: QWidget) -> QWidget:
    """``gl_widget`` (a QOpenGLWidget) in a native window of its own, embedded in ``parent``.

    Once a QOpenGLWidget is anywhere inside a top-level window, Qt composes that whole window
    through OpenGL on every repaint. On software GL (Mesa's llvmpipe: VMs, remote desktops,
    Xvfb, laptops without drivers) that made each live frame upload and composite the full
    main window, and halved the live frame rate. Here the GL widget is the content of a
    separate top-level widget whose native window is embedded with a window container: the
    container is a native child window that the main window's raster backing store does not
    compose, so only the 3-D view pays for GL, and only while it is drawn.
    """
    from PySide6.QtGui import QGuiApplication, QWindow

    if QGuiApplication.platformName() not in FOREIGN_WINDOW_PLATFORMS:
        return gl_widget  # no foreign windows here (Wayland): in the tab itself, composed by GL
    holder = QWidget()
    layout = QVBoxLayout(holder)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(gl_widget)
    # Embedded as a foreign native window: a QWidget's own window handle would make the
    # container reparent the widget itself, back into the main window's composition.
    foreign = QWindow.fromWinId(int(holder.winId()))
    container = QWidget.createWindowContainer(foreign, parent)
    container.setMinimumSize(200, 200)
    container._holder = holder  # the holder must live as long as the container shows it
    holder.show()
    return container


@register_view
class CloudView(View):
    title = "3-D"
    order = 50

    _posted = Signal(object, str)  # Segmentation or None, error
    _posted_model = Signal(object, str)  # PointModel or None, error
    _posted_progress = Signal(float)

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.model = None  # PointModel
        self.model_spec = DEFAULT_3D_MODEL
        self.data = None  # the Cloud or Voxels last opened
        self.path: str | None = None
        self.seg = None  # the last Segmentation
        self.picked: int | None = None
        self._cancel: threading.Event | None = None
        self._requests = 0
        self._canvas: SceneCanvas3D | None = None  # made when the tab is first shown (see canvas)
        self._gl_host: QWidget | None = None
        self._loading_model = False
        self.samples = QComboBox()
        self.samples.addItem("bundled shapes...")
        for p in bundled_shapes():
            self.samples.addItem(p.name, str(p))
        self.open_button = QPushButton("Open 3-D file...")
        self.model_box = QComboBox()
        self.model_box.addItems(MODELS + ["Open model..."])
        self.category = QComboBox()
        self.category.addItems(["auto"] + parts3d.CATEGORY_NAMES)
        self.points_box = QSpinBox()
        self.points_box.setRange(256, 1_000_000)
        self.points_box.setSingleStep(1024)
        self.points_box.setValue(2048)
        self.points_box.setToolTip("points sampled from a mesh")
        self.color_mode = QComboBox()
        self.color_mode.addItems(COLOR_MODES)
        self.layer_box = QComboBox()
        self.channel = QSpinBox()
        self.channel.setRange(0, 0)
        self.channel.setSpecialValueText("norm")  # -1: the L2 norm over the layer's channels
        self.critical = QComboBox()
        self.critical.addItems(["no critical points", "all critical points", "critical point of global channel"])
        self.global_channel = QSpinBox()
        self.global_channel.setRange(0, 0)
        self.global_channel.setToolTip("the channel of PointNet's global feature whose winning point is ringed")
        self.background = QComboBox()
        self.background.addItems(list(BACKGROUNDS))
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(1, 20)
        self.size_slider.setValue(5)
        self.slice_slider = QSlider(Qt.Orientation.Horizontal)
        self.slice_slider.setRange(1, 32)
        self.slice_slider.setValue(32)
        self.slice_slider.setToolTip("voxels: hide everything above this height")
        self.volume_box = QCheckBox("activation volume")
        self.export_button = QPushButton("Export PNG...")
        self.legend = QLabel("")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.info = QLabel("open a mesh, point cloud or voxel grid (or drop it on the window)")
        self.info.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setVisible(False)
        self.stop = QPushButton("Stop")
        self.stop.setVisible(False)
        for w in (self.progress, self.stop):  # showing them must not resize (and re-frame) the canvas
            policy = w.sizePolicy()
            policy.setRetainSizeWhenHidden(True)
            w.setSizePolicy(policy)
        self.pick_label = QLabel("")
        self.pick_label.setWordWrap(True)
        self.pick_label.setTextFormat(Qt.TextFormat.RichText)
        form = QFormLayout()
        form.addRow(self.samples)
        form.addRow(self.open_button)
        form.addRow("model", self.model_box)
        form.addRow("category", self.category)
        form.addRow("mesh points", self.points_box)
        form.addRow("colour", self.color_mode)
        form.addRow("layer", self.layer_box)
        form.addRow("channel", self.channel)
        form.addRow(self.critical)
        form.addRow("global channel", self.global_channel)
        form.addRow("point size", self.size_slider)
        form.addRow("background", self.background)
        form.addRow("voxel slice", self.slice_slider)
        form.addRow(self.volume_box)
        form.addRow(self.export_button)
        side = QVBoxLayout()
        side.addLayout(form)
        side.addWidget(self.legend)
        side.addWidget(self.pick_label)
        side.addStretch(1)
        panel = QWidget()
        panel.setLayout(side)
        panel.setFixedWidth(250)
        top = QHBoxLayout()
        self._canvas_slot = QVBoxLayout()
        self._canvas_slot.setContentsMargins(0, 0, 0, 0)
        top.addLayout(self._canvas_slot, 1)
        top.addWidget(panel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top, 1)
        status = QHBoxLayout()
        status.addWidget(self.info, 1)
        status.addWidget(self.progress)
        status.addWidget(self.stop)
        layout.addLayout(status)
        self.samples.activated.connect(self._sample_chosen)
        self.open_button.clicked.connect(self._open_dialog)
        self.model_box.activated.connect(self._model_chosen)
        self.category.activated.connect(lambda _i: self.run())
        self.points_box.editingFinished.connect(self._reread)
        self.layer_box.activated.connect(lambda _i: self.run())
        self.color_mode.currentIndexChanged.connect(lambda _i: self.recolor())
        self.channel.valueChanged.connect(lambda _v: self.recolor())
        self.critical.currentIndexChanged.connect(lambda _v: self.recolor())
        self.global_channel.valueChanged.connect(lambda _v: self.recolor())
        self.background.currentTextChanged.connect(self._set_background)
        self.size_slider.valueChanged.connect(self._resize_points)
        self.slice_slider.valueChanged.connect(lambda _v: self.recolor())
        self.volume_box.toggled.connect(lambda _v: self.recolor())
        self.export_button.clicked.connect(self._export_dialog)
        self._posted.connect(self._segmented)
        self._posted_model.connect(self._model_loaded)
        self._posted_progress.connect(lambda f: self.progress.setValue(int(100 * f)))
        self.stop.clicked.connect(self.halt)
        self._press_pos = None

    # --- the GL canvas ---------------------------------------------------------------

    @property
    def canvas(self) -> SceneCanvas3D:
        """The vispy scene, made on first use: its OpenGL widget is what costs (see gl_host)."""
        if self._canvas is None:
            self._canvas = SceneCanvas3D()
            self._canvas.canvas.bgcolor = BACKGROUNDS[self.background.currentText()]
            self._canvas.point_size = float(self.size_slider.value())
            self._canvas.canvas.events.mouse_press.connect(self._mouse_press)
            self._canvas.canvas.events.mouse_release.connect(self._mouse_release)
            self._gl_host = gl_host(self._canvas.native, self)
            self._canvas_slot.addWidget(self._gl_host)
        return self._canvas

    @property
    def has_canvas(self) -> bool:
        return self._canvas is not None

    def gl_snapshot(self):
        """(the widget the 3-D view is shown in, its picture as RGB uint8), or None when it is
        not on screen: a window grab leaves the GL view out (it is a native window of its own,
        see gl_host), so screenshots and window exports paint this over it."""
        host = self._gl_host
        if self._canvas is None or host is None or not host.isVisible():
            return None
        return host, np.ascontiguousarray(self._canvas.render())

    def working(self) -> str:
        # Reading, loading the model and segmenting: the shape is not shown yet.
        return self.info.text() if self._cancel is not None or self._loading_model else ""

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._canvas is None:
            self.canvas  # noqa: B018 (made now that the tab is seen)
            if self.seg is not None:
                self.recolor()
                self._canvas.fit()
            elif self.path is None:
                # A first look shows what the tab does: a bundled chair, segmented.
                chair = SHAPES_DIR / "chair.obj"
                if chair.is_file():
                    self.samples.setCurrentIndex(max(0, self.samples.findText(chair.name)))
                    self.open_file(str(chair))

    # --- opening ---------------------------------------------------------------------

    def _sample_chosen(self, index: int) -> None:
        path = self.samples.itemData(index)
        if path:
            self.open_file(path)

    def _open_dialog(self) -> None:
        pattern = " ".join(f"*{s}" for s in sorted(SUPPORTED_3D_SUFFIXES))
        path, _ = QFileDialog.getOpenFileName(self, "Open a mesh, point cloud or voxel grid", "",
                                              f"3-D files ({pattern})")
        if path:
            self.open_file(path)

    def open_file(self, path: str) -> None:
        """Read (on the compute thread) and segment; a bad file leaves the current shape shown."""
        self.path = str(path)
        self._reread()

    def _reread(self) -> None:
        if self.path is None:
            return
        path, count = self.path, self.points_box.value()
        self._start(lambda: read_3d(path, points=count), f"reading {Path(path).name}...")

    def _model_chosen(self, index: int) -> None:
        text = self.model_box.itemText(index)
        if text == "Open model...":
            path, _ = QFileDialog.getOpenFileName(self, "Open a TorchScript point model", "",
                                                  "TorchScript (*.pt *.pth *.ts);;All files (*)")
            if not path:
                self.model_box.setCurrentText(self.model_spec)
                return
            text = path
        self.load_model(text)

    def load_model(self, spec: str, weights: str | None = None) -> None:
        self.info.setText(f"loading {spec}...")
        self._loading_model = True

        compute_thread().submit(load_point_model, spec, weights).add_done_callback(
            lambda future: self._posted_model.emit(*outcome(future)))

    def _model_loaded(self, model, error: str) -> None:
        self._loading_model = False
        if model is None:
            self.session.message.emit(f"3-D model: {error}")
            self.info.setText(f"could not load the model: {error}")
            self.model_box.setCurrentText(self.model_spec if self.model is not None else DEFAULT_3D_MODEL)
            return
        self._adopt_model(model)
        self.run()

    def _adopt_model(self, model) -> None:
        self.model, self.model_spec = model, model.name
        if self.model_box.findText(model.name) < 0:
            self.model_box.insertItem(self.model_box.count() - 1, model.name)
        self.model_box.setCurrentText(model.name)
        self.layer_box.clear()
        self.layer_box.addItem("(none)")
        self.layer_box.addItems(model.layers())
        self.critical.setEnabled(model.ours)
        self.global_channel.setEnabled(model.ours)

    # --- segmenting ------------------------------------------------------------------

    def run(self) -> None:
        """Segment the open shape with the current model, category and layer."""
        if self.data is None:
            return
        if self.model is None:
            self.load_model(self.model_spec)
            return
        data = self.data
        self._start(None, f"segmenting with {self.model.name}...", data=data)

    def _start(self, read, text: str, data=None) -> None:
        if self._cancel is not None:
            self._cancel.set()
        cancel = self._cancel = threading.Event()
        self._requests += 1
        ticket = self._requests
        model = self.model
        category = None if self.category.currentText() == "auto" else self.category.currentText()
        layer = self.layer_box.currentText() if self.layer_box.currentIndex() > 0 else None
        self.info.setText(text)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.stop.setVisible(True)
        post = self._posted_progress.emit
        spec = self.model_spec

        def work():
            shape = read() if read is not None else data
            m = model or load_point_model(spec)
            if isinstance(shape, Voxels):
                if m.kind != "voxels":
                    m = load_point_model("voxnet_parts")
                return shape, m, segment_voxels(m, shape, category, feature_layer=layer)
            # Big clouds take a while: progress per chunk, and Stop between chunks.
            return shape, m, segment_cloud(m, shape, category, feature_layer=layer, cancel=cancel,
                                           chunk=min(CHUNK, max(4096, len(shape.points) // 20)),
                                           progress=lambda done, total: post(done / total))

        def done(future):
            if ticket == self._requests:  # a superseded job's end is no news
                self._posted.emit(*outcome(future))

        compute_thread().submit(work).add_done_callback(done)

    def halt(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def _segmented(self, answer, error: str) -> None:
        self._cancel = None
        self.progress.setVisible(False)
        self.stop.setVisible(False)
        if answer is None:
            if error:
                self.session.message.emit(f"3-D: {error}")
            self.info.setText(error or "stopped; the shape shown is the last one segmented")
            return
        shape, model, seg = answer
        if model is not self.model:  # loaded by the job: the first run, or a voxel grid needing voxnet
            self._adopt_model(model)
        self.data, self.seg, self.picked = shape, seg, None
        self.channel.setRange(-1, max(0, seg.extras["features"].shape[1] - 1) if "features" in seg.extras else 0)
        self.global_channel.setRange(0, len(seg.critical) - 1 if seg.critical is not None else 0)
        voxel_model = seg.voxels is not None
        self.slice_slider.setEnabled(voxel_model)
        self.volume_box.setEnabled("feature_volume" in seg.extras)
        self.slice_slider.setRange(1, seg.voxels.shape[1] if voxel_model else 32)
        if voxel_model and self.slice_slider.value() > seg.voxels.shape[1]:
            self.slice_slider.setValue(seg.voxels.shape[1])
        text = f"{Path(seg.source).name}: {len(seg.points):,} points, {seg.model}"
        if seg.category:
            text += f", {seg.category}"
        if seg.accuracy is not None:
            text += f"; accuracy against the file's labels {seg.accuracy:.3f}"
        self.info.setText(text)
        self.recolor()
        if self._canvas is not None:
            self._canvas.fit()

    # --- drawing ---------------------------------------------------------------------

    def colors(self) -> np.ndarray:
        """(N, 3) uint8 colours of the segmentation's points in the current mode."""
        seg = self.seg
        mode = self.color_mode.currentText()
        if mode == "ground truth":
            if seg.truth is None:
                return np.full((len(seg.points), 3), 128, np.uint8)
            return part_colors(seg.truth)
        if mode == "errors":
            if seg.truth is None:
                return np.full((len(seg.points), 3), 128, np.uint8)
            colors = np.empty((len(seg.points), 3), np.uint8)
            colors[:] = RIGHT_COLOR
            colors[seg.labels != seg.truth] = ERROR_COLOR
            return colors
        if mode == "feature" and "features" in seg.extras:
            return feature_colors(self.feature_values())
        return part_colors(seg.labels)

    def recolor(self) -> None:
        seg = self.seg
        if seg is None or (self._canvas is None and not self.isVisible()):
            return  # drawn when the tab is first shown
        colors = self.colors()
        mode = self.color_mode.currentText()
        if mode in ("ground truth", "errors") and seg.truth is None:
            self.session.message.emit("this file has no part labels: nothing to compare with")
        shown = np.ones(len(seg.points), bool)
        if seg.voxels is not None:  # a voxel model: the slice plane cuts the shape at a height
            r = seg.voxels.shape[1]
            shown = np.floor((seg.points[:, 1] + 1) * r / 2) < self.slice_slider.value()
        if isinstance(self.data, Voxels):
            self.canvas.points.visible = False
            self.canvas.show_voxels(seg.points[shown], colors[shown], side=2.0 / seg.voxels.shape[0] * 0.9)
        else:
            self.canvas.show_voxels(None, None, 0)
            self.canvas.show_points(seg.points[shown], colors[shown])
        self.canvas.show_rings(None if self.ringed() is None else seg.points[self.ringed()])
        volume = seg.extras.get("feature_volume")
        if volume is not None and self.volume_box.isChecked():
            c = self.channel.value()
            self.canvas.show_volume(np.sqrt((volume ** 2).sum(0)) if c < 0 else volume[c])
        else:
            self.canvas.show_volume(None)
        labels = seg.truth if mode == "ground truth" and seg.truth is not None else seg.labels
        rows = [f'<span style="color: rgb{c}">&#9632;</span> {name}' for name, c in legend_for(labels[shown],
                                                                                               seg.part_names)]
        if mode == "errors" and seg.truth is not None:
            wrong = int((seg.labels != seg.truth).sum())
            rows = [f'<span style="color: rgb{ERROR_COLOR}">&#9632;</span> wrong {wrong:,} '
                    f'({100 * wrong / len(seg.labels):.1f}%)']
        elif mode == "feature":
            layer = self.layer_box.currentText()
            what = "norm over channels" if self.channel.value() < 0 else f"channel {self.channel.value()}"
            rows = [f"{layer} {what}" if "features" in seg.extras else "pick a layer to colour by its features"]
        self.legend.setText("<br>".join(rows))
        self._show_pick()

    def feature_values(self) -> np.ndarray:
        """(N,) the chosen channel of the layer's per-point features, or their L2 norm."""
        features = self.seg.extras["features"]
        c = self.channel.value()
        return np.linalg.norm(features, axis=1) if c < 0 else features[:, c]

    def ringed(self) -> np.ndarray | None:
        """Indices of the critical points to ring: all of them, or the one that wins the
        selected global channel."""
        seg, mode = self.seg, self.critical.currentIndex()
        if seg is None or seg.critical is None or mode == 0:
            return None
        if mode == 1:
            return np.unique(seg.critical)
        return seg.critical[min(self.global_channel.value(), len(seg.critical) - 1)][None]

    def _set_background(self, name: str) -> None:
        if self._canvas is not None:
            self._canvas.canvas.bgcolor = BACKGROUNDS[name]
            self._canvas.canvas.update()

    def _resize_points(self, size: int) -> None:
        if self._canvas is not None:
            self._canvas.set_point_size(float(size))
        self.recolor()

    # --- picking ---------------------------------------------------------------------

    def _mouse_press(self, event) -> None:
        self._press_pos = np.array(event.pos[:2], float)

    def _mouse_release(self, event) -> None:
        # A click, not the end of an orbit drag.
        if self._press_pos is not None and np.abs(np.array(event.pos[:2]) - self._press_pos).max() < 3:
            self.pick_at(*event.pos[:2])
        self._press_pos = None

    def pick_at(self, x: float, y: float) -> int | None:
        """Select the point drawn nearest to canvas pixel (x, y), if one is within reach."""
        if self.seg is None:
            return None
        screen = self.canvas.screen_positions(self.seg.points)
        d = np.hypot(screen[:, 0] - x, screen[:, 1] - y)
        near = np.flatnonzero(d < PICK_RADIUS_PX)
        if len(near) == 0:
            self.picked = None
        else:
            # Of the points under the cursor, the one nearest the camera.
            eye = self.canvas.view.camera.transform.map([0, 0, 0, 1])[:3]
            depth = np.linalg.norm(self.seg.points[near] - eye, axis=1)
            self.picked = int(near[np.argmin(depth + d[near] * 1e-3)])
        self._show_pick()
        return self.picked

    def _show_pick(self) -> None:
        seg, i = self.seg, self.picked
        if seg is None or i is None or i >= len(seg.points):
            self.pick_label.setText("")
            return
        name = seg.part_names[seg.labels[i]] if 0 <= seg.labels[i] < len(seg.part_names) else str(seg.labels[i])
        top = np.argsort(-seg.scores[i])[:3]
        rows = [f"<b>point {i}</b>: {name}"]
        if seg.truth is not None:
            rows.append(f"truth: {seg.part_names[seg.truth[i]]}")
        rows += [f"{seg.part_names[k]} {seg.scores[i, k]:.2f}" for k in top]
        self.pick_label.setText("<br>".join(rows))

    # --- export, close ---------------------------------------------------------------

    def _export_dialog(self) -> None:
        save_dialog(self, "Export the 3-D view", "deepvis-3d.png", "PNG (*.png)", self.save_png)

    def save_png(self, path: str) -> bool:
        from deepvis.io.images import write_image

        return write_or_say(self.session, path, lambda: write_image(path, self.canvas.render()))

    def shutdown(self) -> None:
        if self._cancel is not None:
            self._cancel.set()
        if self._canvas is not None:
            self._canvas.close()
            holder = getattr(self._gl_host, "_holder", None)
            if holder is not None:
                holder.close()
