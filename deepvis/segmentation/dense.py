"""A segmentation net's class scores as per-pixel maps at the picture's resolution.

Scores are (1, K, h, w) logits (K = 1: one sigmoid channel, the foreground's). The maps are
made at the resolution of the picture the user gave: the scores are resized bilinearly, as
FCN upsamples its own, into the part of the picture the model saw (the centre crop, for
``fit=crop``), and pixels outside it are labelled ``UNSEEN``. Labels, the top class's
probability (confidence), the margin between the two best and the entropy are computed
only when asked: on a 21-class 520x520 map each costs tens of milliseconds.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from deepvis.core.inputspec import crop_box
from deepvis.errors import DeepvisError

UNSEEN = -1  # a picture's pixel outside the region the model saw
MODES = ("labels", "confidence", "entropy", "margin")


def seen_box(image_hw: tuple[int, int], model_hw: tuple[int, int], fit: str = "crop") -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the part of an ``image_hw`` picture the model sees (as Preprocessor.fit crops it)."""
    h, w = image_hw
    return crop_box(h, w, model_hw[1] / model_hw[0]) if fit == "crop" else (0, h, 0, w)


def class_scores(output) -> torch.Tensor:
    """The (1, K, h, w) class scores of a dense output (a tensor, or torchvision's {"out": ...})."""
    from deepvis.core.predictions import main_output

    scores = main_output(output)
    if scores.ndim != 4:
        raise DeepvisError(f"not a dense output: expected (B, classes, H, W) scores, got {tuple(scores.shape)}")
    return scores[:1].detach().float()


def probabilities(scores: torch.Tensor, activation: str | None = None) -> torch.Tensor:
    """(K', h, w) class probabilities; one sigmoid channel becomes (background, foreground).
    ``activation``: the softmax, log-softmax or sigmoid the scores already came out of (the
    model's head), so that they are not passed through a second one."""
    scores = scores[0]
    if scores.shape[0] == 1:
        p = scores[0] if activation in ("sigmoid", "softmax") else torch.sigmoid(scores[0])
        return torch.stack([1 - p, p])
    if activation == "softmax":
        return scores
    if activation == "log_softmax":
        return scores.exp()
    return torch.softmax(scores, 0)


@dataclass(frozen=True)
class DenseMaps:
    """Per-pixel maps of one picture, (H, W) each; the ones not asked for (or made on the way) are None."""

    labels: np.ndarray | None  # int64 class per pixel, UNSEEN outside the model's view
    confidence: np.ndarray | None  # float32 probability of the top class
    entropy: np.ndarray | None  # float32 entropy of the class distribution, in nats
    margin: np.ndarray | None  # float32 top-1 minus top-2 probability
    classes: int
    runner_up: np.ndarray | None = None  # int64 second-best class (made with the margin)  # K (2 for a one-channel sigmoid output)


def dense_maps(output, image_hw: tuple[int, int] | None = None, box: tuple[int, int, int, int] | None = None,
               modes=("labels",), activation: str | None = None) -> DenseMaps:
    """Maps of ``modes`` at ``image_hw`` (default: the scores' own size), the scores placed in
    ``box`` (y0, y1, x0, x1; default: all of it); ``activation`` the one the scores came out of."""
    unknown = set(modes) - set(MODES)
    if unknown:
        raise DeepvisError(f"unknown map {sorted(unknown)[0]!r}: expected {', '.join(MODES)}")
    scores = class_scores(output)
    if not torch.isfinite(scores.sum()):  # one reduction instead of a full isfinite pass
        raise DeepvisError("the model's output contains NaN or infinite values (check the weights and input)")
    h, w = image_hw or tuple(scores.shape[2:])
    y0, y1, x0, x1 = box or (0, h, 0, w)
    if (y1 - y0, x1 - x0) != tuple(scores.shape[2:]):
        scores = F.interpolate(scores, size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=False)
    binary = scores.shape[1] == 1
    classes = 2 if binary else int(scores.shape[1])
    maps = {}
    if "labels" in modes and not ({"confidence", "margin", "entropy"} & set(modes)):
        # Labels alone need no probabilities: argmax of the logits (or their sign).
        edge = 0.5 if activation in ("sigmoid", "softmax") else 0.0  # a probability's, or a logit's
        maps["labels"] = (scores[0, 0] > edge).long() if binary else scores[0].max(0).indices
    else:
        probs = probabilities(scores, activation)
        if "margin" in modes:
            top = probs.topk(2, dim=0)
            maps["confidence"], maps["labels"] = top.values[0], top.indices[0]
            maps["margin"] = top.values[0] - top.values[1]
            maps["runner_up"] = top.indices[1]
        else:
            best = probs.max(0)
            maps["confidence"], maps["labels"] = best.values, best.indices
        if "entropy" in modes:
            maps["entropy"] = -(probs * torch.log(probs.clamp_min(1e-12))).sum(0)

    def placed(name, fill, dtype):
        if name not in maps:  # confidence and labels come with any probability map: kept when made
            return None
        value = maps[name].cpu().numpy().astype(dtype, copy=False)
        if (y0, y1, x0, x1) == (0, h, 0, w):
            return np.ascontiguousarray(value)
        full = np.full((h, w), fill, dtype)
        full[y0:y1, x0:x1] = value
        return full

    return DenseMaps(labels=placed("labels", UNSEEN, np.int64), confidence=placed("confidence", np.nan, np.float32),
                     entropy=placed("entropy", np.nan, np.float32), margin=placed("margin", np.nan, np.float32),
                     classes=classes, runner_up=placed("runner_up", UNSEEN, np.int64))


def shares(labels: np.ndarray, classes: int) -> np.ndarray:
    """The share of the seen pixels given each class: float64 (classes,)."""
    seen = labels[labels >= 0]
    counts = np.bincount(seen.ravel(), minlength=classes)[:classes].astype(np.float64)
    return counts / max(1, counts.sum())
