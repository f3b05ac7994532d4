"""Dreams, unit visualizations and unit profiles on a torchvision model (the done-when of the
dreams issue names one besides the bundled and the grayscale model). SqueezeNet 1.1 with its
random initialization: no weights can be downloaded here, and the optimizations must work on
any network, trained or not."""

import cv2
import numpy as np
import pytest
import torch

from deepvis.io.datasets import samples_dataset
from deepvis.optimize.dream import Dreamer, DreamSettings
from deepvis.io.images import read_image
from deepvis.core.loading import load_model
from deepvis.core.probe import Probe
from deepvis.optimize.profiles import profile_units
from deepvis.resources import sample_image
from deepvis.optimize.unitviz import UnitVisualizer, VizSettings

LAYER = "features.6"  # a Fire module, 256 channels at 1/8 resolution


@pytest.fixture(scope="module")
def squeezenet():
    torch.manual_seed(0)
    return load_model("squeezenet1_1", weights="none", device="cpu")


def test_dream(squeezenet):
    photo = cv2.resize(read_image(sample_image("coffee")), (192, 128), interpolation=cv2.INTER_AREA)
    dreamer = Dreamer(squeezenet)
    settings = DreamSettings(LAYER, octaves=2, steps=6)
    steps = list(dreamer.run(photo, settings))
    assert steps[-1].image.shape == photo.shape
    assert dreamer.score(steps[-1].image, settings) > 1.3 * dreamer.score(photo, settings)


@pytest.mark.slow
def test_unit_visualization_beats_every_bundled_photo(squeezenet):
    viz = UnitVisualizer(squeezenet)
    # Unit 3 is silent on the starting noise: without the redirected ReLU gradient it stays at 0.
    images = viz.run_units(VizSettings(LAYER, 0, size=64, steps=128), [3, 17])
    photos = [squeezenet.preprocessor.fit(read_image(sample_image(n))) for n in ("cat", "coffee", "rocket", "astronaut")]
    for image, unit in zip(images, (3, 17)):
        best_photo = max(viz.value_of(p, LAYER, unit) for p in photos)
        assert viz.value_of(image, LAYER, unit) >= 2 * max(best_photo, 1e-3)


def test_profiles_top_k_by_brute_force(squeezenet, tmp_path):
    data = samples_dataset(crops=3)
    profiles = profile_units(squeezenet, data, LAYER, k=4, cache_dir=tmp_path)
    probe = Probe(squeezenet.module, squeezenet.example_input())
    pre = squeezenet.preprocessor
    x = torch.from_numpy(np.stack([pre.normalize(pre.fit(data.image(i))) for i in range(len(data))]))
    with torch.inference_mode():
        maxima = probe.capture_until(x, LAYER).flatten(2).max(2).values.T.numpy()
    np.testing.assert_allclose(profiles.values, -np.sort(-maxima, 1)[:, :4], rtol=1e-4, atol=1e-5)
    assert profiles.patches.shape[:2] == (256, 4)
