"""The live pipeline: newest frame wins, results are exact and immutable, errors are values."""

import time

import numpy as np
import pytest
import torch
from torch import nn

from deepvis.io.images import write_image, write_video
from deepvis.core.loading import LoadedModel
from deepvis.core.inputspec import InputSpec
from deepvis.live.pipeline import LivePipeline, LiveSettings
from deepvis.core.probe import Probe
from deepvis.io.sources import ImageFileSource, ImageFolderSource, PatternSource, VideoFileSource


def _small_model(module: nn.Module, channels=3, size=(32, 48), labels=None) -> LoadedModel:
    return LoadedModel(module=module.eval(), spec=InputSpec(channels, *size), labels=labels, name="test",
                       device=torch.device("cpu"))


class SmallNet(nn.Module):
    def __init__(self, channels=3):
        super().__init__()
        self.conv = nn.Conv2d(channels, 6, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 4)

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.conv(x))).flatten(1))


class Sleepy(SmallNet):
    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def forward(self, x):
        time.sleep(self.seconds)
        return super().forward(x)


def _video(tmp_path, n=12):
    frames = [np.full((48, 64, 3), 20 * i, np.uint8) for i in range(n)]
    for i, f in enumerate(frames):
        f[: 4 + i, :8] = 255  # something that differs spatially too
    path = tmp_path / "clip.mp4"
    write_video(path, frames, 25)
    return path


def test_grid_tiles_are_the_exact_activations_of_the_frame(tmp_path, run):
    torch.manual_seed(0)
    model = _small_model(SmallNet(), labels=list("abcd"))
    pipeline = run(model, VideoFileSource(_video(tmp_path)), LiveSettings(grid_layer="conv", layers=("fc",)))
    result = pipeline.wait_for_results(5, timeout=30)
    assert result.index == 5 and result.summary.kind == "classification"
    assert [p.label for p in result.summary.predictions] and len(result.summary.predictions) == 4
    x = model.input_tensor(result.frame.image)
    with torch.inference_mode():
        conv = model.module.conv(x)[0].numpy()
        logits = model.module(x)[0].numpy()
    # conv is followed by an in-place ReLU, so a grid made after the forward would be clipped.
    assert conv.min() < 0
    for c in range(6):
        np.testing.assert_allclose(result.channel(c), conv[c], rtol=1e-5, atol=1e-6)
    lo, hi = result.grid_levels
    assert lo == pytest.approx(conv.min(), abs=1e-5) and hi == pytest.approx(conv.max(), abs=1e-5)
    # Each channel's spatial maximum, before the in-place ReLU: what picks the unit shown first.
    maxima = conv.reshape(6, -1).max(1)
    np.testing.assert_allclose(result.channel_max, maxima, rtol=1e-5, atol=1e-6)
    assert result.most_active_unit() == int(np.argmax(maxima))
    np.testing.assert_allclose(result.activations["fc"], logits, rtol=1e-5, atol=1e-6)
    assert result.model_input.shape == (32, 48, 3)
    assert set(result.timings) >= {"capture", "preprocess", "forward", "tile", "predict", "total"}
    with pytest.raises(ValueError):
        result.grid[0, 0] = 1.0  # results are immutable


def test_frames_advance_and_video_loops(tmp_path, run):
    seen = []  # every published result, in order; polling latest() could skip one
    pipeline = run(_small_model(SmallNet()), VideoFileSource(_video(tmp_path, n=6)), LiveSettings(grid_layer="conv"),
                   on_result=lambda r: seen.append(r.frame.index))
    pipeline.wait_for_results(14, timeout=30)
    assert seen[:6] == [0, 1, 2, 3, 4, 5]
    assert 0 in seen[6:]  # looped


def test_newest_frame_wins_with_a_slow_model(run):
    source = PatternSource(64, 48, fps=200)
    pipeline = run(_small_model(Sleepy(0.1)), source, LiveSettings(grid_layer="conv"))
    first = pipeline.wait_for_results(2, timeout=30)
    last = pipeline.wait_for_results(6, timeout=30)
    # ~20 frames arrive per processed frame: the pipeline skips them instead of queueing.
    assert last.frame.serial - first.frame.serial > 4 * 5
    # and the frame it processes is recent, not one from a backlog
    assert time.monotonic() - last.frame.timestamp < 0.5


