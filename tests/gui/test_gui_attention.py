"""The Attention tab driven like a user would, on small vision transformers built here: the map
shown for each block, head, the mean of the heads and rollout equals the engine's captured
attention (and a rollout written out here) for the frame the model saw; a real click on a patch
makes it the query and shows its row; a thumbnail picks a head; the prefix tokens' share is
reported; the export writes the picture and the grid-sized map; the capture waits until the
tab is shown; a CNN gets the placeholder, not an error."""

import time

import numpy as np
import pytest

pytest.importorskip("PySide6")
from deepvis.widgets.window import qtenv  # noqa: E402,F401
from PySide6.QtCore import Qt  # noqa: E402

import torch  # noqa: E402

from deepvis.attribution.attention import capture_attention, rollout  # noqa: E402
from deepvis.io.images import read_image, write_image  # noqa: E402
from deepvis.live.computethread import compute_thread  # noqa: E402
from deepvis.widgets.tabs.attentionview import OUTLINE, ROLLOUT  # noqa: E402
from test_gui import WAIT_MS, open_window, private_settings  # noqa: E402,F401

TIGHT = {"rtol": 1e-5, "atol": 1e-7}


def vit():
    """A two-block torchvision ViT on 32x32 pictures, 8x8 patches (a 4x4 grid) and a CLS token
    (loaded by the window as ``test_gui_attention:vit``)."""
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    net = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32,
                            num_classes=10)
    torch.nn.init.normal_(net.heads.head.weight)  # torchvision starts the head at zero
    return net


@pytest.fixture
def picture(tmp_path):
    """A still picture (one frame, one serial): a gradient with a bright square and a dark bar."""
    y, x = np.mgrid[:64, :64]
    image = np.stack([x * 4, y * 4, np.full_like(x, 90)], -1).astype(np.uint8)
    image[8:28, 36:56] = 255
    image[40:48, 4:60] = 0
    path = tmp_path / "still.png"
    write_image(path, image)
    return str(path)


def attention_view(window, show=True):
    view = next(v for v in window.views if v.title == "Attention")
    if show:
        window.tabs.setCurrentWidget(view)
    return view


def engine_attention(window, view):
    """The engine's attention for the frame the view captured, computed here on the compute thread."""
    state = window.session.state
    x = state.model.input_tensor(view.captured.frame.image)
    return compute_thread().call(lambda: capture_attention(state.model.module, x))[1]


def rollout_rows(probabilities):
    """Every row of attention rollout (heads' mean, 0.5 residual, rows renormalized), in numpy."""
    result = np.eye(probabilities[0].shape[-1])
    for a in probabilities:
        a = a[0].numpy().astype(np.float64).mean(0)
        a = 0.5 * a + 0.5 * np.eye(len(a))
        a = a / a.sum(1, keepdims=True)
        result = a @ result
    return result


def pick(view, block, head=None):
    """The block (an index, or ROLLOUT) and head (None: the mean) in the combos."""
    view.block.setCurrentIndex(view.block.findData(ROLLOUT) if block == ROLLOUT else block)
    if head is not None or view.head.isEnabled():
        view.head.setCurrentIndex(0 if head is None else head + 1)


def click_patch(qtbot, view, row, col):
    """A real left click at the centre of patch (row, col) of the picture."""
    c = view.captured
    h, w = c.model_input.shape[:2]
    x, y = (col + 0.5) * w / c.grid[1], (row + 0.5) * h / c.grid[0]
    at = view.panel.canvas.image_to_widget(x, y).toPoint()
    qtbot.mouseClick(view.panel.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)


