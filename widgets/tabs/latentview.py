"""The Latent tab: a generator's sample grid (a GAN, or a VAE's decoder), an interpolation
strip with a scrub slider and playback, principal-direction sliders, and projecting the
current input into the space.

Click a sample to make it A, Shift+click (or right-click) for B. The strip shows the path
from A to B; the slider scrubs along it and Play runs it back and forth. Direction sliders
move the current point along GANSpace directions. *Project input* makes the current input
frame A: through the encoder in one pass when the generator has one (a VAE), optionally
refined by optimization, else by optimization alone (iGAN). With an encoder, *Input as B*
makes the current frame B (two moments of a live input), and *Two pictures...* projects two
image files and walks between them.
"""

import threading
from pathlib import Path

import numpy as np
import torch
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QGridLayout, QHBoxLayout, QLabel, QProgressBar,
                               QPushButton, QSlider, QSpinBox, QVBoxLayout)

from deepvis.live.computethread import compute_thread
from deepvis.errors import Cancelled, DeepvisError
from deepvis.generative.generators import Generator, decoder_generator, load_generator
from deepvis.io.images import write_gif, write_image, write_video
from deepvis.generative.latent import (MODES, edit, invert, lerp, model_features, path, principal_directions, project,
                                       slerp)
from deepvis.render.tiling import as_maps, picture_grid, tile, upscale
from deepvis.widgets.panes.export import save_dialog, write_or_say
from deepvis.widgets.panes.imagepanel import ImagePanel
from deepvis.widgets.window.views import View, register_view

GRID = 8  # samples per side of the grid
GENERATORS = ["digits_gan", "digits_vae", "faces"]
THIS_MODEL = "the model in view"  # listed while the main window's model is an autoencoder or VAE
REFINE_STEPS = 100
DIRECTIONS = 5
SCRUB_STEPS = 200
PLAY_INTERVAL_MS = 40
BORDER = 1  # pixels of frame around each sample: 8x8 digits touching each other read as stripes


