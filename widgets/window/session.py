"""The state the window's views share, and the bridge from the engine's threads to Qt.

One ``Session`` per window holds the loaded model, its probe, the input source, the live
pipeline and the selection (layer and unit). Views never talk to each other: they read the
session and react to its signals. Results produced on the compute thread are handed over
latest-wins: the session keeps only the newest one and posts a single queued signal, so a
slow paint never builds a queue of stale frames in Qt's event loop.
"""

import threading
import time
from pathlib import Path
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal, Slot

from deepvis.live.computethread import compute_thread, outcome
from deepvis.core.cache import model_fingerprint
from deepvis.errors import DeepvisError
from deepvis.io.images import VIDEO_SUFFIXES
from deepvis.core.download import progress_to
from deepvis.core.loading import LoadedModel, load_model
from deepvis.generative.autoencoders import find_autoencoder
from deepvis.live.pipeline import LiveResult, LivePipeline, LiveSettings
from deepvis.core.probe import Probe
from deepvis.io.sources import Frame, FrameSource, open_source


class _Mailbox:
    """One slot handed from a worker thread to the GUI thread, newest value wins.

    ``put`` says whether a signal must be posted: only when none is pending, so a slow GUI
    never finds a queue of stale values in its event loop.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._value = None
        self._pending = False

    def put(self, value) -> bool:
        with self._lock:
            self._value = value
            post, self._pending = not self._pending, True
        return post

    def take(self):
        with self._lock:
            self._pending = False
            return self._value


@dataclass
class ModelState:
    model: LoadedModel
    probe: Probe
    spec_text: str  # what the user asked for, for settings and the title
    autoencoder: object = None  # an image model's encoder/decoder split, when it has one (Autoencoder)
    _fingerprint: str | None = field(default=None, repr=False)

    def fingerprint(self) -> str:
        """The weights' digest (``model_fingerprint``), computed once. Call it on the compute
        thread: it runs torch, and torch on a second thread slows every forward pass."""
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.model)
        return self._fingerprint


class Session(QObject):
    modelChanged = Signal(object)  # ModelState
    sourceChanged = Signal(str)  # a name for the status bar
    layerChanged = Signal(str)
    unitChanged = Signal(int)
    settingsChanged = Signal(object)  # LiveSettings
    resultReady = Signal()  # the newest result is in .result
    frameReady = Signal()  # the newest raw frame is in .frame
    message = Signal(str)  # errors and notes for the message bar
    busy = Signal(str)  # "" when idle
    saliencyProgress = Signal(float)  # a heavy saliency map's progress 0..1; -1 when it stopped early
    atlasChanged = Signal(object)  # the Atlas now open, or None when closed

    _posted_result = Signal()
    _posted_frame = Signal()
    _posted_message = Signal(str)
    _posted_progress = Signal(float)
    _posted_model = Signal(object, object, str)  # ModelState or None, error text, spec
    _posted_source = Signal(object, str, str, int)  # FrameSource or None, error text, spec, request
    _posted_atlas = Signal(object, str, int)  # (Atlas, first map) or None, error text, request

    def __init__(self, parent=None):
        super().__init__(parent)
        self.state: ModelState | None = None
        self.pipeline: LivePipeline | None = None
        self.source: FrameSource | None = None
        self.source_spec: str | None = None
        self.autostart = True  # tabs start a cheap first run when first shown (off in benchmarks)
        self.layer: str | None = None
        self.unit: int = 0
        # The layer whose first result picks the unit shown (its most active one on that frame),
        # until the user picks one: unit 0 is often dead on the frame.
        self._pick_unit_for: str | None = None
        self.settings = LiveSettings()
        self.result: LiveResult | None = None  # the newest result delivered to the GUI thread
        self.atlas = None  # the open deepvis.atlas Atlas, if any
        # The map read with it, so the Embedding tab shows it without reading it again:
        # ((layer, method), coords, info), or None when the atlas has no map (or it is unreadable,
        # then atlas_map_error says why).
        self.atlas_map = None
        self.atlas_map_error = ""
        self.frame: Frame | None = None  # the newest raw frame delivered to the GUI thread
        self._results = _Mailbox()
        self._frames = _Mailbox()
        self.frames_seen = 0
        self.results_seen = 0
        self.render_ms = 0.0  # GUI time spent on the last result: view updates and paints
        self.paint_ms = 0.0  # paints since the last result, added up by the image panes
        self._posted_result.connect(self._deliver_result)
        self._posted_frame.connect(self._deliver_frame)
        self._posted_message.connect(self.message)
        self._posted_progress.connect(self.saliencyProgress)
        self._posted_model.connect(self._model_loaded)
        self._posted_source.connect(self._source_opened)
        self._posted_atlas.connect(self._atlas_opened)
        self._input_request = 0  # opening inputs may finish out of order; the latest request wins
        self._atlas_request = 0
        self._atlas_opening = False

    # --- model -------------------------------------------------------------------------

    def load_model(self, spec: str | None, weights: str | None = None, **options) -> None:
        """Load on the compute thread; the current model keeps running until the new one is ready."""
        self.busy.emit(f"loading {spec or 'the default model'}...")

        shown = [None]

        def downloading(name, done, total):
            # Zoo weights fetched on first use: the busy line counts them, once per percent.
            step = (100 * done // total) if total else done >> 20
            if step != shown[0]:
                shown[0] = step
                size = f"{done / 1e6:.1f} / {total / 1e6:.1f} MB ({step} %)" if total else f"{done / 1e6:.1f} MB"
                self.busy.emit(f"downloading {name}: {size}")

        def work():
            with progress_to(downloading):
                model = load_model(spec, weights, **options)
            autoencoder = None
            if model.task == "image":  # settled here, off the GUI thread: it takes a dry run
                _ = model.output_range
                try:
                    autoencoder = find_autoencoder(model)
                except DeepvisError:
                    pass  # an image-to-image net without a latent: nothing for the Latent tab
            return ModelState(model, Probe(model.module, model.example_input()), spec or model.name, autoencoder)

        future = compute_thread().submit(work)

        # A broken model is reported and the old one keeps running.
        future.add_done_callback(lambda f: self._posted_model.emit(*outcome(f), spec or ""))

    def set_head(self, name: str) -> None:
        """Read predictions from the output ``name`` of the running model (``--head``): its
        outputs are re-read on the compute thread, and the views follow as for a new model."""
        state = self.state
        if state is None or name == state.model.head.name:
            return
        self.busy.emit(f"reading {name}...")

        def work():
            state.model.choose_head(name)
            return ModelState(state.model, state.probe, state.spec_text, state.autoencoder)

        future = compute_thread().submit(work)
        future.add_done_callback(lambda f: self._posted_model.emit(*outcome(f), name))

    def fix_preprocessing(self, variant: str) -> None:
        """Read the input as the doctor's ``variant`` (bgr, x255, unnormalized) for the rest of
        the session: the running model is changed on the compute thread and the views follow
        as for a new model; what changed is said in the message bar."""
        from deepvis.doctor.preprocessing import apply_variant

        state = self.state
        if state is None:
            return
        self.busy.emit(f"reading the input as {variant}...")

        def work():
            said = apply_variant(state.model, state.probe, variant)
            self._posted_message.emit(f"{state.model.name}: {said} (this session only)")
            return ModelState(state.model, state.probe, state.spec_text, state.autoencoder)

        future = compute_thread().submit(work)
        future.add_done_callback(lambda f: self._posted_model.emit(*outcome(f), variant))

    @Slot(object, object, str)
    def _model_loaded(self, state, error, spec):
        self.busy.emit("")
        if state is None:
            self.message.emit(f"Could not load {spec}: {error}")
            return
        self.state = state
        layer = self.layer if self.layer in state.probe else state.probe.default_layer().name
        self.layer, self.unit = layer, 0
        self._pick_unit_for = layer
        self.settings = LiveSettings(grid_layer=layer, normalization=self.settings.normalization,
                                     topk=self.settings.topk, mirror=self.settings.mirror, fit=self.settings.fit)
        self._restart_pipeline()
        for note in state.model.notes:
            self.message.emit(f"{state.model.name}: {note}")
        self.modelChanged.emit(state)
        self.layerChanged.emit(layer)
        self.unitChanged.emit(0)

    # --- input -------------------------------------------------------------------------

    def open_input(self, spec, realtime: bool = True, start: str | None = None) -> bool:
        """Open an image, folder, video, camera or pattern; videos and the pattern play at their
        own frame rate unless ``realtime`` is off (benchmarks decode as fast as the model runs).
        A folder opens on the file named ``start`` when it has one."""
        options = {}
        if str(spec).strip().lower() == "pattern":
            options["fps"] = 30.0 if realtime else None
        elif Path(str(spec)).suffix.lower() in VIDEO_SUFFIXES:
            options["realtime"] = realtime
        self._input_request += 1
        if Path(str(spec)).is_dir():
            options["start"] = start
            # A folder of thousands of files (or on a network drive) takes a while to list: do it
            # off the GUI thread and switch when it is ready. The current input keeps running.
            request = self._input_request
            self.busy.emit(f"listing {Path(str(spec)).name}...")

            def work():
                try:
                    self._posted_source.emit(open_source(spec, **options), "", str(spec), request)
                except DeepvisError as exc:
                    self._posted_source.emit(None, str(exc), str(spec), request)

            threading.Thread(target=work, name="deepvis-open-folder", daemon=True).start()
            return True
        try:
            source = open_source(spec, **options)
        except DeepvisError as exc:
            self.message.emit(str(exc))
            return False
        self._switch_source(source, str(spec))
        return True

    @Slot(object, str, str, int)
    def _source_opened(self, source, error: str, spec: str, request: int) -> None:
        self.busy.emit("")
        if request != self._input_request:  # the user opened something else meanwhile
            if source is not None:
                source.close()
            return
        if source is None:
            self.message.emit(error)
            return
        self._switch_source(source, spec)

    def _switch_source(self, source: FrameSource, spec: str) -> None:
        old = self.source
        self.source, self.source_spec = source, spec
        self.frame = None
        if self.pipeline is not None:
            self.pipeline.set_source(source, owns_source=False)
        elif self.state is not None:
            self._restart_pipeline()
        if old is not None:
            old.close()
        self.sourceChanged.emit(source.name)

    def next_item(self, step: int = 1) -> None:
        if self.source is not None:
            (self.source.next_item if step > 0 else self.source.previous_item)()

    # --- atlas ---------------------------------------------------------------------------

    def open_atlas(self, path) -> None:
        """Open the atlas at ``path`` off the GUI thread (reading a million rows takes about a
        second); the atlas open now, if any, stays until the new one is ready, and stays on errors."""
        self._atlas_request += 1
        request = self._atlas_request
        self._atlas_opening = True
        path = Path(str(path))
        self.busy.emit(f"opening atlas {path.name}...")

        def work():
            # Not on the compute thread: this is Parquet and numpy only, and a second of it
            # there would stall the live view.
            from deepvis.atlas.store import Atlas

            try:
                atlas = Atlas(path)
                atlas.rows()
                maps = atlas.maps()
                first, error = None, ""
                if maps:
                    try:
                        first = (maps[0], *atlas.load_map(*maps[0]))
                    except DeepvisError as exc:  # the atlas is still worth opening
                        error = str(exc)
                self._posted_atlas.emit((atlas, first, error), "", request)
            except DeepvisError as exc:
                self._posted_atlas.emit(None, " ".join(str(exc).split()), request)
            except Exception as exc:  # a damaged Parquet part, a folder that vanished: one line
                self._posted_atlas.emit(None, " ".join(f"cannot open the atlas {path}: {type(exc).__name__}: "
                                                       f"{exc}".split()), request)

        threading.Thread(target=work, name="deepvis-open-atlas", daemon=True).start()

    @Slot(object, str, int)
    def _atlas_opened(self, opened, error: str, request: int) -> None:
        if request != self._atlas_request:  # another atlas was asked for meanwhile
            return
        self._atlas_opening = False
        self.busy.emit("")
        if opened is None:
            self.message.emit(error)
            return
        self.atlas, self.atlas_map, self.atlas_map_error = opened
        if self.atlas_map_error:
            self.message.emit(self.atlas_map_error)
        self.atlasChanged.emit(self.atlas)

    def close_atlas(self) -> None:
        self._atlas_request += 1  # an atlas still opening is dropped too
        if self._atlas_opening:
            self._atlas_opening = False
            self.busy.emit("")
        if self.atlas is not None:
            self.atlas, self.atlas_map, self.atlas_map_error = None, None, ""
            self.atlasChanged.emit(None)

    # --- selection and settings ----------------------------------------------------------

    def set_layer(self, name: str) -> None:
        if self.state is None or name == self.layer:
            return
        try:
            self.state.probe.layer(name)
        except DeepvisError as exc:
            self.message.emit(str(exc))
            return
        self.layer = name
        self.unit = min(self.unit, self.state.probe.layer(name).channels - 1)
        self._pick_unit_for = name
        self.update_settings(grid_layer=name)
        self.layerChanged.emit(name)
        self.unitChanged.emit(self.unit)

    def step_layer(self, step: int) -> None:
        if self.state is None:
            return
        names = self.state.probe.names()
        i = names.index(self.layer) if self.layer in names else 0
        self.set_layer(names[max(0, min(len(names) - 1, i + step))])

    def set_unit(self, unit: int) -> None:
        if self.state is None or self.layer is None:
            return
        unit = max(0, min(int(unit), self.state.probe.layer(self.layer).channels - 1))
        self._pick_unit_for = None  # the user's choice stays while frames change
        if unit != self.unit:
            self.unit = unit
            self.unitChanged.emit(unit)

    def update_settings(self, **changes) -> bool:
        """Apply ``changes``; a combination the pipeline refuses is a message and changes nothing."""
        from dataclasses import replace

        if self.pipeline is not None:
            try:
                self.pipeline.update(**changes)
            except DeepvisError as exc:
                self.message.emit(str(exc))
                return False
        self.settings = replace(self.settings, **changes)
        self.settingsChanged.emit(self.settings)
        return True

    def cancel_saliency(self) -> None:
        if self.pipeline is not None:
            self.pipeline.cancel_saliency()

    # --- pipeline ------------------------------------------------------------------------

    def _restart_pipeline(self) -> None:
        self._stop_pipeline()
        if self.state is None or self.source is None:
            return
        self.pipeline = LivePipeline(self.state.model, self.source, self.settings, probe=self.state.probe,
                                     on_result=self._on_result, on_error=self._posted_message.emit,
                                     on_frame=self._on_frame, owns_source=False,
                                     on_progress=self._posted_progress.emit)
        self.pipeline.start()

    def start(self) -> None:
        if self.pipeline is None:
            self._restart_pipeline()

    def _stop_pipeline(self) -> None:
        if self.pipeline is not None:
            self.pipeline.stop()
            self.pipeline = None

    def close(self) -> None:
        self._stop_pipeline()
        if self.source is not None:
            self.source.close()
            self.source = None

    def _on_result(self, result: LiveResult) -> None:  # compute thread
        if self._results.put(result):
            self._posted_result.emit()

    def _on_frame(self, frame: Frame) -> None:  # capture or compute thread
        if self._frames.put(frame):
            self._posted_frame.emit()

    @Slot()
    def _deliver_result(self) -> None:
        # .result changes only here, on the GUI thread, so views see one result per signal.
        self.result = self._results.take()
        self.results_seen += 1
        self._pick_unit(self.result)
        start = time.perf_counter()
        self.resultReady.emit()
        # Views update their data here and paint a moment later; both count as rendering.
        self.render_ms = (time.perf_counter() - start) * 1000 + self.paint_ms
        self.paint_ms = 0.0

    def _pick_unit(self, result: LiveResult) -> None:
        """Select the most active unit of a newly selected layer, from its first result (before
        the views draw it). Numpy on the published maxima: no torch on the GUI thread."""
        layer = self._pick_unit_for
        if layer is None or result is None or result.settings.grid_layer != layer or self.state is None:
            return
        unit = result.most_active_unit()
        if unit is None or len(result.channel_max) != self.state.probe.layer(layer).channels:
            return  # a result of the model before this one, with a layer of the same name
        self._pick_unit_for = None
        if unit != self.unit:
            self.unit = unit
            self.unitChanged.emit(unit)

    @Slot()
    def _deliver_frame(self) -> None:
        self.frame = self._frames.take()
        self.frames_seen += 1
        self.frameReady.emit()

    def add_paint_time(self, ms: float) -> None:
        self.paint_ms += ms

    @property
    def takes_signals(self) -> bool:
        """A 1-D model is loaded: its input and results live in the Signals tab, not the picture views."""
        return self.state is not None and self.state.model.signal is not None

    def stale(self, result: LiveResult | None = None) -> bool:
        """A result lags when its frame is older than the newest frame or its settings are out of date."""
        result = result or self.result
        if result is None:
            return True
        if result.settings.grid_layer != self.settings.grid_layer or \
                result.settings.normalization != self.settings.normalization:
            return True
        frame = self.frame
        return frame is not None and frame.serial != result.frame.serial and \
            frame.timestamp - result.frame.timestamp > 0.25
