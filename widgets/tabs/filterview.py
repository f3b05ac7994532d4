"""Filters: first-layer weights as RGB tiles, any conv layer's weights per input channel."""

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout

from deepvis.live.computethread import compute_thread
from deepvis.errors import DeepvisError
from deepvis.render.tiling import filter_sheet
from deepvis.widgets.panes.imagepanel import ImagePanel
from deepvis.widgets.window.views import View, register_view

MAX_FILTERS = 256


@register_view
class FilterView(View):
    title = "Filters"
    order = 10
    _sheet_ready = Signal(object, str)

    def __init__(self, session, parent=None):
        super().__init__(session, parent)
        self.layers = QComboBox()
        self.layers.setMinimumWidth(260)
        self.info = QLabel("")
        self.panel = ImagePanel("Filters", placeholder="no convolution weights")
        bar = QHBoxLayout()
        bar.addWidget(QLabel("conv layer"))
        bar.addWidget(self.layers)
        bar.addWidget(self.info, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.panel, 1)
        session.modelChanged.connect(self.populate)
        self.layers.currentTextChanged.connect(self.show_layer)
        self._sheet_ready.connect(self._show_sheet)

    def populate(self, state) -> None:
        self.layers.blockSignals(True)
        self.layers.clear()
        names = [n[: -len(".weight")] for n, p in state.model.module.named_parameters()
                 if n.endswith(".weight") and p.ndim in (3, 4)]
        self.layers.addItems(names)
        self.layers.blockSignals(False)
        if names:
            self.show_layer(names[0])
        else:
            self.panel.clear("this model has no convolution weights")

    def show_layer(self, name: str) -> None:
        state = self.session.state
        if state is None or not name:
            return
        params = dict(state.model.module.named_parameters())

        def work():
            w = params[f"{name}.weight"].detach().float().cpu().numpy()
            sheet, _ = filter_sheet(w, max_filters=MAX_FILTERS)
            return sheet, w.shape

        def done(future):
            if future.cancelled():  # the window closed first
                return
            try:
                sheet, shape = future.result()
                self._sheet_ready.emit(sheet, f"{'x'.join(map(str, shape))}"
                                              + (f" (first {MAX_FILTERS} filters)" if shape[0] > MAX_FILTERS else ""))
            except DeepvisError as exc:
                self._sheet_ready.emit(None, str(exc))
            except Exception as exc:  # a strange weight tensor: say so instead of showing the old sheet
                self._sheet_ready.emit(None, f"cannot show {name}: {type(exc).__name__}: {exc}")

        compute_thread().submit(work).add_done_callback(done)

    def _show_sheet(self, sheet, text: str) -> None:
        self.info.setText(text)
        if sheet is None:
            self.panel.clear(text)
        elif sheet.ndim == 3:
            self.panel.set_rgb(np.clip(np.nan_to_num(sheet, nan=0.12) * 255 + 0.5, 0, 255).astype(np.uint8))
        else:
            self.panel.set_map(sheet, (0.0, 1.0), "gray")
