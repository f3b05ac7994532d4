"""Every probe-able layer with its type and output shape; click or u/o to choose."""

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLineEdit, QStyledItemDelegate, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

from deepvis.core.probe import PLUMBING


# The type column is at most this type's width (and its cell margins): a longer type
# (Conv2dStaticSamePadding, MultiheadAttention) is cut at its end, whole in the tooltip. The
# name needs the room more: at the dock's default 350 px, a type column for MultiheadAttention
# cut _blocks.6._depthwise_conv to "..._depthwise_conv", block number and all.
WIDEST_TYPE = "BatchNorm2d"
TYPE_MARGINS = 12


class _ElideRight(QStyledItemDelegate):
    """Types are told apart by their start (Conv2d...), unlike names (the view's ElideLeft)."""

    def initStyleOption(self, option, index) -> None:
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideRight


class LayerList(QWidget):
    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("filter layers (name or type)")
        self.filter.setClearButtonEnabled(True)
        self.show_all = QCheckBox("all")
        self.show_all.setToolTip("also list pass-through layers (" + ", ".join(sorted(PLUMBING)) + ")")
        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["layer", "type", "output"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        # All three columns show in the dock's width: type and output take their contents' width
        # and the name the rest. Names differ at their ends (_blocks.6._depthwise_conv vs
        # _blocks.7._depthwise_conv), so a long one is cut from the left, never the block number
        # in the middle; its tooltip holds the whole name. (Sized to the longest name, the name
        # column pushed the output column out of the dock, behind a sideways scroll.)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideLeft)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, header.ResizeMode.Stretch)
        header.setSectionResizeMode(1, header.ResizeMode.Fixed)  # its contents' width, at most WIDEST_TYPE's
        header.setSectionResizeMode(2, header.ResizeMode.ResizeToContents)
        self.tree.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._type_delegate = _ElideRight(self.tree)
        self.tree.setItemDelegateForColumn(1, self._type_delegate)
        # Keys belong to the window (u/o, arrows move the unit, like the toolbox).
        self.tree.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(self.filter, 1)
        row.addWidget(self.show_all)
        layout.addLayout(row)
        layout.addWidget(self.tree, 1)
        self._items: dict[str, QTreeWidgetItem] = {}
        session.modelChanged.connect(self.populate)
        session.layerChanged.connect(self.select)
        self.tree.itemClicked.connect(lambda item, _c: session.set_layer(item.data(0, Qt.ItemDataRole.UserRole)))
        self.filter.textChanged.connect(self._apply_filter)
        self.show_all.toggled.connect(lambda _on: self._apply_filter(self.filter.text()))

    def populate(self, state) -> None:
        self.tree.clear()
        self._items = {}
        for layer in state.probe.layers:
            item = QTreeWidgetItem([layer.name, layer.type_name, "x".join(map(str, layer.shape))])
            item.setData(0, Qt.ItemDataRole.UserRole, layer.name)
            for column in range(3):  # the full name, type and shape, whatever the columns show
                item.setToolTip(column, layer.describe())
            self._items[layer.name] = item
        self.tree.addTopLevelItems(list(self._items.values()))
        widest = self.tree.fontMetrics().horizontalAdvance(WIDEST_TYPE) + TYPE_MARGINS
        header = self.tree.header()
        header.resizeSection(1, min(max(self.tree.sizeHintForColumn(1), header.sectionSizeHint(1)), widest))
        self._apply_filter(self.filter.text())
        self.tree.setToolTip(state.probe.unavailable_reason or "")

    def select(self, name: str) -> None:
        item = self._items.get(name)
        if item is not None:
            self.tree.setCurrentItem(item)
            self.tree.scrollToItem(item)

    def _apply_filter(self, text: str) -> None:
        text = text.strip().lower()
        show_all = self.show_all.isChecked()
        for name, item in self._items.items():
            plumbing = item.text(1) in PLUMBING and not show_all
            item.setHidden(plumbing or (bool(text) and text not in name.lower() and text not in item.text(1).lower()))
