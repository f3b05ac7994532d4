"""The selected unit's offline pictures, as in the Yosinski toolbox: an image optimized to excite
it and the top-k patches of a dataset, computed for the whole layer on demand and cached, so a
layer computed once shows at once, in any later session.

While an atlas of the window's model is open (same weights) and holds patches of the selected
layer (``deepvis atlas units``), the top-k come from the atlas instead, over its whole image
folder, and so do the optimized images it has."""

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from deepvis.live.computethread import compute_thread, outcome
from deepvis.io.datasets import Dataset, digits_dataset, folder_dataset, samples_dataset
from deepvis.errors import DeepvisError
from deepvis.atlas.units import load_patches, load_visualizations
from deepvis.optimize.profiles import UnitProfiles, cached_profiles, dead_units, profile_units
from deepvis.render.tiling import picture_grid
from deepvis.optimize.unitviz import (LayerVisualization, UnitVisualizer, VizSettings, layer_cache_file,
                             load_layer_visualization, visualize_layer)
from deepvis.widgets.panes.imagepanel import ImagePanel

TOP_K = 9
VIZ_STEPS = 128
PROFILE_SHARE = 0.15  # of the progress bar: one pass over the dataset is quick next to the optimization


def viz_settings(model, probe, layer: str) -> VizSettings:
    """A model of one input size (an 8x8 digit classifier) gets pictures of exactly that size,
    as ``deepvis visualize-unit`` makes them (they were 16x16 textures); others 96 px, big
    enough to show a pattern and small enough for a layer in minutes. Call on the compute
    thread: telling whether a model takes other sizes runs it (once per model)."""
    fixed = UnitVisualizer(model, probe).fixed_input_size()
    if fixed:
        return VizSettings(layer, 0, size=fixed, steps=VIZ_STEPS, fixed=True)
    side = min(model.spec.size)
    return VizSettings(layer, 0, size=96 if side >= 96 else max(16, 2 * side), steps=VIZ_STEPS)


def dataset_for(model, source_spec: str | None) -> Dataset:
    """The images to rank units on: the folder the user opened, the digits for a digits-sized
    grayscale model, else the bundled photos and crops of them."""
    if source_spec and Path(source_spec).is_dir():
        return folder_dataset(source_spec)
    if model.spec.channels == 1 and min(model.spec.size) <= 32:
        return digits_dataset()
    return samples_dataset()


@dataclass
class AtlasPictures:
    """A layer's pictures from an atlas (``deepvis atlas units``)."""

    name: str
    rows: int
    patches: np.ndarray  # (C, k, P, P, 3) uint8
    values: np.ndarray | None  # (C, k) top responses
    visualizations: tuple | None  # (images (C, S, S, 3), done (C,)) or None

    def optimized(self, unit: int) -> np.ndarray | None:
        if self.visualizations is None:
            return None
        images, done = self.visualizations
        return images[unit] if 0 <= unit < len(done) and done[unit] else None


def atlas_pictures(atlas, layer: str, fingerprint: str) -> AtlasPictures | None:
    """The atlas's pictures of ``layer``, if it has patches of it and was built with these
    weights (its top-k say nothing about another model's units)."""
    if atlas.manifest["model"].get("fingerprint") != fingerprint or layer not in atlas.layers:
        return None
    patches = load_patches(atlas, layer)
    if patches is None:
        return None
    values = atlas.units(layer).values
    return AtlasPictures(atlas.path.name, len(atlas), patches, values if values.shape[:1] == patches.shape[:1] else None,
                         load_visualizations(atlas, layer))


