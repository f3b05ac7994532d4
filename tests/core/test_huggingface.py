"""Hugging Face image classifiers from a local folder, offline: id2label as labels (generic
LABEL_k reported, not shown), preprocessing from preprocessor_config.json, the output object
read as its logits in predict and saliency, ViT token layers equal the model's own hidden
states laid on the patch grid, and a folder without weights is one error line."""

import json

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from deepvis.attribution.saliency import Target, attribute, default_gradcam_layer  # noqa: E402
from deepvis.core.loading import load_model  # noqa: E402
from deepvis.core.probe import Probe  # noqa: E402
from deepvis.errors import DeepvisError  # noqa: E402
from deepvis.resources import sample_image  # noqa: E402

from clirun import run_commands  # noqa: E402


def _vit(labels):
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=32, num_labels=3,
                       **({"id2label": dict(enumerate(labels)), "label2id": {n: i for i, n in enumerate(labels)}}
                          if labels else {}))
    return ViTForImageClassification(config).eval()


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from transformers import ViTImageProcessor

    d = tmp_path_factory.mktemp("hf")
    named = _vit(["cat", "dog", "fish"])
    named.save_pretrained(d / "named")
    ViTImageProcessor(image_mean=[0.4] * 3, image_std=[0.2] * 3, size={"height": 32, "width": 32}).save_pretrained(
        d / "named")
    _vit(None).save_pretrained(d / "generic")
    (d / "empty").mkdir()
    (d / "empty" / "config.json").write_text(json.dumps(named.config.to_dict()))
    return d, named


def test_a_folder_loads_offline_with_its_labels_and_preprocessing(folders):
    d, net = folders
    model = load_model(str(d / "named"), device="cpu")
    assert model.labels == ["cat", "dog", "fish"] and model.task == "classification"
    assert (model.spec.height, model.spec.width) == (32, 32)
    assert model.spec.mean == (0.4,) * 3 and model.spec.std == (0.2,) * 3
    from deepvis.io.images import read_image
    from deepvis.core.predictions import summarize

    x = model.input_tensor(read_image(sample_image("cat")))
    with torch.no_grad():
        logits = net(pixel_values=x).logits
        summary = summarize(model.module(x), model.labels, 3)
    probs = torch.softmax(logits, 1)[0]
    for row in summary.predictions:
        assert row.score == pytest.approx(float(probs[row.index]), abs=1e-6)
    assert summary.predictions[0].label == model.labels[int(probs.argmax())]


def test_vit_token_layers_equal_its_hidden_states(folders):
    d, net = folders
    model = load_model(str(d / "named"), device="cpu")
    x = torch.rand(2, 3, 32, 32)
    probe = Probe(model.module, x[:1])
    layer = probe.layer("vit.layers.0")
    assert layer.tokens == (1, 4, 4) and layer.shape == (16, 4, 4)
    with torch.no_grad():
        _, acts = probe.capture(x, [layer.name])
        hidden = net(pixel_values=x, output_hidden_states=True).hidden_states[1]
    expected = hidden[:, 1:].transpose(1, 2).reshape(2, 16, 4, 4)
    torch.testing.assert_close(acts[layer.name], expected, rtol=1e-6, atol=1e-6)
    assert default_gradcam_layer(probe) == "vit.layers.1.layernorm_before"
    cam = attribute(model.module, probe, x[:1], "gradcam", Target("class", 1))
    gradient = attribute(model.module, probe, x[:1], "gradient", Target("class", 1))
    assert cam.shape == (32, 32) and cam.min() >= 0 and np.abs(gradient).max() > 0


def test_generic_labels_and_missing_weights(folders):
    d, _ = folders
    model = load_model(str(d / "generic"), device="cpu")
    assert model.labels is None and any("LABEL_k" in n for n in model.notes)
    with pytest.raises(DeepvisError, match="cannot load the Hugging Face model") as info:
        load_model(str(d / "empty"), device="cpu")
    assert "\n" not in str(info.value)


def test_predict_on_the_command_line(folders):
    d, net = folders
    results = run_commands({
        "named": ["predict", "--model", d / "named", "--input", sample_image("cat"), "--json"],
        "empty": ["predict", "--model", d / "empty", "--input", sample_image("cat")],
    }, d)
    named = results["named"]
    assert named.returncode == 0, named.stderr
    rows = json.loads(named.stdout)["predictions"]
    assert {row["label"] for row in rows} == {"cat", "dog", "fish"}
    assert "Loading weights" not in named.stderr  # transformers' progress bars stay out of the CLI
    empty = results["empty"]
    assert empty.returncode == 2 and len(empty.stderr.splitlines()) == 1


def test_attention_and_both_rollouts_of_a_hugging_face_vit(folders):
    """Hugging Face attention runs sdpa, which forms no probabilities to read; while captured
    it runs the eager function, and the probabilities equal those the model itself reports."""
    from torch.nn import functional as F

    from deepvis.attribution.attention import capture_attention, rollout
    from deepvis.attribution.saliency import applicable_methods

    d, net = folders
    model = load_model(str(d / "named"), device="cpu")
    probe = Probe(model.module, model.example_input())
    assert {"attention-rollout", "grad-rollout"} <= set(applicable_methods(model.module, probe))
    implementation = model.module.config._attn_implementation if hasattr(model.module, "config") else None
    x = torch.rand(1, 3, 32, 32)
    _, attention = capture_attention(model.module, x)
    if implementation is not None:
        assert model.module.config._attn_implementation == implementation  # restored
    net.config._attn_implementation = "eager"
    with torch.no_grad():
        reference = net(pixel_values=x, output_attentions=True).attentions
    assert attention.layers == ("vit.layers.0.attention", "vit.layers.1.attention")
    for got, want in zip(attention.probabilities, reference):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    smap = attribute(model.module, probe, x, "attention-rollout", Target("class", 1))
    expected = F.interpolate(rollout(reference, 1, (4, 4))[:, None], size=(32, 32), mode="bilinear")[0, 0]
    np.testing.assert_allclose(smap, expected.numpy(), rtol=1e-5, atol=1e-7)
    weighted = attribute(model.module, probe, x, "grad-rollout", Target("class", 1))
    assert weighted.shape == (32, 32) and np.isfinite(weighted).all() and weighted.max() > 0
    assert not np.allclose(weighted, smap)
