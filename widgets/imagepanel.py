"""A titled pyqtgraph image with a 'stale' badge: the building block of every image pane."""

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from deepvis.colormaps import lut


class ImagePanel(QWidget):
    """Shows uint8 RGB images, or float32 maps through explicit levels and a colormap LUT."""

    hovered = Signal(float, float)  # image (x, y) under the mouse; negative when outside
    clicked = Signal(float, float)

    def __init__(self, title: str, parent=None, placeholder: str = "waiting for input..."):
        super().__init__(parent)
        self.setObjectName(title)
        self.title = QLabel(title)
        self.title.setStyleSheet("font-weight: 600; padding: 2px 4px;")
        self.view = pg.GraphicsLayoutWidget()
        self.view.ci.setContentsMargins(0, 0, 0, 0)
        self.box = self.view.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.box.setMouseEnabled(False, False)
        # Downsampling to screen resolution before the LUT keeps big grids cheap to paint.
        self.image = pg.ImageItem(axisOrder="row-major", autoDownsample=True)
        self.box.addItem(self.image)
        self.placeholder = pg.TextItem(placeholder, color="#8a8a8a", anchor=(0.5, 0.5))
        self.box.addItem(self.placeholder)
        self.badge = QLabel("stale", self.view)
        self.badge.setStyleSheet("background: rgba(200, 120, 0, 200); color: white; padding: 1px 6px;"
                                 "border-radius: 3px; font-size: 10px;")
        self.badge.move(6, 6)
        self.badge.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(0)
        layout.addWidget(self.title)
        layout.addWidget(self.view, 1)
        self._shape = None
        self._colormap = None
        self.view.scene().sigMouseMoved.connect(self._mouse_moved)
        self.view.scene().sigMouseClicked.connect(self._mouse_clicked)

    def set_title(self, text: str) -> None:
        if self.title.text() != text:  # a changed label relayouts its parent
            self.title.setText(text)

    def set_rgb(self, image: np.ndarray) -> None:
        # uint8 RGB without levels is pyqtgraph's zero-copy path to a QImage.
        self._show(image, levels=None, lut_table=None)

    def set_map(self, values: np.ndarray, levels: tuple[float, float], colormap: str = "viridis") -> None:
        """A float map; NaN (tile padding) is drawn transparent over the dark background."""
        self._show(values, levels=levels, lut_table=_lut_with_alpha(colormap))

    def _show(self, data, levels, lut_table):
        self.placeholder.hide()
        if levels is None:
            self.image.setImage(data, lut=lut_table, autoLevels=False)
        else:
            self.image.setImage(data, levels=levels, lut=lut_table, autoLevels=False)
        if data.shape[:2] != self._shape:
            self._shape = data.shape[:2]
            self.box.autoRange(padding=0.01)

    def clear(self, text: str = "") -> None:
        self.image.clear()
        self._shape = None
        self.placeholder.setText(text)
        self.placeholder.setPos(0, 0)
        self.placeholder.show()
        self.box.autoRange()

    def set_stale(self, stale: bool) -> None:
        if stale != self.badge.isVisible():
            self.badge.setVisible(stale)

    def zoom_to(self, rect) -> None:
        """Show the (x, y, w, h) region of the image, or everything with None."""
        if rect is None:
            self.box.autoRange(padding=0.01)
        else:
            self.box.setRange(xRange=(rect[0], rect[0] + rect[2]), yRange=(rect[1], rect[1] + rect[3]), padding=0)

    def _to_image(self, scene_pos) -> QPointF | None:
        if self._shape is None or not self.box.sceneBoundingRect().contains(scene_pos):
            return None
        return self.image.mapFromScene(scene_pos)

    def _mouse_moved(self, scene_pos):
        p = self._to_image(scene_pos)
        self.hovered.emit(p.x(), p.y()) if p is not None else self.hovered.emit(-1.0, -1.0)

    def _mouse_clicked(self, event):
        if event.button() != Qt.MouseButton.LeftButton:
            return
        p = self._to_image(event.scenePos())
        if p is not None:
            self.clicked.emit(p.x(), p.y())


_LUTS: dict[str, np.ndarray] = {}


def _lut_with_alpha(name: str) -> np.ndarray:
    table = _LUTS.get(name)
    if table is None:
        table = np.concatenate([lut(name), np.full((256, 1), 255, np.uint8)], axis=1)
        _LUTS[name] = table
    return table


def qcolor(rgb) -> QColor:
    return QColor(int(rgb[0]), int(rgb[1]), int(rgb[2]))
