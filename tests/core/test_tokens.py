"""Transformer token layers on the patch grid: a (B, N, C) output is shown as C x H x W with
the prefix tokens (CLS, registers) set apart, equal to the tokens reshaped by hand, on a
torchvision ViT and on a non-square register ViT; CNNs and 1-D models are left alone; Grad-CAM
on a ViT defaults to the last block's first norm and equals Grad-CAM written out here."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from torchvision.models.vision_transformer import VisionTransformer

from deepvis.attribution.saliency import Target, attribute, default_gradcam_layer
from deepvis.core.probe import Probe, prefix_tokens

from testnets import RegisterViT, Tiny1D


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    net = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32,
                            num_classes=10).eval()
    torch.nn.init.normal_(net.heads.head.weight)  # torchvision starts the head at zero: no gradients at all
    return net


def _raw(net, path, x):
    found = {}
    handle = net.get_submodule(path).register_forward_hook(lambda m, i, o: found.setdefault("out", o))
    try:
        net(x)
    finally:
        handle.remove()
    return found["out"]


def _by_hand(tokens, prefix, h, w):
    return tokens[:, prefix:].transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], h, w)


def test_vit_blocks_are_channels_on_the_patch_grid(vit):
    x = torch.rand(2, 3, 32, 32)
    probe = Probe(vit, x[:1])
    block = probe.layer("encoder.layers.encoder_layer_0")
    assert block.shape == (16, 4, 4) and block.tokens == (1, 4, 4) and block.spatial
    assert probe.layer("encoder.layers.encoder_layer_0.mlp.1").shape == (32, 4, 4)  # the MLP's wider channels
    assert probe.layer("conv_proj").tokens is None and probe.layer("heads.head").tokens is None
    with torch.no_grad():
        _, acts = probe.capture(x, [block.name])
        raw = _raw(vit, block.path, x)
    torch.testing.assert_close(acts[block.name], _by_hand(raw, 1, 4, 4), rtol=0, atol=0)
    torch.testing.assert_close(prefix_tokens(raw, block), raw[:, :1])
    assert probe.default_layer().tokens is not None  # the window opens on a grid, not on 197 "channels"


def test_registers_and_a_non_square_grid():
    net = RegisterViT().eval()
    x = torch.rand(2, 1, 24, 32)
    probe = Probe(net, x[:1])
    block = probe.layer("block")
    assert block.tokens == (5, 6, 8) and block.shape == (16, 6, 8)
    with torch.no_grad():
        _, acts = probe.capture(x, ["block", "norm"])
        raw = _raw(net, "block", x)
    torch.testing.assert_close(acts["block"], _by_hand(raw, 5, 6, 8), rtol=0, atol=0)
    assert acts["norm"].shape == (2, 16, 6, 8)
    # Where a patch is in the grid is where it is in the picture: patch (2, 5) is token 5 + 2 * 8 + 5.
    torch.testing.assert_close(acts["block"][:, :, 2, 5], raw[:, 5 + 2 * 8 + 5])


def test_cnns_and_1d_models_have_no_token_layers(digits):
    assert all(layer.tokens is None for layer in Probe(digits.module, digits.example_input()).layers)
    net = Tiny1D().eval()
    assert all(layer.tokens is None for layer in Probe(net, torch.zeros(1, 1, 256)).layers)


def test_vit_gradcam_is_gradcam_on_the_token_grid(vit):
    torch.manual_seed(1)
    x = torch.rand(1, 3, 32, 32)
    probe = Probe(vit, x)
    layer = default_gradcam_layer(probe)
    assert layer == "encoder.layers.encoder_layer_1.ln_1"
    maps = []
    for k in range(10):
        cam = attribute(vit, probe, x, "gradcam", Target("class", k))
        found = {}
        handle = vit.encoder.layers.encoder_layer_1.ln_1.register_forward_hook(lambda m, i, o: found.setdefault("o", o))
        score = vit(x)[0, k]
        handle.remove()
        grad, = torch.autograd.grad(score, found["o"])
        acts, grads = _by_hand(found["o"].detach(), 1, 4, 4), _by_hand(grad, 1, 4, 4)
        expected = F.interpolate(torch.relu((grads.mean((2, 3), keepdim=True) * acts).sum(1, keepdim=True)),
                                 size=(32, 32), mode="bilinear")[0, 0].numpy()
        assert cam.shape == (32, 32)
        np.testing.assert_allclose(cam, expected, rtol=1e-4, atol=1e-6 * max(float(expected.max()), 1e-6))
        maps.append(cam)
    assert sum(float(m.max()) > 0 for m in maps) >= 3  # not an all-zero map for every class


def test_live_grid_tiles_of_a_vit_block_are_its_channels(vit):
    from deepvis.core.loading import LoadedModel
    from deepvis.core.inputspec import InputSpec
    from deepvis.io.sources import PatternSource
    from deepvis.live.pipeline import LivePipeline, LiveSettings

    model = LoadedModel(module=vit, spec=InputSpec(3, 32, 32, (0.5,) * 3, (0.25,) * 3), labels=None, name="vit",
                        device=torch.device("cpu"))
    layer = "encoder.layers.encoder_layer_1"
    with LivePipeline(model, PatternSource(), LiveSettings(grid_layer=layer, layers=(layer,))) as pipeline:
        result = pipeline.wait_for_results(2, timeout=60)
    x = torch.from_numpy(model.preprocessor.tensor(result.frame.image, "cpu").numpy())
    with torch.no_grad():
        expected = _by_hand(_raw(vit, layer, x), 1, 4, 4)[0].numpy()
    assert result.grid_layout.count == 16
    for k in (0, 7, 15):
        np.testing.assert_allclose(result.channel(k), expected[k], rtol=1e-5, atol=1e-6)
        tile = result.grid[result.grid_layout.tile_slices(k)]
        np.testing.assert_allclose(tile, expected[k], rtol=1e-5, atol=1e-6)