def test_still_image_is_computed_once_and_again_on_settings_change(tmp_path, run):
    path = tmp_path / "still.png"
    write_image(path, np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8))
    pipeline = run(_small_model(SmallNet()), ImageFileSource(path), LiveSettings(grid_layer="conv"))
    first = pipeline.wait_for_results(1)
    time.sleep(0.4)
    assert pipeline.published == 1  # nothing new to compute
    pipeline.update(grid_layer="relu", normalization="channel")
    second = pipeline.wait_for_results(2)
    assert second.frame is first.frame
    assert second.settings.grid_layer == "relu" and second.grid_levels == (0.0, 1.0)
    assert np.nanmin(second.grid) >= 0.0 and np.nanmax(second.grid) <= 1.0


def test_freeze_keeps_the_frame(tmp_path, run):
    pipeline = run(_small_model(SmallNet()), PatternSource(64, 48), LiveSettings(grid_layer="conv"))
    pipeline.wait_for_results(3)
    pipeline.update(frozen=True)
    frozen_at = pipeline.wait_for_results(pipeline.published + 1).frame.serial
    time.sleep(0.3)
    pipeline.update(grid_layer="fc")
    after = pipeline.wait_for_results(pipeline.published + 1)
    assert after.frame.serial == frozen_at and after.settings.grid_layer == "fc"
    pipeline.update(frozen=False)
    assert pipeline.wait_for_results(pipeline.published + 2).frame.serial > frozen_at


def test_corrupt_file_in_folder_is_reported_and_skipped(tmp_path, run):
    folder = tmp_path / "imgs"
    for name in ("a", "c"):
        write_image(folder / f"{name}.png", np.full((20, 20, 3), 128, np.uint8))
    (folder / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    errors, names = [], []
    source = ImageFolderSource(folder, advance_on_read=True)
    # Every result as it is published: sampling the latest one after each wait saw only a.png on
    # a busy machine, where several results came out between two looks.
    pipeline = run(_small_model(SmallNet()), source, LiveSettings(grid_layer="conv"), on_error=errors.append,
                   on_result=lambda result: names.append(result.frame.name))
    pipeline.wait_for_results(4, timeout=30)
    assert any("b.png" in e for e in errors)
    assert set(names[:4]) == {"a.png", "c.png"}


def test_nan_output_is_a_message_and_the_pipeline_survives(run):
    model = SmallNet()
    with torch.no_grad():
        model.fc.weight.fill_(float("nan"))
    errors = []
    pipeline = run(_small_model(model), PatternSource(64, 48), LiveSettings(grid_layer="conv"), on_error=errors.append)
    deadline = time.monotonic() + 10
    while not errors and time.monotonic() < deadline:
        time.sleep(0.05)
    assert errors and "NaN" in errors[0]
    assert pipeline.running


def test_unknown_layer_is_refused_up_front():
    from deepvis.errors import DeepvisError

    with pytest.raises(DeepvisError):
        LivePipeline(_small_model(SmallNet()), PatternSource(), LiveSettings(grid_layer="nope"))


def test_grayscale_non_square_model(run):
    model = _small_model(SmallNet(channels=1), channels=1, size=(24, 40))
    probe = Probe(model.module, model.example_input())
    pipeline = run(model, PatternSource(64, 48), LiveSettings(grid_layer="conv"), probe=probe)
    result = pipeline.wait_for_results(2)
    assert result.model_input.shape == (24, 40, 3)  # shown as grey RGB
    assert result.grid_layout.tile_h == 24 and result.grid_layout.tile_w == 40


def test_mirror_flips_the_frame_the_model_sees(tmp_path, run):
    path = tmp_path / "left.png"
    image = np.zeros((32, 48, 3), np.uint8)
    image[:, :12] = 255  # bright on the left
    write_image(path, image)
    pipeline = run(_small_model(SmallNet()), ImageFileSource(path), LiveSettings(grid_layer="conv"))
    plain = pipeline.wait_for_results(1)
    assert plain.model_input[:, :8].mean() > 200 and plain.model_input[:, -8:].mean() < 50
    pipeline.update(mirror=True)
    mirrored = pipeline.wait_for_results(2)
    np.testing.assert_array_equal(mirrored.frame.image, image[:, ::-1])
    assert mirrored.model_input[:, -8:].mean() > 200 and mirrored.model_input[:, :8].mean() < 50
