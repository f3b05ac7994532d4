"""The Doctor tab's Compare and Timeline modes: the live frame through another checkpoint.

Compare: the window's model (A) and a checkpoint B of the same architecture side by side, the
selected layer's activations on one colour scale, their difference (B - A, blue below zero,
red above) and both predictions. Timeline: a folder of checkpoints on a slider; the live
frame as the model was at the checkpoint chosen: its first layer's filters, the selected
layer's activations and its prediction.

Both follow the window: a new frame or another layer is shown once the compute thread has
run it (one job in flight, the newest request next; frames that came meanwhile are skipped).
"""

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSlider, QVBoxLayout,
                               QWidget)

from deepvis.live.computethread import compute_thread, outcome
from deepvis.render.tiling import filter_sheet, tile_activation
from deepvis.widgets.panes.imagepanel import ImagePanel
from deepvis.widgets.panes.readout import Readout
from deepvis.widgets.window.latestjob import LatestJob


def _grid(activation: np.ndarray) -> np.ndarray:
    grid, _ = tile_activation(activation, "none")
    return grid


def _words(summary) -> str:
    if summary is None:
        return ""
    if summary.predictions:
        return ", ".join(f"{p.label} {p.score:.0%}" for p in summary.predictions[:3])
    return summary.text


class _FollowsWindow(QWidget):
    """Runs ``compute(state, frame, layer)`` on the compute thread for the newest frame and
    layer while shown and ready; ``show_result`` gets what it returned."""

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.jobs = LatestJob(self._done, lambda: self.refresh(force=True), self)
        self._shown_key = None
        self.last_error = ""
        session.resultReady.connect(self.refresh)
        session.layerChanged.connect(lambda _name: self.refresh(force=True))

    def ready(self) -> bool:
        return False

    def refresh(self, force: bool = False) -> None:
        state, result = self.session.state, self.session.result
        if not self.isVisible() or not self.ready() or state is None or result is None:
            return
        key = (id(result.frame), self.session.layer, self._version())
        if key == self._shown_key and not force:
            return

        def make():
            self._shown_key = key
            return self.job(state, result.frame.image, self.session.layer)
        self.jobs.request(make)

    def _version(self):
        return None

    def job(self, state, frame, layer):
        raise NotImplementedError

    def _done(self, value, error: str) -> None:
        self.last_error = error
        if value is None:
            self.show_error(error)
        else:
            self.show_result(value)

    def show_result(self, value) -> None:
        raise NotImplementedError

    def show_error(self, error: str) -> None:
        raise NotImplementedError

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh(force=True)


