"""Nothing the window writes is cut off: at the default 1440x900 and at 1920x1080, on every tab
(the tabs are walked by index, so a tab added later is checked too), every visible label,
button, check box, combo box, line-edit placeholder, spin box value, tab title, dock title,
item-view header and row, readout, image-pane placeholder and pyqtgraph axis shows its whole
text, inside its own widget and inside the part of it its ancestors leave visible (a pane wider
than its dock is cut at the dock's edge).

Text that a widget elides on purpose passes when the widget says so: it draws text ending in
"…" and its tooltip holds the full text (an item view's cell: the view elides and the cell's
tooltip holds the text).

The whole session's Xvfb screen is 1920x1080 or larger (pyproject.toml's xvfb_width and
xvfb_height); the default 800x600 would not hold the window."""

import pytest

pytest.importorskip("PySide6")
from deepvis.widgets.window import qtenv  # noqa: E402,F401

import pyqtgraph as pg  # noqa: E402
from PySide6 import QtGui  # noqa: E402
from PySide6.QtCore import QEvent, QPoint, QRect, QRectF, QSize, Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter, QTextDocument  # noqa: E402
from PySide6.QtWidgets import (QAbstractItemView, QAbstractScrollArea, QAbstractSpinBox, QApplication,  # noqa: E402
                               QCheckBox, QComboBox, QDockWidget, QHeaderView, QLabel, QLineEdit, QPushButton,
                               QRadioButton, QStyle, QStyleOptionButton, QStyleOptionComboBox, QStyleOptionDockWidget,
                               QStyleOptionFrame, QStyleOptionHeader, QStyleOptionTab, QTabBar, QTableView,
                               QTreeView, QWidget)

from deepvis.widgets.panes.imagepanel import ImageCanvas  # noqa: E402
from deepvis.widgets.panes.readout import MARGIN as READOUT_MARGIN, Readout  # noqa: E402
from test_gui import WAIT_MS, open_window, private_settings  # noqa: E402,F401

SIZES = ((1440, 900), (1920, 1080))
SLACK = 1  # px: bearings and rounding, not a visible cut
SETTLE_MS = 50  # a shown tab's layout and first drawing
# Tabs start their first look (a sampling run, a map, a dream, a 3-D shape) when first shown,
# and write titles and legends as it goes: after the first size's walk they have this long at
# most to finish, so the second size's walk sees more of them, without depending on them.
FIRST_LOOKS_MS = 1000
ELLIPSIS = "…"


# --- where a widget can draw ----------------------------------------------------------------

def visible_rect(widget: QWidget) -> QRect:
    """The part of ``widget`` (its own coordinates) that its ancestors do not cut off, up to its
    window. Inside a scroll area the viewport's cut is the user's to scroll, not a clipping."""
    rect = widget.rect()
    child, offset = widget, QPoint(0, 0)
    while not child.isWindow() and child.parentWidget() is not None:
        parent = child.parentWidget()
        if isinstance(parent.parentWidget(), QAbstractScrollArea) and parent is parent.parentWidget().viewport() \
                and not isinstance(parent.parentWidget(), QAbstractItemView):
            break
        offset += child.pos()
        rect = rect.intersected(parent.rect().translated(-offset))
        child = parent
    return rect


def outside(text_rect: QRect, room: QRect, visible: QRect, heights: bool = True) -> str:
    """Why ``text_rect`` is cut: past the widget's room for text or past what is visible.
    ``heights``: False where the style's text rectangle is not where the text is clipped (a
    tab's is shorter than the font and the text is drawn over its edges)."""
    if text_rect.width() > room.width() + SLACK or heights and text_rect.height() > room.height() + SLACK:
        return f"needs {text_rect.width()}x{text_rect.height()} px, has {room.width()}x{room.height()}"
    if not visible.adjusted(-SLACK, -SLACK, SLACK, SLACK).contains(text_rect):
        return (f"drawn at x {text_rect.left()}..{text_rect.right()}, y {text_rect.top()}..{text_rect.bottom()}"
                f" but only x {visible.left()}..{visible.right()}, y {visible.top()}..{visible.bottom()} is visible")
    return ""


