"""``deepvis bench graph-view``: the Graph tab's frame time while a scripted camera pans and
zooms over a graph of over 2,000 nodes (deepvis.bench.graph's 77-block ViT, every block
expanded), each node carrying a live picture as the tab draws the nodes in view.

Each frame moves the view (a scroll step, or a wheel step of zoom about the centre) and
repaints the viewport synchronously: a frame's time is what a user waits for between a drag
or wheel step and the new picture. Frames at the graph's own size (1:1, where the names are
read) and zoomed out to the whole graph (where every node is in view) are reported apart.
"""

import statistics
import time

import numpy as np


def bench_graph_view(steps: int = 60) -> dict:
    from PySide6.QtGui import QFont, QImage
    from PySide6.QtWidgets import QApplication

    from deepvis.bench.graph import _large_vit
    from deepvis.graph.fold import folded
    from deepvis.graph.layout import layout
    from deepvis.graph.record import record_graph
    from deepvis.widgets.tabs.graphview import GraphCanvas, NodeItem

    app = QApplication.instance() or QApplication([])
    net, x = _large_vit()
    shown = folded(record_graph(net, x), (), plumbing=True)

    class Fonts:  # what a NodeItem reads from its view
        name_font, detail_font = QFont(), QFont()

    fonts = Fonts()
    fonts.name_font.setPointSizeF(8.0)
    fonts.detail_font.setPointSizeF(7.0)
    sizes = {n.id: (max(len(n.name), 24) * 6.5 + 50, 36.0) for n in shown.nodes}
    placed = layout([n.id for n in shown.nodes], shown.edges, sizes)
    canvas = GraphCanvas()
    scene = canvas.scene()
    picture = QImage(np.zeros((28, 28, 3), np.uint8).data, 28, 28, 84, QImage.Format.Format_RGB888).copy()
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QPainterPath
    from PySide6.QtWidgets import QGraphicsPathItem

    from PySide6.QtGui import QColor, QPen

    pen = QPen(QColor("#8a8f98"), 1.2)
    pen.setCosmetic(True)  # as the tab draws its edges
    for _s, _t, points in placed.edges:
        path = QPainterPath(QPointF(*points[0]))
        for px, py in points[1:]:
            path.lineTo(px, py)
        item = QGraphicsPathItem(path)
        item.setPen(pen)
        scene.addItem(item)
    for node in shown.nodes:
        at = placed.nodes[node.id]
        item = NodeItem(fonts, node, at.width, at.height)
        item.picture = picture
        item.setPos(at.x, at.y)
        scene.addItem(item)
    canvas.resize(1000, 800)
    canvas.show()
    app.processEvents()

    def frames(move) -> list[float]:
        times = []
        for k in range(steps):
            start = time.perf_counter()
            move(k)
            canvas.viewport().repaint()
            app.processEvents()
            times.append(1000 * (time.perf_counter() - start))
        return times

    canvas.resetTransform()
    canvas.centerOn(placed.width / 2, 400)
    bar = canvas.verticalScrollBar()
    pan_1to1 = frames(lambda k: bar.setValue(bar.value() + 40))
    zoom_1to1 = frames(lambda k: canvas.scale(*(2 * [1.05 if (k // 10) % 2 else 1 / 1.05])))
    canvas.fit()
    app.processEvents()
    zoom_whole = frames(lambda k: canvas.scale(*(2 * [1.05 if (k // 10) % 2 else 1 / 1.05])))
    canvas.fit()
    pan_whole = frames(lambda k: canvas.horizontalScrollBar().setValue(canvas.horizontalScrollBar().value() + 5))
    canvas.close()

    def figures(times):
        return {"median_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2)}

    return {"benchmark": "graph-view", "nodes": len(shown.nodes), "edges": len(shown.edges), "steps": steps,
            "viewport": "1000x800", "pan_1to1": figures(pan_1to1), "zoom_1to1": figures(zoom_1to1),
            "pan_whole": figures(pan_whole), "zoom_whole": figures(zoom_whole), "target_ms": 33}
