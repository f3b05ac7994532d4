"""Saliency engine (groundwork for the saliency issue): real models, no mocks."""

import cv2
import numpy as np
import pytest
import torch

from deepvis.errors import DeepvisError
from deepvis.io.images import read_image
from deepvis.core.probe import Probe
from deepvis.resources import sample_image
from deepvis.attribution.saliency import (METHODS, Target, applicable_methods, attribute, default_gradcam_layer,
                                          parse_target)
from testnets import Functional

CAT, ESPRESSO = 285, 967


@pytest.fixture(scope="module")
def mosaic_input(lite0):
    """cat | coffee / rocket | astronaut, each photo at the model's own 224 px scale (448 x 448
    in all: EfficientNet pools globally, so it takes the larger input as it is)."""
    from dataclasses import replace

    from deepvis.core.inputspec import Preprocessor

    tiles = [cv2.resize(read_image(sample_image(n)), (224, 224), interpolation=cv2.INTER_AREA)
             for n in ("cat", "coffee", "rocket", "astronaut")]
    mosaic = np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])])
    return Preprocessor(replace(lite0.spec, height=448, width=448)).tensor(mosaic)


def shares(saliency):
    """The map's mass (|value|) per quadrant: cat, coffee, rocket, astronaut."""
    a = np.abs(saliency)
    h, w = a.shape[0] // 2, a.shape[1] // 2
    q = np.array([a[:h, :w].sum(), a[:h, w:].sum(), a[h:, :w].sum(), a[h:, w:].sum()])
    return q / q.sum()


@pytest.fixture(scope="module")
def mosaic_shares(lite0, mosaic_input):
    probe = Probe(lite0.module, lite0.example_input())
    assert default_gradcam_layer(probe) == "_conv_head"
    out = {}
    assert set(METHODS) - set(applicable_methods(lite0.module, probe)) == {"attention-rollout", "grad-rollout"}
    for method in applicable_methods(lite0.module, probe):
        for name, index in (("cat", CAT), ("espresso", ESPRESSO)):
            torch.manual_seed(0)  # SmoothGrad's noise
            saliency = attribute(lite0.module, probe, mosaic_input, method, Target("class", index), steps=16)
            assert saliency.shape == (448, 448) and np.isfinite(saliency).all()
            out[method, name] = shares(saliency)
    return out


# Measured (cat target: cat quadrant share; espresso target: coffee quadrant share):
#   gradcam 0.93 / 0.80, smoothgrad 0.40 / 0.36, guided 0.45 / 0.30, gradient 0.32 / 0.37,
#   integrated-gradients 0.20 / 0.39, deconv 0.21 / 0.27.
@pytest.mark.slow
@pytest.mark.parametrize("method", ["gradcam", "smoothgrad"])
def test_gradcam_and_smoothgrad_point_at_the_class_in_a_mosaic(mosaic_shares, method):
    assert mosaic_shares[method, "cat"].argmax() == 0
    assert mosaic_shares[method, "espresso"].argmax() == 1


@pytest.mark.slow
@pytest.mark.parametrize("method", ["gradient", "guided", "integrated-gradients", "smoothgrad", "gradcam"])
def test_methods_are_class_sensitive(mosaic_shares, method):
    cat, espresso = mosaic_shares[method, "cat"], mosaic_shares[method, "espresso"]
    # The cat quadrant weighs more when the cat is explained, the coffee quadrant when espresso is.
    assert cat[0] > espresso[0] + 0.05 and espresso[1] > cat[1] + 0.05


@pytest.mark.slow
def test_deconv_is_class_insensitive_as_published(mosaic_shares):
    """Zeiler-Fergus deconvolution ignores the forward pass's ReLU masks on the way back, so its
    map mostly reconstructs the image whatever the class (Nie, Zhang & Patel, ICML 2018). We
    check that ours behaves so rather than pretend otherwise."""
    cat, espresso = mosaic_shares["deconv", "cat"], mosaic_shares["deconv", "espresso"]
    assert np.abs(cat - espresso).max() < 0.05