def test_blocks_heads_rollout_and_patch_queries_of_a_torchvision_vit(qtbot, open_window, picture, tmp_path):
    w = open_window(model="test_gui_attention:vit", model_options={"input_size": (32, 32)}, input_spec=picture)
    view = attention_view(w)
    qtbot.waitUntil(lambda: view.captured is not None, timeout=WAIT_MS)
    assert view.captured.frame.serial == w.session.result.frame.serial
    att = engine_attention(w, view)
    p = [a.float() for a in att.probabilities]
    assert view.captured.layers == att.layers == tuple(f"encoder.layers.encoder_layer_{i}.self_attention"
                                                       for i in range(2))
    assert (view.captured.prefix, view.captured.grid) == (1, (4, 4))
    # The combos: both blocks and rollout; the mean and both heads. The last block, the mean, CLS by default.
    assert [view.block.itemText(i) for i in range(view.block.count())] == [
        "0: encoder_layer_0.self_attention", "1: encoder_layer_1.self_attention", ROLLOUT]
    assert [view.head.itemText(i) for i in range(view.head.count())] == ["mean of heads", "head 0", "head 1"]
    assert view.block.currentIndex() == 1 and view.head.currentIndex() == 0 and view.query is None

    # Block k, head h, CLS query: the CLS row of that head over the patches, on the 4x4 grid.
    for k in range(2):
        for h in range(2):
            pick(view, k, h)
            expected = p[k][0, h, 0, 1:].reshape(4, 4).numpy()
            np.testing.assert_allclose(view.current_map(), expected, **TIGHT)
        pick(view, k)  # the mean of the heads
        np.testing.assert_allclose(view.current_map(), p[k][0, :, 0, 1:].mean(0).reshape(4, 4).numpy(), **TIGHT)
        assert not np.allclose(view.current_map(), p[k][0, 0, 0, 1:].reshape(4, 4).numpy(), rtol=1e-4, atol=0)
    # The words: the largest weight and the CLS token's share of its own attention (block 1, mean).
    row = p[1][0, :, 0].mean(0).numpy()
    text = view.info.text()
    assert f"{row[1:].max():.3g}</b>" in text
    assert f"<b>{row[0] / row.sum():.1%}</b> of the query's attention goes to the 1 prefix token" in text
    assert f"<b>{row[1:].sum() / row.sum():.1%}</b> to the 16 patches" in text

    # Rollout through both blocks: the engine's map; the head has no say.
    pick(view, ROLLOUT)
    np.testing.assert_allclose(view.current_map(), rollout(p, 1, (4, 4))[0].numpy(), **TIGHT)
    assert not view.head.isEnabled()
    assert view.picture.shape == (640, 640, 3)  # 32x32 enlarged 20 times

    # A click on patch (2, 3) makes it the query: block 0, head 1 shows that patch's row.
    pick(view, 0, 1)
    assert not view.cls.isEnabled()
    click_patch(qtbot, view, 2, 3)
    assert view.query == (2, 3) and view.cls.isEnabled()
    query = 1 + 2 * 4 + 3
    np.testing.assert_allclose(view.current_map(), p[0][0, 1, query, 1:].reshape(4, 4).numpy(), **TIGHT)
    # The query patch is outlined: patch rows 320-479, columns 480-639 of the 640x640 picture.
    assert (view.picture[320, 500] == OUTLINE).all() and (view.picture[400, 482] == OUTLINE).all()
    assert not (view.picture[400, 560] == OUTLINE).all()  # inside the patch, the map
    assert "query <b>patch (row 2, col 3)</b>" in view.info.text()
    # Rollout for the patch: its row of the rolled-out matrix.
    pick(view, ROLLOUT)
    np.testing.assert_allclose(view.current_map(), rollout_rows(p)[query, 1:].reshape(4, 4), rtol=1e-5, atol=1e-7)

    # The thumbnails: every head of the block (and their mean first); a click on one shows that head.
    pick(view, 0)
    assert view.thumbs.captions[0].startswith("mean") and len(view.thumbs.images) == 3
    tile = view.thumbs.tile_rects()[1].center().toPoint()
    qtbot.mouseClick(view.thumbs, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, tile)
    assert view.head_index() == 0 and view.thumbs.selected == 1
    np.testing.assert_allclose(view.current_map(), p[0][0, 0, query, 1:].reshape(4, 4).numpy(), **TIGHT)

    # Export: the picture as shown, the map at the grid's resolution.
    view.save_to(str(tmp_path / "attention.png"))
    view.save_to(str(tmp_path / "attention.npy"))
    np.testing.assert_array_equal(read_image(tmp_path / "attention.png"), view.picture)
    saved = np.load(tmp_path / "attention.npy")
    assert saved.shape == (4, 4) and saved.dtype == np.float32
    np.testing.assert_allclose(saved, p[0][0, 0, query, 1:].reshape(4, 4).numpy(), **TIGHT)

    # Back to the CLS token with the button.
    qtbot.mouseClick(view.cls, Qt.MouseButton.LeftButton)
    assert view.query is None
    np.testing.assert_allclose(view.current_map(), p[0][0, 0, 0, 1:].reshape(4, 4).numpy(), **TIGHT)


