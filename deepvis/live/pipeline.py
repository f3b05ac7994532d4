"""The live pipeline: frames in, immutable results out, off the caller's thread.

All torch work runs on the process's compute thread (``deepvis.live.computethread``), as a step
it takes whenever it has no other task.

* Sources that pace themselves (a camera, a video played in real time) get a **capture**
  thread that reads continuously; each frame *replaces* the one in the slot, so a slow
  model never builds a queue and always sees the newest frame.
* Other sources (files, folders, video decoded as fast as asked) are read by the compute
  step itself, right before the forward pass. Overlapping the two on a second thread looks
  attractive but loses on small machines: the forward pass keeps every core busy with
  OpenMP teams that wait for each other at barriers, so a thread that preempts one of them
  stalls the whole team (measured: the live ratio fell from 0.93 to 0.75-0.83 on 2 cores).
* The **compute** step takes the newest frame, preprocesses it, runs the forward pass with
  hooks on the layers in view, tiles the grid layer, summarizes the output and publishes a
  frozen ``LiveResult``. It also recomputes the current frame when the settings change (a
  new layer in view), so a still image reacts immediately.

Results reach the caller through ``on_result`` (called on the compute thread; the GUI
forwards it to its main thread) and ``latest()``. Errors (a corrupt file, NaNs, out of
memory) go to ``on_error`` as one-line messages; the pipeline keeps running.
"""

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

import numpy as np
import torch

from deepvis.live.computethread import ComputeThread, compute_thread
from deepvis.live.publisher import ResultPublisher
from deepvis.core.device import synchronize
from deepvis.errors import Cancelled, DeepvisError
from deepvis.core.inputspec import Preprocessor
from deepvis.core.loading import LoadedModel
from deepvis.core.imagemodel import ImageOutput, image_output
from deepvis.core.predictions import Summary, segmentation_summary
from deepvis.core.probe import Probe
from deepvis.attribution.saliency import (LIGHT_METHODS, Objective, Target, attribute, check_method, resolve_detection,
                                          run_method, top_class)
from deepvis.io.sources import Frame, FrameError, FrameSource
from deepvis.segmentation.dense import MODES as DENSE_MODES, DenseMaps, dense_maps, shares
from deepvis.render.tiling import GridLayout, as_maps, tile, tile_activation

STATIC_POLL_S = 0.05
STAGES = ("capture", "preprocess", "forward", "saliency", "tile", "predict")
# Share of the compute thread a heavy saliency method (many passes per map) may take while
# live frames keep coming; the rest goes to the activation grid.
HEAVY_SHARE = 0.5


@dataclass(frozen=True)
class SaliencySettings:
    """A live saliency map: ``method`` for ``target`` (None: the top prediction)."""

    method: str = "gradient"
    target: Target | None = None
    layer: str | None = None  # Grad-CAM's layer; None: the last convolution
    samples: int = 16  # SmoothGrad
    steps: int = 32  # integrated gradients
    noise: float = 0.15  # SmoothGrad's noise, as a fraction of the input's range
    batch: int = 2  # passes per chunk of the heavy methods: the grid gets a turn between chunks

    @property
    def heavy(self) -> bool:
        return self.method not in LIGHT_METHODS


@dataclass(frozen=True)
class SaliencyResult:
    map: np.ndarray  # float32 (H, W) at the model input's resolution
    target: Target  # as resolved: a top-prediction target names the class it picked
    frame: Frame  # the frame it explains (heavy methods lag the live frame)
    model_input: np.ndarray  # uint8 (H, W, 3) of that frame, for overlays
    settings: SaliencySettings
    ms: float


@dataclass(frozen=True)
class LiveSettings:
    layers: tuple[str, ...] = ()  # layers whose activations are published
    grid_layer: str | None = None  # layer tiled into the activation grid (also published)
    normalization: str = "layer"
    topk: int = 5
    frozen: bool = False  # keep computing on the current frame, take no new ones
    mirror: bool = False  # flip frames left-right (a webcam as a mirror)
    fit: str | None = None  # "crop" or "stretch"; None keeps the model's own
    saliency: SaliencySettings | None = None
    # A segmentation net's per-pixel maps to make each frame: labels always; confidence,
    # entropy and margin cost a softmax over every class and pixel, so only when shown.
    dense_modes: tuple[str, ...] = ("labels",)