def name(widget) -> str:
    """The widget and two ancestors, by object name or class."""
    parts = []
    while widget is not None and len(parts) < 3:
        parts.append(widget.objectName() or type(widget).__name__)
        widget = widget.parentWidget() if isinstance(widget, QWidget) else None
    return " < ".join(parts)


def aligned(alignment, size: QSize, room: QRect) -> QRect:
    return QStyle.alignedRect(Qt.LayoutDirection.LeftToRight, alignment, size, room)


def plain(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


# --- one check per kind of widget -------------------------------------------------------------

def label_problem(label: QLabel) -> str:
    text = label.text()
    if not text or label.pixmap() is not None and not label.pixmap().isNull():
        return ""
    shown = label.displayed_text() if hasattr(label, "displayed_text") else text
    if shown != text and not (shown.endswith(ELLIPSIS) and text in label.toolTip()):
        return f"elides {text!r} to {shown!r} without the full text in its tooltip"
    room = label.contentsRect()
    m = label.margin()
    room = room.adjusted(m, m, -m, -m)
    fm = label.fontMetrics()
    indent = label.indent() if label.indent() >= 0 else (fm.horizontalAdvance("x") // 2 if label.frameWidth() else 0)
    align = label.alignment()
    if indent > 0:
        room = room.adjusted(indent if align & Qt.AlignmentFlag.AlignLeft else 0,
                             indent if align & Qt.AlignmentFlag.AlignTop else 0,
                             -indent if align & Qt.AlignmentFlag.AlignRight else 0,
                             -indent if align & Qt.AlignmentFlag.AlignBottom else 0)
    rich = label.textFormat() == Qt.TextFormat.RichText or (
        label.textFormat() == Qt.TextFormat.AutoText and QtGui.Qt.mightBeRichText(shown))  # QtGui's Qt has it
    if rich:
        doc = QTextDocument()
        doc.setDocumentMargin(0)
        doc.setDefaultFont(label.font())
        doc.setHtml(shown)
        if label.wordWrap():
            doc.setTextWidth(room.width())
        size = QSize(int(doc.idealWidth() + 0.999), int(doc.size().height() + 0.999))
        text_rect = aligned(align, size, room)
    else:
        flags = int(align.value) | (int(Qt.TextFlag.TextWordWrap.value) if label.wordWrap() else 0)
        text_rect = fm.boundingRect(room, flags, shown)
    return outside(text_rect, room, visible_rect(label))


def button_problem(button) -> str:
    text = plain(button.text())
    if not text:
        return ""
    opt = QStyleOptionButton()
    button.initStyleOption(opt)
    element = {QPushButton: QStyle.SubElement.SE_PushButtonContents, QCheckBox: QStyle.SubElement.SE_CheckBoxContents,
               QRadioButton: QStyle.SubElement.SE_RadioButtonContents}
    kind = next(k for k in element if isinstance(button, k))
    room = button.style().subElementRect(element[kind], opt, button)
    width = button.fontMetrics().horizontalAdvance(text)
    if not button.icon().isNull():
        width += button.iconSize().width() + 4
    align = Qt.AlignmentFlag.AlignCenter if kind is QPushButton else \
        Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
    return outside(aligned(align, QSize(width, button.fontMetrics().height()), room), room, visible_rect(button))


def combo_problem(combo: QComboBox) -> str:
    text = combo.currentText()
    if not text or combo.isEditable():  # an editable combo's line edit scrolls what is typed
        return ""
    opt = QStyleOptionComboBox()
    combo.initStyleOption(opt)
    room = combo.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, opt,
                                        QStyle.SubControl.SC_ComboBoxEditField, combo).adjusted(1, 0, -1, 0)
    width = combo.fontMetrics().horizontalAdvance(text)
    if not combo.itemIcon(combo.currentIndex()).isNull():
        width += combo.iconSize().width() + 4
    size = QSize(width, combo.fontMetrics().height())
    return outside(aligned(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, size, room), room,
                   visible_rect(combo))


def line_edit_problem(edit: QLineEdit) -> str:
    """A placeholder (Qt elides it silently), or a spin box's shown value."""
    spin = isinstance(edit.parentWidget(), QAbstractSpinBox)
    text = edit.text() if spin else ("" if edit.text() else edit.placeholderText())
    if not text:
        return ""
    opt = QStyleOptionFrame()
    edit.initStyleOption(opt)
    room = edit.style().subElementRect(QStyle.SubElement.SE_LineEditContents, opt, edit)
    room = room.marginsRemoved(edit.textMargins()).adjusted(2, 1, -2, -1)  # QLineEdit's own margins
    size = QSize(edit.fontMetrics().horizontalAdvance(text), edit.fontMetrics().height())
    return outside(aligned(edit.alignment(), size, room), room, visible_rect(edit))


def tab_bar_problems(bar: QTabBar) -> list[tuple[str, str]]:
    problems = []
    visible = visible_rect(bar)
    for i in range(bar.count()):
        if not bar.isTabVisible(i):
            continue
        opt = QStyleOptionTab()
        opt.initFrom(bar)
        opt.rect = bar.tabRect(i)
        opt.text = bar.tabText(i)
        opt.shape = bar.shape()
        opt.documentMode = bar.documentMode()
        opt.icon = bar.tabIcon(i)
        opt.iconSize = bar.iconSize()
        room = bar.style().subElementRect(QStyle.SubElement.SE_TabBarTabText, opt, bar)
        size = QSize(bar.fontMetrics().horizontalAdvance(plain(opt.text)), bar.fontMetrics().height())
        # Tabs scrolled out of the bar (its arrows) are cut as much as a clipped title.
        why = outside(aligned(Qt.AlignmentFlag.AlignCenter, size, room), room, visible.intersected(bar.rect()),
                      heights=False)
        if why:
            problems.append((f"tab {opt.text!r}", why))
    return problems


def dock_problem(dock: QDockWidget) -> str:
    if dock.titleBarWidget() is not None or not dock.windowTitle():
        return ""
    opt = QStyleOptionDockWidget()
    dock.initStyleOption(opt)
    room = dock.style().subElementRect(QStyle.SubElement.SE_DockWidgetTitleBarText, opt, dock)
    size = QSize(dock.fontMetrics().horizontalAdvance(opt.title), dock.fontMetrics().height())
    return outside(aligned(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, size, room), room,
                   visible_rect(dock))


def header_problems(header: QHeaderView) -> list[tuple[str, str]]:
    problems = []
    model = header.model()
    if model is None:
        return problems
    horizontal = header.orientation() == Qt.Orientation.Horizontal
    visible = visible_rect(header).intersected(header.viewport().geometry())
    fm = header.fontMetrics()
    for i in range(header.count()):
        if header.isSectionHidden(i):
            continue
        text = str(model.headerData(i, header.orientation(), Qt.ItemDataRole.DisplayRole) or "")
        pos, size = header.sectionViewportPosition(i), header.sectionSize(i)
        section = QRect(pos, 0, size, header.height()) if horizontal else QRect(0, pos, header.width(), size)
        section.translate(header.viewport().pos())
        opt = QStyleOptionHeader()
        opt.initFrom(header)
        opt.rect = section
        opt.text = text
        opt.section = i
        room = header.style().subElementRect(QStyle.SubElement.SE_HeaderLabel, opt, header) if text else section
        text_rect = aligned(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                            QSize(fm.horizontalAdvance(text), fm.height()), room)
        # A section scrolled out of the view is as hidden as a cut title: its whole width must show.
        why = outside(text_rect, room, visible) or (
            "" if visible.adjusted(-SLACK, -SLACK, SLACK, SLACK).contains(section)
            else f"section {section.left()}..{section.right()} is out of view (visible {visible.left()}.."
                 f"{visible.right()})")
        if why:
            problems.append((f"header {text!r}", why))
    return problems


def row_problems(view: QAbstractItemView) -> list[tuple[str, str]]:
    """The cells of the rows in view: their text fits, or the view elides and the cell's tooltip
    holds the text."""
    cut: dict[int, list[tuple[str, str]]] = {}
    model = view.model()
    viewport = view.viewport()
    visible = visible_rect(viewport)
    style = view.style()
    margin = style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, view) + 1
    fm = view.fontMetrics()
    y = 0
    while y < viewport.height():
        first = view.indexAt(QPoint(1, y))
        if not first.isValid():
            break
        rect = view.visualRect(first)
        y = rect.bottom() + 1
        if rect.bottom() > viewport.height():  # the last row, partly scrolled out
            break
        for column in range(model.columnCount(first.parent())):
            if isinstance(view, QTreeView) and view.isColumnHidden(column):
                continue
            index = first.siblingAtColumn(column)
            text = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
            if not text:
                continue
            cell = view.visualRect(index)
            room = cell.adjusted(margin, 0, -margin, 0)
            text_rect = aligned(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                                QSize(fm.horizontalAdvance(text), fm.height()), room)
            why = outside(text_rect, room, visible)
            if why and (view.textElideMode() == Qt.TextElideMode.ElideNone or
                        text not in str(index.data(Qt.ItemDataRole.ToolTipRole) or "") or
                        not visible.adjusted(-SLACK, -SLACK, SLACK, SLACK).contains(cell)):
                cut.setdefault(column, []).append((text, why))
    # One line a column: the first cut cell says why, the count says how many.
    return [(f"column {column}: {len(cells)} cells cut, such as {cells[0][0]!r}", cells[0][1])
            for column, cells in cut.items()]


