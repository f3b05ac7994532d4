"""The output a model's predictions read, for models with several (``--head`` in the window).

Hidden for a model with one output. Each item names an output as ``deepvis info`` prints it,
with its shape and the activation it came out of; choosing one re-reads the model's outputs on
the compute thread (a dry run) and every view follows.
"""

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget


class HeadSelector(QWidget):
    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.combo = QComboBox()
        self.combo.setToolTip("the output that predictions, saliency targets and the dense views read "
                              "(the others are shown as values)")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addWidget(QLabel("Prediction from"))
        layout.addWidget(self.combo, 1)
        self.combo.activated.connect(self._chosen)
        session.modelChanged.connect(self._model_changed)
        self.setVisible(False)

    def _model_changed(self, state) -> None:
        model = state.model
        outputs = model.outputs
        self.combo.blockSignals(True)
        self.combo.clear()
        for o in outputs:
            how = f", {o.activation}" if o.activation else ""
            self.combo.addItem(f"{o.name}  ({'x'.join(map(str, o.shape)) or 'scalar'}{how})", o.name)
        names = [o.name for o in outputs]
        if model.head.name in names:
            self.combo.setCurrentIndex(names.index(model.head.name))
        self.combo.blockSignals(False)
        self.setVisible(len(outputs) > 1 and not model.head.detections)

    def _chosen(self, index: int) -> None:
        name = self.combo.itemData(index)
        if name:
            self.session.set_head(name)