@dataclass(frozen=True)
class LiveResult:
    index: int  # results published by this pipeline so far, from 1
    frame: Frame
    model_input: np.ndarray  # uint8 (H, W, 3): what the model sees
    activations: Mapping[str, np.ndarray]  # float32, one sample (batch dimension removed)
    # grid_layer's channels tiled (NaN padding). Raw values shown through ``grid_levels`` for
    # "layer" normalization, so any channel can be read back exactly; scaled per channel to
    # [0, 1] for "channel" normalization.
    grid: np.ndarray | None
    grid_layout: GridLayout | None
    grid_levels: tuple[float, float]
    summary: Summary | None
    timings: Mapping[str, float]  # milliseconds per stage, and "total"
    fps: float  # results per second, smoothed
    settings: LiveSettings
    saliency: SaliencyResult | None = None  # of this frame (light methods) or the last one done (heavy)
    image_output: ImageOutput | None = None  # an image model's output picture and its error
    dense: DenseMaps | None = None  # a segmentation net's maps at the model input's resolution
    prefix: np.ndarray | None = None  # a token grid layer's CLS (and register) vectors, (prefix, C)
    # grid_layer's spatial maximum per channel on this frame, (C,), raw whatever the normalization:
    # which unit fires most, and which are dead on the frame (maximum <= 0).
    channel_max: np.ndarray | None = None

    def most_active_unit(self) -> int | None:
        """The grid layer's channel with the largest spatial maximum on this frame."""
        if self.channel_max is None or not len(self.channel_max):
            return None
        return int(np.argmax(np.nan_to_num(self.channel_max, nan=-np.inf)))

    def channel(self, index: int) -> np.ndarray:
        """The grid layer's raw activation for one channel, (H, W)."""
        name = self.settings.grid_layer
        if name in self.activations:
            return as_maps(self.activations[name])[index]
        if self.grid is None or self.settings.normalization == "channel":
            raise KeyError(f"channel {index} is not available in this result")
        return self.grid[self.grid_layout.tile_slices(index)]


@dataclass
class _Slot:
    """The newest captured frame; ``fresh`` until the compute thread takes it."""
    frame: Frame | None = None
    fitted: np.ndarray | None = None  # the frame fitted to the model (uint8 H, W, C)
    array: np.ndarray | None = None  # and normalized (float32 C, H, W)
    capture_ms: float = 0.0
    preprocess_ms: float = 0.0
    fresh: bool = False
    version: int = 0  # bumped by settings changes, so a still frame is recomputed


