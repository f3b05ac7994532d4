"""Image models: which outputs are pictures, how their values become pixels, and the
reconstruction error (SSIM checked against scikit-image)."""

import numpy as np
import pytest
import torch
from torch import nn

from deepvis.core.imagemodel import (detect_output_range, image_output, reconstruction_error, ssim, to_unit)
from deepvis.core.inputspec import InputSpec
from deepvis.core.loading import load_model
from deepvis.errors import DeepvisError

from testnets import TanhImageNet

skimage_metrics = pytest.importorskip("skimage.metrics")


@pytest.mark.parametrize("shape", [(8, 8, 1), (20, 17, 3), (64, 48, 3), (5, 9, 1)])
def test_ssim_equals_scikit_image(shape):
    rng = np.random.default_rng(sum(shape))
    a = rng.random(shape)
    b = np.clip(a + 0.15 * rng.standard_normal(shape), 0, 1)
    win = min(7, *(s if s % 2 else s - 1 for s in shape[:2]))
    expected = skimage_metrics.structural_similarity(a, b, data_range=1.0, channel_axis=2, win_size=win)
    assert ssim(a, b) == pytest.approx(expected, abs=1e-9)
    assert ssim(a, a) == pytest.approx(1.0)


def test_error_numbers():
    a = np.full((8, 8, 1), 0.5)
    b = a + 0.1
    error = reconstruction_error(b, a)
    assert error.mse == pytest.approx(0.01)
    assert error.psnr == pytest.approx(20.0)
    assert reconstruction_error(a, a).psnr == float("inf")


def test_output_ranges_map_to_pixels():
    spec = InputSpec(3, 4, 4, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    out = torch.tensor([-1.0, 0.0, 1.0]).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(to_unit(out, "tanh", spec).flatten(), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(to_unit(out, "sigmoid", spec).flatten(), [-1.0, 0.0, 1.0])
    # "input": the normalization undone, channel by channel.
    np.testing.assert_allclose(to_unit(out, "input", spec).flatten(), [0.485 - 0.229, 0.456, 0.406 + 0.225],
                               rtol=1e-6)


def test_output_range_is_read_from_the_layer_that_made_the_output():
    x = torch.zeros(1, 3, 8, 8)
    assert detect_output_range(nn.Sequential(nn.Conv2d(3, 3, 1), nn.Tanh()), x) == "tanh"
    assert detect_output_range(nn.Sequential(nn.Conv2d(3, 3, 1), nn.Sigmoid()), x) == "sigmoid"

    class Gated(nn.Module):  # a sigmoid inside (an attention gate), but not the output's maker
        def __init__(self):
            super().__init__()
            self.gate, self.sigmoid, self.conv = nn.Conv2d(3, 3, 1), nn.Sigmoid(), nn.Conv2d(3, 3, 1)

        def forward(self, x):
            return self.conv(x * self.sigmoid(self.gate(x)))

    assert detect_output_range(Gated(), x) == "input"
    scripted = torch.jit.script(TanhImageNet())
    assert detect_output_range(scripted, x) == "tanh"


def test_identity_output_has_no_error():
    spec = InputSpec(3, 6, 6, (0.5,), (0.5,))
    x = torch.rand(1, 3, 6, 6) * 2 - 1
    picture = image_output(x, x, "input", spec)
    assert picture.error.mse == pytest.approx(0, abs=1e-12) and picture.error.ssim == pytest.approx(1.0)
    assert picture.picture.shape == (6, 6, 3) and picture.picture.dtype == np.uint8
    assert not picture.difference.any()
    expected = np.round(((x[0].permute(1, 2, 0) * 0.5 + 0.5).numpy() * 255)).astype(np.uint8)
    assert np.abs(picture.picture.astype(int) - expected).max() <= 1
    # A larger output (super-resolution) has a picture but no error.
    big = torch.nn.functional.interpolate(x, scale_factor=2)
    picture = image_output(big, x, "input", spec)
    assert picture.picture.shape == (12, 12, 3) and picture.error is None and picture.difference is None


def test_task_from_the_output_shape_and_declared(tmp_path):
    model = load_model("testnets:TanhImageNet", input_size=(16, 16), mean=(0.5,), std=(0.5,), device="cpu")
    assert model.task == "image" and model.output_range == "tanh"
    assert any("image model" in note for note in model.notes)
    declared = load_model("testnets:TanhImageNet", input_size=(16, 16), device="cpu", task="segmentation")
    assert declared.task == "segmentation"
    with pytest.raises(DeepvisError, match="--task classification needs an output of shape"):
        load_model("testnets:TanhImageNet", input_size=(16, 16), device="cpu", task="classification")
    with pytest.raises(DeepvisError, match="--task image needs"):
        load_model("digits_cnn", device="cpu", task="image")
    with pytest.raises(DeepvisError, match="unknown task"):
        load_model("digits_cnn", device="cpu", task="picture")
    # One output channel of a one-channel input: a picture too, with its sigmoid.
    gray = load_model("testnets:EncoderOnly", input_size=(8, 8), channels=1, device="cpu")
    assert gray.task == "image" and gray.output_range == "input"  # torch.sigmoid is a function, not a layer
    assert load_model("testnets:EncoderOnly", input_size=(8, 8), channels=1, device="cpu",
                      output_range="sigmoid").output_range == "sigmoid"
