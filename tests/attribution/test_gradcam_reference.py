"""Grad-CAM on a vision transformer agrees with pytorch-grad-cam, the library users compare
against, run as its ViT tutorial runs it: the block's tokens reshaped to the patch grid with
the CLS token dropped. (CI installs it without its dependencies, since it declares the full
opencv-python beside our headless OpenCV: `pip install --no-deps grad-cam ttach`.)"""

import numpy as np
import pytest
import torch

pytest.importorskip("pytorch_grad_cam")
from pytorch_grad_cam import GradCAM  # noqa: E402
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

from deepvis.attribution.saliency import Target, attribute, default_gradcam_layer  # noqa: E402
from deepvis.core.loading import load_model  # noqa: E402
from deepvis.core.probe import Probe  # noqa: E402
from deepvis.models import digits_vit as dv  # noqa: E402


def test_vit_gradcam_correlates_with_pytorch_grad_cam():
    model = load_model("digits_vit", device="cpu")
    net = model.module
    probe = Probe(net, model.example_input())
    layer = default_gradcam_layer(probe)
    assert layer == "blocks.3.norm1"
    grid = dv.GRID

    def reshape_transform(tensor):
        tokens = tensor[:, 1:, :].reshape(tensor.size(0), grid, grid, tensor.size(2))
        return tokens.permute(0, 3, 1, 2)

    cam = GradCAM(model=net, target_layers=[net.blocks[-1].norm1], reshape_transform=reshape_transform)
    X, Y, _ = dv.make_mosaics(20, seed=3, split="test")
    correlations = []
    for x, y in zip(X, Y):
        x = torch.from_numpy(x)[None]
        digit = int(np.flatnonzero(y)[0])
        ours = attribute(net, probe, x, "gradcam", Target("class", digit))
        theirs = cam(input_tensor=x, targets=[ClassifierOutputTarget(digit)])[0]
        assert ours.shape == theirs.shape == (32, 32)
        if ours.std() > 0 and theirs.std() > 0:
            correlations.append(float(np.corrcoef(ours.ravel(), theirs.ravel())[0, 1]))
    assert len(correlations) >= 15
    # The issue asks for 0.9; the two are the same computation up to the final scaling.
    assert min(correlations) >= 0.99, correlations
