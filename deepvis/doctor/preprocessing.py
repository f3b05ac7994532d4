"""Was the model trained on the input it is given? The declared preprocessing against the
common mistakes, on the same inputs.

Variants of a picture fitted to the model (uint8 x, 0..255, per channel mean m and std s
in [0, 1] pixel units, as declared):

* ``declared``: (x / 255 - m) / s, what the model is fed;
* ``bgr``: the same with the channels reversed (OpenCV's order), only for 3 channels;
* ``x255``: (x - m) / s, pixels 255 times larger (a pipeline that never divided by 255);
* ``unnormalized``: x / 255, without the mean and std (only where they are not 0 and 1).

With labels each is scored by accuracy; without, by mean top-1 confidence and mean entropy.
The best is the most accurate, or without labels the one of lowest mean entropy among those
whose predictions are not collapsed (a variant that names one class for more than half of
varied inputs is confidently wrong, not right: pixels 255 times too large make any net sure
of something); ties go to ``declared``.
"""

from __future__ import annotations

import numpy as np
import torch

DECLARED = "declared"
COLLAPSED_SHARE = 0.5  # one class for more than this share of the inputs: not a plausible preprocessing
MIN_INPUTS_FOR_COLLAPSE = 20


def variant_names(spec) -> list[str]:
    names = [DECLARED]
    if spec.channels == 3:
        names.append("bgr")
    names.append("x255")
    if any(m != 0 for m in spec.mean) or any(s != 1 for s in spec.std):
        names.append("unnormalized")
    return names


def variant_batch(fitted: np.ndarray, spec, name: str) -> torch.Tensor:
    """(B, H, W, C) uint8 pictures fitted to the model -> (B, C, H, W) float32 input under ``name``."""
    x = torch.from_numpy(np.ascontiguousarray(fitted)).float().permute(0, 3, 1, 2)
    if name == "bgr":
        x = x.flip(1)
    mean = torch.tensor(spec.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32).view(1, -1, 1, 1)
    if name == "x255":
        return (x - mean) / std
    if name == "unnormalized":
        return x / 255
    return (x / 255 - mean) / std


def score_variant(probabilities: torch.Tensor, targets: list[int | None], multilabel: bool) -> dict:
    """One variant's figures from its (N, classes) probabilities; ``targets`` per input (None:
    no label the model knows)."""
    top, index = probabilities.max(1)
    figures = {"confidence": float(top.mean())}
    p = probabilities.clamp_min(1e-12)
    if multilabel:
        q = (1 - probabilities).clamp_min(1e-12)
        entropy = -(probabilities * p.log() + (1 - probabilities) * q.log()).sum(1)
    else:
        entropy = -(probabilities * p.log()).sum(1)
    figures["entropy"] = float(entropy.mean())
    counts = torch.bincount(index, minlength=probabilities.shape[1])
    figures["top_class_share"] = float(counts.max()) / len(index)
    known = [(i, t) for i, t in enumerate(targets) if t is not None]
    if known:
        rows = torch.tensor([i for i, _ in known])
        truth = torch.tensor([t for _, t in known])
        figures["accuracy"] = float((index[rows] == truth).float().mean())
    return figures


def best_variant(variants: list[dict]) -> tuple[str, float]:
    """(name, margin): the best variant and by how much it beats ``declared`` (accuracy points
    as a fraction, or nats of mean entropy); ties go to ``declared``."""
    declared = next(v for v in variants if v["name"] == DECLARED)
    if "accuracy" in declared:
        best = max(variants, key=lambda v: (v["accuracy"], v["name"] == DECLARED))
        return best["name"], best["accuracy"] - declared["accuracy"]
    plausible = [v for v in variants if not v.get("collapsed")] or [declared]
    best = min(plausible, key=lambda v: (v["entropy"], v["name"] != DECLARED))
    return best["name"], declared["entropy"] - best["entropy"]


def mark_collapsed(variant: dict, inputs: int) -> None:
    variant["collapsed"] = bool(inputs >= MIN_INPUTS_FOR_COLLAPSE and variant["top_class_share"] > COLLAPSED_SHARE)


def apply_variant(model, probe, name: str) -> str:
    """Make ``model`` (a LoadedModel, in place) read its input as ``name`` does, for the rest of
    the session; returns what was changed. ``x255`` and ``unnormalized`` are a mean and std
    (x255: (x - m) / s is (x / 255 - m / 255) / (s / 255)); ``bgr`` reverses the input channels of
    the first convolution, exactly what feeding it reversed channels does."""
    from dataclasses import replace

    from deepvis.errors import DeepvisError

    spec = model.spec
    if name == DECLARED:
        return "nothing to change"
    if name == "x255":
        new = replace(spec, mean=tuple(m / 255 for m in spec.mean), std=tuple(s / 255 for s in spec.std))
        _set_spec(model, new)
        return "pixels now reach the model 255 times larger (mean and std divided by 255)"
    if name == "unnormalized":
        _set_spec(model, replace(spec, mean=(0.0,) * spec.channels, std=(1.0,) * spec.channels))
        return "the mean and std are no longer applied (mean 0, std 1)"
    if name == "bgr":
        first = _first_weighted_module(model, probe)
        if not isinstance(first, torch.nn.Conv2d) or first.in_channels != 3 or first.groups != 1:
            raise DeepvisError(f"{model.name}'s first layer is not a 3-channel convolution: its input channels "
                               f"cannot be reversed inside the model; feed it BGR pictures instead")
        with torch.no_grad():
            first.weight.copy_(first.weight.flip(1))
        return "the first convolution now reads the channels in reverse (BGR) order"
    raise DeepvisError(f"unknown preprocessing {name!r}: expected one of declared, bgr, x255, unnormalized")


def _set_spec(model, spec) -> None:
    model.spec = spec
    model.__dict__.pop("preprocessor", None)  # a cached_property: built again from the new spec


def _first_weighted_module(model, probe):
    modules = dict(model.module.named_modules())
    for layer in probe.layers:
        module = modules.get(layer.path) if layer.path else None
        if module is not None and getattr(module, "weight", None) is not None:
            return module
    return None