@register_view
class LatentView(View):
    title = "Latent"
    order = 40

    _posted = Signal(object, object)  # callback, value: results of compute-thread work
    _posted_progress = Signal(float)

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.generator: Generator | None = None
        self.grid_z: torch.Tensor | None = None
        self.a: torch.Tensor | None = None
        self.b: torch.Tensor | None = None
        self.directions: torch.Tensor | None = None
        self.current_z: torch.Tensor | None = None
        self.current_image: np.ndarray | None = None
        self._cancel: threading.Event | None = None
        self._scrub_pending = False

        self.source = QComboBox()
        self.source.addItems([*GENERATORS, "DCGAN weights..."])
        self.seed = QSpinBox()
        self.seed.setRange(0, 1_000_000)
        self.seed.setPrefix("seed ")
        self.mode = QComboBox()
        self.mode.addItems(MODES)
        self.steps = QSpinBox()
        self.steps.setRange(2, 32)
        self.steps.setValue(8)
        self.steps.setPrefix("steps ")
        self.play = QPushButton("Play")
        self.play.setCheckable(True)
        self.loop = QCheckBox("loop")
        self.loop.setChecked(True)
        self.project = QPushButton("Project input")
        self.project.setToolTip("find the latent point whose sample looks like the current input (iGAN)")
        self.feature_loss = QCheckBox("feature loss")
        self.feature_loss.setToolTip("also match what the loaded model sees (its layer before the head)")
        self.refine = QCheckBox("refine")
        self.refine.setToolTip(f"after the encoder's one-pass projection, {REFINE_STEPS} optimization steps more")
        self.refine.hide()  # only for generators with an encoder
        self.project_b = QPushButton("Input as B")
        self.project_b.setToolTip("project the current input frame through the encoder and make it B: with a live "
                                  "camera or video, A and B can be two moments of it")
        self.project_b.hide()
        self.two_pictures = QPushButton("Two pictures...")
        self.two_pictures.setToolTip("pick two image files: A and B become their projections through the encoder")
        self.two_pictures.hide()
        self.cancel = QPushButton("Cancel")
        self.cancel.hide()
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setMaximumWidth(140)
        self.progress.hide()
        self.export_png = QPushButton("PNG...")
        self.export_gif = QPushButton("GIF...")
        self.export_mp4 = QPushButton("MP4...")

        self.grid_panel = ImagePanel("Samples: click for A, Shift+click for B")
        self.strip_panel = ImagePanel("Path A to B")
        self.strip_panel.setMaximumHeight(160)
        self.current_panel = ImagePanel("Current")
        self.scrub = QSlider(Qt.Orientation.Horizontal)
        self.scrub.setRange(0, SCRUB_STEPS)
        self.sliders = []
        sliders = QGridLayout()
        for k in range(DIRECTIONS):
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(-30, 30)  # tenths of a standard deviation
            slider.valueChanged.connect(lambda _v: self._show_current())
            sliders.addWidget(QLabel(f"direction {k + 1}"), k, 0)
            sliders.addWidget(slider, k, 1)
            self.sliders.append(slider)
        self.variance = QLabel("")
        self.layer = QComboBox()
        self.layer.setToolTip("a layer of the generator, shown for the current point")
        self.layer_panel = ImagePanel("Generator layer")
        self.layer_panel.setMinimumHeight(140)
        self.probe = None

        top = QHBoxLayout()
        for w in (self.source, self.seed, self.mode, self.steps, self.play, self.loop):
            top.addWidget(w)
        top.addStretch(1)
        second = QHBoxLayout()
        for w in (self.project, self.project_b, self.refine, self.feature_loss, self.two_pictures, self.cancel,
                  self.progress):
            second.addWidget(w)
        second.addStretch(1)
        second.addWidget(QLabel("export"))
        for w in (self.export_png, self.export_gif, self.export_mp4):
            second.addWidget(w)
        right = QVBoxLayout()
        right.addWidget(self.current_panel, 1)
        right.addWidget(self.scrub)
        right.addLayout(sliders)
        right.addWidget(self.variance)
        right.addWidget(self.layer)
        right.addWidget(self.layer_panel, 1)
        body = QHBoxLayout()
        body.addWidget(self.grid_panel, 3)
        body.addLayout(right, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(second)
        layout.addLayout(body, 1)
        layout.addWidget(self.strip_panel)

        self.timer = QTimer(self, interval=PLAY_INTERVAL_MS)
        self.timer.timeout.connect(self._advance)
        self._direction_sign = 1
        self._posted.connect(lambda callback, value: callback(value))
        self._posted_progress.connect(lambda f: self.progress.setValue(int(100 * f)))
        self.source.activated.connect(self._source_picked)
        self.seed.valueChanged.connect(lambda _v: self.new_grid())
        self.mode.currentTextChanged.connect(lambda _t: self.update_path())
        self.steps.valueChanged.connect(lambda _v: self.update_path())
        self.scrub.valueChanged.connect(lambda _v: self._show_current())
        self.layer.currentTextChanged.connect(lambda _t: self._show_current())
        self.play.toggled.connect(self.set_playing)
        self.project.clicked.connect(lambda: self.project_input())
        self.project_b.clicked.connect(lambda: self.project_input(which="b"))
        self.two_pictures.clicked.connect(self._two_pictures_dialog)
        session.modelChanged.connect(self._model_changed)
        self.cancel.clicked.connect(lambda: self._cancel is not None and self._cancel.set())
        self.grid_panel.clicked.connect(self._grid_clicked)
        self.export_png.clicked.connect(lambda: self._export_dialog("png"))
        self.export_gif.clicked.connect(lambda: self._export_dialog("gif"))
        self.export_mp4.clicked.connect(lambda: self._export_dialog("mp4"))
        self._started = False
        self._requested = False  # a generator was asked for (the first sight loads digits_gan otherwise)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._started:
            # Sampling a generator and finding its directions costs the live view a second of
            # compute: done when the tab is first looked at, not at start-up.
            self._started = True
            self.set_working("loading a generator...")  # said now: the tab is empty until it is in
            QTimer.singleShot(0, self._first_generator)

    def _first_generator(self) -> None:
        """The model in view when it is a VAE or autoencoder, else the bundled digits GAN."""
        state = self.session.state
        if self.generator is not None or self._requested or state is None:
            if self.generator is not None:
                self.set_working("")
            return  # without a model yet, its arrival decides
        if state.autoencoder is not None:
            self.source.setCurrentIndex(self.source.findText(THIS_MODEL))
            self.load_autoencoder(state.autoencoder)
        else:
            self.load("digits_gan")

    # --- work on the compute thread -------------------------------------------------------

    def _run(self, work, done, failed=None) -> None:
        """``work()`` on the compute thread, then ``done(result)`` on this one."""
        def finish(future):
            if future.cancelled():  # the window closed first
                return
            try:
                value = future.result()
            except (DeepvisError, Cancelled) as exc:
                self._posted.emit(failed or self._report, exc)
                return
            except Exception as exc:  # a bug: say what broke, keep what is shown
                self._posted.emit(failed or self._report, DeepvisError(f"{type(exc).__name__}: {exc}"))
                return
            self._posted.emit(done, value)

        compute_thread().submit(work).add_done_callback(finish)

    def _report(self, exc) -> None:
        self.set_working("")
        if not isinstance(exc, Cancelled):
            self.session.message.emit(f"latent: {exc}")

    # --- generator and samples --------------------------------------------------------------

    def _model_changed(self, state) -> None:
        """List the main window's model as a generator while it is an autoencoder or VAE."""
        index = self.source.findText(THIS_MODEL)
        if state is not None and state.autoencoder is not None:
            if index < 0:
                self.source.insertItem(0, THIS_MODEL)
        elif index >= 0:
            self.source.removeItem(index)
        if self._started:
            self._first_generator()

    def _source_picked(self, index: int) -> None:
        text = self.source.itemText(index)
        if text == THIS_MODEL:
            state = self.session.state
            if state is not None and state.autoencoder is not None:
                self.load_autoencoder(state.autoencoder)
        elif text.startswith("DCGAN"):
            file, _ = QFileDialog.getOpenFileName(self, "DCGAN generator weights", "", "Weights (*.pt *.pth *.tar)")
            if file:
                self.load("dcgan", file)
        else:
            self.load(text)

    def load(self, spec: str, weights: str | None = None) -> None:
        self._requested = True
        self.set_working(f"loading {spec}: its samples and principal directions...")

        def work():
            from deepvis.core.probe import Probe

            generator = load_generator(spec, weights)
            directions, variance = principal_directions(generator, DIRECTIONS)
            return generator, directions, variance, Probe(generator.module, generator.example_input())

        self._run(work, self._loaded)

    def load_autoencoder(self, autoencoder) -> None:
        """The decoder of an autoencoder already loaded (the main window's model) as the generator."""
        self._requested = True
        self.set_working("the decoder of the model in view: its samples and principal directions...")

        def work():
            from deepvis.core.probe import Probe

            generator = decoder_generator(autoencoder)
            directions, variance = principal_directions(generator, min(DIRECTIONS, generator.nz))
            return generator, directions, variance, Probe(generator.module, generator.example_input())

        self._run(work, self._loaded)

    def _loaded(self, loaded) -> None:
        self.generator, self.directions, variance, self.probe = loaded
        has_encoder = self.generator.encoder is not None
        if has_encoder and not self.generator.variational:
            self.session.message.emit(f"{self.generator.name} is a plain autoencoder: its latent has no N(0, I) prior, "
                                      f"so random samples may not look like anything; project pictures instead")
        for w in (self.refine, self.project_b, self.two_pictures):
            w.setVisible(has_encoder)
        self.feature_loss.setVisible(not has_encoder)
        self.project.setToolTip("project the current input through the encoder (one pass)" if has_encoder else
                                "find the latent point whose sample looks like the current input (iGAN)")
        self.layer.blockSignals(True)
        self.layer.clear()
        self.layer.addItems([layer.name for layer in self.probe.layers if layer.spatial])
        self.layer.blockSignals(False)
        self.variance.setText("direction variance: " + " ".join(f"{v:.0%}" for v in variance))
        self.a = self.b = self.grid_z = None  # the old generator's points mean nothing here
        self.new_grid()

    def new_grid(self) -> None:
        g = self.generator
        if g is None:
            return
        z = g.latent(self.seed.value(), GRID * GRID)

        def work():
            return g, z, g.images(z)

        self._run(work, self._grid_ready)

    def _grid_ready(self, ready) -> None:
        g, z, images = ready
        if g is not self.generator:
            return  # made by the generator shown before: the newer one's grid is on its way
        self.grid_z = z
        self.grid_images = images
        self.grid_panel.set_rgb(picture_grid(images, GRID, BORDER))
        if self.a is None:
            self.a, self.b = self.grid_z[0:1], self.grid_z[1:2]
        self.update_path()

    def _grid_clicked(self, x: float, y: float) -> None:
        if self.grid_z is None:
            return
        h, w = self.grid_images.shape[1] + 2 * BORDER, self.grid_images.shape[2] + 2 * BORDER
        index = int(y // h) * GRID + int(x // w)
        if not 0 <= index < len(self.grid_z):
            return
        from PySide6.QtWidgets import QApplication

        if QApplication.keyboardModifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.pick("b", index)
        else:
            self.pick("a", index)

    def pick(self, which: str, index: int) -> None:
        """Make grid sample ``index`` the path's start (``a``) or end (``b``)."""
        if self.grid_z is None:
            return
        setattr(self, which, self.grid_z[index:index + 1])
        self.update_path()

    # --- the path ---------------------------------------------------------------------------

    def path_latents(self, steps: int | None = None) -> torch.Tensor:
        return path(torch.cat([self.a, self.b]), steps or self.steps.value(), self.mode.currentText())

    def update_path(self) -> None:
        if self.generator is None or self.a is None:
            return
        g, zs = self.generator, self.path_latents()

        def work():
            return g, g.images(zs)

        self._run(work, self._strip_ready)
        self._show_current()

    def _strip_ready(self, ready) -> None:
        g, images = ready
        if g is not self.generator:
            return
        self.strip_images = images
        self.strip_panel.set_rgb(picture_grid(images, len(images), BORDER))

    def scrub_latent(self) -> torch.Tensor:
        """The point the slider is on, moved along the direction sliders."""
        t = self.scrub.value() / SCRUB_STEPS
        step = slerp if self.mode.currentText() == "slerp" else lerp
        z = step(self.a[0], self.b[0], torch.tensor([t]))
        strengths = [s.value() / 10 for s in self.sliders]
        if self.directions is not None and any(strengths):
            z = edit(z, self.directions, strengths)
        return z

    def _show_current(self) -> None:
        if self.generator is None or self.a is None:
            return
        if self._scrub_pending:  # one render at a time; the newest slider position wins
            self._scrub_again = True
            return
        self._scrub_pending, self._scrub_again = True, False
        g, z = self.generator, self.scrub_latent()

        probe, layer = self.probe, self.layer.currentText()

        def work():
            activation = g.activations(z, layer, probe) if layer else None
            return g, z, g.images(z)[0], activation

        self._run(work, self._current_ready, self._current_failed)

    def _current_ready(self, ready) -> None:
        self._scrub_pending = False
        g, z, image, activation = ready
        if g is not self.generator:
            self._show_current()
            return
        self.current_z, self.current_image = z, image
        self.set_working("")  # the samples, the path and the current point are all in
        if activation is not None:
            grid, layout = tile(as_maps(activation))
            self.layer_activation = activation
            finite = grid[np.isfinite(grid)]
            lo, hi = float(finite.min()), float(finite.max())
            levels = (lo, hi if hi > lo else lo + 1)
            self.layer_panel.set_map(grid, levels, "viridis")
            self.layer_panel.set_title(f"{self.layer.currentText()}: {layout.count} channels")
        self.current_panel.set_rgb(np.ascontiguousarray(self.current_image))
        self.current_panel.set_title(f"Current: {self.scrub.value() / SCRUB_STEPS:.0%} from A to B")
        if self._scrub_again:
            self._show_current()

    def _current_failed(self, exc) -> None:
        self._scrub_pending = False
        self._report(exc)

    def set_playing(self, on: bool) -> None:
        if on:
            self.timer.start()
        else:
            self.timer.stop()
        self.play.setChecked(on)

    def _advance(self) -> None:
        value = self.scrub.value() + 4 * self._direction_sign
        if value > SCRUB_STEPS or value < 0:
            if not self.loop.isChecked():
                self.set_playing(False)
                return
            self._direction_sign *= -1  # there and back
            value = max(0, min(SCRUB_STEPS, value))
        self.scrub.setValue(value)

    # --- projection (iGAN) --------------------------------------------------------------------

    def project_input(self, image: np.ndarray | None = None, which: str = "a") -> None:
        """Find z for ``image`` (default: the current input frame) and make it A (or ``which="b"``, B)."""
        if self.generator is None:
            return
        if image is None:
            result = self.session.result
            if result is None:
                self.session.message.emit("no input to project: open an image first")
                return
            image = result.frame.image
        cancel = self._cancel = threading.Event()
        g = self.generator
        model = self.session.state.model if self.feature_loss.isChecked() and self.session.state else None
        refine = REFINE_STEPS if self.refine.isChecked() else 0
        self.project.setEnabled(False)
        self.project_b.setEnabled(False)
        self.cancel.show()
        self.progress.show()

        def work():
            report = lambda f, _e: self._posted_progress.emit(f)  # noqa: E731
            if g.encoder is not None:
                return project(g, image, refine, progress=report, cancel=cancel)
            features = model_features(model) if model is not None else None
            return invert(g, image, features=features, progress=report, cancel=cancel)

        def done(found):
            z, errors = found
            self._projection_done()
            self.projection_errors = errors
            setattr(self, which, z)
            self.scrub.setValue(0 if which == "a" else SCRUB_STEPS)
            self.update_path()
            how = "encoder" + (f" + {len(errors) - 1} steps" if len(errors) > 1 else "") if g.encoder else \
                "optimization"
            self.session.message.emit(f"projected ({how}): pixel error {errors[0]:.4f} -> {errors[-1]:.4f}")

        def failed(exc):
            self._projection_done()
            self._report(exc)

        self._run(work, done, failed)

    def _two_pictures_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Two pictures: A then B", "",
                                                "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.webp)")
        if len(files) != 2:
            if files:
                self.session.message.emit(f"pick exactly two pictures (got {len(files)})")
            return
        self.interpolate_files(*files)

    def interpolate_files(self, first: str, second: str) -> None:
        """A and B become the encoder's projections of two image files."""
        g = self.generator
        if g is None:
            return

        def work():
            from deepvis.io.images import read_image

            return g, g.encode([read_image(first), read_image(second)])

        def done(found):
            g_, z = found
            if g_ is not self.generator:
                return
            self.a, self.b = z[0:1], z[1:2]
            self.scrub.setValue(0)
            self.update_path()
            self.session.message.emit(f"path from {Path(first).name} to {Path(second).name}")

        self._run(work, done)

    def _projection_done(self) -> None:
        self._cancel = None
        self.project.setEnabled(True)
        self.project_b.setEnabled(True)
        self.cancel.hide()
        self.progress.hide()

    # --- export -------------------------------------------------------------------------------

    def _export_dialog(self, kind: str) -> None:
        save_dialog(self, f"Export {kind.upper()}", f"deepvis-latent.{kind}", f"{kind.upper()} (*.{kind})",
                    self.export)

    def export(self, file: str) -> None:
        """PNG: the sample grid; GIF and MP4: the path from A to B and back, 48 frames each way."""
        if self.generator is None or self.a is None:
            self.session.message.emit("nothing to export yet")
            return
        suffix = Path(file).suffix.lower()

        def write() -> None:
            if suffix == ".png":
                write_image(file, upscale(self.grid_panel.data, 512))
            else:
                frames = [upscale(f, 256) for f in self.generator.images(self.path_latents(48))]
                frames = frames + frames[-2:0:-1]  # there and back
                if suffix == ".gif":
                    write_gif(file, frames, 40)
                else:
                    write_video(file, frames, 24)

        write_or_say(self.session, file, write)

    def shutdown(self) -> None:
        self.timer.stop()
        if self._cancel is not None:
            self._cancel.set()
