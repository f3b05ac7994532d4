"""The unit pane's offline pictures: "Compute for this layer" fills the selected unit's optimized
image and top-k patches with progress, Stop keeps what finished, and a computed layer shows at
once later (from the cache), for the grayscale digits model and the bundled ImageNet model."""

import numpy as np
import pytest

pytest.importorskip("PySide6")
from deepvis.widgets.window import qtenv  # noqa: E402,F401

from deepvis.io.datasets import digits_dataset  # noqa: E402
from deepvis.optimize.profiles import profile_units  # noqa: E402
from deepvis.render.tiling import picture_grid  # noqa: E402
from deepvis.optimize.unitviz import UnitVisualizer  # noqa: E402
from deepvis.widgets.panes import unitpictures  # noqa: E402
from test_gui import WAIT_MS, open_window, private_settings  # noqa: E402,F401


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPVIS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(unitpictures, "VIZ_STEPS", 24)


@pytest.mark.slow
def test_compute_a_layer_then_browse_its_units(qtbot, open_window):
    w = open_window(model="digits_cnn", input_spec="pattern")
    pictures = w.unit_pane.pictures
    qtbot.waitUntil(lambda: w.session.result is not None, timeout=WAIT_MS)
    w.session.set_layer("conv2")
    w.session.set_unit(3)
    qtbot.wait(300)
    assert pictures.optimized.data is None and pictures.top.data is None  # nothing cached yet
    progress = []
    pictures._posted_progress.connect(progress.append)
    pictures.compute.click()
    qtbot.waitUntil(lambda: pictures.compute.isEnabled(), timeout=4 * WAIT_MS)
    assert progress == sorted(progress) and progress[-1] == pytest.approx(1.0) and len(progress) >= 8

    # The pictures shown are the selected unit's own: its row of the profiles and its image.
    state = w.session.state
    expected = profile_units(state.model, digits_dataset(), "conv2", k=unitpictures.TOP_K, use_cache=False)
    np.testing.assert_array_equal(pictures.profiles.items[3], expected.items[3])
    np.testing.assert_array_equal(pictures.top.data, picture_grid(expected.patches[3], 3, border=1, fill=30))
    np.testing.assert_array_equal(pictures.optimized.data, pictures.viz.images[3])
    viz = UnitVisualizer(state.model, state.probe)
    gray = np.full(pictures.viz.images.shape[1:3], 128, np.uint8)
    raised = [viz.value_of(pictures.viz.images[u], "conv2", u) > viz.value_of(gray, "conv2", u) for u in range(64)]
    assert sum(raised) >= 60  # the optimization works for nearly every unit of a grayscale model

    w.session.set_unit(40)
    np.testing.assert_array_equal(pictures.optimized.data, pictures.viz.images[40])
    np.testing.assert_array_equal(pictures.top.data, picture_grid(expected.patches[40], 3, border=1, fill=30))

    # Another layer has nothing; coming back shows the computed layer at once, from the cache.
    w.session.set_layer("conv1")
    qtbot.waitUntil(lambda: pictures.optimized.data is None, timeout=WAIT_MS)
    w.session.set_layer("conv2")
    qtbot.waitUntil(lambda: pictures.viz is not None and pictures.profiles is not None, timeout=WAIT_MS)
    assert pictures.viz.done.all()


@pytest.mark.slow
def test_stop_keeps_the_finished_batches_and_compute_resumes(qtbot, open_window, monkeypatch):
    # Steps only set how long a batch runs: this test is about which batches finish, not the pictures.
    monkeypatch.setattr(unitpictures, "VIZ_STEPS", 10)
    w = open_window(model="efficientnet_lite0", input_spec="pattern")
    pictures = w.unit_pane.pictures
    qtbot.waitUntil(lambda: w.session.result is not None, timeout=WAIT_MS)
    w.session.set_layer("_blocks.1")
    w.session.set_unit(13)
    pictures.compute.click()
    # The selected unit's batch comes first.
    qtbot.waitUntil(lambda: pictures.optimized.data is not None, timeout=4 * WAIT_MS)
    pictures.stop.click()
    qtbot.waitUntil(lambda: pictures.compute.isEnabled(), timeout=WAIT_MS)
    done = pictures.viz.done.copy()
    assert done[8:16].all() and not done.all()
    assert pictures.top.data is not None  # the profiles finished before the optimization began
    kept = pictures.viz.images[13].copy()
    pictures.compute.click()
    qtbot.waitUntil(lambda: pictures.compute.isEnabled(), timeout=8 * WAIT_MS)
    assert pictures.viz.done.all()
    np.testing.assert_array_equal(pictures.viz.images[13], kept)  # resumed, not redone