def test_guided_and_deconv_really_change_relu6_backward(lite0, mosaic_input):
    model = lite0.module
    probe = Probe(model, lite0.example_input())
    types_before = [type(m) for m in model.modules()]
    maps = {m: attribute(model, probe, mosaic_input, m, Target("class", CAT)) for m in ("gradient", "guided", "deconv")}
    for a, b in (("gradient", "guided"), ("gradient", "deconv"), ("guided", "deconv")):
        corr = np.corrcoef(maps[a].ravel(), maps[b].ravel())[0, 1]
        assert corr < 0.9, (a, b, corr)
    # Guided backprop lets only positive gradients through rectifiers: its map is cleaner.
    assert [type(m) for m in model.modules()] == types_before  # ReLU6 modules restored
    assert sum(len(m._forward_hooks) + len(m._backward_hooks) for m in model.modules()) == 0


def test_gradcam_matches_a_hand_computed_one():
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    x = torch.randn(1, 3, 96, 96)
    probe = Probe(model, x)
    ours = attribute(model, probe, x, "gradcam", Target("class", 3), layer="layer4")
    feats = {}
    handle = model.layer4.register_forward_hook(lambda _m, _i, out: feats.setdefault("a", out))
    score = model(x)[0, 3]
    handle.remove()
    grads = torch.autograd.grad(score, feats["a"])[0]
    weights = grads.mean((2, 3), keepdim=True)  # spatially averaged gradients
    cam = torch.relu((weights * feats["a"]).sum(1, keepdim=True))
    cam = torch.nn.functional.interpolate(cam, size=(96, 96), mode="bilinear", align_corners=False)[0, 0]
    assert np.corrcoef(ours.ravel(), cam.detach().numpy().ravel())[0, 1] > 0.99


def test_targets(lite0):
    probe = Probe(lite0.module, lite0.example_input())
    assert parse_target(None, lite0.labels, probe) is None
    assert parse_target("285", lite0.labels, probe) == Target("class", 285)
    assert parse_target("Egyptian cat", lite0.labels, probe) == Target("class", 285)
    assert parse_target("_conv_head:7", lite0.labels, probe) == Target("unit", 7, "_conv_head")
    with pytest.raises(DeepvisError, match="tabby"):
        parse_target("taby", lite0.labels, probe)
    with pytest.raises(DeepvisError, match="out of range"):
        parse_target("_conv_head:5000", lite0.labels, probe)


def test_functional_relu_is_named_not_silently_ignored():
    model = Functional().eval()
    x = torch.randn(1, 3, 12, 12)
    with pytest.raises(DeepvisError, match="functionally"):
        attribute(model, Probe(model, x), x, "guided", Target("class", 0))


def test_saliency_command_writes_the_map_and_its_picture(tmp_path, capsys):
    from deepvis.cli import main
    from deepvis.attribution.render import render_saliency

    out, npy = tmp_path / "cat.png", tmp_path / "cat.npy"
    code = main(["saliency", "--model", "efficientnet_lite0", "--input", str(sample_image("cat")),
                 "--method", "gradcam", "--out", str(out), "--npy", str(npy), "--overlay", "0.7"])
    assert code == 0
    assert "Egyptian cat (285)" in capsys.readouterr().out  # default target: the top prediction
    saliency = np.load(npy)
    assert saliency.shape == (224, 224) and saliency.dtype == np.float32 and saliency.min() >= 0
    assert read_image(out).shape[0] >= 512
    signed = np.array([[-2.0, 0.0, 1.0]], np.float32)
    raw = render_saliency(signed, "raw")
    assert raw[0, 0, 1] > 200 and raw[0, 0, 0] < 50  # negative: green
    assert raw[0, 2, 0] > 100 and raw[0, 2, 1] < 50  # positive: red
    assert raw[0, 1].max() < 10  # zero: black
    photo = np.full((1, 3, 3), 200, np.uint8)
    blended = render_saliency(np.array([[0.0, 0.0, 1.0]], np.float32), "gray", image=photo, opacity=1.0)
    assert (blended[0, 0] == 200).all()  # no saliency, photo untouched
    assert (blended[0, 2] == 255).all()  # full saliency, full opacity


