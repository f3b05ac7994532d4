"""Gradient saliency and attribution maps on Captum (work in progress for the saliency issue).

Captum implements the methods; this module is the glue: what is being explained (a class, a
unit of any layer, a class channel of a segmentation output), which layer Grad-CAM uses, and
making guided backprop and deconvolution see every rectifier. Captum overrides the backward
pass only of ``nn.ReLU`` modules, so a ReLU6 network (EfficientNet-Lite, MobileNet) would
silently get the plain gradient; here each ReLU6 is swapped for ``ReLU`` followed by a clamp
for the duration of the call, and in-place ReLUs for out-of-place ones (Captum's backward
hooks cannot wrap in-place ops). Modules are always restored.
"""

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from deepvis.errors import DeepvisError
from deepvis.predictions import main_output, output_kind
from deepvis.probe import Probe

METHODS = ("gradient", "deconv", "guided", "integrated-gradients", "smoothgrad", "gradcam")


@dataclass(frozen=True)
class Target:
    """What is explained: ``class`` index of the output, or ``unit`` = a channel of ``layer``."""

    kind: str
    index: int
    layer: str | None = None

    def describe(self, labels=None) -> str:
        if self.kind == "unit":
            return f"unit {self.index} of {self.layer}"
        label = labels[self.index] if labels and 0 <= self.index < len(labels) else f"class {self.index}"
        return f"{label} ({self.index})"


def parse_target(text: str | None, labels=None, probe: Probe | None = None) -> Target | None:
    """``None`` (the top prediction), a class index, a label name, or ``LAYER:INDEX``."""
    if text is None or text == "":
        return None
    if ":" in text and probe is not None:
        layer, _, index = text.rpartition(":")
        if layer in probe:
            try:
                unit = int(index)
            except ValueError:
                raise DeepvisError(f"bad unit target {text!r}: expected LAYER:INDEX") from None
            channels = probe.layer(layer).channels
            if not 0 <= unit < channels:
                raise DeepvisError(f"{layer} has {channels} units; {unit} is out of range")
            return Target("unit", unit, layer)
    if text.lstrip("-").isdigit():
        index = int(text)
        if labels and not 0 <= index < len(labels):
            raise DeepvisError(f"class {index} is out of range: the model has {len(labels)} classes")
        return Target("class", index)
    if labels:
        lowered = [label.lower() for label in labels]
        if text.lower() in lowered:
            return Target("class", lowered.index(text.lower()))
        import difflib

        close = difflib.get_close_matches(text.lower(), lowered, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise DeepvisError(f"no class named {text!r}{hint}")
    raise DeepvisError(f"bad target {text!r}: expected a class index, a label or LAYER:INDEX")


class Objective(nn.Module):
    """The model reduced to one number per sample: the score Captum differentiates."""

    def __init__(self, model: nn.Module, probe: Probe, target: Target):
        super().__init__()
        self.model, self.probe, self.target = model, probe, target

    def forward(self, x):
        if self.target.kind == "unit":
            _, acts = self.probe.capture(x, [self.target.layer], detach=False)
            act = acts[self.target.layer][:, self.target.index]
            return act.reshape(act.shape[0], -1).sum(1)
        out = main_output(self.model(x))
        scores = out[:, self.target.index]
        # Dense outputs (segmentation): the class channel summed over pixels.
        return scores.reshape(scores.shape[0], -1).sum(1)


class _AtMost6(nn.Module):
    def forward(self, x):
        # min(x, 6) passes the gradient at 0 too; Hardtanh(0, 6) would not, and would gate
        # deconvolution's gradient at the ReLU's zeros, making it equal to guided backprop.
        return torch.clamp(x, max=6.0)


class _ReLU6AsReLU(nn.Sequential):
    """ReLU6 as ReLU then a clamp, so Captum's ReLU hooks can guide it."""

    def __init__(self):
        super().__init__(nn.ReLU(), _AtMost6())


@contextlib.contextmanager
def rectifiers_as_relu_modules(model: nn.Module):
    """Temporarily make every rectifier an out-of-place ``nn.ReLU`` module (see module doc)."""
    swapped = []
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.ReLU6):
            replacement = _ReLU6AsReLU()
        elif isinstance(module, nn.ReLU) and module.inplace:
            replacement = nn.ReLU()
        else:
            continue
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, replacement)
        swapped.append((parent, attr, module))
    try:
        yield len(swapped) + sum(isinstance(m, nn.ReLU) for m in model.modules())
    finally:
        for parent, attr, module in reversed(swapped):
            setattr(parent, attr, module)