class ComparePage(_FollowsWindow):
    _b_loaded = Signal(str, object, str)  # path, (LoadedModel, Probe) or None, error

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self._b_loaded.connect(self._b_ready)
        self.model_b = None  # (LoadedModel, Probe), touched on the compute thread only after loading
        self.path_b: str | None = None
        self.choose = QPushButton("Checkpoint B...")
        self.choose.setToolTip("a state dict or checkpoint of the window's model, or a model file")
        self.choose.clicked.connect(self._choose)
        self.hint = QLabel("Pick checkpoint B: the live frame then runs through the window's model (A) and B, "
                           "the selected layer side by side.")
        self.hint.setWordWrap(True)
        self.hint.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.panel_a = ImagePanel("A", placeholder="the window's model")
        self.panel_b = ImagePanel("B", placeholder="pick checkpoint B")
        self.panel_diff = ImagePanel("B - A", placeholder="pick checkpoint B")
        self.predictions = Readout(lines=2)
        self.shown: dict | None = None
        top = QHBoxLayout()
        top.addWidget(self.choose)
        top.addWidget(self.hint, 1)
        panels = QHBoxLayout()
        for panel in (self.panel_a, self.panel_b, self.panel_diff):
            panels.addWidget(panel, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(panels, 1)
        layout.addWidget(self.predictions)

    def ready(self) -> bool:
        return self.model_b is not None

    def _version(self):
        return self.path_b

    def _choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Checkpoint B", "", "Checkpoints (*.pt *.pth *.ckpt *.bin "
                                                                      "*.safetensors);;All files (*)")
        if path:
            self.load_b(path)

    def load_b(self, path: str) -> None:
        """Load ``path`` as the window's model's weights (on the compute thread)."""
        state = self.session.state
        if state is None:
            return
        self.hint.setText(f"loading {Path(path).name}...")
        from deepvis.doctor.sidebyside import load_checkpoint

        spec = state.spec_text
        future = compute_thread().submit(load_checkpoint, spec, path)
        future.add_done_callback(lambda f: self._b_loaded.emit(path, *outcome(f)))

    def _b_ready(self, path: str, value, error: str) -> None:
        if value is None:
            self.hint.setText(f"Could not load {Path(path).name}: {error}")
            return
        self.model_b, self.path_b = value, path
        self.hint.setText(f"A: the window's model · B: {Path(path).name}")
        self.refresh(force=True)

    def job(self, state, frame, layer):
        from deepvis.doctor.sidebyside import difference, look

        model_b, probe_b = self.model_b

        def work():
            a = look(state.model, state.probe, frame, layer)
            b = look(model_b, probe_b, frame, layer)
            delta, relative = difference(a.activation, b.activation)
            return {"layer": layer, "a": a, "b": b, "delta": delta, "relative": relative}
        return work

    def show_result(self, value) -> None:
        self.shown = value
        grid_a, grid_b, grid_d = _grid(value["a"].activation), _grid(value["b"].activation), _grid(value["delta"])
        both = np.concatenate([grid_a[np.isfinite(grid_a)], grid_b[np.isfinite(grid_b)]])
        levels = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
        if levels[1] <= levels[0]:
            levels = (levels[0], levels[0] + 1.0)
        reach = float(np.nanmax(np.abs(grid_d))) if np.isfinite(grid_d).any() else 0.0
        self.panel_a.set_title(f"A · {value['layer']}")
        self.panel_b.set_title(f"B · {value['layer']}")
        self.panel_diff.set_title(f"B - A · {value['relative']:.1%} of A")
        self.panel_a.set_map(grid_a, levels)
        self.panel_b.set_map(grid_b, levels)
        self.panel_diff.set_map(grid_d, (-reach or -1.0, reach or 1.0), "coolwarm")
        self.predictions.setText(f"A: {_words(value['a'].summary)}\nB: {_words(value['b'].summary)}")

    def show_error(self, error: str) -> None:
        if error:
            self.hint.setText(f"Cannot compare: {error}")


class TimelinePage(_FollowsWindow):
    _series_loaded = Signal(object, str)  # CheckpointSeries or None, error

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self._series_loaded.connect(self._series_ready)
        self.series = None  # CheckpointSeries, used on the compute thread
        self.choose = QPushButton("Checkpoints folder...")
        self.choose.setToolTip("a folder of checkpoints of the window's model, ordered by the last number in "
                               "their names (else by time)")
        self.choose.clicked.connect(self._choose)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setEnabled(False)
        self.slider.valueChanged.connect(lambda _v: self.refresh(force=True))
        self.step = QLabel("no checkpoints")
        self.panel_filters = ImagePanel("First-layer filters", placeholder="pick a folder of checkpoints")
        self.panel_layer = ImagePanel("Layer", placeholder="pick a folder of checkpoints")
        self.prediction = Readout(lines=1)
        self.shown: dict | None = None
        top = QHBoxLayout()
        top.addWidget(self.choose)
        top.addWidget(self.slider, 1)
        top.addWidget(self.step)
        panels = QHBoxLayout()
        panels.addWidget(self.panel_filters, 1)
        panels.addWidget(self.panel_layer, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(panels, 1)
        layout.addWidget(self.prediction)

    def ready(self) -> bool:
        return self.series is not None

    def _version(self):
        return (id(self.series), self.slider.value())

    def _choose(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of checkpoints")
        if folder:
            self.open_folder(folder)

    def open_folder(self, folder: str) -> None:
        from deepvis.doctor.sidebyside import CheckpointSeries, load_checkpoint

        state = self.session.state
        if state is None:
            return
        spec = state.spec_text
        future = compute_thread().submit(lambda: CheckpointSeries(folder, lambda path: load_checkpoint(spec, path)))
        future.add_done_callback(lambda f: self._series_loaded.emit(*outcome(f)))

    def _series_ready(self, series, error: str) -> None:
        if series is None:
            self.step.setText(error)
            return
        self.series = series
        self.slider.setRange(0, len(series) - 1)
        self.slider.setEnabled(True)
        self.slider.setValue(len(series) - 1)
        self.refresh(force=True)

    def job(self, state, frame, layer):
        from deepvis.doctor.sidebyside import look

        series, index = self.series, self.slider.value()

        def work():
            model, probe = series.at(index)
            return {"index": index, "name": series.paths[index].name, "view": look(model, probe, frame, layer),
                    "layer": layer}
        return work

    def show_result(self, value) -> None:
        self.shown = value
        view = value["view"]
        self.step.setText(f"{value['index'] + 1}/{len(self.series)}: {value['name']}")
        if view.filters is not None:
            sheet, _ = filter_sheet(view.filters, max_filters=64)
            rgb = np.nan_to_num(sheet, nan=0.11)
            rgb = rgb if rgb.ndim == 3 else np.repeat(rgb[..., None], 3, 2)
            self.panel_filters.set_rgb((np.clip(rgb, 0, 1) * 255).astype(np.uint8))
        grid = _grid(view.activation)
        finite = grid[np.isfinite(grid)]
        levels = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        self.panel_layer.set_title(f"{value['layer']} at {value['name']}")
        self.panel_layer.set_map(grid, levels if levels[1] > levels[0] else (levels[0], levels[0] + 1))
        self.prediction.setText(f"{value['name']}: {_words(view.summary)}")

    def show_error(self, error: str) -> None:
        if error:
            self.step.setText(f"cannot show: {error}")