def test_the_default_display_clips_at_the_99th_percentile_and_signed_keeps_the_sign():
    from deepvis.attribution.render import default_display, render_saliency

    # A gradient-like map: heavy-tailed, so scaled to its maximum nearly all of it is black.
    s = np.random.default_rng(0).standard_cauchy((100, 100)).astype(np.float32)
    p99 = np.percentile(np.abs(s), 99)
    gray = render_saliency(s, "gray")  # the magnitude to the maximum: the toolbox's old default
    clipped = render_saliency(s, "clip99")
    at_full = (np.abs(s) >= p99).mean()
    assert 0.009 <= at_full <= 0.011
    top = np.abs(s) >= p99
    assert (clipped[top] == clipped[top][0]).all()  # everything at or past the 99th percentile: the top colour
    assert np.median(gray) < 3 < np.median(clipped.max(axis=2))  # the map reads instead of near black
    signed = render_saliency(np.array([[-5.0, 0.0, 5.0] * 40], np.float32), "signed")
    assert signed[0, 0, 2] > signed[0, 0, 0] and signed[0, 2, 0] > signed[0, 2, 2]  # blue negative, red positive
    # Coarse, smooth maps are shown to their maximum, as their papers do: clipped, a face saturates.
    assert [default_display(m) for m in ("gradient", "smoothgrad", "gradcam", "attention-rollout")] == \
        ["clip99", "clip99", "abs", "abs"]


def test_bench_saliency_reports_every_method_against_a_bare_backward(digits):
    from deepvis.bench.engine import bench_saliency
    result = bench_saliency(digits, input_spec=None, frames=1)
    assert set(result["methods"]) == set(applicable_methods(digits.module, Probe(digits.module,
                                                                                  digits.example_input())))
    for row in result["methods"].values():
        assert row["ms"] > 0 and row["bare_ms"] > 0
        assert row["ratio"] == pytest.approx(row["ms"] / row["bare_ms"], rel=0.02)


def _power_at_period(saliency: np.ndarray, period: int) -> float:
    """The map's power at ``period`` pixels (both axes, the larger) over the median power of
    the ten frequencies around it, from the mean-removed map's 2-D spectrum."""
    power = np.abs(np.fft.fft2(saliency - saliency.mean())) ** 2
    ratios = []
    for profile in (power.mean(0), power.mean(1)):  # along x, along y
        k = len(profile) // period
        around = np.r_[profile[k - 6:k - 1], profile[k + 2:k + 7]]
        ratios.append(profile[k] / np.median(around))
    return max(ratios)


def test_guided_backprop_has_no_grid_at_the_stride(lite0):
    """EfficientNet's stride-2 stem weighs pixels by their phase, so Captum's guided backprop on
    the cat carries a checkerboard (power 4.2x its neighbours' at period 2, measured); averaged
    over the stride's phases it is gone, and the map still lies on the cat's face and edges."""
    import warnings

    from captum.attr import GuidedBackprop

    from deepvis.attribution.phases import stride_period
    from deepvis.attribution.saliency import Objective, rectifiers_as_relu_modules
    from deepvis.core.inputspec import Preprocessor

    model = lite0.module
    probe = Probe(model, lite0.example_input())
    assert stride_period(model, probe) == 2
    x = Preprocessor(lite0.spec).tensor(read_image(sample_image("cat")))
    ours = attribute(model, probe, x, "guided", Target("class", CAT))
    with rectifiers_as_relu_modules(model), warnings.catch_warnings(), torch.enable_grad():
        warnings.simplefilter("ignore")
        plain = GuidedBackprop(Objective(model, probe, Target("class", CAT))).attribute(x.clone().requires_grad_())
    plain = plain[0].sum(0).detach().numpy()
    assert _power_at_period(plain, 2) > 3
    assert _power_at_period(ours, 2) <= 2
    assert np.corrcoef(np.abs(ours).ravel(), np.abs(plain).ravel())[0, 1] > 0.5  # the same map, less its grid
