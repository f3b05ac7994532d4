"""The Correspondence tab: where a point of one picture is in another, by a layer's features.

Two pictures side by side (a bundled photo, a file, the live frame or a snapshot of it; the
second may also be a random homography of the first). A press or drag on either shows the
cosine similarity of that point's descriptor with every pixel of the other, the best match and,
when the homography is known, the true position and the mean matching accuracy of the pair
(``deepvis match --eval``'s protocol). The model is the bundled self-supervised descriptor or
the window's model at any layer with a spatial grid (early layers match texture, late ones
content); mutual nearest neighbours can be drawn as lines.

All model work runs on the compute thread: describing the pictures is one job (the newest
request next, a superseded one's result dropped), a query another (one in flight, only the
newest point waits), so a drag is followed at the rate queries come back. A live picture is
described again as each frame comes while the tab is shown; the query point stays put, so a
still picture's point is tracked in the live one.
"""

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QSizePolicy,
                               QVBoxLayout)

from deepvis.core.defaults import DESCRIPTOR_MODEL
from deepvis.errors import Cancelled, DeepvisError
from deepvis.resources import FIRST_PHOTO, sample_images
from deepvis.widgets.panes.paircanvas import PairCanvas
from deepvis.widgets.panes.readout import Readout
from deepvis.widgets.window.latestjob import LatestJob
from deepvis.widgets.window.views import View, register_view

LIVE = "live frame"
SNAPSHOT = "snapshot of the live frame"
OPEN = "file..."
VIEW = "random view of A"
WINDOW_MODEL = "window's model"
MUTUAL_PAIRS = 60


@dataclass(frozen=True)
class Described:
    """One describing job's result: the pictures at working size, their descriptor maps, the
    homography from A to B when B is a view of A, its score, and the lines."""

    request: int
    pictures: tuple
    maps: tuple
    homography: np.ndarray | None
    score: object  # deepvis.matching.pair.PairScore | None
    first_query: tuple[float, float] | None  # in A: a confident correct match, when B is a view of A
    lines: list | None
    layer: str
    layers: list[str]