def readout_problem(readout: Readout) -> str:
    text = readout.text()
    if not text:
        return ""
    room = readout.rect().adjusted(READOUT_MARGIN + 1, READOUT_MARGIN, -READOUT_MARGIN, -READOUT_MARGIN)
    flags = int((Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop).value)
    return outside(readout.fontMetrics().boundingRect(room, flags, text), room, visible_rect(readout))


def canvas_problem(canvas: ImageCanvas) -> str:
    if canvas.qimage is not None or not canvas.placeholder:
        return ""
    flags = int((Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap).value)
    room = canvas.rect()
    return outside(canvas.fontMetrics().boundingRect(room, flags, canvas.placeholder), room, visible_rect(canvas))


def plot_problems(view: pg.GraphicsView, measured: set | None = None) -> list[tuple[str, str]]:
    """pyqtgraph draws axes, their labels and plot titles without asking Qt's layouts: each tick
    label as the axis draws it, the axis label and the title must lie inside the visible part of
    the view, and one axis's tick labels must not overlap. ``measured`` gets the axes whose tick
    labels were measured (so a test can tell that a plot's check was not empty)."""
    problems = []
    visible = visible_rect(view.viewport())
    image = QImage(8, 8, QImage.Format.Format_ARGB32)

    def in_view(item, rect: QRectF) -> QRect:
        return view.mapFromScene(item.mapRectToScene(rect)).boundingRect()

    for item in view.scene().items():
        if not item.isVisible() or item.scene() is None:
            continue
        if isinstance(item, pg.AxisItem):
            where = f"{item.orientation} axis"
            if item.label.isVisible() and item.labelText:
                margin = item.label.document().documentMargin()  # blank around the text
                rect = in_view(item.label, item.label.boundingRect().adjusted(margin, margin, -margin, -margin))
                why = outside(rect, rect, visible)
                if why:
                    problems.append((f"{where} label {item.labelText!r}", why))
            if not item.style["showValues"]:
                continue
            painter = QPainter(image)
            try:
                specs = item.generateDrawSpecs(painter)
            finally:
                painter.end()
            if specs is None:
                continue
            texts = [(in_view(item, rect), text) for rect, _flags, text in specs[2]]
            if texts and measured is not None:
                measured.add(item)
            for rect, text in texts:
                why = outside(rect, rect, visible)
                if why:
                    problems.append((f"{where} tick {text!r}", why))
            for k, (rect, text) in enumerate(texts):
                for other, other_text in texts[k + 1:]:
                    overlap = rect.intersected(other)
                    if overlap.width() > SLACK and overlap.height() > SLACK:
                        problems.append((f"{where} ticks {text!r} and {other_text!r}", "overlap"))
        elif isinstance(item, pg.LabelItem) and item.text:
            margin = item.item.document().documentMargin()
            rect = in_view(item.item, item.item.boundingRect().adjusted(margin, margin, -margin, -margin))
            why = outside(rect, rect, visible)
            if why:
                problems.append((f"title {item.text!r}", why))
    return problems


