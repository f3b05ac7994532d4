"""The Graph tab driven like a user would: the window's model drawn with its repeated blocks
collapsed; a click on a node selects its layer in every view; a double-click expands a block
and another collapses it again; the search finds a layer; nodes in view show the current
frame's activation."""

import pytest

pytest.importorskip("PySide6")
from deepvis.widgets.window import qtenv  # noqa: E402,F401
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from test_gui import WAIT_MS, open_window, private_settings  # noqa: E402,F401


def _graph(window):
    view = next(v for v in window.views if v.title == "Graph")
    window.tabs.setCurrentWidget(view)
    return view


def _item(view, name):
    return next(item for item in view.items.values() if item.node.name == name)


def _click(view, item):
    view.canvas.centerOn(item)
    at = view.canvas.mapFromScene(item.sceneBoundingRect().center())
    QTest.mouseClick(view.canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)


def _double_click(view, item):
    # The item's own handler: QTest's simulated clock turns a double-click that follows another
    # QTest click into a single press (a double-click by hand, or as the first QTest click, works).
    view.node_double_clicked(item.node)


def test_click_selects_double_click_expands_search_finds_and_nodes_show_the_frame(qtbot, open_window):
    w = open_window(model="digits_vit")
    view = _graph(w)
    qtbot.waitUntil(lambda: view.shown is not None and bool(view.items), timeout=WAIT_MS)
    groups = sorted(n.name for n in view.shown.nodes if n.op == "group")
    assert groups == [f"blocks.{k}" for k in range(4)]

    norm = _item(view, "norm")
    assert w.session.layer != "norm"
    _click(view, norm)
    qtbot.waitUntil(lambda: w.session.layer == "norm", timeout=WAIT_MS)
    assert norm.selected_layer and not _item(view, "head").selected_layer

    _double_click(view, _item(view, "blocks.1"))
    qtbot.waitUntil(lambda: "blocks.1" not in {n.name for n in view.shown.nodes if n.op == "group"}, timeout=WAIT_MS)
    inner = [n for n in view.shown.nodes if n.group.startswith("blocks.1")]
    assert sum(n.type == "add" for n in inner) == 2  # the block's two residual additions, now drawn
    _double_click(view, _item(view, inner[0].name))  # inside the block: it folds again
    qtbot.waitUntil(lambda: "blocks.1" in {n.name for n in view.shown.nodes if n.op == "group"}, timeout=WAIT_MS)

    view.search.setText("patch_emb")
    QTest.keyClick(view.search, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: w.session.layer == "patch_embed", timeout=WAIT_MS)

    # The current frame's activation on the nodes in view (the engine's pictures: tests/graph).
    qtbot.waitUntil(lambda: w.session.result is not None, timeout=WAIT_MS)
    view.refresh_looks()
    qtbot.waitUntil(lambda: view.items[_item(view, "patch_embed").node.id].picture is not None, timeout=WAIT_MS)
    view.show_box.setCurrentText("dead share")
    view.show_box.activated.emit(view.show_box.currentIndex())
    qtbot.waitUntil(lambda: _item(view, "patch_embed").tint is not None, timeout=WAIT_MS)
