"""The activation grid: every channel of the selected layer as a tile, live."""

import numpy as np
from PySide6.QtCore import QEvent, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from deepvis.render.colormaps import COLORMAPS
from deepvis.widgets.panes.imagepanel import ImagePanel
from deepvis.widgets.window.views import DrawnWhenShown, View, register_view

ZOOM_LEVELS = ("all", "neighbourhood", "unit")
DEAD_DIM = QColor(30, 31, 34, 150)
DEAD_HATCH = QBrush(QColor(200, 200, 200, 170), Qt.BrushStyle.BDiagPattern)


class DeadTiles(QWidget):
    """Dims and hatches the tiles of units dead on the frame (maximum <= 0): in a colormap a
    dead unit looks like a weak one. Drawn over the canvas, so the grid's pixels (what hover
    reads) stay the activations, and the tile rectangles are kept until the tiles, the zoom or
    the pane's size change: a few fills a frame on the live path."""

    def __init__(self, canvas):
        super().__init__(canvas)
        self.canvas = canvas
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.units = np.zeros(0, np.int64)
        self.grid_layout = None
        self._rects: tuple[object, list[QRectF]] = (None, [])
        self.setGeometry(canvas.rect())
        canvas.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Resize:
            self.setGeometry(self.canvas.rect())
        return False

    def set_dead(self, units: np.ndarray, layout) -> None:
        if layout != self.grid_layout or not np.array_equal(units, self.units):
            self.units, self.grid_layout = units, layout
            self.update()

    def rects(self) -> list[QRectF]:
        """The dead tiles in widget coordinates."""
        canvas = self.canvas
        if not len(self.units) or self.grid_layout is None or canvas.shape is None:
            return []
        key = (self.units.tobytes(), self.grid_layout, canvas.size(), canvas.source, canvas.shape)
        if self._rects[0] != key:
            region, target = canvas.visible_region(), canvas.target_rect()
            s = target.width() / region.width()
            lay = self.grid_layout
            rows, cols = np.divmod(self.units, lay.cols)
            xs = target.x() + (cols * (lay.tile_w + lay.pad) - region.x()) * s
            ys = target.y() + (rows * (lay.tile_h + lay.pad) - region.y()) * s
            w, h = lay.tile_w * s, lay.tile_h * s
            self._rects = (key, [QRectF(x, y, w, h) for x, y in zip(xs.tolist(), ys.tolist())])
        return self._rects[1]

    def paintEvent(self, _event) -> None:
        if self.canvas.qimage is None:
            return
        rects = self.rects()
        if not rects:
            return
        p = QPainter(self)
        p.setClipRect(self.canvas.target_rect())
        for rect in rects:
            p.fillRect(rect, DEAD_DIM)
            p.fillRect(rect, DEAD_HATCH)


@register_view
class ActivationGridView(DrawnWhenShown, View):
    title = "Activations"
    order = 0

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.colormap = "viridis"
        self.zoom = 0
        self.panel = ImagePanel("Activations", session=session)
        self.dead_tiles = DeadTiles(self.panel.canvas)
        self.normalization = QComboBox()
        self.normalization.addItems(["layer", "channel"])
        self.normalization.setToolTip("Scale tiles by the whole layer's range or each channel's own")
        self.colormaps = QComboBox()
        self.colormaps.addItems(COLORMAPS)
        self.hover = QLabel("")
        self.hover.setMinimumWidth(220)
        self.hover.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("normalize"))
        bar.addWidget(self.normalization)
        bar.addWidget(QLabel("colormap"))
        bar.addWidget(self.colormaps)
        bar.addStretch(1)
        bar.addWidget(self.hover)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.panel, 1)

        self.normalization.currentTextChanged.connect(lambda t: session.update_settings(normalization=t))
        self.colormaps.currentTextChanged.connect(self.set_colormap)
        self.panel.hovered.connect(self._hovered)
        self.panel.clicked.connect(self._clicked)
        session.resultReady.connect(self.on_result)
        session.unitChanged.connect(lambda _u: self._place_cursor())
        session.layerChanged.connect(self._layer_changed)

    def set_colormap(self, name: str) -> None:
        self.colormap = name
        if self.colormaps.currentText() != name:
            self.colormaps.setCurrentText(name)
        self.on_result()

    def _layer_changed(self, name: str) -> None:
        layer = self.session.state.probe.layer(name)
        self.panel.set_title(f"Activations · {layer.name} · {layer.type_name} · {'x'.join(map(str, layer.shape))}")
        self.panel.set_stale(True)

    def on_result(self) -> None:
        result = self.session.result
        if result is None or result.grid is None or self.hidden_now():
            return
        self.panel.set_map(result.grid, result.grid_levels, self.colormap)
        maxima = result.channel_max
        dead = np.flatnonzero(maxima <= 0) if maxima is not None else np.zeros(0, np.int64)
        self.dead_tiles.set_dead(dead, result.grid_layout)
        self.panel.set_stale(self.session.stale(result))
        self._place_cursor()

    def draw_missed(self) -> None:
        self.on_result()

    def _layout(self):
        result = self.session.result
        if result is None or result.grid_layout is None or result.settings.grid_layer != self.session.layer:
            return None
        return result.grid_layout

    def _place_cursor(self) -> None:
        layout = self._layout()
        if layout is None or self.session.unit >= layout.count:
            self.panel.set_cursor(None)
            return
        y, x = layout.origin(self.session.unit)
        self.panel.set_cursor((x - 0.5, y - 0.5, layout.tile_w + 1, layout.tile_h + 1))
        self._apply_zoom()

    def cycle_zoom(self) -> None:
        self.zoom = (self.zoom + 1) % len(ZOOM_LEVELS)
        self._apply_zoom()

    def _apply_zoom(self) -> None:
        layout = self._layout()
        if layout is None or self.zoom == 0:
            self.panel.zoom_to(None)
            return
        y, x = layout.origin(self.session.unit)
        th, tw = layout.tile_h + layout.pad, layout.tile_w + layout.pad
        if self.zoom == 1:
            self.panel.zoom_to((x - tw, y - th, 3 * tw, 3 * th))
        else:
            self.panel.zoom_to((x, y, layout.tile_w, layout.tile_h))

    def move_unit(self, drow: int, dcol: int) -> None:
        layout = self._layout()
        if layout is not None:
            self.session.set_unit(layout.neighbour(self.session.unit, drow, dcol))

    def _unit_at(self, x, y):
        layout = self._layout()
        return None if layout is None else layout.tile_at(y, x)

    def _hovered(self, x, y) -> None:
        unit = self._unit_at(x, y) if x >= 0 else None
        if unit is None:
            self.hover.setText("")
            return
        layout = self._layout()
        oy, ox = layout.origin(unit)
        value = self.session.result.channel(unit)[int(y) - oy, int(x) - ox]
        where = f" at ({int(y) - oy}, {int(x) - ox})" if layout.tile_h * layout.tile_w > 1 else ""
        maxima = self.session.result.channel_max
        dead = " (dead on this frame)" if maxima is not None and unit < len(maxima) and maxima[unit] <= 0 else ""
        self.hover.setText(f"unit {unit}{where}: {value:.4g}{dead}")

    def _clicked(self, x, y) -> None:
        unit = self._unit_at(x, y)
        if unit is not None:
            self.session.set_unit(unit)
