"""Attention of vision transformers: captured per head on the explicit path (torchvision's ViT
asks for no weights, nn.TransformerEncoderLayer runs fused in eval mode) and equal to softmax(q k^T /
sqrt(d)) computed here; the model's output unchanged and its modules restored; rollout and
gradient-weighted rollout equal reference implementations written in the test."""

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from torchvision.models.vision_transformer import VisionTransformer

from deepvis.attribution.attention import capture_attention, grad_rollout, rollout
from deepvis.attribution.saliency import Target, attribute
from deepvis.core.probe import Probe
from deepvis.errors import DeepvisError

from testnets import RegisterViT


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    net = VisionTransformer(image_size=32, patch_size=8, num_layers=3, num_heads=2, hidden_dim=16, mlp_dim=32,
                            num_classes=10).eval()
    torch.nn.init.normal_(net.heads.head.weight)
    return net


def _by_hand(mha, h):
    """softmax(q k^T / sqrt(d)) per head, from the module's own projection weights."""
    b, n, c = h.shape
    heads = mha.num_heads
    q, k, _ = F.linear(h, mha.in_proj_weight, mha.in_proj_bias).chunk(3, dim=-1)
    q = q.reshape(b, n, heads, c // heads).transpose(1, 2)
    k = k.reshape(b, n, heads, c // heads).transpose(1, 2)
    return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(c // heads), dim=-1)


def test_attention_of_a_torchvision_vit_is_softmax_qk(vit):
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        plain = vit(x)
    found = {}
    handle = vit.encoder.layers.encoder_layer_1.ln_1.register_forward_hook(lambda m, i, o: found.setdefault("h", o))
    out, attention = capture_attention(vit, x)
    handle.remove()
    torch.testing.assert_close(out, plain)  # the explicit path computes the same model
    assert attention.layers == tuple(f"encoder.layers.encoder_layer_{i}.self_attention" for i in range(3))
    a = attention.probabilities[1]
    assert a.shape == (2, 2, 17, 17)
    torch.testing.assert_close(a.sum(-1), torch.ones(2, 2, 17))
    with torch.no_grad():
        torch.testing.assert_close(a, _by_hand(vit.encoder.layers.encoder_layer_1.self_attention, found["h"]),
                                   rtol=1e-4, atol=1e-6)
    assert all("forward" not in vars(m) for m in vit.modules())  # every patched forward removed


def test_fused_encoder_layers_are_captured_too():
    net = RegisterViT().eval()
    x = torch.rand(1, 1, 24, 32)
    with torch.no_grad():
        plain = net(x)
    out, attention = capture_attention(net, x)
    torch.testing.assert_close(out, plain, rtol=1e-5, atol=1e-6)
    assert attention.layers == ("block.self_attn",) and attention.probabilities[0].shape == (1, 2, 53, 53)


def _rollout_reference(probabilities, prefix, grid):
    result = np.eye(probabilities[0].shape[-1])
    for a in probabilities:
        a = a[0].numpy().mean(0)
        a = 0.5 * a + 0.5 * np.eye(len(a))
        a = a / a.sum(1, keepdims=True)
        result = a @ result
    return result[0, prefix:].reshape(grid), result


def test_rollout_equals_the_reference(vit):
    x = torch.rand(1, 3, 32, 32)
    _, attention = capture_attention(vit, x)
    expected, matrix = _rollout_reference(attention.probabilities, 1, (4, 4))
    np.testing.assert_allclose(matrix.sum(1), 1.0, rtol=1e-6)  # rolled rows stay distributions
    got = rollout(attention.probabilities, 1, (4, 4))[0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    # Through the saliency methods: the same grid, bilinearly at the input's size.
    probe = Probe(vit, x)
    smap = attribute(vit, probe, x, "attention-rollout", Target("class", 0))
    upsampled = F.interpolate(torch.from_numpy(expected).float()[None, None], size=(32, 32), mode="bilinear")
    np.testing.assert_allclose(smap, upsampled[0, 0].numpy(), rtol=1e-5, atol=1e-7)


def test_gradient_weighted_rollout_equals_the_reference(vit):
    x = torch.rand(1, 3, 32, 32)
    probe = Probe(vit, x)
    smap = attribute(vit, probe, x, "grad-rollout", Target("class", 4))
    from deepvis.attribution.attention import explicit_attention

    with explicit_attention(vit, keep_graph=True) as records:
        score = vit(x)[0, 4]
    probabilities = [p for _, p in records]
    grads = torch.autograd.grad(score, probabilities)
    relevance = np.eye(17)
    for a, g in zip(probabilities, grads):
        cam = np.clip((g * a).detach()[0].numpy(), 0, None).mean(0)
        relevance = relevance + cam @ relevance
    expected = relevance[0, 1:].reshape(4, 4)
    np.testing.assert_allclose(grad_rollout([p.detach() for p in probabilities], grads, 1, (4, 4))[0].numpy(),
                               expected, rtol=1e-5, atol=1e-8)
    upsampled = F.interpolate(torch.from_numpy(expected).float()[None, None], size=(32, 32), mode="bilinear")
    np.testing.assert_allclose(smap, upsampled[0, 0].numpy(), rtol=1e-4, atol=1e-7)
    assert smap.min() >= 0


def test_rollout_on_a_cnn_is_refused(digits):
    probe = Probe(digits.module, digits.example_input())
    with pytest.raises(DeepvisError, match="needs a vision transformer"):
        attribute(digits.module, probe, digits.example_input(), "attention-rollout", Target("class", 0))


def test_a_torchscript_model_has_no_attention_to_switch_and_says_so():
    # Its submodules' dictionaries are TorchScript's own (no .get): the checks must not raise.
    from testnets import Functional

    from deepvis.attribution.attention import attention_modules, capture_attention
    from deepvis.errors import DeepvisError

    scripted = torch.jit.script(Functional().eval())
    assert attention_modules(scripted) == []
    with pytest.raises(DeepvisError, match="no attention here"):
        capture_attention(scripted, torch.rand(1, 1, 8, 8))


def test_a_class_agnostic_rollout_is_not_captioned_for_a_class(vit, tmp_path):
    from deepvis.attribution.saliency import explains
    from deepvis.resources import SAMPLE_SETS
    from clirun import run_command

    x = torch.rand(1, 3, 32, 32)
    probe = Probe(vit, x)
    maps = [attribute(vit, probe, x, "attention-rollout", Target("class", c)) for c in (0, 3)]
    np.testing.assert_array_equal(maps[0], maps[1])  # the same map whatever the class
    assert " for 7" not in explains("attention-rollout", "7") and explains("grad-rollout", "7") == "grad-rollout for 7"
    mosaic = sorted(SAMPLE_SETS["mosaics"].path.glob("*.png"))[0]
    done = run_command(["saliency", "--model", "digits_vit", "--input", str(mosaic), "--method", "attention-rollout",
                        "--out", str(tmp_path / "map.png")], tmp_path)
    assert done.returncode == 0 and "class-agnostic" in done.stdout and " for " not in done.stdout.split(":")[0]
