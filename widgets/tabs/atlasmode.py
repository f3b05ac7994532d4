"""The Embedding tab's atlas mode: the map of an atlas (``deepvis atlas build`` and ``atlas
map``) over an image folder of any size, in the large map instead of the tab's own plot.

Everything proportional to the atlas's rows (label codes, the map's point index, the lower-case
paths the search runs on) is made on a worker thread, in slices small enough that the GUI
thread keeps getting the interpreter; the GUI thread only swaps the finished arrays in. The
map needs no model; hovering reads the one image under the mouse, and clicking opens it as the
live input.
"""

import copy
import re
import threading
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from deepvis.atlas.store import Atlas
from deepvis.embed.density import PointIndex, default_palette
from deepvis.embed.features import thumbnail
from deepvis.embed.projection import KNN_K, knn_words
from deepvis.errors import DeepvisError
from deepvis.io.images import read_image
from deepvis.live.computethread import compute_thread, outcome
from deepvis.widgets.panes.largemap import THUMB_PX, LargeMapPlot

SLICE = 100_000  # rows per numpy call on the worker: each call holds the GIL for tens of ms at most
SEARCH_DEBOUNCE_MS = 150
LEGEND_ENTRIES = 30
PREVIEW_PX = 146


def _natural(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _strings(values: np.ndarray, dtype) -> np.ndarray:
    """``values`` (an object array of str) as ``dtype``, converted a slice at a time."""
    return np.concatenate([values[i:i + SLICE].astype(dtype) for i in range(0, len(values), SLICE)] or
                          [np.zeros(0, dtype)])


def codes_of(names: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(int32 code per row, names): code i is ``names[i]``, names in natural order (2 before 10)
    as ``label_colors`` orders them, so a label keeps the colour the small maps give it;
    "" is unlabelled (-1)."""
    unique, inverse = np.unique(names, return_inverse=True)
    unique = [str(u) for u in unique]
    order = sorted((i for i, u in enumerate(unique) if u), key=lambda i: _natural(unique[i]))
    remap = np.full(len(unique), -1, np.int32)
    remap[order] = np.arange(len(order), dtype=np.int32)
    return remap[inverse.reshape(-1)], [unique[i] for i in order]


def label_codes(atlas: Atlas) -> tuple[np.ndarray, list[str]]:
    return codes_of(_strings(atlas.rows()["label"], str))


def prediction_codes(atlas: Atlas) -> tuple[np.ndarray, list[str]] | None:
    """Codes of each row's top class, or None when the atlas's model does not classify."""
    top = atlas.rows()["top_index"]
    if top.shape[1] == 0 or (top[:, 0] < 0).all():
        return None
    first = top[:, 0]
    classes = np.unique(first[first >= 0])
    known = atlas.class_names or []
    names = np.array([""] + [known[c] if c < len(known) else str(c) for c in classes.tolist()])
    # Classes that share a name (ImageNet has two "crane"s) share a code, as they share a legend entry.
    slot = np.searchsorted(classes, first) + 1
    slot[first < 0] = 0
    return codes_of(names[slot])


def searchable(values: np.ndarray) -> list[np.ndarray]:
    """Lower-case copies of ``values`` in slices, for substring search. numpy 2's variable-width
    strings keep a million long paths in tens of MB where fixed-width ones take hundreds."""
    dtype = np.dtypes.StringDType() if hasattr(np.dtypes, "StringDType") else str
    return [np.char.lower(values[i:i + SLICE].astype(dtype)) for i in range(0, len(values), SLICE)]


def matching_rows(text: str, paths: list[np.ndarray], codes: np.ndarray, names: list[str]) -> np.ndarray:
    """Rows whose path (relative to the dataset root, so "3/" finds a folder) or label contains
    ``text``, case-insensitive; ``paths`` from ``searchable``, ``codes``/``names`` the labels'."""
    text = text.strip().lower()
    if not text:
        return np.zeros(0, np.int64)
    hit = np.concatenate([np.char.find(chunk, text) >= 0 for chunk in paths] or [np.zeros(0, bool)])
    labels = [code for code, name in enumerate(names) if text in name.lower()]
    if labels:
        hit |= np.isin(codes, labels)
    return np.flatnonzero(hit)


def coloured(index: PointIndex, codes: np.ndarray, n_labels: int) -> PointIndex:
    """``index`` with other label codes: the same sorted points, so no rebuild (0.3 s a million)."""
    out = copy.copy(index)
    out.codes = codes[index.order].astype(np.int32)
    out.n_labels = n_labels
    return out


@dataclass
class Prepared:
    """What the map of one atlas layout needs, made on the worker."""

    atlas: Atlas
    key: tuple[str, str]  # (layer, method)
    index: PointIndex  # without label codes: colouring swaps them in
    info: dict
    colours: dict  # "label" / "predicted" -> (codes, names), or None for predictions of a non-classifier


class AtlasMode(QWidget):
    """The large map of the session's atlas, a combo of its maps, a line about it and a close
    button. It fills the tab's preview, info and legend labels and follows its colour-by combo
    and search box, which stay where they are."""

    _posted_prepared = Signal(object, str, int)  # Prepared or None, error, ticket
    _posted_search = Signal(object, str, int)  # row indices, text, ticket
    _posted_fingerprint = Signal(object, str)  # ModelState, its fingerprint

    searched = Signal(int)  # rows matching the search (after each search)

    def __init__(self, session, preview: QLabel, info: QLabel, legend: QLabel, color_by: QComboBox, parent=None):
        super().__init__(parent)
        self.session = session
        self.preview, self.info, self.legend, self.color_by = preview, info, legend, color_by
        self.atlas: Atlas | None = None
        self.prepared: Prepared | None = None
        self.highlighted = np.zeros(0, np.int64)  # the search's rows
        self.hovered_row = -1
        self.model_fingerprint: str | None = None  # the window's model's, once known
        self._colours: tuple = (None, None)  # (atlas, its colours dict): per atlas, not per map
        self._search_text = ""
        self._search_lock = threading.Lock()
        self._search_strings: tuple = (None, None)  # (atlas, searchable paths)
        self._ticket = 0
        self._search_ticket = 0
        self._map_keys: list[tuple[str, str]] = []  # (layer, method) of each entry of the maps combo

        self.maps = QComboBox()
        self.maps.setMinimumWidth(150)
        self.maps.setToolTip("the atlas's maps (deepvis atlas map ATLAS --layer L --method M makes more)")
        self.line = QLabel("")
        self.line.setWordWrap(True)
        self.line.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.close_button = QPushButton("Close atlas")
        self.close_button.setToolTip("back to the dataset maps computed in this tab")
        self.plot = LargeMapPlot()
        bar = QHBoxLayout()
        bar.addWidget(self.maps)
        bar.addWidget(self.line, 1)
        bar.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.plot, 1)

        self._search_timer = QTimer(self, singleShot=True, interval=SEARCH_DEBOUNCE_MS)
        self._search_timer.timeout.connect(self._run_search)
        self.maps.activated.connect(lambda i: self._prepare(self._map_keys[i]))
        self.close_button.clicked.connect(session.close_atlas)
        self.plot.hovered.connect(self.show_row)
        self.plot.clicked.connect(self.open_row)
        self._posted_prepared.connect(self._prepared)
        self._posted_search.connect(self._searched)
        self._posted_fingerprint.connect(self._got_fingerprint)
        session.atlasChanged.connect(self.set_atlas)
        session.modelChanged.connect(lambda _state: self._check_model())

    # --- opening ----------------------------------------------------------------------------

    def set_atlas(self, atlas: Atlas | None) -> None:
        self.atlas, self.prepared = atlas, None
        self.highlighted = np.zeros(0, np.int64)
        self.hovered_row = -1
        self._ticket += 1
        self._search_ticket += 1
        if self._colours[0] is not atlas:  # a million rows' codes and paths are worth freeing
            self._colours = (None, None)
            with self._search_lock:
                self._search_strings = (None, None)
        self.plot.clear()
        self.maps.clear()
        self._map_keys = []
        if atlas is None:
            return
        self._map_keys = atlas.maps()
        for layer, method in self._map_keys:
            self.maps.addItem(f"{layer} · {method}")
        self.preview.clear()
        self.legend.setText("")
        self._check_model()
        first = self.session.atlas_map
        if self.maps.count() == 0:
            self._describe()
            self.info.setText(f"{atlas.path.name} has no map yet: make one with\n"
                              f"deepvis atlas map {atlas.path}")
            return
        self.info.setText("hover a point to see its image; click to open it as the input")
        key = first[0] if first is not None and first[0] in self._map_keys else self._map_keys[0]
        self.maps.setCurrentIndex(self._map_keys.index(key))
        self._prepare(key, preloaded=first[1:] if first is not None and first[0] == key else None)

    def _prepare(self, key, preloaded=None) -> None:
        """Make the map of ``key`` (layer, method) on a worker; the map on screen stays meanwhile."""
        atlas = self.atlas
        if atlas is None or key is None:
            return
        self._ticket += 1
        ticket = self._ticket
        colours = self._colours[1] if self._colours[0] is atlas else None
        self.line.setText(f"reading the {key[1]} map of {key[0]}...")

        def work():
            try:
                coords, info = preloaded if preloaded is not None else atlas.load_map(*key)
                index = PointIndex(coords)
                found = colours if colours is not None else {"label": label_codes(atlas),
                                                             "predicted": prediction_codes(atlas)}
                self._posted_prepared.emit(Prepared(atlas, key, index, info, found), "", ticket)
            except DeepvisError as exc:
                self._posted_prepared.emit(None, str(exc), ticket)
            except Exception as exc:  # a damaged map file: one line, the window goes on
                self._posted_prepared.emit(None, f"cannot read the map {key[0]} {key[1]}: "
                                                 f"{type(exc).__name__}: {exc}", ticket)

        threading.Thread(target=work, name="deepvis-atlas-map", daemon=True).start()

    def _prepared(self, prepared: Prepared | None, error: str, ticket: int) -> None:
        if ticket != self._ticket:
            return
        if prepared is None:
            self.session.message.emit(error)
            self._describe()
            return
        self.prepared = prepared
        self._colours = (prepared.atlas, prepared.colours)
        self.recolour(keep_view=False)
        self._describe()
        if self._search_text:
            self._run_search()

    # --- the line about the atlas -----------------------------------------------------------

    def _check_model(self) -> None:
        """Whether the window's model is the atlas's, found on the compute thread (the digest runs torch)."""
        self.model_fingerprint = None
        state = self.session.state
        if self.atlas is None or state is None:
            self._describe()
            return

        def done(future):
            fingerprint, _error = outcome(future)
            if fingerprint:
                self._posted_fingerprint.emit(state, fingerprint)

        compute_thread().submit(state.fingerprint).add_done_callback(done)

    def _got_fingerprint(self, state, fingerprint: str) -> None:
        if state is self.session.state:
            self.model_fingerprint = fingerprint
            self._describe()

    @property
    def same_model(self) -> bool | None:
        """Whether the window runs the atlas's model (None until known)."""
        if self.atlas is None or self.model_fingerprint is None:
            return None
        return self.atlas.manifest["model"].get("fingerprint") == self.model_fingerprint

    def _describe(self) -> None:
        atlas = self.atlas
        if atlas is None:
            self.line.setText("")
            return
        parts = [f"atlas {atlas.path.name}: {len(atlas):,} images of {atlas.root.name}, {atlas.model_name}"]
        p = self.prepared
        if p is not None:
            knn, trust = p.info.get("knn"), p.info.get("trust")
            # Atlases mapped before k was lowered for small classes say no k: theirs was 10.
            quality = knn_words(knn, p.info.get("knn_k", KNN_K)) or "k-NN accuracy n/a"
            parts.append(f"{p.key[0]} {p.key[1]}: {quality}, "
                         f"trustworthiness {'n/a' if trust is None else f'{trust:.3f}'}")
        elif self.maps.count() == 0:
            parts.append(f"no map yet: deepvis atlas map {atlas.path}")
        if self.same_model is False:
            state = self.session.state
            parts.append(f"built with other weights than the window's {state.model.name if state else 'model'} "
                         "(the map shows; unit pictures do not)")
        self.line.setText(" · ".join(parts))
        self.line.setToolTip(str(atlas.path))

    # --- colours ----------------------------------------------------------------------------

    def colouring(self) -> tuple[np.ndarray, list[str]]:
        """(codes, names) the map is coloured by now: labels, or predicted classes."""
        colours = self.prepared.colours
        if self.color_by.currentIndex() == 1:
            if colours["predicted"] is not None:
                return colours["predicted"]
            self.session.message.emit("this atlas's model does not classify: colouring by label")
        return colours["label"]

    def recolour(self, keep_view: bool = True) -> None:
        p = self.prepared
        if p is None:
            return
        codes, names = self.colouring()
        view = self.plot.box.viewRange()
        atlas = p.atlas
        self.plot.set_points(coloured(p.index, codes, len(names)), label_names=names,
                             thumbnail=lambda i: thumbnail(read_image(atlas.image_path(i))))
        if keep_view:
            self.plot.box.setRange(xRange=view[0], yRange=view[1], padding=0)
            self.plot.update_view()
        elif self.plot.level == "thumbnails":
            # Fitted to the points, the thumbnails of the outermost ones would be cut in half.
            (x0, x1), (y0, y1) = self.plot.box.viewRange()
            px, py = self.plot.box.viewPixelSize()
            mx, my = THUMB_PX * px, THUMB_PX * py
            self.plot.box.setRange(xRange=(x0 - mx, x1 + mx), yRange=(y0 - my, y1 + my), padding=0)
            self.plot.update_view()
        self.plot.highlight(self.highlighted)
        self._show_legend(codes, names)

    def _show_legend(self, codes: np.ndarray, names: list[str]) -> None:
        counts = np.bincount(codes[codes >= 0], minlength=len(names))
        palette = default_palette(len(names))
        # A few classes in their order; of many (ImageNet's thousand), the commonest.
        shown = range(len(names)) if len(names) <= LEGEND_ENTRIES else \
            np.argsort(-counts, kind="stable")[:LEGEND_ENTRIES]
        # Non-breaking spaces hold an entry's swatch, name and count on one line.
        html = " ".join(f"<span style='color: rgb{tuple(int(v) for v in palette[i])}'>■</span>&nbsp;{names[i]}"
                        f"&nbsp;<span style='color: #888'>{counts[i]:,}</span>" for i in shown if counts[i])
        rest = len(names) - len(shown)
        self.legend.setText(html + (f"<br>... and {rest} more" if rest > 0 else ""))

    # --- hover and click --------------------------------------------------------------------

    def row_text(self, row: int) -> str:
        atlas = self.atlas
        rows = atlas.rows()
        label = rows["label"][row] or "-"
        top = rows["top_index"]
        predicted = "-"
        if top.shape[1] and top[row, 0] >= 0:
            c, names = int(top[row, 0]), atlas.class_names or []
            predicted = names[c] if c < len(names) else str(c)
        return f"#{row}  label: {label}\npredicted: {predicted}\n{rows['path'][row]}"

    def show_row(self, row: int) -> None:
        if row < 0 or self.atlas is None:
            return  # the mouse left the point: the preview keeps it, as the dataset maps do
        self.hovered_row = row
        path = self.atlas.image_path(row)
        text = self.row_text(row)
        try:
            image = np.ascontiguousarray(read_image(path))
        except DeepvisError:
            self.preview.clear()
            self.preview.setText("file moved\nor deleted")
            text += "\n(not there any more: moved or deleted since the atlas was built)"
        else:
            # The file itself rather than the map's 32-px thumbnail: a photo keeps its detail,
            # smoothed down; a digit keeps its crisp pixels, scaled up.
            q = QImage(image.data, image.shape[1], image.shape[0], image.strides[0], QImage.Format.Format_RGB888)
            smooth = max(image.shape[:2]) > PREVIEW_PX
            self.preview.setPixmap(QPixmap.fromImage(q).scaled(
                PREVIEW_PX, PREVIEW_PX, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation if smooth else Qt.TransformationMode.FastTransformation))
        self.preview.setToolTip(str(path))
        self.info.setText(text)

    def open_row(self, row: int) -> None:
        """Make row ``row``'s image the live input (whatever model the window runs)."""
        if self.atlas is None:
            return
        self.show_row(row)
        if self.session.open_input(str(self.atlas.image_path(row))):
            self.session.start()

    # --- search -----------------------------------------------------------------------------

    def search(self, text: str) -> None:
        """Ring the rows whose path or label contains ``text`` (after a short pause in typing,
        on a worker: a million paths take a few hundred ms)."""
        self._search_text = text.strip()
        self._search_ticket += 1
        if not self._search_text:
            self._search_timer.stop()
            self._searched(np.zeros(0, np.int64), "", self._search_ticket)
            return
        self._search_timer.start()

    def _searchable(self, atlas: Atlas) -> list[np.ndarray]:
        # Made by the first search rather than with the map: made then, it competed for the
        # GIL with the map's first drawing and doubled that pause (0.3 to 0.6 s at a million).
        with self._search_lock:
            if self._search_strings[0] is not atlas:
                self._search_strings = (atlas, searchable(atlas.rows()["path"]))
            return self._search_strings[1]

    def _run_search(self) -> None:
        p = self.prepared
        if p is None or not self._search_text:
            return
        text, ticket, atlas = self._search_text, self._search_ticket, p.atlas
        codes, names = p.colours["label"]

        def work():
            self._posted_search.emit(matching_rows(text, self._searchable(atlas), codes, names), text, ticket)

        threading.Thread(target=work, name="deepvis-atlas-search", daemon=True).start()

    def _searched(self, rows: np.ndarray, text: str, ticket: int) -> None:
        if ticket != self._search_ticket:
            return
        self.highlighted = rows
        self.plot.highlight(rows)
        if text:
            self.info.setText(f"{len(rows):,} of {len(self.atlas):,} images match {text!r}")
        self.searched.emit(len(rows))

    def shutdown(self) -> None:
        self._search_timer.stop()
        self._ticket += 1
        self._search_ticket += 1
