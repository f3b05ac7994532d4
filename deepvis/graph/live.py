"""What the Graph tab shows on its nodes for the current frame: a small picture of each layer's
activation (the mean over channels of a feature map, or of a transformer's token grid), its
mean, and the share of its units at or below zero (dead for this input)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

SIDE = 28  # the pictures' longer side, in pixels


@dataclass(frozen=True)
class NodeLook:
    picture: np.ndarray | None  # (h, w) float32 in [0, 1]; None for a layer without a spatial map
    mean: float
    dead: float  # share of units <= 0


def looks(model, probe, frame: np.ndarray, layers: list[str], side: int = SIDE) -> dict[str, NodeLook]:
    """``frame`` (RGB uint8) through ``model``: each of ``layers`` (probe layer names) as the
    Graph tab draws it. One forward pass for all of them."""
    wanted = [name for name in dict.fromkeys(layers) if name in probe]
    if not wanted:
        return {}
    x = model.input_tensor(frame)
    with torch.inference_mode():
        _, captured = probe.capture(x, wanted, transform=lambda _name, t: _summarised(t, side))
    return {name: value for name, value in captured.items() if value is not None}


def _summarised(tensor: torch.Tensor, side: int) -> NodeLook | None:
    """Inside the hook: the few numbers and the small picture, not the activation."""
    if not torch.is_tensor(tensor) or not tensor.is_floating_point() or tensor.numel() == 0:
        return None
    sample = tensor[0].detach().float()
    mean, dead = float(sample.mean()), float((sample <= 0).float().mean())
    picture = None
    if sample.ndim == 3:  # channels x height x width
        plane = sample.mean(0)
    elif sample.ndim == 2 and sample.shape[0] > 1:  # tokens x channels: the token norms in a row
        plane = sample.norm(dim=1)[None]
    else:
        plane = None
    if plane is not None:
        h, w = plane.shape
        scale = side / max(h, w)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        plane = F.interpolate(plane[None, None], size=size, mode="nearest" if scale >= 1 else "area")[0, 0]
        lo, hi = plane.min(), plane.max()
        picture = ((plane - lo) / (hi - lo) if hi > lo else torch.zeros_like(plane)).cpu().numpy().astype(np.float32)
    return NodeLook(picture, mean, dead)
