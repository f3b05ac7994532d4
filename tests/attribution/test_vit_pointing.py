"""Maps on the bundled digits_vit point, not only have the right shape: on 50 held-out 2x2
mosaics, for a present digit, the quadrant with the largest share of the map holds that digit.
Gradient-weighted rollout and Grad-CAM at the default layer (the last block's first norm) do
so in at least 80 % of cases, as the issue asks, where choosing a filled quadrant at random
would in about 41 %; plain rollout is the same map for every class, so it can only say where
the ink is."""

import numpy as np
import pytest
import torch

from deepvis.attribution.saliency import Target, attribute, default_gradcam_layer
from deepvis.core.loading import load_model
from deepvis.core.probe import Probe
from deepvis.models.digits_vit import make_mosaics


def _quadrant_shares(saliency):
    a = np.abs(saliency)
    shares = np.array([a[:16, :16].sum(), a[:16, 16:].sum(), a[16:, :16].sum(), a[16:, 16:].sum()])
    return shares / shares.sum()


@pytest.fixture(scope="module")
def pointing():
    model = load_model("digits_vit", device="cpu")
    images, _, layout = make_mosaics(50, seed=7, split="test")
    probe = Probe(model.module, torch.from_numpy(images[:1]))
    assert default_gradcam_layer(probe) == "blocks.3.norm1"
    rng = np.random.default_rng(0)
    hits = {"grad-rollout": 0, "gradcam": 0}
    chance = ink = 0.0
    for i in range(50):
        present = sorted({int(d) for d in layout[i] if d >= 0})
        digit = int(rng.choice(present))
        x = torch.from_numpy(images[i:i + 1])
        for method in hits:
            shares = _quadrant_shares(attribute(model.module, probe, x, method, Target("class", digit)))
            hits[method] += int(layout[i][int(np.argmax(shares))] == digit)
        filled = layout[i] >= 0
        chance += (layout[i] == digit).sum() / filled.sum()
        ink += _quadrant_shares(attribute(model.module, probe, x, "attention-rollout", Target("class", digit)))[
            filled].sum() - filled.mean()
    return {k: v / 50 for k, v in hits.items()}, chance / 50, ink / 50


def test_gradient_weighted_rollout_points_at_the_digit(pointing):
    rates, chance, _ = pointing
    assert rates["grad-rollout"] >= 0.8, rates  # measured 1.0


def test_gradcam_at_the_default_layer_points_at_the_digit(pointing):
    rates, chance, _ = pointing
    # Measured 1.0 (0.62 before digits_vit was trained with token labels, see its recipe).
    assert rates["gradcam"] >= 0.8, (rates, chance)
    assert chance < 0.5, chance  # the mosaics are not so sparse that any filled quadrant would do


def test_plain_rollout_lies_on_the_filled_quadrants(pointing):
    _, _, ink = pointing
    assert ink > 0.05, ink  # more of the map on filled quadrants than their share of the picture