def clipped_texts(window, seen: set, measured: set | None = None) -> list[str]:
    """Every text cut off in ``window`` as it is now, named by tab, widget and text; one in
    ``seen`` (the docks' texts, cut the same way on every tab) is said once."""
    # Text set in the last event handled has its relayout still posted: a label that is about to
    # grow would read as cut.
    QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
    tab = window.tabs.tabText(window.tabs.currentIndex())
    found = []

    def add(widget, what, why):
        if why and (id(widget), what) not in seen:
            seen.add((id(widget), what))
            found.append(f"[{tab}] {name(widget)}: {what}: {why}")

    for widget in [window, *window.findChildren(QWidget)]:
        if not widget.isVisible():
            continue
        if isinstance(widget, QLabel):
            add(widget, f"label {widget.text()!r}", label_problem(widget))
        elif isinstance(widget, (QPushButton, QCheckBox, QRadioButton)):
            add(widget, f"button {widget.text()!r}", button_problem(widget))
        elif isinstance(widget, QComboBox):
            add(widget, f"combo {widget.currentText()!r}", combo_problem(widget))
        elif isinstance(widget, QLineEdit):
            add(widget, f"line edit {widget.text() or widget.placeholderText()!r}", line_edit_problem(widget))
        elif isinstance(widget, QTabBar):
            for what, why in tab_bar_problems(widget):
                add(widget, what, why)
        elif isinstance(widget, QDockWidget):
            add(widget, f"dock title {widget.windowTitle()!r}", dock_problem(widget))
        elif isinstance(widget, QHeaderView):
            for what, why in header_problems(widget):
                add(widget, what, why)
        elif isinstance(widget, (QTreeView, QTableView)):
            for what, why in row_problems(widget):
                add(widget, what, why)
        elif isinstance(widget, Readout):
            add(widget, f"readout {widget.text()!r}", readout_problem(widget))
        elif isinstance(widget, ImageCanvas):
            add(widget, f"placeholder {widget.placeholder!r}", canvas_problem(widget))
        elif isinstance(widget, pg.GraphicsView):
            for what, why in plot_problems(widget, measured):
                add(widget, what, why)
    return found


