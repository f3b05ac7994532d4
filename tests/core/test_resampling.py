"""Fitting a frame to a model's input keeps small inputs intact (area downscaling, pixel
centres aligned): an enlarged digit reads as the digit."""

import numpy as np
import pytest
import torch

from deepvis.core.inputspec import InputSpec, Preprocessor, resample
from deepvis.io.images import quiet_cv2

cv2 = quiet_cv2()


def test_shrinking_by_an_integer_factor_is_the_mean_of_each_block():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (96, 160, 3)).astype(np.uint8)
    for factor in (2, 4, 8):
        h, w = 96 // factor, 160 // factor
        blocks = image.reshape(h, factor, w, factor, 3).astype(np.float64).mean(axis=(1, 3))
        assert np.abs(resample(image, h, w).astype(np.float64) - blocks).max() <= 1.5  # a rounding per halving


def test_shrinking_keeps_the_picture_where_it_was():
    # A bright square's centre of mass must stay put (the pyramid moved it by half a pixel
    # of each halving: 1.75 pixels of the 224 output after three of them).
    image = np.zeros((896, 896, 3), np.uint8)
    image[400:496, 300:396] = 255
    small = resample(image, 112, 112)[:, :, 0].astype(np.float64)
    ys, xs = np.indices(small.shape)
    centre = ((ys * small).sum() / small.sum(), (xs * small).sum() / small.sum())
    # The square's centre is at 447.5, 347.5 input pixels; output pixel i covers 8i..8i+7.
    assert centre == pytest.approx(((447.5 + 0.5) / 8 - 0.5, (347.5 + 0.5) / 8 - 0.5), abs=0.02)


def test_enlarged_digits_read_as_accurately_as_at_their_own_size():
    from deepvis.core.loading import load_model
    from deepvis.models.digits_cnn import load_split

    model = load_model("digits_cnn")
    _, X_test, _, y_test = load_split()
    digits = [np.clip(np.rint(x[0] * 255), 0, 255).astype(np.uint8) for x in X_test]

    def accuracy(images):
        batch = torch.cat([model.preprocessor.tensor(image) for image in images])
        with torch.no_grad():
            return float((model.module(batch).argmax(1).numpy() == y_test).mean())

    at_8 = accuracy(digits)
    assert at_8 > 0.95
    for scale in (4, 8):
        for interpolation in (cv2.INTER_NEAREST, cv2.INTER_LINEAR):
            enlarged = [cv2.resize(d, (8 * scale, 8 * scale), interpolation=interpolation) for d in digits]
            assert accuracy(enlarged) >= at_8 - 0.02, (scale, interpolation)


def test_a_frame_smaller_than_the_input_is_enlarged_to_it():
    fitted = Preprocessor(InputSpec(3, 64, 48, fit="stretch")).fit(np.full((10, 7, 3), 200, np.uint8))
    assert fitted.shape == (64, 48, 3) and (fitted == 200).all()
