"""A 2-D map of up to millions of labelled points (an atlas's t-SNE or PCA layout) that stays
smooth while panning and zooming, by level of detail on the number of points in view:

* more than ``DENSITY_ABOVE``: one picture of the view, each pixel's point count
  (log-scaled brightness) in its most common label's colour (``deepvis.embed.density``);
* fewer: the points in view as dots in their label's colour;
* at most ``THUMBNAILS_BELOW``: also each point's thumbnail, framed in its colour.

Every level is made for the view alone from a ``PointIndex``, so its cost follows what is on
screen, not the map's size. Hover and click find the nearest point within a few pixels
through the same index; ``highlight`` rings a set of points (a search's hits).
"""

import time
from collections import OrderedDict

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from deepvis.embed.density import Density, PointIndex, default_palette, density
from deepvis.embed.render import UNLABELLED

DENSITY_ABOVE = 100_000  # more points in view: the density picture
THUMBNAILS_BELOW = 400  # at most this many in view: thumbnails too
DEBOUNCE_MS = 30
HOVER_RADIUS_PX = 8
DOT_PX = 5
THUMB_PX = 40  # a thumbnail's width on screen
THUMB_CACHE = 2000  # thumbnails kept (LRU): a few screens' worth when zooming in and out
THUMB_BUDGET_MS = 15  # thumbnail loading per update; the rest follow in later updates
MAX_RINGS = 20_000  # highlighted points ringed at once (those in view)


