"""timm:NAME sources, built offline (pretrained=False): token layers equal timm's own
forward_intermediates(output_fmt="NCHW") on a ViT at a non-square size and on a patch-14 model
with four registers; fine-tuned heads and EMA/prefixed checkpoints (safetensors too) load with
their class count read off the weights; timm's fused attention is captured; bad names are one
line."""

import pytest
import torch
from safetensors.torch import save_file

timm = pytest.importorskip("timm")

from deepvis.attribution.attention import capture_attention, rollout  # noqa: E402
from deepvis.attribution.saliency import Target, attribute, default_gradcam_layer  # noqa: E402
from deepvis.core.loading import load_model  # noqa: E402
from deepvis.core.probe import Probe  # noqa: E402
from deepvis.errors import DeepvisError  # noqa: E402


@pytest.fixture(scope="module")
def vit_tiny():
    torch.manual_seed(0)
    return load_model("timm:vit_tiny_patch16_224", "none", device="cpu", input_size=(64, 96))


def test_vit_token_layers_equal_timms_intermediates_at_a_non_square_size(vit_tiny):
    model = vit_tiny
    assert (model.spec.height, model.spec.width) == (64, 96) and model.spec.mean == (0.5, 0.5, 0.5)
    assert len(model.labels) == 1000 and any("ImageNet" in n for n in model.notes)
    x = torch.rand(2, 3, 64, 96)
    probe = Probe(model.module, x[:1])
    blocks = [f"blocks.{i}" for i in range(12)]
    assert all(probe.layer(b).tokens == (1, 4, 6) and probe.layer(b).shape == (192, 4, 6) for b in blocks)
    with torch.no_grad():
        _, acts = probe.capture(x, blocks)
        _, intermediates = model.module.forward_intermediates(x, output_fmt="NCHW")
    for name, expected in zip(blocks, intermediates):
        torch.testing.assert_close(acts[name], expected, rtol=0, atol=0)
    assert default_gradcam_layer(probe) == "blocks.11.norm1"


def test_a_register_model_at_a_non_square_size():
    torch.manual_seed(0)
    model = load_model("timm:vit_small_patch14_reg4_dinov2", "none", device="cpu", input_size=(126, 98))
    x = torch.rand(1, 3, 126, 98)
    probe = Probe(model.module, x)
    assert probe.layer("blocks.5").tokens == (5, 9, 7)  # CLS + 4 registers, a 9 x 7 patch grid
    with torch.no_grad():
        _, acts = probe.capture(x, ["blocks.5"])
        _, intermediates = model.module.forward_intermediates(x, indices=[5], output_fmt="NCHW")
    torch.testing.assert_close(acts["blocks.5"], intermediates[0], rtol=0, atol=0)


def test_swin_stages_are_channels_first_grids():
    """Swin keeps its stages channels-last (B, H, W, C): shown as C x H x W, equal to timm's NCHW
    intermediates; Grad-CAM at a stage is computed on that layout."""
    torch.manual_seed(0)
    model = load_model("timm:swin_tiny_patch4_window7_224", "none", device="cpu")
    x = torch.rand(1, 3, 224, 224)
    probe = Probe(model.module, x)
    stages = [f"layers.{i}" for i in range(4)]
    assert [probe.layer(s).shape for s in stages] == [(96, 56, 56), (192, 28, 28), (384, 14, 14), (768, 7, 7)]
    assert all(probe.layer(s).channels_last for s in stages)
    with torch.no_grad():
        _, acts = probe.capture(x, stages)
        _, intermediates = model.module.forward_intermediates(x, output_fmt="NCHW")
    for name, expected in zip(stages, intermediates):
        torch.testing.assert_close(acts[name], expected, rtol=0, atol=0)
    cam = attribute(model.module, probe, x, "gradcam", Target("class", 0), layer="layers.2")
    assert cam.shape == (224, 224) and cam.min() >= 0


def test_fine_tuned_ema_and_prefixed_checkpoints(tmp_path):
    torch.manual_seed(3)
    tuned = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=7).eval()
    state = tuned.state_dict()
    torch.save({"state_dict_ema": state, "epoch": 12}, tmp_path / "ema.pth")
    save_file({f"module.{k}": v.contiguous() for k, v in state.items()}, str(tmp_path / "tuned.safetensors"))
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        expected = tuned(x)
    for name in ("ema.pth", "tuned.safetensors"):
        model = load_model("timm:vit_tiny_patch16_224", str(tmp_path / name), device="cpu")
        assert model.labels is None  # 7 classes: no names assumed
        with torch.no_grad():
            torch.testing.assert_close(model.module(x), expected, rtol=1e-5, atol=1e-5)


def test_timms_fused_attention_is_captured_and_rolled_out(vit_tiny):
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        plain = vit_tiny.module(x)
    out, attention = capture_attention(vit_tiny.module, x)
    torch.testing.assert_close(out, plain, rtol=1e-4, atol=1e-5)
    assert len(attention.layers) == 12 and attention.probabilities[0].shape == (1, 3, 25, 25)
    torch.testing.assert_close(attention.probabilities[4].sum(-1), torch.ones(1, 3, 25))
    assert all(m.fused_attn for m in vit_tiny.module.modules() if hasattr(m, "fused_attn"))  # restored
    grid = rollout(attention.probabilities, 1, (4, 6))
    assert grid.shape == (1, 4, 6) and float(grid.sum()) > 0
    probe = Probe(vit_tiny.module, x)
    smap = attribute(vit_tiny.module, probe, x, "grad-rollout", Target("class", 1))
    assert smap.shape == (64, 96) and smap.min() >= 0


@pytest.mark.parametrize("source, needle", [("timm:vit_tiny_patch16_22", "did you mean vit_tiny_patch16_224"),
                                            ("timm:", "needs a model name")])
def test_bad_timm_names_are_one_line(source, needle):
    with pytest.raises(DeepvisError, match=needle) as info:
        load_model(source, "none", device="cpu")
    assert "\n" not in str(info.value)