def test_registers_on_a_non_square_grid_then_a_cnn_gets_the_placeholder(qtbot, open_window, picture):
    w = open_window(model="testnets:RegisterViT", model_options={"input_size": (24, 32), "channels": 1},
                    input_spec=picture)
    view = attention_view(w, show=False)
    # Hidden: a frame arrives, nothing is captured.
    qtbot.waitUntil(lambda: w.session.result is not None, timeout=WAIT_MS)
    qtbot.wait(100)
    assert view.captured is None and not view._in_flight
    attention_view(w)
    qtbot.waitUntil(lambda: view.captured is not None, timeout=WAIT_MS)
    att = engine_attention(w, view)
    p = [a.float() for a in att.probabilities]
    assert (view.captured.prefix, view.captured.grid) == (5, (6, 8))  # CLS and four registers, 6x8 patches

    # A click on patch (4, 6) of the 6x8 grid: its row, the heads' mean, after the 5 prefix tokens.
    click_patch(qtbot, view, 4, 6)
    assert view.query == (4, 6)
    query = 5 + 4 * 8 + 6
    np.testing.assert_allclose(view.current_map(), p[0][0, :, query, 5:].mean(0).reshape(6, 8).numpy(), **TIGHT)
    row = p[0][0, :, query].mean(0).numpy()
    text = view.info.text()
    assert f"<b>{row[:5].sum() / row.sum():.1%}</b> of the query's attention goes to the 5 prefix tokens" in text
    assert f"(CLS {row[0] / row.sum():.1%}, the other 4" in text
    # A second click on the same patch goes back to the CLS token; rollout is the engine's.
    click_patch(qtbot, view, 4, 6)
    assert view.query is None
    pick(view, ROLLOUT)
    np.testing.assert_allclose(view.current_map(), rollout(p, 5, (6, 8))[0].numpy(), **TIGHT)

    # A CNN: the placeholder says what the tab is for; nothing to save, said rather than raised.
    messages = []
    w.session.message.connect(messages.append)
    w.model_options = {}
    w.load_model("digits_cnn")
    qtbot.waitUntil(lambda: w.session.state.model.name == "digits_cnn", timeout=WAIT_MS)
    assert view.captured is None and view.picture is None and not view.block.isEnabled()
    placeholder = view.panel.canvas.placeholder
    assert "digits_cnn is not a vision transformer" in placeholder and "nn.MultiheadAttention" in placeholder
    assert view.hint.text() == "digits_cnn: no attention to show"
    view.save_to("unused.png")
    assert messages and "no picture to save" in messages[-1]
    assert not any(m.startswith("attention:") for m in messages)


def test_live_frames_are_captured_one_at_a_time_only_while_shown(qtbot, open_window, monkeypatch):
    """A moving pattern at 30 fps: the tab's captures follow the frames while it is in front, none
    is submitted while another waits or runs (no queue), and none while it is hidden."""
    from deepvis.widgets.tabs import attentionview

    pending, at_submit = [0], []

    def slowly(fn, *args):
        time.sleep(0.1)  # a capture longer than a frame: frames arrive while it runs
        return fn(*args)

    class Counting:
        def submit(self, fn, *args):
            at_submit.append(pending[0])
            pending[0] += 1
            future = compute_thread().submit(slowly, fn, *args)
            future.add_done_callback(lambda _f: pending.__setitem__(0, pending[0] - 1))
            return future

    monkeypatch.setattr(attentionview, "compute_thread", Counting)
    w = open_window(model="test_gui_attention:vit", model_options={"input_size": (32, 32)}, input_spec="pattern")
    view = attention_view(w)
    qtbot.waitUntil(lambda: view.captured is not None, timeout=WAIT_MS)
    first = view.captured.frame.serial
    qtbot.waitUntil(lambda: view.captured.frame.serial > first + 2, timeout=WAIT_MS)
    assert set(at_submit) == {0} and len(at_submit) <= w.session.results_seen + 1
    # Behind another tab nothing more is captured while the frames go on.
    w.tabs.setCurrentIndex(0)
    qtbot.waitUntil(lambda: not view._in_flight, timeout=WAIT_MS)
    submitted, seen = len(at_submit), w.session.results_seen
    qtbot.waitUntil(lambda: w.session.results_seen > seen + 5, timeout=WAIT_MS)
    assert len(at_submit) == submitted
    # Shown again: a newer frame is captured.
    before = view.captured.frame.serial
    attention_view(w)
    qtbot.waitUntil(lambda: view.captured.frame.serial > before, timeout=WAIT_MS)
    assert set(at_submit) == {0}
    w.tabs.setCurrentIndex(0)
    qtbot.waitUntil(lambda: not view._in_flight, timeout=WAIT_MS)  # nothing left running when the window closes
