"""Saliency in the live pipeline: the fused map equals the headless one, heavy maps arrive in
chunks with progress while frames keep flowing, and bad combinations are refused up front."""

import threading
import time

import numpy as np
import pytest
import torch

from deepvis.errors import DeepvisError
from deepvis.io.images import write_image
from deepvis.live.pipeline import LiveSettings, SaliencySettings
from deepvis.attribution.saliency import Target, attribute
from deepvis.io.sources import ImageFileSource, PatternSource
from deepvis.resources import sample_image


def _wait(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise TimeoutError


@pytest.mark.parametrize("method", ["gradient", "guided", "gradcam"])
def test_fused_map_equals_the_headless_map_and_the_grid_stays_exact(digits, run, method, tmp_path):
    path = tmp_path / "three.png"
    from sklearn.datasets import load_digits

    write_image(path, (load_digits().images[3] * 255 / 16).astype(np.uint8))
    settings = LiveSettings(grid_layer="conv2", saliency=SaliencySettings(method))
    pipeline = run(digits, ImageFileSource(path), settings)
    result = pipeline.wait_for_results(1, timeout=60)
    sal = result.saliency
    assert sal is not None and sal.frame is result.frame
    top = result.summary.predictions[0].index
    assert sal.target == Target("class", top)
    x = digits.input_tensor(result.frame.image)
    headless = attribute(digits.module, pipeline.probe, x, method, Target("class", top))
    np.testing.assert_allclose(sal.map, headless, rtol=1e-4, atol=1e-6 * float(np.abs(headless).max()))
    with torch.inference_mode():
        conv2 = digits.module.conv2(digits.module.relu1(digits.module.conv1(x)))[0].numpy()
    for c in (0, 17, 63):
        np.testing.assert_allclose(result.channel(c), conv2[c], rtol=1e-5, atol=1e-5)
    assert result.timings["saliency"] > 0 and sal.map.shape == tuple(digits.spec.size)


def test_unit_target_follows_a_channel(digits, run):
    settings = LiveSettings(grid_layer="conv2", saliency=SaliencySettings("gradient", Target("unit", 5, "conv2")))
    pipeline = run(digits, PatternSource(64, 48), settings)
    result = pipeline.wait_for_results(2, timeout=60)
    x = torch.from_numpy(np.asarray(digits.preprocessor.array(result.frame.image)))[None]
    headless = attribute(digits.module, pipeline.probe, x, "gradient", Target("unit", 5, "conv2"))
    np.testing.assert_allclose(result.saliency.map, headless, rtol=1e-4, atol=1e-7)


def test_heavy_map_arrives_with_progress_and_can_be_cancelled(lite0, run):
    progress = []
    settings = LiveSettings(grid_layer="_conv_head",
                            saliency=SaliencySettings("smoothgrad", Target("class", 285), samples=8, batch=2))
    pipeline = run(lite0, ImageFileSource(sample_image("cat")), settings, on_progress=progress.append)
    first = pipeline.wait_for_results(1, timeout=60)
    assert first.saliency is None  # the grid does not wait for a heavy map
    done = _wait(lambda: (pipeline.latest().saliency is not None) and pipeline.latest())
    assert done.saliency.frame is first.frame and done.saliency.map.shape == (224, 224)
    assert progress[0] == 0.0 and progress[-1] == 1.0 and len(progress) >= 4
    assert progress == sorted(progress)

    # A long integrated-gradients map, cancelled after its first chunk.
    progress.clear()
    started = threading.Event()
    pipeline.on_progress = lambda f: (progress.append(f), f > 0 and started.set())
    pipeline.update(saliency=SaliencySettings("integrated-gradients", Target("class", 285), steps=64, batch=2))
    assert started.wait(60)
    pipeline.cancel_saliency()
    _wait(lambda: progress and progress[-1] == -1.0, timeout=30)
    assert max(progress) < 0.5
    assert pipeline.latest().saliency is None or pipeline.latest().saliency.settings.method == "smoothgrad"


def test_the_grid_keeps_moving_while_a_heavy_map_runs(digits, run):
    settings = LiveSettings(grid_layer="conv2", saliency=SaliencySettings("integrated-gradients", steps=256, batch=8))
    pipeline = run(digits, PatternSource(64, 48, fps=None), settings)
    first = pipeline.wait_for_results(1, timeout=60)
    # While the first map (32 chunks) is in progress, live results keep coming.
    later = pipeline.wait_for_results(first.index + 20, timeout=60)
    assert later.frame.serial > first.frame.serial
    done = _wait(lambda: pipeline.latest().saliency)
    assert done.settings.method == "integrated-gradients"


@pytest.mark.parametrize("saliency, message", [
    (SaliencySettings("gradcam", layer="fc1"), "pixels or time steps"),
    (SaliencySettings("gradient", Target("unit", 99, "conv1")), "out of range"),
    (SaliencySettings("dreaming"), "unknown method"),
])
def test_bad_combinations_are_refused_with_a_message(digits, run, saliency, message):
    pipeline = run(digits, PatternSource(64, 48), LiveSettings(grid_layer="conv1"))
    with pytest.raises(DeepvisError, match=message):
        pipeline.update(saliency=saliency)
    assert pipeline.settings.saliency is None


def test_bench_live_with_saliency_compares_against_forward_and_backward(digits):
    from deepvis.bench.engine import bench_live

    result = bench_live(digits, frames=20, layer="conv2", saliency="gradient", block=5)
    assert result["bare"] == "forward+backward to the input" and result["saliency"] == "gradient"
    assert result["stage_ms"]["saliency"] > 0 and result["ratio"] > 0
    assert result["ratio"] == pytest.approx(result["pipeline_fps"] / result["bare_fps"], rel=0.01)
