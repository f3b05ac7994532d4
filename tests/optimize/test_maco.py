"""MACO (issue 27, item 2): the phase is optimized, the magnitude stays the natural images'."""

import math

import numpy as np
import pytest
import torch

from deepvis.io.images import read_image
from deepvis.optimize import maco
from deepvis.optimize.unitviz import UnitVisualizer, VizSettings


def test_the_template_is_a_natural_images_falling_spectrum_sampled_at_any_size():
    big = maco.magnitude_template(256, 3)
    assert big.shape == (3, 256, 129) and torch.isfinite(big).all()
    # Natural images: power falls with frequency (about 1/f in magnitude). Along the x axis of
    # each channel, the magnitude at 1/32 cycles per pixel is several times that at 1/4.
    assert (big[:, 0, 8] > 3 * big[:, 0, 64]).all()
    small = maco.magnitude_template(64, 1)
    assert small.shape == (1, 64, 33)
    # Frequency k/64 of the small grid is frequency 4k/256 of the template (grey: the channels' mean).
    np.testing.assert_allclose(small[0, 0, 5], big[:, 0, 20].mean(), rtol=1e-5)
    np.testing.assert_allclose(small[0, 60, 3], big[:, 240, 12].mean(), rtol=1e-5)


def test_whatever_the_phase_the_picture_keeps_the_templates_magnitude():
    size = 32
    magnitude = maco.magnitude_template(size, 1)
    generator = torch.Generator().manual_seed(0)
    for _ in range(2):
        phase = 2 * math.pi * torch.rand(1, 1, size, size // 2 + 1, generator=generator)
        spatial = torch.fft.irfft2(torch.polar(magnitude.expand_as(phase), phase), s=(size, size), norm="ortho")
        again = torch.fft.rfft2(spatial, norm="ortho").abs()[0, 0]
        # irfft2 keeps the real part of the self-conjugate frequencies (the DC and Nyquist rows
        # and columns); everywhere else the magnitude comes back exactly.
        inner = (slice(1, size // 2), slice(1, size // 2))
        np.testing.assert_allclose(again[inner], magnitude[0][inner], rtol=1e-4, atol=1e-6)


def test_maco_raises_the_units_activation_and_says_where_it_looked(digits):
    viz = UnitVisualizer(digits)
    size = viz.fixed_input_size()
    assert size == 8
    settings = VizSettings("fc2", 7, size, steps=48, fixed=True, recipe="maco")
    start = VizSettings("fc2", 7, size, steps=1, fixed=True, recipe="maco")
    first = viz.value_of(viz.run_with_alpha(start, [7], seed=3)[0][0], "fc2", 7)
    images, alpha = viz.run_with_alpha(settings, [7], seed=3)
    assert images.shape == (1, 8, 8, 3) and images.dtype == np.uint8
    assert viz.value_of(images[0], "fc2", 7) > first + 1.0
    assert alpha.shape == (1, 8, 8) and alpha.min() >= 0 and alpha.max() == pytest.approx(1.0)


def test_visualize_unit_writes_the_transparency_as_alpha_and_refuses_it_without_maco(tmp_path, capsys):
    from deepvis.cli import main

    out = tmp_path / "unit.png"
    assert main(["visualize-unit", "--model", "digits_cnn", "--layer", "fc2", "--unit", "3", "--steps", "8",
                 "--recipe", "maco", "--alpha", "--out", str(out)]) == 0
    from PIL import Image

    with Image.open(out) as picture:
        assert picture.mode == "RGBA"
        alpha = np.asarray(picture)[..., 3]
    assert alpha.max() == 255 and alpha.min() < 255  # where the unit looked, and where it did not
    capsys.readouterr()
    bad = tmp_path / "never.png"
    assert main(["visualize-unit", "--model", "digits_cnn", "--layer", "fc2", "--unit", "3", "--recipe", "fourier",
                 "--alpha", "--out", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "--recipe maco" in err[0] and not bad.exists()
    assert read_image(out).shape[:2] == (256, 256)  # 8x8 enlarged by whole pixels