class UnitPictures(QWidget):
    _posted_profiles = Signal(object, object, str)  # layer, UnitProfiles or None, dataset name
    _posted_viz = Signal(object, object)  # layer, LayerVisualization or None
    _posted_progress = Signal(float)
    _posted_done = Signal(object, str)  # the job's cancel event; "" when finished or stopped, else the error
    _posted_atlas = Signal(object, object)  # layer, AtlasPictures or None

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.profiles: UnitProfiles | None = None
        self.viz: LayerVisualization | None = None
        self.atlas_pictures: AtlasPictures | None = None  # the selected layer's, from the open atlas
        self.dataset_name = ""
        self._datasets: dict[tuple, Dataset] = {}  # a layer switch must not re-read the photos or re-list a folder
        self._cancel: threading.Event | None = None
        self.job_layer: str | None = None  # the layer being computed
        self._lookup = 0  # newest lookup; older answers are dropped
        self.optimized = ImagePanel("Optimized", placeholder="not computed")
        self.top = ImagePanel(f"Top {TOP_K}", placeholder="not computed")
        for panel in (self.optimized, self.top):
            panel.setMinimumHeight(120)
            panel.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.compute = QPushButton("Compute for this layer")
        self.compute.setToolTip("optimize an image for every unit of the layer and rank the dataset's images "
                                "(cached: a layer computed once shows at once)")
        self.stop = QPushButton("Stop")
        self.stop.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(120)
        self.progress.setVisible(False)
        self.info = QLabel("")
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        pictures = QHBoxLayout()
        pictures.addWidget(self.optimized)
        pictures.addWidget(self.top)
        actions = QHBoxLayout()
        actions.addWidget(self.compute)
        actions.addWidget(self.stop)
        actions.addWidget(self.progress)
        actions.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(pictures, 1)
        layout.addLayout(actions)
        layout.addWidget(self.info)
        self.compute.clicked.connect(self.start)
        self.stop.clicked.connect(self.halt)
        self._posted_profiles.connect(self._got_profiles)
        self._posted_viz.connect(self._got_viz)
        self._posted_progress.connect(lambda f: self.progress.setValue(int(100 * f)))
        self._posted_done.connect(self._finished)
        self._posted_atlas.connect(self._got_atlas)
        # A running computation goes on while the user looks at other layers; a new model ends it.
        session.layerChanged.connect(lambda _name: self.look_up())
        session.modelChanged.connect(lambda _state: (self.halt(), self._enable(), self.look_up()))
        session.unitChanged.connect(lambda _unit: self.show_unit())
        session.atlasChanged.connect(lambda _atlas: self.look_up())

    # --- cached pictures -------------------------------------------------------------

    def _fingerprint(self, state) -> str:
        return state.fingerprint()

    def _dataset(self, model, spec: str | None, fresh: bool = False) -> Dataset:
        """``dataset_for``, kept between layer switches; ``fresh`` re-lists (a folder may have changed)."""
        key = (spec, model.spec.channels, min(model.spec.size))
        if fresh or key not in self._datasets:
            self._datasets = {key: dataset_for(model, spec)}
        return self._datasets[key]

    def look_up(self) -> None:
        """Show what the cache holds for the selected layer (quick: no model runs)."""
        self.profiles = self.viz = self.atlas_pictures = None
        self.show_unit()
        state, layer, spec = self.session.state, self.session.layer, self.session.source_spec
        atlas = self.session.atlas
        if state is None or layer is None or self.session.takes_signals:
            return
        self._lookup += 1
        ticket = self._lookup

        def from_atlas():
            try:
                pictures = atlas_pictures(atlas, layer, self._fingerprint(state))
            except (DeepvisError, OSError, ValueError, KeyError):
                pictures = None  # a damaged or older atlas: the pane's own pictures, as without one
            if ticket == self._lookup:
                self._posted_atlas.emit(layer, pictures)

        def work():
            fp = self._fingerprint(state)
            dataset = self._dataset(state.model, spec)
            profiles = cached_profiles(fp, dataset, layer, TOP_K)
            viz = load_layer_visualization(layer_cache_file(fp, viz_settings(state.model, state.probe, layer)), layer)
            return dataset.name, profiles, viz

        def done(future):
            if future.cancelled():  # the window closed first
                return
            try:
                name, profiles, viz = future.result()
            except (DeepvisError, OSError):
                return  # nothing cached is no news; "compute" will say what is wrong
            if ticket == self._lookup:
                self._posted_profiles.emit(layer, profiles, name)
                self._posted_viz.emit(layer, viz)

        if atlas is not None:
            compute_thread().submit(from_atlas)
        compute_thread().submit(work).add_done_callback(done)

    def _got_atlas(self, layer, pictures) -> None:
        if layer == self.session.layer:
            self.atlas_pictures = pictures
            self.show_unit()

    def _got_profiles(self, layer, profiles, name) -> None:
        if layer == self.session.layer:
            self.profiles, self.dataset_name = profiles, name
            self.show_unit()

    def _got_viz(self, layer, viz) -> None:
        if layer == self.session.layer:
            self.viz = viz
            self.show_unit()

    def _enable(self) -> None:
        # Optimized pictures and a dataset's top images are for picture models; a 1-D model
        # was handed a picture batch and failed with a shape error.
        self.compute.setEnabled(self._cancel is None and not self.session.takes_signals)

    def show_unit(self) -> None:
        if self.session.takes_signals:
            for panel in (self.optimized, self.top):
                panel.clear("picture models only")
            self.info.setText("")
            return
        unit = self.session.unit
        waiting = "computing..." if self._cancel is not None and self.job_layer == self.session.layer \
            else "not computed: Compute for this layer"
        atlas = self.atlas_pictures
        image = self.viz.image(unit) if self.viz is not None else None
        if atlas is not None and atlas.optimized(unit) is not None:
            image = atlas.optimized(unit)
        if image is not None:
            self.optimized.set_rgb(image)
        else:
            self.optimized.clear(waiting)
        # A unit never active over the images has no top images: their ranking is arbitrary.
        if atlas is not None and 0 <= unit < len(atlas.patches) and atlas.values is not None \
                and dead_units(atlas.values)[unit]:
            self._show_dead(f"atlas {atlas.name}", atlas.values[unit, 0], atlas.rows)
        elif atlas is not None and 0 <= unit < len(atlas.patches):
            patches = atlas.patches[unit]
            self.top.set_rgb(picture_grid(patches, int(np.ceil(np.sqrt(len(patches)))), border=1, fill=30))
            self.top.set_title(f"Top {len(patches)} of atlas {atlas.name}")
            values = atlas.values[unit] if atlas.values is not None else None
            responses = f"; top responses {values[0]:.3g} ... {values[-1]:.3g}" if values is not None else ""
            self.info.setText(f"atlas {atlas.name}: top {len(patches)} of {atlas.rows:,} images{responses}")
        elif self.profiles is not None and 0 <= unit < len(self.profiles.patches) and self.profiles.dead[unit]:
            self._show_dead(self.dataset_name, self.profiles.values[unit, 0], len(self.profiles.paths))
        elif self.profiles is not None and 0 <= unit < len(self.profiles.patches):
            patches = self.profiles.patches[unit]
            self.top.set_rgb(picture_grid(patches, int(np.ceil(np.sqrt(len(patches)))), border=1, fill=30))
            values = self.profiles.values[unit]
            self.top.set_title(f"Top {len(patches)} of {self.dataset_name}")
            self.info.setText(f"top responses {values[0]:.3g} ... {values[-1]:.3g}; "
                              f"receptive field {self.profiles.field} px")
        else:
            self.top.clear(waiting)
            self.top.set_title(f"Top {TOP_K}")
            self.info.setText("")

    def _show_dead(self, where: str, top: float, images: int) -> None:
        self.top.clear(f"dead: no image of {where} excites this unit")
        self.top.set_title(f"Top {TOP_K}: none (dead unit)")
        self.info.setText(f"dead over {images:,} images of {where}: max {top:.3g} ≤ 0")

    # --- computing a layer -----------------------------------------------------------

    def start(self) -> None:
        s = self.session
        if s.state is None or s.layer is None:
            s.message.emit("load a model first")
            return
        if self.session.takes_signals:
            s.message.emit(f"unit pictures: {s.state.model.name} takes signals; optimized pictures and top images "
                           f"are for picture models")
            return
        self.halt()
        state, layer, unit, spec = s.state, s.layer, s.unit, s.source_spec
        cancel = self._cancel = threading.Event()
        self.job_layer = layer
        self.compute.setEnabled(False)
        self.stop.setEnabled(True)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.show_unit()
        compute = compute_thread()
        post_progress = self._posted_progress.emit

        def work():
            fp = self._fingerprint(state)
            dataset = self._dataset(state.model, spec, fresh=True)
            profiles = profile_units(state.model, dataset, layer, k=TOP_K, probe=state.probe, cancel=cancel,
                                     fingerprint=fp, progress=lambda i, n: post_progress(PROFILE_SHARE * i / n))
            self._posted_profiles.emit(layer, profiles, dataset.name)
            compute.breathe()
            viz = UnitVisualizer(state.model, state.probe)
            visualize_layer(viz, viz_settings(state.model, state.probe, layer), fp, first=unit, cancel=cancel,
                            between=compute.breathe,
                            progress=lambda i, n: post_progress(PROFILE_SHARE + (1 - PROFILE_SHARE) * i / n),
                            on_batch=lambda result: self._posted_viz.emit(layer, result))

        # Whatever ends the job, the finished batches stay cached.
        compute.submit(work).add_done_callback(lambda future: self._posted_done.emit(cancel, outcome(future)[1]))

    def halt(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    def _finished(self, cancel, error: str) -> None:
        if error:
            self.session.message.emit(f"unit pictures: {error}")
        if cancel is not self._cancel:
            return  # a stopped job ending after its successor started
        self._cancel = self.job_layer = None
        self._enable()
        self.stop.setEnabled(False)
        self.progress.setVisible(False)
        self.show_unit()

    def shutdown(self) -> None:
        self.halt()
