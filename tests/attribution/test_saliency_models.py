"""Every saliency method on the other model shapes the issue names: a grayscale non-square
classifier and a segmentation net (class channel summed, or a pixel region), headless, live
and from the CLI."""

import numpy as np
import pytest
import torch
from torch import nn

from deepvis.live.computethread import compute_thread
from deepvis.errors import DeepvisError
from deepvis.io.images import write_image
from deepvis.core.inputspec import InputSpec
from deepvis.core.loading import LoadedModel
from deepvis.live.pipeline import LivePipeline, LiveSettings, SaliencySettings
from deepvis.core.probe import Probe
from deepvis.attribution.saliency import METHODS, ROLLOUT_METHODS, Target, attribute, parse_region
from deepvis.io.sources import ImageFileSource


class GrayNet(nn.Module):
    """One channel in, a wide 24 x 40 input, ReLU and ReLU6 rectifiers: a small real classifier."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.relu2 = nn.ReLU6()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc(self.pool(self.relu2(self.conv2(self.relu1(self.conv1(x))))).flatten(1))


@pytest.fixture(scope="module")
def gray():
    torch.manual_seed(0)
    return LoadedModel(module=GrayNet().eval(), spec=InputSpec(1, 24, 40), labels=list("abcde"), name="gray",
                       device=torch.device("cpu"))


@pytest.fixture(scope="module")
def segmenter():
    from deepvis.core.loading import load_model

    torch.manual_seed(0)
    return load_model("lraspp_mobilenet_v3_large", "none", device="cpu", input_size=(96, 128))


def _quarter_share(saliency):
    a = np.abs(saliency)
    h, w = a.shape
    return a[: h // 2, : w // 2].sum() / a.sum()


CNN_METHODS = [m for m in METHODS if m not in ROLLOUT_METHODS]  # rollouts are for vision transformers


@pytest.mark.parametrize("method", CNN_METHODS)
def test_every_method_on_a_grayscale_non_square_model(gray, method):
    probe = Probe(gray.module, gray.example_input())
    x = torch.randn(1, 1, 24, 40)
    saliency = attribute(gray.module, probe, x, method, Target("class", 2), steps=8, samples=4)
    assert saliency.shape == (24, 40) and saliency.dtype == np.float32
    assert np.isfinite(saliency).all() and np.abs(saliency).max() > 0


@pytest.mark.parametrize("method", CNN_METHODS)
def test_every_method_on_a_segmentation_net_and_a_region(segmenter, method):
    probe = Probe(segmenter.module, segmenter.example_input())
    torch.manual_seed(1)
    x = torch.randn(1, 3, 96, 128)
    whole = attribute(segmenter.module, probe, x, method, Target("class", 3), steps=8, samples=4)
    region = attribute(segmenter.module, probe, x, method, Target("class", 3, region=(0, 0, 0.5, 0.5)),
                       steps=8, samples=4)
    for saliency in (whole, region):
        assert saliency.shape == (96, 128) and np.isfinite(saliency).all() and np.abs(saliency).max() > 0
    if method != "gradcam":  # Grad-CAM averages its weights over space: it has no locality to test
        # Explaining the top-left quarter of the output puts the input's mass there (receptive fields).
        assert _quarter_share(region) > 0.75 > 0.4 > _quarter_share(whole)


def test_region_on_a_classifier_and_bad_regions_are_clear_errors(gray):
    probe = Probe(gray.module, gray.example_input())
    with pytest.raises(DeepvisError, match="region needs a target with pixels"):
        attribute(gray.module, probe, torch.randn(1, 1, 24, 40), "gradient", Target("class", 0, region=(0, 0, 1, 1)))
    for bad in ("0.5,0.5,0.2,0.9", "0,0,1", "0,0,1,1.5", "a,b,c,d"):
        with pytest.raises(DeepvisError, match="region"):
            parse_region(bad)
    assert parse_region("0,0.25,0.5,1") == (0.0, 0.25, 0.5, 1.0)


@pytest.mark.parametrize("method", ["guided", "smoothgrad"])
def test_live_on_the_segmentation_net_and_the_gray_model(segmenter, gray, method, tmp_path):
    path = tmp_path / "frame.png"
    write_image(path, np.random.default_rng(0).integers(0, 255, (60, 90, 3), dtype=np.uint8))
    for model, grid_layer, target in ((segmenter, "backbone.4", Target("class", 5, region=(0.5, 0.5, 1, 1))),
                                      (gray, "conv2", None)):
        settings = LiveSettings(grid_layer=grid_layer, saliency=SaliencySettings(method, target, samples=4))
        pipeline = LivePipeline(model, ImageFileSource(path), settings).start()
        try:
            deadline = 60
            import time

            end = time.monotonic() + deadline
            while (pipeline.latest() is None or pipeline.latest().saliency is None) and time.monotonic() < end:
                time.sleep(0.02)
            sal = pipeline.latest().saliency
            assert sal is not None and sal.map.shape == tuple(model.spec.size)
            assert np.isfinite(sal.map).all() and np.abs(sal.map).max() > 0
            if target is not None:
                assert sal.target == target
        finally:
            pipeline.stop()
    assert not compute_thread()._idle


def test_cli_region_on_a_segmentation_net(tmp_path, capsys):
    from deepvis.cli import main

    torch.manual_seed(0)
    weights = tmp_path / "lraspp.pth"
    from deepvis.core.loading import load_model

    torch.save(load_model("lraspp_mobilenet_v3_large", "none", input_size=(96, 128)).module.state_dict(), weights)
    image = tmp_path / "in.png"
    write_image(image, np.random.default_rng(1).integers(0, 255, (96, 128, 3), dtype=np.uint8))
    npy = tmp_path / "map.npy"
    code = main(["saliency", "--model", "lraspp_mobilenet_v3_large", "--weights", str(weights), "--input-size",
                 "96x128", "--input", str(image), "--method", "gradient", "--target", "7", "--region",
                 "0.5,0,1,0.5", "--out", str(tmp_path / "map.png"), "--npy", str(npy)])
    assert code == 0, capsys.readouterr().err
    saliency = np.load(npy)
    a = np.abs(saliency)
    assert saliency.shape == (96, 128) and a[:48, 64:].sum() / a.sum() > 0.75  # the top-right quarter
    assert "in (0.50, 0.00)-(1.00, 0.50)" in capsys.readouterr().out
    code = main(["saliency", "--model", "digits_cnn", "--input", str(image), "--method", "gradient",
                 "--region", "0,0,0.5,0.5", "--out", str(tmp_path / "x.png")])
    assert code == 2 and "region needs a target with pixels" in capsys.readouterr().err