def default_gradcam_layer(probe: Probe) -> str:
    """The last convolution that runs once per forward (Grad-CAM's hooks need one call)."""
    repeated = {layer.path for layer in probe.layers if layer.call > 0}
    convs = [layer for layer in probe.conv_layers() if layer.path not in repeated and not layer.keys]
    if not convs:
        raise DeepvisError("Grad-CAM needs a convolution layer; this model has none the probe can reach")
    return convs[-1].name


def attribute(module: nn.Module, probe: Probe, x: torch.Tensor, method: str, target: Target,
              layer: str | None = None, samples: int = 16, steps: int = 32, noise: float = 0.15,
              batch: int = 8) -> np.ndarray:
    """The attribution map of ``method`` for ``target`` at input resolution, float32 (H, W).

    Signed for the gradient family (summed over colour channels), non-negative for Grad-CAM.
    """
    from captum.attr import (Deconvolution, GuidedBackprop, IntegratedGradients, LayerAttribution,
                             LayerGradCam, NoiseTunnel, Saliency)

    if method not in METHODS:
        raise DeepvisError(f"unknown method {method!r}: expected one of {', '.join(METHODS)}")
    if isinstance(module, torch.jit.ScriptModule):
        raise DeepvisError("attribution needs the model's Python modules; TorchScript archives cannot be "
                           "differentiated layer by layer here (load the architecture with --weights)")
    x = x.detach().clone().requires_grad_(True)
    objective = Objective(module, probe, target)
    with torch.enable_grad():
        if method == "gradient":
            attr = Saliency(objective).attribute(x, abs=False)
        elif method in ("guided", "deconv"):
            with rectifiers_as_relu_modules(module) as rectifiers:
                if rectifiers == 0:
                    raise DeepvisError(f"{method} needs rectifiers as modules (nn.ReLU/ReLU6); this model "
                                       f"applies them functionally, so its map would be the plain gradient")
                explainer = GuidedBackprop(objective) if method == "guided" else Deconvolution(objective)
                attr = explainer.attribute(x)
        elif method == "integrated-gradients":
            attr = IntegratedGradients(objective).attribute(x, baselines=torch.zeros_like(x), n_steps=steps,
                                                            internal_batch_size=batch)
        elif method == "smoothgrad":
            scale = noise * float(x.detach().max() - x.detach().min())
            attr = NoiseTunnel(Saliency(objective)).attribute(x, nt_type="smoothgrad", nt_samples=samples,
                                                              nt_samples_batch_size=batch, stdevs=scale,
                                                              abs=False)
        else:
            name = layer or default_gradcam_layer(probe)
            info = probe.layer(name)
            if not info.spatial:
                raise DeepvisError(f"Grad-CAM needs a spatial layer; {name} outputs {info.shape}")
            # ReLU on the coarse map, then upsampling: Grad-CAM as published.
            cam = LayerGradCam(objective, probe.module.get_submodule(info.path)).attribute(x, relu_attributions=True)
            cam = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode="bilinear")
            return np.ascontiguousarray(cam[0, 0].detach().float().cpu().numpy())
    return np.ascontiguousarray(attr[0].sum(0).detach().float().cpu().numpy())


def top_class(module: nn.Module, x: torch.Tensor) -> Target:
    with torch.inference_mode():
        out = main_output(module(x))
    if output_kind(out) == "other":
        raise DeepvisError("this model's output has no classes: give a unit target LAYER:INDEX")
    scores = out[0] if out.ndim == 2 else out[0].flatten(1).sum(1)
    return Target("class", int(scores.argmax()))