def walk_tabs(qtbot, window, sizes=SIZES, first_looks_ms=FIRST_LOOKS_MS, measured: set | None = None) -> list[str]:
    """Every tab at every size; what is cut, and the sizes the window could not take.
    ``measured``: as in plot_problems."""
    screen = QGuiApplication.primaryScreen().geometry()
    if screen.width() < max(w for w, _ in sizes) or screen.height() < max(h for _, h in sizes):
        pytest.skip(f"the screen is {screen.width()}x{screen.height()}: too small for {sizes}")
    found = []
    docks = window.findChildren(QDockWidget)
    for width, height in sizes:
        seen = set()
        window.resize(width, height)
        window.tabs.setCurrentIndex(0)
        qtbot.wait(SETTLE_MS)
        dock_widths = [d.width() for d in docks]
        for index in range(window.tabs.count()):
            window.tabs.setCurrentIndex(index)
            qtbot.wait(SETTLE_MS)
            tab = window.tabs.tabText(index)
            if (window.width(), window.height()) != (width, height):
                found.append(f"{width}x{height} [{tab}] the window is {window.width()}x{window.height()}: its panes "
                             f"need {window.minimumSizeHint().width()}x{window.minimumSizeHint().height()}")
            # A tab that grows wider than the centre (a progress bar shown) takes the room from
            # the docks, whose panes are then squeezed, and jump as the tabs are walked.
            if [d.width() for d in docks] != dock_widths:
                dock_widths = [d.width() for d in docks]  # said once
                found.append(f"{width}x{height} [{tab}] squeezes the docks to {dock_widths} px: the centre "
                             f"needs {window.tabs.minimumSizeHint().width()} px")
            found += [f"{width}x{height} {problem}" for problem in clipped_texts(window, seen, measured)]
        views = [window.tabs.widget(i) for i in range(window.tabs.count())]
        if not first_looks_ms:
            continue
        try:
            qtbot.waitUntil(lambda: not any(getattr(v, "working", lambda: "")() for v in views),
                            timeout=first_looks_ms)
        except qtbot.TimeoutError:
            pass  # what is still working is checked as it shows now
    return found


