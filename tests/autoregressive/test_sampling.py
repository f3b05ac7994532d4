"""Autoregressive sampling, pixel by pixel: the frequencies of the drawn levels follow the
model's distribution, a pixel depends only on the ones before it, seeds and temperature."""

import threading

import numpy as np
import pytest
import torch

from deepvis.autoregressive.sampling import levels_of, sample, sample_steps
from deepvis.errors import Cancelled, DeepvisError

from testnets import FixedLevels, TinyPixelCNN


def test_levels_are_drawn_with_the_models_probabilities():
    pictures = sample(FixedLevels().eval(), (8, 8), count=64, seed=1)
    levels = np.round(pictures * 3).astype(int).ravel()  # 4 levels: values k / 3
    observed = np.bincount(levels, minlength=4) / levels.size
    expected = torch.softmax(torch.tensor([0.0, 1.0, 2.0, -1.0]), 0).numpy()
    assert np.abs(observed - expected).max() < 0.03  # 4,096 draws
    cold = sample(FixedLevels().eval(), (8, 8), count=16, seed=1, temperature=0.05)
    assert (np.round(cold * 3) == 2).mean() > 0.99  # a cold sampler takes the likeliest level


def test_steps_fill_in_raster_order_and_seeds_repeat():
    net = TinyPixelCNN().eval()
    steps = list(sample_steps(net, (6, 5), count=3, seed=7))
    assert [s.index for s in steps] == list(range(30)) and steps[-1].pictures.shape == (3, 1, 6, 5)
    for s in steps[:-1]:
        flat = s.pictures.reshape(3, -1)
        assert not flat[:, s.index + 1:].any()  # nothing after the pixel just drawn
        np.testing.assert_allclose(s.probabilities.sum(1), 1, rtol=1e-5)
    again = sample(net, (6, 5), count=3, seed=7)
    np.testing.assert_array_equal(again, steps[-1].pictures)
    assert not np.array_equal(sample(net, (6, 5), count=3, seed=8), again)
    values = np.unique(again)
    assert set(np.round(values * 4, 6)) <= {0.0, 1.0, 2.0, 3.0, 4.0}


def test_cancel_and_bad_models():
    cancel = threading.Event()
    steps = sample_steps(TinyPixelCNN().eval(), (6, 6), cancel=cancel)
    next(steps)
    cancel.set()
    with pytest.raises(Cancelled):
        next(steps)
    assert levels_of(TinyPixelCNN(), (4, 4)) == 5
    with pytest.raises(DeepvisError, match="not a PixelCNN-style model"):
        levels_of(torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.Flatten()), (4, 4))
    with pytest.raises(DeepvisError, match="temperature must be positive"):
        next(sample_steps(TinyPixelCNN(), (4, 4), temperature=0))
