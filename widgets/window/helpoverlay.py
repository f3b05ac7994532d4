"""The keyboard help shown over the window with h."""

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

KEYS = [
    ("arrows", "move the unit cursor in the activation grid"),
    ("u / o", "previous / next layer"),
    ("z", "zoom: whole grid, unit neighbourhood, unit"),
    ("f", "freeze the current frame"),
    ("c", "camera on / off"),
    ("e / w", "next / previous file (folders, videos)"),
    ("m", "mirror the input"),
    ("n", "normalize per layer / per channel"),
    ("b", "next back-prop mode: off, gradient, deconv, guided, IG, SmoothGrad, Grad-CAM"),
    ("h", "show / hide this help"),
    ("q", "quit"),
    ("mouse", "click a tile to select its unit, a layer in the list to show it, a prediction bar to explain that class; drop files to open them"),
]


class HelpOverlay(QLabel):
    def __init__(self, parent):
        super().__init__(parent)
        rows = "".join(f"<tr><td style='padding-right:18px'><b>{k}</b></td><td>{v}</td></tr>" for k, v in KEYS)
        self.setText(f"<h3>deepvis keys</h3><table>{rows}</table><p>Press h to close.</p>")
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setStyleSheet("background: rgba(20, 20, 24, 225); color: #eee; padding: 18px; border-radius: 8px;")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.hide()

    def toggle(self) -> None:
        if self.isVisible():
            self.hide()
            return
        self.adjustSize()
        parent = self.parentWidget()
        self.move((parent.width() - self.width()) // 2, (parent.height() - self.height()) // 3)
        self.raise_()
        self.show()