# --- the tests --------------------------------------------------------------------------------

def test_no_text_is_cut_off_on_any_tab(qtbot, open_window):
    # The default model and size, and the tabs' first looks (a sampling run, a map, a dream)
    # that write titles and legends, as a new user sees them.
    w = open_window(size=SIZES[0], autostart=True)
    qtbot.waitUntil(lambda: w.session.result is not None, timeout=WAIT_MS)
    # A long status note, as the window writes them (an unknown tab names them all).
    names = ", ".join(w.tabs.tabText(i).lower() for i in range(w.tabs.count()))
    w.show_message(f"no tab named 'activation'; tabs are {names}")
    measured = set()
    found = walk_tabs(qtbot, w, measured=measured)
    assert not found, "text cut off:\n" + "\n".join(found)
    # The Sample tab's plot was among what was measured: both its axes' tick labels.
    sample = next(v for v in w.views if v.title == "Sample")
    assert {sample.plot.getAxis("bottom"), sample.plot.getAxis("left")} <= measured


def test_a_transformers_cls_plot_has_room_for_its_axes(qtbot, open_window):
    w = open_window(model="digits_vit", size=SIZES[0])
    qtbot.waitUntil(lambda: w.session.result is not None and w.unit_pane.prefix_plot.isVisible(), timeout=WAIT_MS)
    measured = set()
    found = walk_tabs(qtbot, w, first_looks_ms=0, measured=measured)  # first looks: the other test's
    assert not found, "text cut off:\n" + "\n".join(found)
    cls = w.unit_pane.prefix_plot
    assert {cls.getAxis("bottom"), cls.getAxis("left")} <= measured


def test_the_checks_see_a_cut_label_a_cut_axis_and_an_elided_one(qtbot):
    """The walker's checks on their own: a label narrower than its text, one cut by its parent,
    a header section out of view and overlapping tick labels are found; an eliding label with
    its tooltip is not."""
    from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem

    host = QWidget()
    qtbot.addWidget(host)
    host.resize(300, 200)
    narrow = QLabel("a label far wider than its forty pixels", host)
    narrow.setGeometry(0, 0, 40, 20)
    cut = QLabel("cut by the parent", host)
    cut.setGeometry(260, 30, 200, 20)
    fits = QLabel("fits", host)
    fits.setGeometry(0, 60, 100, 20)
    tree = QTreeWidget(host)
    tree.setGeometry(0, 90, 120, 100)
    tree.setHeaderLabels(["name", "type", "output"])
    for c in range(3):
        tree.header().resizeSection(c, 60)
    tree.addTopLevelItem(QTreeWidgetItem(["a", "b", "c"]))
    host.show()
    qtbot.waitExposed(host)
    assert label_problem(narrow).startswith("needs")
    assert "visible" in label_problem(cut)
    assert label_problem(fits) == ""
    assert any("out of view" in why for _what, why in header_problems(tree.header()))

    from deepvis.widgets.panes.elidedlabel import ElidedLabel

    note = "a note far too long for sixty pixels"
    elided = ElidedLabel(parent=host)
    elided.setGeometry(0, 100, 60, 20)
    elided.setText(note)
    elided.show()
    assert elided.displayed_text().endswith(ELLIPSIS) and elided.toolTip() == note
    assert label_problem(elided) == ""
    elided.resize(300, 20)  # all of it shows: no tooltip needed
    assert elided.displayed_text() == note and elided.toolTip() == ""

    class ElidesWithoutTooltip(QLabel):
        def displayed_text(self):
            return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, self.width())

    silent = ElidesWithoutTooltip(note, host)
    silent.setGeometry(0, 130, 60, 20)
    silent.show()
    assert "tooltip" in label_problem(silent)

    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    plot.resize(200, 40)
    plot.setYRange(0, 100)
    plot.getAxis("left").setStyle(hideOverlappingLabels=False, autoExpandTextSpace=False)
    plot.getAxis("left").setTickSpacing(major=5, minor=1)
    plot.show()
    qtbot.waitExposed(plot)
    assert any("overlap" in why for _what, why in plot_problems(plot))