@register_view
class CorrespondenceView(View):
    title = "Correspondence"
    order = 47.5


    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.described: Described | None = None
        self.answer = None  # the shown Query
        self.point: tuple[int, float, float] | None = None  # (side, x, y) asked
        self.layer_asked: str | None = None  # None: the model's default layer
        self.view_seed = 0
        self.snapshot: np.ndarray | None = None
        self._snapshots = 0  # snapshots taken: a cached description is of the snapshot it names
        self._descriptor = None  # (LoadedModel, Probe): touched on the compute thread only
        self._cache: dict = {}  # side -> (key, picture, DescriptorMap, homography or None): compute thread only
        self._request = 0  # descriptions asked for (Described.request)
        self.describing = LatestJob(self._on_described, self.redescribe, self)
        self.queries = LatestJob(self._on_answered, lambda: self.point is not None and self.ask(*self.point), self)
        self._cancel = threading.Event()
        self._first_look_done = False
        self._stale = False  # asked for while hidden
        self._live_frame_seen = None

        photos = [p.name for p in sample_images()]
        self._photos = {p.name: p for p in sample_images()}
        self.model_box = QComboBox()
        self.model_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.model_box.addItems([DESCRIPTOR_MODEL, WINDOW_MODEL])
        self.model_box.setToolTip(f"{DESCRIPTOR_MODEL}: the bundled self-supervised descriptor (learned from random "
                                  f"homographies, no labels); or the window's model at any layer")
        self.model_box.activated.connect(lambda _i: self._model_picked())
        self.layer_box = QComboBox()
        self.layer_box.setMinimumContentsLength(12)
        self.layer_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.layer_box.setToolTip("the layer whose features are compared: early layers match texture, late ones "
                                  "content")
        self.layer_box.activated.connect(lambda _i: self._layer_picked())
        self.source_a = QComboBox()
        self.source_a.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.source_a.addItems([*photos, SNAPSHOT, LIVE, OPEN])
        self.source_a.setCurrentText(FIRST_PHOTO)
        self.source_a.activated.connect(lambda _i: self._source_picked(0))
        self.source_b = QComboBox()
        self.source_b.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.source_b.addItems([VIEW, *photos, LIVE, OPEN])
        self.source_b.activated.connect(lambda _i: self._source_picked(1))
        self._chosen = [self.source_a.currentIndex(), self.source_b.currentIndex()]  # before a dialog
        self.new_view = QPushButton("New random view")
        self.new_view.setToolTip("make B a random homography (and change of light) of A, and score the pair")
        self.new_view.clicked.connect(self.random_view)
        self.lines_box = QCheckBox("mutual neighbours")
        self.lines_box.setToolTip(f"lines between the {MUTUAL_PAIRS} most similar mutual nearest neighbours of the "
                                  f"layer's grid cells (greener: more similar)")
        self.lines_box.toggled.connect(lambda _on: self.redescribe())
        # Two rows: in one, the controls alone asked more width than the centre has beside the docks.
        what = QHBoxLayout()
        for widget in (QLabel("model"), self.model_box, QLabel("layer"), self.layer_box, self.lines_box):
            what.addWidget(widget)
        what.addStretch(1)
        pictures = QHBoxLayout()
        for widget in (QLabel("A"), self.source_a, QLabel("B"), self.source_b, self.new_view):
            pictures.addWidget(widget)
        pictures.addStretch(1)
        self.canvas = PairCanvas("Pick the pictures, or press New random view: then press or drag on either "
                                 "picture, and the other shows where its features say the point is.")
        self.canvas.queried.connect(self.ask)
        self.hint = QLabel("Press or drag on either picture. Red ring: the point asked; green cross: the best match; "
                           "white ring: the true position (B a random view of A); heat: cosine similarity from its "
                           "median up.")
        self.hint.setWordWrap(True)
        self.hint.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.readout = Readout(lines=2)
        layout = QVBoxLayout(self)
        layout.addLayout(what)
        layout.addLayout(pictures)
        layout.addWidget(self.hint)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.readout)

        session.modelChanged.connect(self._window_model_changed)
        session.resultReady.connect(self._on_frame)

    # --- what is asked -----------------------------------------------------------------------

    def showEvent(self, event) -> None:
        super().showEvent(event)
        # The first look (the bundled photo and a view of it) runs by itself unless the window
        # was opened without first-look runs (the GUI benchmark); then any control starts it.
        if not self._first_look_done and self.session.autostart:
            self._first_look_done = True
            self._stale = True
        if self._stale:
            self.redescribe()

    def _model_picked(self) -> None:
        self.layer_asked = None  # the new model's default layer
        self.redescribe()

    def _layer_picked(self) -> None:
        self.layer_asked = self.layer_box.currentText()
        self.redescribe()

    def _window_model_changed(self, state) -> None:
        name = state.model.name if len(state.model.name) <= 24 else state.model.name[:23] + "\u2026"
        self.model_box.setItemText(1, f"window: {name}")  # short: the row must fit beside the docks
        self.model_box.setItemData(1, f"the window's model, {state.model.name}", Qt.ItemDataRole.ToolTipRole)
        if self.model_box.currentIndex() == 1:
            self._model_picked()

    def _source_picked(self, side: int) -> None:
        box = (self.source_a, self.source_b)[side]
        if box.currentText() == OPEN:
            path, _ = QFileDialog.getOpenFileName(self, f"Picture {'AB'[side]}", "",
                                                  "Images (*.png *.jpg *.jpeg *.bmp *.ppm *.webp);;All files (*)")
            if path:
                self.set_file(side, path)
            else:
                box.setCurrentIndex(self._chosen[side])  # the dialog cancelled: the picture as it was
            return
        if side == 0 and box.currentText() == SNAPSHOT:
            result = self.session.result
            if result is None:
                self.session.message.emit("no live frame yet to take a snapshot of")
                box.setCurrentIndex(self._chosen[side])
                return
            self.snapshot = result.frame.image
            self._snapshots += 1
        self._chosen[side] = box.currentIndex()
        self.redescribe()

    def set_file(self, side: int, path: str) -> None:
        """Picture ``side`` (0: A, 1: B) from the file ``path``."""
        box = (self.source_a, self.source_b)[side]
        label = f"file: {Path(path).name}"
        index = box.findData(path)
        if index < 0:
            box.insertItem(box.count() - 1, label, path)
            index = box.count() - 2
            box.setItemData(index, path, Qt.ItemDataRole.ToolTipRole)
        box.setCurrentIndex(index)
        self._chosen[side] = index
        self.redescribe()

    def random_view(self) -> None:
        self.view_seed += 1
        self.source_b.setCurrentText(VIEW)
        self._chosen[1] = self.source_b.currentIndex()
        self.point = None  # the first look's query again: a correct match near the centre
        self.redescribe()

    def _source(self, side: int):
        """(key, picture or path) of a side as the job gets it; B's random view is ("view", seed)."""
        box = (self.source_a, self.source_b)[side]
        text = box.currentText()
        if text == VIEW:
            return ("view", self.view_seed), None
        if text == SNAPSHOT:
            return ("snapshot", self._snapshots), self.snapshot
        if text == LIVE:
            result = self.session.result
            if result is None:
                raise DeepvisError("no live frame yet: start a source in the main window")
            return ("live", object()), result.frame.image  # never equal to an earlier key: described anew
        if text.startswith("file: "):
            path = box.currentData()
            return ("file", path), path
        return ("photo", text), self._photos[text]

    def _live(self) -> bool:
        return LIVE in (self.source_a.currentText(), self.source_b.currentText())

    # --- describing --------------------------------------------------------------------------

    def redescribe(self) -> None:
        """Describe the pictures as they are now asked for (on the compute thread; while a
        description runs, the newest request waits)."""
        if not self.isVisible():
            self._stale = True  # described when next shown
            return
        self._stale = False
        self.describing.request(self._description)

    def _description(self):
        """The describing job for the pictures, model and layer as they are now; None (and why,
        on the canvas) when there is nothing to describe."""
        try:
            sources = (self._source(0), self._source(1))
        except DeepvisError as exc:
            self.canvas.clear(str(exc))
            return None
        state = self.session.state
        use_window = self.model_box.currentIndex() == 1
        if use_window and state is None:
            self.canvas.clear("load a model in the main window first")
            return None
        self._request += 1
        request = self._request
        layer = self.layer_asked
        lines = self.lines_box.isChecked()
        if self._live() and self.session.result is not None:
            self._live_frame_seen = self.session.result.frame
        cancel = self._cancel = threading.Event()
        if self.described is None:
            self.set_working("describing the pictures...")

        def job():
            model, probe = (state.model, state.probe) if use_window else self._descriptor_model()
            return self._describe_job(request, model, probe, layer, sources, lines, cancel)
        return job

    def _descriptor_model(self):
        if self._descriptor is None:
            from deepvis.core.loading import load_model
            from deepvis.core.probe import Probe

            model = load_model(DESCRIPTOR_MODEL)
            self._descriptor = (model, Probe(model.module, model.example_input()))
        return self._descriptor

    def _describe_job(self, request, model, probe, layer, sources, lines, cancel) -> Described:
        """On the compute thread: the pictures at working size and their descriptor maps (a side
        whose picture, model and layer are unchanged is not described again)."""
        from deepvis.io.images import read_image
        from deepvis.matching.dense import default_layer, describe, mutual_nearest
        from deepvis.matching.pair import random_view, score, working_picture

        layers = [info.name for info in probe.layers if info.spatial]
        if layer not in layers:
            layer = default_layer(probe, model.spec, model.task)
        pictures, maps, homography = [], [], None
        for side, (key, what) in enumerate(sources):
            if cancel.is_set():
                raise Cancelled()
            view = key[0] == "view"
            if view:
                key = (key, self._cache[0][0])  # a view of this very A
            full_key = (key, id(model), layer)
            cached = self._cache.get(side)
            if cached is None or cached[0] != full_key:  # read, warped and described only when new
                if view:
                    picture, h = random_view(pictures[0], key[0][1])
                else:
                    picture, h = working_picture(read_image(what) if key[0] in ("photo", "file") else what), None
                cached = self._cache[side] = (full_key, picture, describe(model, probe, picture, layer), h)
            pictures.append(cached[1])
            maps.append(cached[2])
            if view:
                homography = cached[3]
        pair_score = score(tuple(maps), homography) if homography is not None else None
        first = pair_score.first_query(tuple(maps)) if pair_score is not None else None
        pairs = mutual_nearest(maps[0], maps[1], MUTUAL_PAIRS) if lines else None
        return Described(request, tuple(pictures), tuple(maps), homography, pair_score, first, pairs, layer, layers)

    def _on_described(self, described, error: str) -> None:
        self.set_working("")
        if described is not None:
            self._show_described(described)
        elif error:
            self.canvas.clear(f"Could not match: {error}")
            self.session.message.emit(f"correspondence: {error}")

    def _show_described(self, described: Described) -> None:
        first = self.described is None or self.described.pictures[0].shape != described.pictures[0].shape
        self.described = described
        if [self.layer_box.itemText(i) for i in range(self.layer_box.count())] != described.layers:
            self.layer_box.clear()
            self.layer_box.addItems(described.layers)
        if not self.describing.waiting:  # a layer asked for meanwhile stays in the box
            self.layer_box.setCurrentText(described.layer)
        self.canvas.set_pictures(*described.pictures)
        lines = []
        if described.lines:
            sims = np.array([p["similarity"] for p in described.lines])
            lo, hi = float(sims.min()), float(sims.max())
            lines = [(p["a"], p["b"], (p["similarity"] - lo) / (hi - lo) if hi > lo else 1.0)
                     for p in described.lines]
        self.canvas.set_lines(lines)
        if self.point is None or first:
            h, w = described.pictures[0].shape[:2]
            self.point = (0, *(described.first_query or ((w - 1) / 2, (h - 1) / 2)))
        self.ask(*self.point)

    # --- queries -----------------------------------------------------------------------------

    def ask(self, side: int, x: float, y: float) -> None:
        """Where (x, y) of picture ``side`` is in the other (on the compute thread; while one
        query runs, only the newest point waits)."""
        self.point = (side, x, y)
        self.canvas.set_marks((side, x, y), None, None)
        if self.described is None:
            return
        from deepvis.matching.pair import answer

        described = self.described
        self.queries.request(lambda: lambda: answer(described.maps, described.pictures, side, (x, y),
                                                    described.homography))

    def _on_answered(self, query, error: str) -> None:
        if query is None:
            if error:
                self.readout.setText(error)
            return
        described = self.described
        self.answer = query
        other = 1 - query.side
        self.canvas.set_picture(query.side, described.pictures[query.side])
        self.canvas.set_picture(other, query.overlay)
        if self.queries.waiting:  # the ring stays on the newest point asked, answered next
            self.canvas.set_marks(self.point, query.found.best, query.truth)
        else:
            self.canvas.set_marks((query.side, *query.found.query), query.found.best, query.truth)
        self.readout.setText(self._text(query, described))

    @staticmethod
    def _text(query, described: Described) -> str:
        found, names = query.found, ("A", "B")
        line = (f"{described.layer}: ({found.query[0]:.0f}, {found.query[1]:.0f}) in {names[query.side]} -> "
                f"({found.best[0]}, {found.best[1]}) in {names[1 - query.side]}, similarity {found.similarity:.3f}, "
                f"confidence x{found.confidence:.2f}")
        if query.error is not None:
            line += f", {query.error:.1f} px off"
        score = described.score
        if score is None:
            return line + "\nB is not a known view of A: New random view scores a pair"
        return line + (f"\nB a random view of A: MMA@1 {score.mma['1']:.2f}, @3 {score.mma['3']:.2f}, "
                       f"@5 {score.mma['5']:.2f} over {len(score.matches.points)} points (match --eval)")

    # --- live --------------------------------------------------------------------------------

    def _on_frame(self) -> None:
        result = self.session.result
        if not self.isVisible() or not self._live() or result is None or result.frame is self._live_frame_seen:
            return
        self.redescribe()  # with the newest frame when a description is running

    def shutdown(self) -> None:
        self._cancel.set()
