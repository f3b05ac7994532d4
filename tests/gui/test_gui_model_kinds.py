"""Models as users bring them, in the window (issue 29): a detector's detections listed and
framed while its activations show, the output read chosen in the window, and a model with one
probability per window plotted over time against a threshold."""

import wave

import numpy as np
import pytest

pytest.importorskip("PySide6")
import torch  # noqa: E402

from deepvis.io.images import write_image  # noqa: E402
from deepvis.live.computethread import compute_thread  # noqa: E402
from test_gui import WAIT_MS, open_window, private_settings  # noqa: E402,F401
from testnets import FIXTURES  # noqa: E402

# torch 2.14 warns on every torch.jit call; time_vad.pt is a TorchScript file on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*deprecated:FutureWarning")


def test_a_detector_lists_and_frames_its_detections_and_its_activations_show(qtbot, open_window, tmp_path):
    path = tmp_path / "scene.png"
    write_image(path, (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8))
    w = open_window(model="testnets:tiny_detector", input_spec=str(path))
    s = w.session
    qtbot.waitUntil(lambda: s.result is not None and s.result.summary.kind == "detection", timeout=WAIT_MS)
    result = s.result
    assert result.grid is not None and np.isfinite(result.grid).any()  # the activations still show
    x = torch.from_numpy(s.state.model.preprocessor.array(result.frame.image))[None]
    own = compute_thread().call(lambda: _inferred(s.state.model.module, x)[0])
    best = sorted(own["scores"].tolist(), reverse=True)
    assert [d.score for d in result.summary.detections] == pytest.approx(best, abs=1e-6)
    qtbot.waitUntil(lambda: w.predictions.kind == "detection" and len(w.predictions.rows) == 5, timeout=WAIT_MS)
    seen = w.input_pane.seen.data
    k = seen.shape[0] // 64  # drawn on the input enlarged by whole pixels
    plain = result.model_input.repeat(k, 0).repeat(k, 1)
    assert seen.shape == plain.shape and (seen != plain).any()  # the boxes are drawn
    assert not w.head_selector.isVisible()  # a detector's one output: nothing to choose


def test_the_output_read_is_chosen_in_the_window(qtbot, open_window, tmp_path):
    path = tmp_path / "noise.png"
    write_image(path, (np.random.default_rng(1).random((24, 24, 3)) * 255).astype(np.uint8))
    w = open_window(model="testnets:ThreeHeads", input_spec=str(path), model_options={"input_size": (24, 24)})
    s = w.session
    qtbot.waitUntil(lambda: s.result is not None and len(s.result.summary.predictions) == 2, timeout=WAIT_MS)
    combo = w.head_selector.combo
    assert w.head_selector.isVisible() and combo.count() == 3 and combo.currentData() == "output[2]"
    combo.activated.emit(1)  # the landmarks, as a user's pick: read as class logits
    qtbot.waitUntil(lambda: s.state.model.head.name == "output[1]" and s.result is not None
                    and len(s.result.summary.predictions) == 5, timeout=WAIT_MS)
    x = torch.from_numpy(s.state.model.preprocessor.array(s.result.frame.image))[None]
    logits = compute_thread().call(lambda: _inferred(s.state.model.module, x)[1][0])
    expected = torch.softmax(logits, 0).topk(5)
    got = s.result.summary.predictions
    assert [p.index for p in got] == expected.indices.tolist()
    np.testing.assert_allclose([p.score for p in got], expected.values.numpy(), atol=1e-5)


def _inferred(module, x):
    with torch.inference_mode():
        return module(x)


def test_one_probability_per_window_plays_as_a_timeline_with_a_threshold(qtbot, open_window, tmp_path):
    t = np.arange(3 * 16000) / 16000
    tone = (0.8 * np.sin(2 * np.pi * 440 * t) * (t >= 1.5)).astype(np.float32)  # silence, then a loud tone
    path = tmp_path / "half.wav"  # a .wav is a recording whatever model is loaded (a .npy may be a point cloud)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((tone * 32767).astype("<i2").tobytes())
    w = open_window(model=str(FIXTURES / "time_vad.pt"), input_spec=str(path),
                    model_options={"call_args": {"sr": 16000}, "input_size": (512, 512), "sample_rate": 16000,
                                   "input_kind": "signal"})
    view = next(v for v in w.views if v.title == "Signals")
    qtbot.waitUntil(lambda: view.player is not None, timeout=WAIT_MS)
    assert view.one_value and view.timeline_columns() == ["output"]
    view.speed.setCurrentText("as fast as it runs")
    view.hop.setValue(512)
    qtbot.waitUntil(lambda: len(view.timeline) >= 60, timeout=WAIT_MS)
    assert view.threshold.value() == pytest.approx(0.5) and view.threshold in view.classes_plot.items()
    model = torch.jit.load(str(FIXTURES / "time_vad.pt"))
    for start in sorted(view.timeline)[:60]:
        window = torch.from_numpy(view.player.data[:1, start:start + 512].copy())
        with torch.inference_mode():
            expected = float(model(window, 16000)[0, 0])
        assert view.timeline[start][0] == pytest.approx(expected, abs=1e-5)
    quiet = [view.timeline[s][0] for s in view.timeline if s + 512 <= 16000]
    loud = [view.timeline[s][0] for s in view.timeline if s >= 24000]
    assert quiet and loud and max(quiet) < 0.5 < min(loud)  # either side of the threshold
    qtbot.waitUntil(lambda: "threshold 0.5" in view.predictions.text(), timeout=WAIT_MS)
