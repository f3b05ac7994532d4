"""The Dream tab: dream the current frame with the selected layer, watch steps, stop,
continue, save, and send the dream back as the input."""

import numpy as np
import pytest

pytest.importorskip("PySide6")
from deepvis.widgets.window import qtenv  # noqa: E402,F401

from deepvis.optimize.dream import Dreamer  # noqa: E402
from deepvis.io.images import read_image  # noqa: E402
from deepvis.resources import sample_image  # noqa: E402
from test_gui import WAIT_MS, open_window, private_settings  # noqa: E402,F401


def test_dream_stop_continue_save_use(qtbot, open_window, tmp_path):
    w = open_window(model="efficientnet_lite0", input_spec=str(sample_image("coffee")))
    view = next(v for v in w.views if v.title == "Dream")
    w.tabs.setCurrentWidget(view)
    qtbot.waitUntil(lambda: w.session.result is not None, timeout=WAIT_MS)
    w.session.set_layer("_blocks.6")
    view.octaves.setValue(2)
    view.steps.setValue(4)
    view.start()
    qtbot.waitUntil(lambda: view.dream.isEnabled() and view.steps_seen >= 8, timeout=WAIT_MS)
    frame = w.session.result.frame.image
    assert view.image.shape == frame.shape
    settings = view.settings()
    dreamer = Dreamer(w.session.state.model, w.session.state.probe)
    assert dreamer.score(view.image, settings) > 1.2 * dreamer.score(frame, settings)

    # Continue dreams on from the dream; Stop ends it between steps.
    seen = view.steps_seen
    view.steps.setValue(50)
    view.start(from_frame=False)
    qtbot.waitUntil(lambda: view.steps_seen >= seen + 2, timeout=WAIT_MS)
    view.halt()
    qtbot.waitUntil(lambda: view.dream.isEnabled(), timeout=WAIT_MS)
    assert view.steps_seen < seen + 100

    view.save_png(str(tmp_path / "dream.png"))
    np.testing.assert_array_equal(read_image(tmp_path / "dream.png"), view.image)
    dreamed = view.image.copy()
    view.use_as_input()
    qtbot.waitUntil(lambda: w.session.result is not None and w.session.result.frame.name == "deepvis-dream-input.png",
                    timeout=WAIT_MS)
    np.testing.assert_array_equal(w.session.result.frame.image, dreamed)
