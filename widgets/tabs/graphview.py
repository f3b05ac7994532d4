"""The Graph tab: the window's model as its dataflow graph (deepvis.graph), top to bottom, with
each visible layer's activation for the current frame drawn on its node.

Recording the graph (one forward pass) and laying it out run on the compute thread when the
tab is first shown and when the model changes; folding (which groups are collapsed) is the
view's. Repeated blocks start collapsed: double-click one to expand it, double-click a node
inside an expanded block to collapse the block again; *Expand all* and *Collapse blocks* do
every group at once. A click selects the node's layer in every view (the activations grid,
the unit pane, saliency), and the layer selected elsewhere is outlined here. The search box
finds a node by name. Pan by dragging, zoom with the wheel; *Fit* shows the whole graph.

Live pictures are asked for the nodes in view only (at most ``LIVE_NODES``), one job in flight,
the newest frame next: on a 2,000-node graph a frame costs what the layers on screen cost.
"""

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (QCheckBox, QComboBox, QGraphicsItem, QGraphicsPathItem, QGraphicsScene, QGraphicsView,
                               QHBoxLayout, QLineEdit, QPushButton, QSizePolicy, QVBoxLayout)

from deepvis.graph.draw import FILL, arrow_head, family, lines
from deepvis.live.computethread import compute_thread, outcome
from deepvis.render.colormaps import lut
from deepvis.widgets.panes.readout import Readout
from deepvis.widgets.window.latestjob import LatestJob
from deepvis.widgets.window.views import View, register_view

LIVE_NODES = 80
PICTURE = 28.0  # px of a node's live picture
SHOWS = ("activation", "mean", "dead share")
PADDING = 8.0
LEGIBLE = 0.35  # the scale below which names are too small to read: boxes only, no antialiasing


class NodeItem(QGraphicsItem):
    """A node's box: its name, its type, shape and parameters, and the live picture or colour."""

    def __init__(self, view, node, width: float, height: float):
        super().__init__()
        self.view, self.node = view, node
        self.width, self.height = width, height
        self.title, self.detail = lines(node)
        self.fill = QColor(FILL[family(node)])
        self.picture: QImage | None = None
        self.tint: QColor | None = None  # a statistic's colour
        self.selected_layer = False
        self.setAcceptHoverEvents(True)
        self.setToolTip(f"{self.title}\n{self.detail}" + (f"\ngroup {node.group}" if node.group else ""))
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def boundingRect(self) -> QRectF:
        return QRectF(-self.width / 2 - 2, -6, self.width + 10, self.height + 8)

    def paint(self, p: QPainter, option, _widget=None) -> None:
        box = QRectF(-self.width / 2, 0, self.width, self.height)
        if option.levelOfDetailFromTransform(p.worldTransform()) < LEGIBLE:
            # Too small to read: a plain box (the whole of a 2,000-node graph in view took 81 ms a
            # frame with every name and picture drawn, 33 ms is the bound).
            p.fillRect(box, QColor("#ffd24a") if self.selected_layer else (self.tint or self.fill))
            return
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        border = QPen(QColor("#ffd24a"), 3) if self.selected_layer else QPen(QColor("#99aabb"), 1)
        if self.node.op == "group":  # a stack: the block's insides are folded in
            p.setPen(QPen(QColor("#99aabb"), 1))
            p.setBrush(self.fill.darker(130))
            p.drawRoundedRect(box.translated(4, -4), 4, 4)
        p.setPen(border)
        p.setBrush(self.tint if self.tint is not None else self.fill)
        p.drawRoundedRect(box, 4, 4)
        text = box.adjusted(PADDING, 2, -PADDING, -2)
        if self.picture is not None:
            side = self.height - 6
            p.drawImage(QRectF(box.left() + 3, box.top() + 3, side, side), self.picture)
            text.setLeft(box.left() + side + 8)
        p.setPen(QColor("#f0f0f0"))
        p.setFont(self.view.name_font)
        p.drawText(QRectF(text.left(), text.top(), text.width(), text.height() / 2),
                   Qt.AlignmentFlag.AlignCenter, self.title)
        p.setPen(QColor("#c8c8cc"))
        p.setFont(self.view.detail_font)
        p.drawText(QRectF(text.left(), text.center().y(), text.width(), text.height() / 2),
                   Qt.AlignmentFlag.AlignCenter, self.detail)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.view.node_clicked(self.node)
        event.accept()

    def mouseDoubleClickEvent(self, event) -> None:
        self.view.node_double_clicked(self.node)
        event.accept()