class _SharedStyleScatter(pg.ScatterPlotItem):
    """pxMode dots drawn in one of a few shared styles (a brush per colour).

    ``set_dots`` fills pyqtgraph's point table with numpy alone. Its own ``setData`` costs
    about 0.6 µs a point before drawing anything (allocating the table's object columns) and
    then looks each point's style up in the symbol atlas in a Python loop; here the table is
    allocated once and reused, and the atlas is asked once per style.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._table = np.empty(0, self.data.dtype)

    def reserve(self, n: int) -> None:
        if len(self._table) < n:
            # Untouched object columns (symbol, pen, data, item) stay None: the item's defaults.
            self._table = np.empty(n, self.data.dtype)
            self._table["size"] = -1
            self._table["visible"] = True

    def set_dots(self, x: np.ndarray, y: np.ndarray, style_of_point: np.ndarray, brushes) -> None:
        n = len(x)
        self.reserve(n if n <= len(self._table) else max(n, 2 * len(self._table)))
        data = self._table[:n]
        data["x"] = x
        data["y"] = y
        styles = [(self.opts["symbol"], self.opts["size"], self.opts["pen"], b) for b in brushes]
        shared = np.empty(len(brushes), object)
        shared[:] = list(brushes)
        rects = np.zeros(len(styles), data["sourceRect"].dtype)
        for k, coords in enumerate(self.fragmentAtlas[styles] if styles else []):
            rects[k] = coords
        style_of_point = np.asarray(style_of_point, np.intp)
        data["brush"] = shared[style_of_point]
        data["sourceRect"] = rects[style_of_point]
        self.data = data
        # What addPoints does after filling the table.
        self.prepareGeometryChange()
        self.informViewBoundsChanged()
        self.bounds = [None, None]
        self._updateMaxSpotSizes(data=data)
        self.invalidate()

    def mouseClickEvent(self, ev):
        # pyqtgraph's would make a Python object per point to find the clicked ones; the map
        # finds them through its index instead.
        ev.ignore()


class LargeMapPlot(QWidget):
    """A pannable, zoomable map of many points; see the module's docstring.

    Signals: ``hovered(int)``, the point under the mouse (-1 when the mouse leaves it);
    ``clicked(int)``, the point clicked. State after each update: ``level`` ("empty",
    "density", "points" or "thumbnails"), ``in_view`` (points in the view),
    ``density_map`` (the density picture's ``Density``, or None; ``density_counts`` its counts
    per pixel, row 0 at the top),
    ``dot_indices`` and ``thumbnail_indices`` (the points drawn as dots and as thumbnails).
    """

    hovered = Signal(int)
    clicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.index: PointIndex | None = None
        self.level = "empty"
        self.in_view = 0
        self.density_map: Density | None = None
        self.dot_indices = np.zeros(0, np.int64)
        self.thumbnail_indices = np.zeros(0, np.int64)
        self.hovered_index = -1
        self._thumbnail = None
        self._thumbs: OrderedDict[int, np.ndarray] = OrderedDict()
        self._thumb_items: list[pg.ImageItem] = []
        self._thumb_of_item: dict[int, pg.ImageItem] = {}  # point index -> the item showing it
        self._idle_items: list[pg.ImageItem] = []
        self._highlight = np.zeros(0, np.int64)
        self._style_of_code = np.zeros(1, np.intp)
        self._brushes: list = []
        self._brush_of: dict[tuple, object] = {}
        self._rank = None  # position in the index's sorted arrays of each point (for highlights)
        self._rank_for = None
        self._ring_brush = [pg.mkBrush(None)]
        self._pens: list = []
        self.palette = np.zeros((0, 3), np.uint8)
        self.label_names: list[str] = []

        self.box = pg.ViewBox()
        self.plot = pg.PlotWidget(viewBox=self.box)
        self.plot.setAspectLocked(True)
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.density = pg.ImageItem(axisOrder="row-major")
        self.dots = _SharedStyleScatter(size=DOT_PX, pen=None, pxMode=True)
        self.dots.setZValue(1)
        self.rings = _SharedStyleScatter(size=12, pen=pg.mkPen("#ffffff", width=1.5), brush=None, pxMode=True)
        self.rings.setZValue(10)
        for item in (self.density, self.dots, self.rings):
            # No bounds: the view's range is set from the index, and pyqtgraph would otherwise
            # scan every item's data for its bounds on each change.
            self.plot.addItem(item, ignoreBounds=True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)

        self._timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._timer.timeout.connect(self.update_view)
        self._more_thumbs = QTimer(self, singleShot=True, interval=0)
        self._more_thumbs.timeout.connect(self.update_view)
        self.box.sigRangeChanged.connect(lambda *_: self._timer.start())
        self.box.sigResized.connect(lambda *_: self._timer.start())
        self._hover_proxy = pg.SignalProxy(self.plot.scene().sigMouseMoved, rateLimit=60, slot=self._mouse_moved)
        self.plot.scene().sigMouseClicked.connect(self._mouse_clicked)

    # --- data ---------------------------------------------------------------------------------

    def set_points(self, coords, label_codes=None, label_names=None, thumbnail=None) -> None:
        """Show ``coords`` coloured by ``label_codes`` (int (N,), -1 unlabelled; code i is
        ``label_names[i]``, coloured as ``label_colors`` colours names in that order).

        ``coords`` is float (N, 2), or a ``PointIndex`` built with its label codes off the GUI
        thread (building one for a million points takes 0.3 s). ``thumbnail(i)`` returns point
        i's picture, uint8 (h, w, 3); it may be slow (it is called for at most
        ``THUMBNAILS_BELOW`` points per update, within a time budget, and cached); without it the
        closest level is dots."""
        if isinstance(coords, PointIndex):
            index = coords
            if label_codes is not None:
                raise ValueError("a PointIndex carries its own label codes")
        else:
            index = PointIndex(coords, label_codes)
        self.index = index
        self.label_names = list(label_names or [])
        n_labels = max(len(self.label_names), index.n_labels)
        self.palette = default_palette(n_labels)
        # One brush (and frame pen) per distinct colour, shared by all its points.
        table = np.concatenate([np.asarray([UNLABELLED], np.uint8), self.palette]).reshape(-1, 3)
        colours, self._style_of_code = np.unique(table, axis=0, return_inverse=True)
        self._style_of_code = self._style_of_code.reshape(-1)
        # The same brush objects from map to map: pyqtgraph's symbol atlas keeps an entry per
        # brush object it has seen.
        self._brushes = [self._brush_of.setdefault(tuple(c), pg.mkBrush(*c, 230)) for c in colours.tolist()]
        self._pens = [pg.mkPen(*c, width=2) for c in colours.tolist()]
        self._thumbnail = thumbnail
        self._thumbs.clear()
        self._highlight = np.zeros(0, np.int64)
        # Made now rather than in the frame that first needs them: a frame's worth of dots
        # (100k points' table: 60 ms) and of thumbnail items (400: 50 ms).
        self.dots.reserve(min(index.n, DENSITY_ABOVE))
        while thumbnail is not None and len(self._thumb_items) < THUMBNAILS_BELOW:
            self._idle_items.append(self._new_thumbnail_item())
        self.show_all()

    def clear(self) -> None:
        self.index = None
        self._thumbnail = None
        self._thumbs.clear()
        self._highlight = np.zeros(0, np.int64)
        self.update_view()

    def show_all(self) -> None:
        """Fit the view to the points (and update at once)."""
        if self.index is not None and self.index.n:
            i = self.index
            self.box.setRange(xRange=(i.xmin, i.xmax), yRange=(i.ymin, i.ymax), padding=0.02)
        self.update_view()

    def highlight(self, indices) -> None:
        """Ring these points (those in view, at most ``MAX_RINGS``); empty: no rings."""
        self._highlight = np.unique(np.asarray(indices, np.int64).reshape(-1))
        self._draw_rings()

    # --- level of detail ----------------------------------------------------------------------

    def view_rect(self) -> tuple[float, float, float, float]:
        (x0, x1), (y0, y1) = self.box.viewRange()
        return x0, x1, y0, y1

    def update_view(self) -> None:
        """Redraw for the current view (what the debounce timer runs; call it to skip the wait)."""
        self._timer.stop()
        index = self.index
        if index is None or index.n == 0:
            self._set_level("empty")
        else:
            rect = self.view_rect()
            self.in_view = index.count_inside(*rect)
            if self.in_view > DENSITY_ABOVE:
                self._show_density(rect)
                self._set_level("density")
            else:
                pos = index.positions(*rect)
                self.dot_indices = index.order[pos]
                codes = index.codes[pos] if index.codes is not None else np.full(len(pos), -1)
                self.dots.set_dots(index.xs[pos], index.ys[pos], self._style_of_code[codes + 1], self._brushes)
                if self.in_view <= THUMBNAILS_BELOW and self._thumbnail is not None:
                    self._show_thumbnails(self.dot_indices, index.xs[pos], index.ys[pos], codes)
                    self._set_level("thumbnails")
                else:
                    self._set_level("points")
        self._draw_rings()

    def _set_level(self, level: str) -> None:
        self.level = level
        if level == "empty":
            self.in_view = 0
        self.density.setVisible(level == "density")
        self.dots.setVisible(level in ("points", "thumbnails"))
        if level != "density":
            self.density_map = None
        if level not in ("points", "thumbnails"):
            self.dots.set_dots([], [], [], [])
            self.dot_indices = np.zeros(0, np.int64)
        if level != "thumbnails":
            self._hide_thumbnails()

    @property
    def density_counts(self) -> np.ndarray | None:
        return None if self.density_map is None else self.density_map.count_image()

    def _view_pixels(self) -> tuple[int, int]:
        ratio = self.plot.devicePixelRatioF()
        return max(1, round(self.box.width() * ratio)), max(1, round(self.box.height() * ratio))

    def _show_density(self, rect) -> None:
        x0, x1, y0, y1 = rect
        width, height = self._view_pixels()
        self.density_map = density(self.index, (x0, x1), (y0, y1), width, height)
        self.density.setImage(self.density_map.rgba(self.palette), autoLevels=False)
        # Row 0 is the view's top: a negative height puts it there (the map's y grows upward).
        self.density.setRect(QRectF(x0, y1, x1 - x0, -(y1 - y0)))

    def _show_thumbnails(self, indices, xs, ys, codes) -> None:
        started = time.perf_counter()
        pending = False
        ready = []
        for k, i in enumerate(indices.tolist()):
            thumb = self._thumbs.get(i)
            if thumb is None:
                if (time.perf_counter() - started) * 1000 > THUMB_BUDGET_MS:
                    pending = True  # shown as a dot until a later update loads it
                    continue
                try:
                    thumb = np.ascontiguousarray(self._thumbnail(i), np.uint8)
                except Exception:  # an unreadable file: a blank square, not a map that stops updating
                    thumb = np.full((8, 8, 3), 60, np.uint8)
                self._thumbs[i] = thumb
                if len(self._thumbs) > THUMB_CACHE:
                    self._thumbs.popitem(last=False)
            else:
                self._thumbs.move_to_end(i)
            ready.append((k, i, thumb))
        # An item keeps the point it showed, so a pan uploads only the points that came in,
        # and pyqtgraph is told only what changed (each call costs its signal round trips).
        shown = {i for _, i, _ in ready}
        previous, self._thumb_of_item = self._thumb_of_item, {}
        free = [item for i, item in previous.items() if i not in shown] + self._idle_items
        side = THUMB_PX * self.box.viewPixelSize()[0]
        for k, i, thumb in ready:
            item = previous.get(i)
            if item is None:
                item = free.pop() if free else self._new_thumbnail_item()
                # uint8 without levels: pyqtgraph wraps the array in a QImage, no rescaling.
                item.setImage(thumb, autoLevels=False)
                style = self._style_of_code[codes[k] + 1]
                if item.style != style:
                    item.setBorder(self._pens[style])
                    item.style = style
            h, w = thumb.shape[:2]
            tall = side * h / max(w, 1)
            # Image rows go down, the map's y goes up: the rect's negative height flips it upright.
            rect = (float(xs[k]) - side / 2, float(ys[k]) + tall / 2, side, -tall)
            if item.rect != rect:
                item.setRect(QRectF(*rect))
                item.rect = rect
            if not item.isVisible():
                item.show()
            self._thumb_of_item[i] = item
        for item in free:
            if item.isVisible():
                item.hide()
        self._idle_items = free
        self.thumbnail_indices = np.array(sorted(shown), np.int64)
        if pending:
            self._more_thumbs.start()

    def _new_thumbnail_item(self) -> pg.ImageItem:
        item = pg.ImageItem(axisOrder="row-major")
        item.setZValue(5)
        item.style = item.rect = None
        item.hide()
        self.plot.addItem(item, ignoreBounds=True)
        self._thumb_items.append(item)
        return item

    def _hide_thumbnails(self) -> None:
        for item in self._thumb_of_item.values():
            item.hide()
        self._idle_items += self._thumb_of_item.values()
        self._thumb_of_item = {}
        self.thumbnail_indices = np.zeros(0, np.int64)

    def _draw_rings(self) -> None:
        if self.index is None or len(self._highlight) == 0:
            self.rings.set_dots([], [], [], [])
            return
        x0, x1, y0, y1 = self.view_rect()
        where = self._positions_of(self._highlight)
        xs, ys = self.index.xs[where], self.index.ys[where]
        keep = np.flatnonzero((xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1))[:MAX_RINGS]
        self.rings.set_dots(xs[keep], ys[keep], np.zeros(len(keep), np.intp), self._ring_brush)

    def _positions_of(self, indices: np.ndarray) -> np.ndarray:
        """Positions in the index's sorted arrays of these point indices."""
        index = self.index
        if self._rank_for is not index:
            rank = np.full(index.n, -1, np.int64)
            rank[index.order] = np.arange(len(index.order))
            self._rank, self._rank_for = rank, index
        where = self._rank[indices[(indices >= 0) & (indices < index.n)]]
        return where[where >= 0]

    # --- pointing -----------------------------------------------------------------------------

    def point_at(self, x: float, y: float, radius_px: float = HOVER_RADIUS_PX) -> int:
        """The point nearest to view coordinates (x, y) within ``radius_px`` screen pixels, or -1."""
        if self.index is None:
            return -1
        px, py = self.box.viewPixelSize()
        rx, ry = radius_px * px, radius_px * py
        pos = self.index.positions(x - rx, x + rx, y - ry, y + ry)
        if len(pos) == 0:
            return -1
        d2 = ((self.index.xs[pos] - x) / px) ** 2 + ((self.index.ys[pos] - y) / py) ** 2
        best = int(np.argmin(d2))
        return int(self.index.order[pos[best]]) if d2[best] <= radius_px ** 2 else -1

    def _scene_point(self, scene_pos) -> int:
        if self.index is None or not self.box.sceneBoundingRect().contains(scene_pos):
            return -1
        p = self.box.mapSceneToView(scene_pos)
        return self.point_at(p.x(), p.y())

    def _mouse_moved(self, event) -> None:
        i = self._scene_point(event[0])
        if i != self.hovered_index:
            self.hovered_index = i
            self.hovered.emit(i)

    def _mouse_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        i = self._scene_point(event.scenePos())
        if i >= 0:
            event.accept()
            self.clicked.emit(i)
