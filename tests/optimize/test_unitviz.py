"""Feature visualization (groundwork for the dreams issue): the optimized image excites its
unit far more than any bundled photo does."""

import numpy as np
import pytest

from deepvis.io.images import read_image
from deepvis.resources import sample_image
from deepvis.optimize.unitviz import UnitVisualizer, VizSettings


@pytest.mark.slow
def test_visualization_beats_every_bundled_photo_by_2x(lite0):
    viz = UnitVisualizer(lite0)
    layer, unit = "_blocks.6", 5
    image = viz.run(VizSettings(layer, unit, size=96, steps=64, recipe="fourier"))
    assert image.shape == (96, 96, 3) and image.std() > 10  # a picture, not flat grey
    photos = [lite0.preprocessor.fit(read_image(sample_image(n))) for n in ("cat", "coffee", "rocket", "astronaut")]
    best_photo = max(viz.value_of(p, layer, unit) for p in photos)
    # Measured with 200 steps at 128 px: 45.0 against 1.25 for the best photo.
    assert viz.value_of(image, layer, unit) >= 2 * max(best_photo, 0.0) and viz.value_of(image, layer, unit) > 0


def test_grayscale_model_and_cli(digits, tmp_path, capsys):
    from deepvis.cli import main

    viz = UnitVisualizer(digits)
    image = viz.run(VizSettings("conv2", 3, size=16, steps=40))
    assert image.shape == (16, 16, 3) and np.array_equal(image[:, :, 0], image[:, :, 1])  # gray
    start = viz.value_of(np.full((16, 16), 128, np.uint8), "conv2", 3)
    assert viz.value_of(image, "conv2", 3) > start
    out = tmp_path / "unit.png"
    assert main(["visualize-unit", "--model", "digits_cnn", "--layer", "conv2", "--unit", "3", "--size", "16",
                 "--steps", "20", "--out", str(out)]) == 0
    assert read_image(out).shape[0] >= 256 and "spatial-mean activation" in capsys.readouterr().out


def test_a_whole_layer_in_batches_resumes_after_a_cancel(digits, tmp_path, capsys):
    import threading

    import pytest

    from deepvis.errors import Cancelled
    from deepvis.core.cache import model_fingerprint
    from deepvis.optimize.unitviz import LAYER_BATCH, visualize_layer

    viz = UnitVisualizer(digits)
    settings = VizSettings("conv1", 0, size=16, steps=30)
    fp, cancel, seen = model_fingerprint(digits), threading.Event(), []

    def stop_after_one(result):
        seen.append(result.done.copy())
        cancel.set()

    with pytest.raises(Cancelled):
        visualize_layer(viz, settings, fp, first=20, cancel=cancel, on_batch=stop_after_one, cache_dir=tmp_path)
    first_batch = seen[0]
    assert first_batch.sum() == LAYER_BATCH and first_batch[16:24].all()  # the batch holding unit 20 first
    progress = []
    full = visualize_layer(viz, settings, fp, cache_dir=tmp_path, progress=lambda d, n: progress.append(d),
                           on_batch=lambda r: seen.append(r.done.copy()))
    assert full.done.all() and full.images.shape == (32, 16, 16, 3)
    assert progress == [16, 24, 32]  # only the three missing batches ran
    again = visualize_layer(viz, settings, fp, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.images, full.images)
    gray = np.full((16, 16), 128, np.uint8)
    raised = sum(viz.value_of(full.images[u], "conv1", u) > viz.value_of(gray, "conv1", u) for u in range(32))
    assert raised >= 30


def test_visualize_unit_all_writes_a_sheet(tmp_path, capsys, monkeypatch):
    import pytest

    from deepvis.cli import main

    monkeypatch.setenv("DEEPVIS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "sheet.png"
    assert main(["visualize-unit", "--model", "digits_cnn", "--layer", "conv1", "--unit", "all", "--size", "16",
                 "--steps", "10", "--out", str(out)]) == 0
    sheet = read_image(out)
    assert sheet.shape == (6 * 20, 6 * 20, 3)  # 32 units on a 6x6 grid of 16 px images with 2 px frames
    assert "32 units of conv1" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["visualize-unit", "--model", "digits_cnn", "--layer", "conv1", "--unit", "x", "--out", str(out)])
    assert exit_.value.code == 2 and "not a unit number or 'all'" in capsys.readouterr().err


@pytest.mark.slow
def test_a_centre_neuron_is_excited_where_it_looks(lite0):
    viz = UnitVisualizer(lite0)
    layer, unit = "_blocks.6", 5
    # Lucid's transforms (jitter, scale, rotation) are what keep a neuron's picture to its field.
    neuron = viz.run(VizSettings(layer, unit, size=96, steps=64, neuron=True, recipe="fourier"))
    channel = viz.run(VizSettings(layer, unit, size=96, steps=64, recipe="fourier"))
    photos = [lite0.preprocessor.fit(read_image(sample_image(n))) for n in ("cat", "coffee", "rocket", "astronaut")]
    best_photo = max(viz.value_of(p, layer, unit, neuron=True) for p in photos)
    assert viz.value_of(neuron, layer, unit, neuron=True) >= 2 * max(best_photo, 1e-3)
    # Only the centre's receptive field is shaped: the picture varies less away from the middle
    # than the channel's picture, which tiles its pattern everywhere.
    def edge_detail(image):
        gray = image.astype(float).mean(2)
        return np.abs(np.diff(gray, axis=1))[:, :16].mean() / np.abs(np.diff(gray, axis=1))[:, 40:56].mean()
    assert edge_detail(neuron) < edge_detail(channel)


def test_a_model_of_one_input_size_is_visualized_at_that_size(tmp_path):
    from clirun import run_command

    from deepvis.core.loading import load_model
    from deepvis.io.images import read_image
    from deepvis.models.digits_cnn import load_split
    from deepvis.optimize.unitviz import UnitVisualizer

    digits = load_model("digits_cnn")  # a linear head after a flatten: 8x8 inputs only
    viz = UnitVisualizer(digits)
    assert viz.fixed_input_size() == 8
    out = tmp_path / "seven.png"
    done = run_command(["visualize-unit", "--model", "digits_cnn", "--layer", "fc2", "--unit", "7", "--out", str(out)],
                       tmp_path)
    assert done.returncode == 0 and "on the 8x8 image" in done.stdout, done.stderr  # was 128x128, and fc2 refused
    picture = read_image(out)
    side = picture.shape[0] // 8
    small = picture[::side, ::side]
    assert small.shape[:2] == (8, 8)
    np.testing.assert_array_equal(picture, small.repeat(side, axis=0).repeat(side, axis=1))  # enlarged by whole pixels
    # The logit of 7 on its picture beats every held-out digit's.
    _, X_test, _, _ = load_split()
    best_digit = max(viz.value_of((np.repeat(x[0][:, :, None], 3, 2) * 255).astype(np.uint8), "fc2", 7)
                     for x in X_test[:200])
    assert viz.value_of(small, "fc2", 7) > best_digit