class GraphCanvas(QGraphicsView):
    """Pans by dragging the background, zooms about the mouse with the wheel."""

    viewChanged = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QColor("#1e1f22"))
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.horizontalScrollBar().valueChanged.connect(lambda _v: self.viewChanged.emit())
        self.verticalScrollBar().valueChanged.connect(lambda _v: self.viewChanged.emit())

    def wheelEvent(self, event) -> None:
        factor = 1.0015 ** event.angleDelta().y()
        scale = self.transform().m11() * factor
        if scale <= 4 and (factor > 1 or scale >= min(0.02, self._whole_scale())):
            self.scale(factor, factor)
            self.viewChanged.emit()

    def _whole_scale(self) -> float:
        rect = self.scene().itemsBoundingRect()
        if rect.isEmpty():
            return 1.0
        return min(self.viewport().width() / rect.width(), self.viewport().height() / rect.height())

    def paintEvent(self, event) -> None:
        # Edges drawn antialiased only where they can be told apart.
        self.setRenderHint(QPainter.RenderHint.Antialiasing, self.transform().m11() >= LEGIBLE)
        super().paintEvent(event)

    def fit(self) -> None:
        rect = self.scene().itemsBoundingRect()
        if rect.isEmpty():
            return
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        if self.transform().m11() > 1:  # a small graph at its own size, not blown up
            self.resetTransform()
            self.centerOn(rect.center().x(), rect.top() + min(rect.height(), self.viewport().height()) / 2)
        self.viewChanged.emit()

    def visible_rect(self) -> QRectF:
        return self.mapToScene(self.viewport().rect()).boundingRect()


