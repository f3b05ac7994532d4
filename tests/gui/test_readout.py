"""A readout's text changes every frame without relayouting the widgets above it, as a
QLabel's does (counted live: the unit pane, its dock, the splitter and the main window
relayouted once a frame for the stats label)."""

import pytest

pytest.importorskip("PySide6")
from deepvis.widgets.window import qtenv  # noqa: E402,F401

from PySide6.QtCore import QCoreApplication, QEvent, QObject  # noqa: E402
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget  # noqa: E402

from deepvis.widgets.panes.readout import Readout  # noqa: E402


class LayoutRequests(QObject):
    def __init__(self):
        super().__init__()
        self.count = 0

    def eventFilter(self, _obj, event):
        if event.type() == QEvent.Type.LayoutRequest:
            self.count += 1
        return False


def _requests_for(qtbot, widget) -> tuple[int, QWidget]:
    parent = QWidget()
    qtbot.addWidget(parent)
    layout = QVBoxLayout(parent)
    layout.addWidget(widget)
    layout.addWidget(QLabel("below"))
    parent.resize(300, 120)
    parent.show()
    qtbot.waitExposed(parent)
    # Posted events are delivered at once, not after a wait: what showing asked for first, then
    # each text change's requests, however slow the machine.
    QCoreApplication.sendPostedEvents()
    counter = LayoutRequests()
    parent.installEventFilter(counter)
    for i in range(10):
        widget.setText(f"max {1.5 ** i:.4g} at (y {i}, x {i * 7})\nmean {i / 3:.4g}")
        QCoreApplication.sendPostedEvents()
    parent.removeEventFilter(counter)
    return counter.count, parent


def test_readout_text_changes_ask_no_relayout_where_a_label_does(qtbot):
    label_requests, _ = _requests_for(qtbot, QLabel("\n"))
    readout = Readout(lines=2)
    readout_requests, parent = _requests_for(qtbot, readout)
    assert label_requests >= 5  # the control: the same texts in a QLabel
    assert readout_requests == 0
    assert readout.text().startswith("max 38.44 at (y 9, x 63)")
    # The text is drawn: the readout's pixels are not all its background.
    image = readout.grab().toImage()
    colours = {image.pixel(x, y) for x in range(0, image.width(), 2) for y in range(image.height())}
    assert len(colours) > 2
    # Two lines fit its fixed height.
    assert readout.height() >= 2 * readout.fontMetrics().lineSpacing()


def test_a_readouts_width_comes_from_its_sample_not_its_text(qtbot):
    short, long = Readout(sample="9.9 fps"), Readout(sample="capture 00.0  forward 000.0  render 00.0 ms")
    for readout in (short, long):
        qtbot.addWidget(readout)
    assert long.sizeHint().width() > 2 * short.sizeHint().width()
    hint = long.sizeHint()
    long.setText("x" * 200)
    assert long.sizeHint() == hint
