"""Attribution leaves nothing behind: the live view calls it every frame for hours."""

import gc
import weakref

import pytest
import torch

from deepvis.attribution import saliency
from deepvis.core.loading import load_model
from deepvis.core.probe import Probe
from deepvis.attribution.saliency import Target, attribute


@pytest.mark.parametrize("method", ["gradient", "guided", "deconv", "gradcam"])
def test_attribute_frees_its_objective_and_graph(method, monkeypatch):
    # Guided backprop and deconvolution once kept every call's objective alive (~20 MB of
    # activations on EfficientNet-Lite0, 3 GB a minute live) through a reference cycle that
    # runs through autograd's C++ graph, where Python's collector cannot see it.
    model = load_model("digits_cnn", device="cpu")
    x = model.example_input()
    probe = Probe(model.module, x)
    made = []
    original = saliency.Objective.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(weakref.ref(self))

    monkeypatch.setattr(saliency.Objective, "__init__", spy)
    for target in (Target("top"), Target("unit", 3, "relu3")):
        attribute(model.module, probe, x, method, target)
    gc.collect()
    assert len(made) == 2
    assert all(ref() is None for ref in made), "an Objective outlived its attribute() call"


def test_objective_keeps_its_output_without_the_graph():
    model = load_model("digits_cnn", device="cpu")
    x = model.example_input().requires_grad_(True)
    objective = saliency.Objective(model.module, Probe(model.module, x), Target("class", 1))
    with torch.enable_grad():
        score = objective(x)
    assert score.grad_fn is not None  # what Captum differentiates
    assert objective.output.grad_fn is None and not objective.output.requires_grad
