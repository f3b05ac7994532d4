"""What a new user meets first: each bundled model on its own kind of input, and every tab full
(its content, or a visible progress bar saying what it is doing) without a button pressed."""

import pytest

pytest.importorskip("PySide6")
from deepvis.widgets.window import qtenv  # noqa: E402,F401
from PySide6.QtWidgets import QProgressBar  # noqa: E402

from deepvis.resources import FIRST_PHOTO, SAMPLE_SETS, sample_set_of  # noqa: E402
from deepvis.widgets.panes.imagepanel import ImagePanel  # noqa: E402
from test_gui import WAIT_MS, open_window, private_settings  # noqa: E402,F401


def _view(window, title):
    return next(v for v in window.views if v.title == title)


def _model_loaded(qtbot, window, name):
    qtbot.waitUntil(lambda: window.session.state is not None and window.session.state.model.name == name,
                    timeout=WAIT_MS)


def _visible_progress(view) -> list[str]:
    return [bar.format() or bar.text() for bar in view.findChildren(QProgressBar) if bar.isVisible()]


def _waiting_panels(view) -> list[str]:
    return [p.canvas.placeholder for p in view.findChildren(ImagePanel)
            if p.isVisible() and p.canvas.qimage is None and p.canvas.placeholder.startswith("waiting")]


def test_bundled_models_open_on_their_own_input_and_switch_back(qtbot, open_window):
    w = open_window(model="digits_fcn", autostart=True)
    s = w.session
    assert sample_set_of(s.source_spec).kind == "scenes"
    segmentation = _view(w, "Segmentation")
    assert segmentation.truth_file == SAMPLE_SETS["scenes"].truth and segmentation.truth_bundled
    # A still picture gives one result, which may be in already.
    qtbot.waitUntil(lambda: s.result is not None, timeout=WAIT_MS)
    assert s.result.frame.name.startswith("scene-")

    w.load_model("digits_cnn")
    _model_loaded(qtbot, w, "digits_cnn")
    qtbot.waitUntil(lambda: s.result is not None and s.result.frame.name.startswith("digit-")
                    and s.result.model_input.shape[:2] == (8, 8), timeout=WAIT_MS)
    # The digit shown is read as the digit its file is named for.
    assert s.result.summary.predictions[0].label == s.result.frame.name.split("-")[1][0]
    assert segmentation.truth_file is None  # the scenes' truth went with the scenes

    w.load_model("efficientnet_lite0")
    _model_loaded(qtbot, w, "efficientnet_lite0")
    qtbot.waitUntil(lambda: s.result is not None and s.result.frame.name == FIRST_PHOTO, timeout=WAIT_MS)

    # Bundled digits opened from File > Samples give way to the next model's own input.
    w.open_sample("digits")
    w.load_model("digits_vit")
    _model_loaded(qtbot, w, "digits_vit")
    qtbot.waitUntil(lambda: sample_set_of(s.source_spec).kind == "mosaics", timeout=WAIT_MS)  # listed off-thread
    assert _view(w, "Attention").load_vit.isHidden()

    # A tab that does not apply offers, in one click, a bundled model it applies to.
    assert not segmentation.load_segmenter.isHidden()
    segmentation.load_segmenter.click()
    _model_loaded(qtbot, w, "digits_fcn")
    qtbot.waitUntil(lambda: sample_set_of(s.source_spec).kind == "scenes", timeout=WAIT_MS)
    assert segmentation.load_segmenter.isHidden()
    assert not _view(w, "Attention").load_vit.isHidden()


def test_every_tab_is_full_at_first_look(qtbot, open_window):
    w = open_window(model="digits_cnn", autostart=True)
    qtbot.waitUntil(lambda: w.session.result is not None, timeout=WAIT_MS)  # a still digit: one result
    sample = _view(w, "Sample")
    sample.speed.setCurrentText("as fast as it runs")  # its first look paces pictures over 3 s
    dream = _view(w, "Dream")
    dream.octaves.setValue(1)  # a short dream: its run holds the compute thread the others wait for
    dream.steps.setValue(3)
    for index in range(w.tabs.count()):
        w.tabs.setCurrentIndex(index)
        view = w.tabs.widget(index)
        # Work under way is said in a visible progress bar; then the next tab (the work goes on).
        assert not view.working() or _visible_progress(view), (view.title, view.working())
        assert not _waiting_panels(view) or view.working(), (view.title, _waiting_panels(view))

    # The first look's runs can be cancelled: the digits map (t-SNE of 1,797 points) is, here.
    embedding = _view(w, "Embedding")
    assert embedding._cancel is not None or embedding.map is not None
    embedding.stop()

    def settled():
        return not any(view.working() for view in w.views)

    qtbot.waitUntil(settled, timeout=WAIT_MS)
    for view in w.views:
        w.tabs.setCurrentWidget(view)
        assert not _waiting_panels(view), (view.title, _waiting_panels(view))

    # The tabs that showed nothing until a button was pressed started a run by themselves.
    assert dream.image is not None and dream.steps_seen >= 1
    assert sample.pictures is not None and len(sample.pictures) == sample.count.value()
    latent = _view(w, "Latent")
    assert latent.generator is not None and latent.current_image is not None
    assert not embedding.progress.isVisible() and embedding._cancel is None
    assert _view(w, "Receptive field").query is not None
    correspondence = _view(w, "Correspondence")  # the bundled photo, a view of it, a point matched
    assert correspondence.answer is not None and correspondence.described.score is not None


def test_first_look_runs_stay_off_when_asked(qtbot, open_window):
    w = open_window(model="digits_cnn", autostart=False)  # as the GUI benchmark opens it
    qtbot.waitUntil(lambda: w.session.result is not None, timeout=WAIT_MS)
    dream = _view(w, "Dream")
    w.tabs.setCurrentWidget(dream)
    qtbot.wait(200)
    assert dream.image is None and dream._cancel is None


def test_random_weights_are_said_in_the_window_title_and_over_the_predictions(qtbot, open_window):
    w = open_window(model="digits_cnn", weights="none")
    assert w.windowTitle() == "deepvis · digits_cnn · random weights"
    assert w.predictions.random
    w.load_model("digits_cnn")
    qtbot.waitUntil(lambda: w.windowTitle() == "deepvis · digits_cnn · bundled weights", timeout=WAIT_MS)
    assert not w.predictions.random


def test_the_window_title_says_where_the_weights_came_from(qtbot, open_window):
    w = open_window(model="digits_cnn", autostart=False)
    assert w.windowTitle() == "deepvis · digits_cnn · bundled weights"