class LivePipeline(ResultPublisher):
    def __init__(self, model: LoadedModel, source: FrameSource, settings: LiveSettings | None = None, *,
                 probe: Probe | None = None, on_result: Callable[[LiveResult], None] | None = None,
                 on_error: Callable[[str], None] | None = None, recompute_static: bool = False,
                 owns_source: bool = True, compute: ComputeThread | None = None,
                 on_frame: Callable[[Frame], None] | None = None,
                 on_progress: Callable[[float], None] | None = None):
        super().__init__(on_result, on_error)
        self.model = model
        self.probe = probe or Probe(model.module, model.example_input())
        self.settings = settings or LiveSettings()
        self._gradcam_layer: str | None = None
        self._check_layers(self.settings)
        self._source = source
        self._owns_source = owns_source
        self.on_frame = on_frame  # new frames of self-paced sources, before processing (a live raw view)
        self.on_progress = on_progress  # a heavy saliency map's progress, 0..1 (compute thread)
        self._preprocessors: dict[str | None, Preprocessor] = {None: model.preprocessor}
        self.recompute_static = recompute_static
        self._slot = _Slot()
        self._compute = compute or compute_thread()
        self._step_lock = threading.RLock()
        self._done = (None, None)  # (frame serial, settings version) of the last result
        self._capture: threading.Thread | None = None
        self._last_serial = None
        self._read_settings = (False, None)
        self._errors_seen: dict[int, int] = {}
        self._shown = None  # (frame, fitted, array) of the newest processed frame
        self._dead_source: FrameSource | None = None
        self._heavy_done = None  # (frame serial, SaliencySettings) of the last heavy map started
        self._heavy_cancel = threading.Event()
        self._heavy_result: SaliencyResult | None = None
        self._heavy_lock = threading.RLock()

    # --- control ---------------------------------------------------------------------------

    def start(self) -> "LivePipeline":
        if self._started:
            return self
        self._started = True
        self._capture = threading.Thread(target=self._capture_loop, name="deepvis-capture", daemon=True)
        self._capture.start()
        self._compute.add_idle(self._step)
        self._compute.add_idle(self._saliency_step)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop capturing and computing; closes the source when the pipeline owns it."""
        self._signal_stop()
        self._heavy_cancel.set()
        self._compute.remove_idle(self._step)
        self._compute.remove_idle(self._saliency_step)
        with self._heavy_lock, self._step_lock:  # same order as a heavy map that lets a frame through
            pass
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.join(timeout)
        if self._owns_source:
            self._source.close()
        if capture is not None and capture.is_alive():
            raise RuntimeError("the live pipeline's capture thread did not stop")

    def update(self, **changes) -> LiveSettings:
        """Change settings (layers, grid_layer, normalization, topk, frozen); takes effect on the next result."""
        new = replace(self.settings, **changes)
        self._check_layers(new)
        if new.saliency != self.settings.saliency:
            self._heavy_cancel.set()  # a map nobody asks for any more
        with self._cond:
            if new.frozen and not self.settings.frozen and self._shown is not None:
                # Freeze the frame the user is looking at, not one captured in the meantime.
                slot = self._slot
                slot.frame, slot.fitted, slot.array = self._shown
                slot.fresh = False
            self.settings = new
            self._slot.version += 1
            self._cond.notify_all()
        self._compute.wake()
        return new

    def set_source(self, source: FrameSource, owns_source: bool = True) -> None:
        """Switch input; the old source is closed when the pipeline owned it."""
        with self._cond:
            old, self._source, old_owned = self._source, source, self._owns_source
            self._owns_source = owns_source
            self._slot.frame, self._slot.fresh = None, False
            self._cond.notify_all()
        self._compute.wake()  # files are read by the compute step: start on the new one now
        if old_owned and old is not source:
            old.close()

    @property
    def source(self) -> FrameSource:
        return self._source

    def cancel_saliency(self) -> None:
        """Stop the heavy saliency map in progress; the next frame or settings change starts another."""
        self._heavy_cancel.set()

    def _check_layers(self, settings: LiveSettings) -> None:
        unknown = set(settings.dense_modes) - set(DENSE_MODES)
        if unknown:
            raise DeepvisError(f"unknown segmentation map {sorted(unknown)[0]!r}: expected {', '.join(DENSE_MODES)}")
        for name in (*settings.layers, *([settings.grid_layer] if settings.grid_layer else [])):
            self.probe.layer(name)  # raises a DeepvisError naming close matches
        sal = settings.saliency
        if sal is not None:
            # Bad combinations (guided backprop on functional ReLUs, Grad-CAM on a vector) are
            # refused here, where the caller can show the message, not on every frame.
            layer = check_method(self.model.module, self.probe, sal.method, sal.layer)
            target = sal.target
            if target is not None and target.kind == "unit":
                info = self.probe.layer(target.layer)
                if not 0 <= target.index < info.channels:
                    raise DeepvisError(f"{info.name} has {info.channels} units; {target.index} is out of range")
            else:
                info = next(layer for layer in self.probe.layers if not layer.path)  # the model's output
            if target is not None and target.region is not None and not info.spatial:
                raise DeepvisError(f"a region needs a target with pixels (a segmentation class or a convolution "
                                   f"unit); {info.name} outputs {tuple(info.shape)}")
            self._gradcam_layer = layer

    # --- threads ---------------------------------------------------------------------------

    def _read(self, source: FrameSource) -> bool:
        """Read and preprocess one frame into the slot; False when nothing new came."""
        start = time.perf_counter()
        item = source.read()
        capture_ms = max(0.0, (time.perf_counter() - start - source.last_wait_s) * 1000)
        with self._cond:
            if self._source is not source:
                return False  # replaced (and closed) while we read it: its errors are not news
        # Sources skip unreadable files on their own and note why; pass that on.
        for message in source.errors[self._errors_seen.get(id(source), 0):]:
            self._report(message)
        self._errors_seen[id(source)] = len(source.errors)
        if isinstance(item, FrameError):
            if item.fatal:
                # Before the report: whoever hears of it can ask source_dead and get the answer.
                self._dead_source = source  # nothing more will come until set_source
            self._report(item.message)
            return False
        if item.serial == self._last_serial and self._read_settings == (self.settings.mirror, self.settings.fit):
            return False  # a still image: unchanged
        self._last_serial = item.serial
        settings = self.settings
        self._read_settings = (settings.mirror, settings.fit)
        if settings.mirror:
            item = replace(item, image=np.ascontiguousarray(item.image[:, ::-1]))
        if self.on_frame is not None and source.self_paced:
            # Frames read by the compute step arrive with their result a moment later anyway;
            # announcing them separately would make the GUI paint twice per frame.
            self.on_frame(item)
        start = time.perf_counter()
        try:
            pre = self._preprocessors.get(settings.fit)
            if pre is None:
                pre = self._preprocessors[settings.fit] = Preprocessor(replace(self.model.spec, fit=settings.fit))
            fitted = pre.fit(item.image)
            array = pre.normalize(fitted)
        except DeepvisError as exc:
            self._report(str(exc))
            return False
        preprocess_ms = (time.perf_counter() - start) * 1000
        with self._cond:
            if self._source is not source or self.settings.frozen:
                return False  # switched or frozen while this frame was being read
            slot = self._slot
            slot.frame, slot.fitted, slot.array, slot.fresh = item, fitted, array, True
            slot.capture_ms, slot.preprocess_ms = capture_ms, preprocess_ms
            self._cond.notify_all()
        return True

    def _readable(self, source: FrameSource) -> bool:
        return not self.settings.frozen and source is not self._dead_source

    @property
    def source_dead(self) -> bool:
        """True when the current source said it can produce nothing more (a missing camera)."""
        return self._source is not None and self._source is self._dead_source

    def _capture_loop(self) -> None:
        """Reads self-paced sources; others are read by the compute step."""
        while not self._stop.is_set():
            with self._cond:
                source = self._source
                if not (source.self_paced and self._readable(source)):
                    self._cond.wait(STATIC_POLL_S)
                    continue
            if self._read(source):
                self._compute.wake()
            else:
                self._stop.wait(STATIC_POLL_S)

    def _step(self) -> bool:
        """Read (for sources that do not pace themselves) and process the newest frame if there is
        anything new; runs on the compute thread and never raises."""
        with self._step_lock:
            if self._stop.is_set():
                return False
            try:
                source = self._source
                if not source.self_paced and self._readable(source):
                    self._read(source)
                with self._cond:
                    frame = self._slot.frame
                    key = (frame.serial, self._slot.version) if frame is not None else None
                    if frame is None or not (self._slot.fresh or self.recompute_static or key != self._done):
                        return False
                    slot = self._slot
                    fresh, slot.fresh = slot.fresh, False
                    timings = {"capture": slot.capture_ms if fresh else 0.0,
                               "preprocess": slot.preprocess_ms if fresh else 0.0}
                    fitted, array, settings = slot.fitted, slot.array, self.settings
                    self._cond.notify_all()
                self._done = key
                self._shown = (frame, fitted, array)
                result = self._process(frame, fitted, array, settings, timings)
            except DeepvisError as exc:
                self._report(str(exc))
                return True
            except torch.OutOfMemoryError:
                self._report(f"out of memory running {self.model.name} on {self.model.device}; "
                             f"try a smaller --input-size or --device cpu")
                return True
            except Exception as exc:  # keep the pipeline alive; the message says what broke
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                self._report(f"{type(exc).__name__} while processing a frame: {first}")
                return True
            self._publish(result)
            return True

    def _process(self, frame: Frame, fitted: np.ndarray, array: np.ndarray, settings: LiveSettings,
                 timings: dict) -> LiveResult:
        if self.model.signal is not None:
            raise DeepvisError(f"{self.model.name} is a 1-D model: its recordings play in the Signals tab (and in "
                               f"deepvis predict, activations, saliency and receptive-field); these views take "
                               f"pictures")
        t0 = time.perf_counter()
        grid_layer = settings.grid_layer
        names = list(dict.fromkeys((*settings.layers, *([grid_layer] if grid_layer else []))))
        tiled = {}

        def keep(name, tensor):
            # The grid layer is tiled inside its hook: the tile is the only copy we make of it.
            if name == grid_layer:
                tiled["levels"] = _levels(tensor)
                maps = as_maps(tensor[0].detach().float().cpu().numpy())
                tiled["maxima"] = _frozen(maps.reshape(len(maps), -1).max(1)) if maps.size else None
                if settings.normalization == "channel":
                    tiled["grid"], tiled["layout"] = tile_activation(maps, "channel")
                else:
                    tiled["grid"], tiled["layout"] = tile(maps)
                if name not in settings.layers and settings.normalization != "channel":
                    return None  # the raw values stay readable from the grid itself
            return tensor[0].detach().float().cpu().clone().numpy()

        model_input = fitted if fitted.shape[2] == 3 else np.repeat(fitted, 3, axis=2)
        model_input.flags.writeable = False
        sal = settings.saliency
        saliency = None
        if sal is not None and not sal.heavy:
            # One forward pass for everything: the grid is tiled from the hooks of the very pass
            # the saliency map differentiates, so the map costs one backward pass more.
            objective = Objective(self.model.module, self.probe, sal.target or Target("top"), observe=keep,
                                  observe_names=names, picture=self.model.picture, head=self.model.head)
            ends = []
            objective.register_forward_hook(lambda *_: ends.append(time.perf_counter()))
            x = torch.from_numpy(array).unsqueeze(0).to(self.model.device)
            smap = run_method(objective, x, sal.method, self._gradcam_layer).cpu().numpy()
            synchronize(self.model.device)
            output, captured = objective.output, objective.observed
            t_forward = ends[0] if ends else time.perf_counter()
            t1 = time.perf_counter()
            target = objective.target
            if target.kind == "top" and self.model.task == "detection":
                if objective.detection is not None:  # the best detection, framed in the pane
                    target = Target("detection", 0, region=target.region, box=objective.detection)
            elif target.kind == "top":
                target = (Target("class", objective.chosen, region=target.region) if objective.chosen is not None
                          else replace(target, kind="output"))
            saliency = SaliencyResult(map=_frozen(smap), target=target, frame=frame, model_input=model_input,
                                      settings=sal, ms=(t1 - t0) * 1000)
            timings.update(forward=(t_forward - t0) * 1000, saliency=(t1 - t_forward) * 1000)
        else:
            with torch.inference_mode():
                x = torch.from_numpy(array).unsqueeze(0).to(self.model.device)
                output, captured = self.probe.capture(x, names, transform=keep)
            synchronize(self.model.device)
            t1 = time.perf_counter()
            timings.update(forward=(t1 - t0) * 1000, saliency=0.0)
            heavy = self._heavy_result
            if heavy is not None and heavy.settings == sal:
                saliency = heavy
        activations = {}
        for name, value in captured.items():
            if value is not None:
                value.flags.writeable = False
                activations[name] = value
        grid, layout, levels = tiled.get("grid"), tiled.get("layout"), tiled.get("levels", (0.0, 1.0))
        prefix = self.probe.prefixes.pop(grid_layer, None) if grid_layer else None
        if prefix is not None:
            prefix.flags.writeable = False
        if grid is not None:
            grid.flags.writeable = False
            if settings.normalization == "channel":
                levels = (0.0, 1.0)
        t2 = time.perf_counter()
        task = self.model.task
        picture = dense = None
        try:
            if task == "segmentation":
                # The maps' labels give the summary's shares too: one argmax a frame, not two.
                dense = _frozen_maps(dense_maps(self.model.main_output(output), model_input.shape[:2],
                                                modes=settings.dense_modes, activation=self.model.head.activation))
                summary = segmentation_summary(shares(dense.labels, dense.classes), self.model.labels, settings.topk)
            else:
                summary = self.model.summarize(output, settings.topk)
            if task == "image":
                picture = image_output(self.model.main_output(output), x, self.model.output_range, self.model.spec)
                if picture.error is not None:
                    summary = replace(summary, text=picture.error.text())
        except DeepvisError as exc:
            # The output could not be read: the activations and saliency of this very pass still
            # show; only the prediction pane says what went wrong.
            summary = Summary("other", (), f"the output could not be read: {exc}")
            self._report(str(exc))  # once per distinct message
        t3 = time.perf_counter()
        # The hook's tiling happens inside the forward pass; it is reported as forward time.
        timings.update(tile=(t2 - t1) * 1000, predict=(t3 - t2) * 1000)
        timings["total"] = sum(timings[s] for s in STAGES)
        return LiveResult(index=0, frame=frame, model_input=model_input,
                          activations=MappingProxyType(activations), grid=grid, grid_layout=layout,
                          grid_levels=levels, summary=summary, timings=MappingProxyType(timings), fps=0.0,
                          settings=settings, saliency=saliency, image_output=picture, dense=dense,
                          prefix=prefix, channel_max=tiled.get("maxima"))

    # --- heavy saliency methods --------------------------------------------------------------

    def _saliency_step(self) -> bool:
        """One heavy saliency map (integrated gradients, SmoothGrad) for the newest processed frame.

        Runs in chunks of passes; between chunks the live step gets its share of the thread,
        so the activation grid keeps moving while the map is computed.
        """
        with self._heavy_lock:
            return self._heavy_map()

    def _heavy_map(self) -> bool:
        sal = self.settings.saliency
        shown = self._shown
        if sal is None or not sal.heavy or shown is None or self._stop.is_set():
            return False
        frame, fitted, array = shown
        key = (frame.serial, sal)
        if key == self._heavy_done:
            return False
        self._heavy_done = key  # tried once: a failing map is not retried on every idle turn
        cancel = self._heavy_cancel = threading.Event()
        if self.settings.saliency != sal:
            return False
        clock = {"mark": time.perf_counter(), "grid": 0.0}
        still = not self._source.is_live

        def between():
            now = time.perf_counter()
            heavy_s = now - clock["mark"]
            # Give the live step as much time as the last chunk took (HEAVY_SHARE = 1/2).
            budget = heavy_s * (1 - HEAVY_SHARE) / HEAVY_SHARE
            spent = 0.0
            while spent < budget and not cancel.is_set():
                start = time.perf_counter()
                if not self._step():
                    break
                spent += time.perf_counter() - start
            if still and self._shown is not None and self._shown[0].serial != frame.serial:
                raise Cancelled()  # the user moved to another picture: explain that one instead
            clock["mark"] = time.perf_counter()

        def progress(fraction):
            if self.on_progress is not None:
                self.on_progress(fraction)

        start = time.perf_counter()
        try:
            x = torch.from_numpy(array).unsqueeze(0).to(self.model.device)
            target = sal.target or Target("top")
            if target.kind == "top" and self.model.picture is not None:
                target = replace(target, kind="output")
            elif target.kind == "top":
                # Fixed before the passes: along an integration path the top class may change.
                target = replace(top_class(self.model.module, x, self.model.head, self.model.task), region=target.region)
            if target.kind == "detection" and target.box is None:
                target = resolve_detection(target, self.model, x)
            smap = attribute(self.model.module, self.probe, x, sal.method, target, layer=sal.layer,
                             picture=self.model.picture, head=self.model.head,
                             samples=sal.samples, steps=sal.steps, noise=sal.noise, batch=sal.batch,
                             progress=progress, cancel=cancel, between=between)
        except Cancelled:
            progress(-1.0)
            return True
        except DeepvisError as exc:
            self._report(str(exc))
            progress(-1.0)
            return True
        except torch.OutOfMemoryError:
            self._report(f"out of memory computing {sal.method}; lower the batch (--batch) or the input size")
            progress(-1.0)
            return True
        model_input = fitted if fitted.shape[2] == 3 else np.repeat(fitted, 3, axis=2)
        model_input.flags.writeable = False
        result = SaliencyResult(map=_frozen(smap), target=target, frame=frame, model_input=model_input,
                                settings=sal, ms=(time.perf_counter() - start) * 1000)
        self._heavy_result = result
        latest = self._latest
        if latest is not None and self.settings.saliency == sal and not self._stop.is_set():
            self._publish(replace(latest, saliency=result), count=False)
        return True

def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array, np.float32)
    array.flags.writeable = False
    return array


def _frozen_maps(maps: DenseMaps) -> DenseMaps:
    for array in (maps.labels, maps.confidence, maps.entropy, maps.margin, maps.runner_up):
        if array is not None:
            array.flags.writeable = False
    return maps


def _levels(tensor: torch.Tensor) -> tuple[float, float]:
    lo, hi = torch.aminmax(tensor.detach())
    lo, hi = float(lo), float(hi)
    return (lo, hi) if hi > lo else (lo, lo + 1.0)
