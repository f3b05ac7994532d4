"""Layer discovery and activation capture on real networks."""

import pytest
import torch
from torch import nn

from deepvis.errors import DeepvisError
from deepvis.core.probe import Probe, parse_layer_name


def _all_hooks(module):
    return sum(len(m._forward_hooks) for m in module.modules())


def test_resnet_layers_in_execution_order_with_shapes(resnet18_random):
    probe = Probe(resnet18_random.module, resnet18_random.example_input())
    names = probe.names()
    assert names[:4] == ["conv1", "bn1", "relu", "maxpool"]
    assert probe.layer("conv1").shape == (64, 32, 32)
    assert probe.layer("layer4").shape == (512, 2, 2)
    assert probe.layer("fc").shape == (1000,)
    # BasicBlock calls its one ReLU module twice: two layers.
    assert {"layer1.0.relu#0", "layer1.0.relu#1"} <= set(names)
    assert parse_layer_name("layer1.0.relu#1") == ("layer1.0.relu", 1, "")
    assert names[-1] == "output"
    assert _all_hooks(resnet18_random.module) == 0


def test_capture_matches_running_the_layers_by_hand(resnet18_random):
    m = resnet18_random.module
    probe = Probe(m, resnet18_random.example_input())
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        out, acts = probe.capture(x, ["bn1", "layer1.0.relu#0", "layer1.0.relu#1", "fc", "output"])
        bn1 = m.bn1(m.conv1(x))
        stem = m.maxpool(torch.relu(bn1))
        block = m.layer1[0]
        first_relu = torch.relu(block.bn1(block.conv1(stem)))
        second_relu = torch.relu(block.bn2(block.conv2(first_relu)) + stem)
    # bn1 is followed by an in-place ReLU: the capture must keep the pre-ReLU values.
    assert (acts["bn1"] < 0).any()
    torch.testing.assert_close(acts["bn1"], bn1)
    torch.testing.assert_close(acts["layer1.0.relu#0"], first_relu)
    torch.testing.assert_close(acts["layer1.0.relu#1"], second_relu)
    torch.testing.assert_close(acts["fc"], out)
    torch.testing.assert_close(acts["output"], out)
    assert _all_hooks(m) == 0


def test_hooks_are_removed_when_the_forward_fails(resnet18_random):
    probe = Probe(resnet18_random.module, resnet18_random.example_input())
    with pytest.raises(RuntimeError):
        probe.capture(torch.randn(1, 5, 64, 64), ["conv1", "layer2"])  # wrong channel count
    assert _all_hooks(resnet18_random.module) == 0


def test_efficientnet_reused_activation_module(lite0):
    m = lite0.module
    probe = Probe(m, lite0.example_input())
    stem = probe.layer("_swish#0")
    assert stem.type_name == "ReLU6" and stem.shape == (32, 112, 112)
    assert probe.layer("_swish#1").shape == (1280, 7, 7)
    x = torch.randn(1, 3, 224, 224)
    with torch.inference_mode():
        _, acts = probe.capture(x, ["_swish#0"])
        expected = torch.nn.functional.relu6(m._bn0(m._conv_stem(x)))
    torch.testing.assert_close(acts["_swish#0"], expected)
    assert probe.default_layer().type_name == "ReLU6"
    assert probe.largest_conv_layer().is_conv


def test_dict_outputs_become_layers():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Conv2d(1, 4, 3, padding=1)

        def forward(self, x):
            y = self.body(x)
            return {"out": y.mean(1, keepdim=True), "extras": (y.amax((2, 3)), y)}

    model = TwoHeads().eval()
    probe = Probe(model, torch.zeros(1, 1, 6, 10))
    assert {"output[out]", "output[extras][0]", "output[extras][1]"} <= set(probe.names())
    assert probe.layer("output[extras][0]").shape == (4,)
    x = torch.randn(1, 1, 6, 10)
    with torch.inference_mode():
        out, acts = probe.capture(x, ["output[extras][1]", "body"])
    torch.testing.assert_close(acts["output[extras][1]"], model.body(x))
    torch.testing.assert_close(acts["body"], model.body(x))


def test_unknown_layer_suggests_close_names(resnet18_random):
    probe = Probe(resnet18_random.module, resnet18_random.example_input())
    with pytest.raises(DeepvisError, match="layer1.0.conv1"):
        probe.layer("layer1.0.conv")


def test_a_model_that_fails_on_its_input_is_a_clear_error():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    with pytest.raises(DeepvisError, match="fails on a"):
        Probe(model, torch.zeros(1, 3, 8, 8))


def test_capture_on_another_thread_is_not_disturbed(resnet18_random):
    """The live pipeline and a script may capture the same layer at the same time."""
    import threading

    m = resnet18_random.module
    probe = Probe(m, resnet18_random.example_input())
    stop = threading.Event()

    def other():
        noise = torch.randn(1, 3, 64, 64) * 5
        with torch.inference_mode():
            while not stop.is_set():
                probe.capture(noise, ["layer1"])

    thread = threading.Thread(target=other)
    thread.start()
    try:
        x = torch.randn(1, 3, 64, 64)
        with torch.inference_mode():
            expected = m.layer1(m.maxpool(m.relu(m.bn1(m.conv1(x)))))
            for _ in range(20):
                _, acts = probe.capture(x, ["layer1"])
                torch.testing.assert_close(acts["layer1"], expected)
    finally:
        stop.set()
        thread.join()
