"""torchvision-style detectors: the transform inside them, their score threshold, their classes.

Faster/Mask/Keypoint R-CNN, RetinaNet, SSD and FCOS hold a ``GeneralizedRCNNTransform`` that
resizes each picture and normalizes it with its own mean and std: they are fed plain [0, 1]
pixels (ImageNet normalization in front of it would normalize twice). Their output, in eval
mode, is a list of dicts (boxes, labels, scores), one per picture, already cut at the model's
own score threshold; ``--min-score`` lower than that lowers it.
"""

from torch import nn

from deepvis.core.inputspec import InputSpec

DETECTOR_SIDE_LIMIT = 800  # px: the side a detector is fed when its size is not given (R-CNN's default)


def inner_transform(module: nn.Module) -> nn.Module | None:
    """The module that resizes and normalizes inside a detector, or None."""
    for m in module.modules():
        if type(m).__name__ == "GeneralizedRCNNTransform" or all(
                hasattr(m, a) for a in ("image_mean", "image_std", "min_size")):
            return m
    return None


def detector_spec(transform: nn.Module, size) -> tuple[InputSpec, str]:
    """The input of a detector holding ``transform``: plain [0, 1] RGB pixels, square at its
    shortest resize side (``size`` overrides), and the note that says so."""
    sides = transform.min_size if isinstance(transform.min_size, (tuple, list)) else (transform.min_size,)
    side = min(int(sides[-1]), DETECTOR_SIDE_LIMIT)
    h, w = size if size is not None else (side, side)
    note = (f"resizes and normalizes inside ({type(transform).__name__}): fed plain [0, 1] pixels at {h}x{w}"
            + ("" if size is not None else " (override with --input-size HxW)"))
    return InputSpec(3, h, w, (0.0,), (1.0,)), note


def _threshold_owner(module: nn.Module) -> nn.Module | None:
    for m in (getattr(module, "roi_heads", None), module):  # R-CNNs keep it in their ROI heads
        if m is not None and isinstance(getattr(m, "score_thresh", None), (int, float)):
            return m
    return None


def score_threshold(module: nn.Module) -> float | None:
    """The score below which the detector drops its detections, when it has one."""
    owner = _threshold_owner(module)
    return None if owner is None else float(owner.score_thresh)


def lower_threshold(module: nn.Module, min_score: float) -> str | None:
    """Let the detector return detections down to ``min_score`` (its own cut is applied inside
    it); a note when it was lowered."""
    owner = _threshold_owner(module)
    if owner is None or min_score >= owner.score_thresh:
        return None
    old = float(owner.score_thresh)
    owner.score_thresh = float(min_score)
    return f"the detector's own score threshold {old:g} lowered to --min-score {min_score:g}"


def class_count(module: nn.Module) -> int | None:
    """How many classes a detector scores (background included), when it says."""
    predictor = getattr(getattr(module, "roi_heads", None), "box_predictor", None)
    cls_score = getattr(predictor, "cls_score", None)
    if isinstance(cls_score, nn.Linear):
        return int(cls_score.out_features)
    head = getattr(getattr(module, "head", None), "classification_head", None)
    count = getattr(head, "num_classes", None)
    return int(count) if isinstance(count, int) else None


def coco_labels(module: nn.Module) -> list[str] | None:
    """COCO's 91 category names (torchvision's list, background first) for a detector scoring
    91 classes: every torchvision COCO detector does."""
    if class_count(module) != 91:
        return None
    from torchvision.models._meta import _COCO_CATEGORIES

    return list(_COCO_CATEGORIES)