@register_view
class GraphView(View):
    title = "Graph"
    order = 49

    _recorded = Signal(int, object, str)  # request, Graph or None, error
    _laid_out = Signal(int, object, str)  # request, (folded Graph, Layout) or None, error

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.graph = None  # the recorded Graph of the window's model
        self.shown = None  # the folded Graph drawn
        self.collapsed: set[str] | None = None  # None: the repeated blocks
        self.items: dict[int, NodeItem] = {}
        self._request = 0
        self._layout_request = 0
        self.looking = LatestJob(self._on_looked, self.refresh_looks, self)  # the nodes' pictures
        self._recorded_model = None
        self.name_font = QFont(self.font())
        self.name_font.setPointSizeF(self.font().pointSizeF() * 0.9)
        self.detail_font = QFont(self.font())
        self.detail_font.setPointSizeF(self.font().pointSizeF() * 0.8)

        self.search = QLineEdit()
        self.search.setPlaceholderText("find a layer")
        self.search.setClearButtonEnabled(True)
        self.search.returnPressed.connect(self.find)
        self.expand_all = QPushButton("Expand all")
        self.expand_all.setToolTip("draw every module group's insides")
        self.expand_all.clicked.connect(lambda: self.set_collapsed(set()))
        self.collapse_blocks = QPushButton("Collapse blocks")
        self.collapse_blocks.setToolTip("draw each repeated block (a ResNet's BasicBlock, a ViT's Block) as one node")
        self.collapse_blocks.clicked.connect(lambda: self.set_collapsed(None))
        self.plumbing = QCheckBox("pass-through")
        self.plumbing.setToolTip("draw pass-through layers too (Identity, Dropout, Flatten)")
        self.plumbing.toggled.connect(lambda _on: self.relayout())
        self.show_box = QComboBox()
        self.show_box.addItems(SHOWS)
        self.show_box.setToolTip("on each node in view: its activation for the current frame (mean over channels), "
                                 "or a colour for its mean or its share of units at or below zero")
        self.show_box.activated.connect(lambda _i: self.refresh_looks())
        self.fit_button = QPushButton("Fit")
        self.fit_button.setToolTip("show the whole graph")
        self.fit_button.clicked.connect(lambda: self.canvas.fit())
        controls = QHBoxLayout()
        for widget in (self.search, self.expand_all, self.collapse_blocks, self.plumbing, self.show_box,
                       self.fit_button):
            controls.addWidget(widget)
        self.canvas = GraphCanvas()
        self.canvas.viewChanged.connect(lambda: self._view_timer.start())
        self._view_timer = QTimer(self)  # pictures for newly visible nodes once panning pauses
        self._view_timer.setSingleShot(True)
        self._view_timer.setInterval(120)
        self._view_timer.timeout.connect(lambda: self.refresh_looks())
        self.readout = Readout(lines=1)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.readout)

        self._recorded.connect(self._on_recorded)
        self._laid_out.connect(self._on_laid_out)
        session.modelChanged.connect(lambda _state: self.record())
        session.layerChanged.connect(self._outline_layer)
        session.resultReady.connect(self.refresh_looks)

    # --- recording and layout ---------------------------------------------------------------

    def showEvent(self, event) -> None:
        super().showEvent(event)
        state = self.session.state
        if state is not None and self._recorded_model is not state.model:
            self.record()

    def record(self) -> None:
        state = self.session.state
        if state is None or not self.isVisible():
            return
        self._recorded_model = state.model
        self._request += 1
        request = self._request
        self.collapsed = None
        self.set_working(f"recording {state.model.name}'s graph...")

        def work():
            from deepvis.graph.record import record_graph

            return record_graph(state.model.module, state.model.example_input())

        future = compute_thread().submit(work)
        future.add_done_callback(lambda f: self._recorded.emit(request, *outcome(f)))

    def _on_recorded(self, request: int, graph, error: str) -> None:
        if request != self._request:
            return
        if graph is None:
            self.set_working("")
            self.readout.setText(f"no graph: {error}" if error else "")
            return
        self.graph = graph
        self.relayout()

    def set_collapsed(self, groups: set[str] | None) -> None:
        """Draw these groups collapsed (None: the repeated blocks)."""
        self.collapsed = groups
        self.relayout()

    def relayout(self) -> None:
        if self.graph is None:
            return
        from deepvis.graph.fold import folded, repeated_blocks

        graph = self.graph
        collapsed = repeated_blocks(graph) if self.collapsed is None else self.collapsed
        shown = folded(graph, collapsed, self.plumbing.isChecked())
        sizes = {n.id: self._size(n) for n in shown.nodes}
        self._layout_request += 1
        request = self._layout_request
        self.set_working(f"laying out {len(shown.nodes):,} nodes...")

        def work():
            from deepvis.graph.layout import layout

            return shown, layout([n.id for n in shown.nodes], shown.edges, sizes)

        future = compute_thread().submit(work)
        future.add_done_callback(lambda f: self._laid_out.emit(request, *outcome(f)))

    def _size(self, node) -> tuple[float, float]:
        title, detail = lines(node)
        width = max(QFontMetricsF(self.name_font).horizontalAdvance(title),
                    QFontMetricsF(self.detail_font).horizontalAdvance(detail))
        height = 2 * QFontMetricsF(self.name_font).height() + 10
        picture = max(height - 6, PICTURE) + 6 if node.op != "function" else 0
        return width + 2 * PADDING + picture, max(height, PICTURE + 6)

    def _on_laid_out(self, request: int, value, error: str) -> None:
        if request != self._layout_request:
            return
        self.set_working("")
        if value is None:
            self.readout.setText(f"no layout: {error}" if error else "")
            return
        shown, placed = value
        first = self.shown is None
        self.shown = shown
        scene = self.canvas.scene()
        scene.clear()
        self.items = {}
        edge_pen = QPen(QColor("#8a8f98"), 1.2)
        edge_pen.setCosmetic(True)  # a hairline at any zoom: the cheapest line to draw zoomed out
        for _s, _t, points in placed.edges:
            path = QPainterPath(QPointF(*points[0]))
            for x, y in points[1:]:
                path.lineTo(x, y)
            (x0, y0), (x1, y1) = points[-2], points[-1]
            item = QGraphicsPathItem(path)
            item.setPen(edge_pen)
            scene.addItem(item)
            scene.addItem(_arrow(x0, y0, x1, y1))
        for node in shown.nodes:
            at = placed.nodes[node.id]
            item = NodeItem(self, node, at.width, at.height)
            item.setPos(at.x, at.y)
            scene.addItem(item)
            self.items[node.id] = item
        scene.setSceneRect(scene.itemsBoundingRect().adjusted(-20, -20, 20, 20))
        groups = sum(n.op == "group" for n in shown.nodes)
        self.readout.setText(f"{len(self.graph.nodes):,} nodes, {len(shown.nodes):,} drawn"
                             f"{f', {groups} blocks collapsed (double-click: expand)' if groups else ''}"
                             f"; click: select the layer")
        self._outline_layer(self.session.layer)
        if first:
            self._first_view()
        self.refresh_looks()

    def _first_view(self) -> None:
        """The top of the graph at its own size, where it starts (or the whole, when it fits)."""
        rect = self.canvas.scene().itemsBoundingRect()
        self.canvas.resetTransform()
        if rect.height() <= self.canvas.viewport().height():
            self.canvas.fit()
        else:
            self.canvas.centerOn(rect.center().x(), rect.top() + self.canvas.viewport().height() / 2)

    # --- interaction ---------------------------------------------------------------------------

    def node_layer(self, node) -> str | None:
        state = self.session.state
        if state is None:
            return None
        for name in (node.layer, node.name):
            if name and name in state.probe:
                return name
        return None

    def node_clicked(self, node) -> None:
        layer = self.node_layer(node)
        if layer is None:
            self.session.message.emit(f"{node.name} ({node.type}) is a function between layers: it has no layer to "
                                      f"select")
            return
        self.session.set_layer(layer)

    def node_double_clicked(self, node) -> None:
        from deepvis.graph.fold import inside, repeated_blocks

        collapsed = set(repeated_blocks(self.graph) if self.collapsed is None else self.collapsed)
        if node.op == "group":
            self.set_collapsed(collapsed - {node.name})
            return
        blocks = [g for g in repeated_blocks(self.graph) if inside(g, node.group)]
        if blocks:
            self.set_collapsed(collapsed | {blocks[0]})

    def _outline_layer(self, name) -> None:
        """Outline the node of layer ``name``, or the collapsed block it is inside."""
        from deepvis.graph.fold import inside

        path = name.split("#")[0].split("[")[0] if name else None
        holder = next((item for item in self.items.values() if item.node.op == "group" and path is not None
                       and inside(item.node.name, path)), None)
        for item in self.items.values():
            now = name is not None and (self.node_layer(item.node) == name or item is holder)
            if now != item.selected_layer:
                item.selected_layer = now
                item.update()

    def find(self) -> None:
        text = self.search.text().strip().lower()
        if not text or not self.items:
            return
        hits = [item for item in self.items.values() if text in item.node.name.lower()]
        if not hits:
            self.session.message.emit(f"no node named like {text!r} (a collapsed block hides its insides: Expand all)")
            return
        item = hits[0]
        self.canvas.centerOn(item)
        self.node_clicked(item.node)

    # --- live pictures -------------------------------------------------------------------------

    def visible_layers(self) -> dict[str, list[NodeItem]]:
        rect = self.canvas.visible_rect()
        wanted: dict[str, list[NodeItem]] = {}
        for item in self.items.values():
            if len(wanted) >= LIVE_NODES:
                break
            if rect.intersects(item.sceneBoundingRect()):
                layer = self.node_layer(item.node)
                if layer is not None:
                    wanted.setdefault(layer, []).append(item)
        return wanted

    def refresh_looks(self) -> None:
        """The current frame's pictures for the nodes in view (one job at a time, the newest
        frame and view next)."""
        if self.isVisible() and self.items:
            self.looking.request(self._looks_job)

    def _looks_job(self):
        state, result = self.session.state, self.session.result
        wanted = self.visible_layers()
        if state is None or result is None or not wanted:
            return None
        frame, layers = result.frame.image, list(wanted)

        def work():
            from deepvis.graph.live import looks

            return looks(state.model, state.probe, frame, layers)
        return work

    def _on_looked(self, found, _error: str) -> None:
        if not found:
            return
        show = self.show_box.currentText()
        colours = lut("viridis")
        for item in self.items.values():
            look = found.get(self.node_layer(item.node) or "")
            if look is None:
                continue
            if show == "activation":
                item.tint = None
                item.picture = _picture(look.picture, colours) if look.picture is not None else None
            else:
                item.picture = None
                value = look.dead if show == "dead share" else 1 / (1 + np.exp(-look.mean))
                r, g, b = colours[int(np.clip(value, 0, 1) * 255)][:3]
                item.tint = QColor(int(r), int(g), int(b)).darker(140)
            item.update()

    def shutdown(self) -> None:
        self._request += 1


def _picture(values: np.ndarray, colours: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(colours[(np.clip(values, 0, 1) * 255).astype(np.uint8)][..., :3].astype(np.uint8))
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888).copy()


def _arrow(x0: float, y0: float, x1: float, y1: float) -> QGraphicsPathItem:
    tip, *back = arrow_head(x0, y0, x1, y1)
    path = QPainterPath(QPointF(*tip))
    for corner in back:
        path.lineTo(*corner)
    path.closeSubpath()
    item = QGraphicsPathItem(path)
    item.setPen(QPen(Qt.PenStyle.NoPen))
    item.setBrush(QBrush(QColor("#8a8f98")))
    return item
