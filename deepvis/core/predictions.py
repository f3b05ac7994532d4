"""Making sense of a model's output: classifier scores, dense (segmentation) maps, or anything else.

Models return tensors, tuples or dicts (torchvision's segmentation nets return
``{"out": ..., "aux": ...}``). ``main_output`` picks the tensor a user means by "the
prediction", and ``summarize`` turns it into top-k rows for any of the three kinds.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace

import torch

from deepvis.errors import DeepvisError
from deepvis.core.labels import label_of


PREFERRED_KEYS = ("out", "logits")  # "the prediction" in a dict: torchvision segmenters', Hugging Face models'


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    score: float  # class probability; for dense outputs, the share of pixels given this class

    def as_dict(self) -> dict:
        return {"index": self.index, "label": self.label, "score": self.score}


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in the model input's pixels
    index: int
    label: str
    score: float

    def as_dict(self) -> dict:
        return {"box": [round(v, 2) for v in self.box], "index": self.index, "label": self.label,
                "score": self.score}


@dataclass(frozen=True)
class Summary:
    kind: str  # "classification", "segmentation", "image", "detection" or "other"
    predictions: tuple[Prediction, ...]
    text: str  # one line for status bars and non-classifier models
    detections: tuple[Detection, ...] = ()  # a detector's, by score, above the threshold
    values: tuple[float, ...] = ()  # a value output's numbers (its first sample, flattened; capped)
    output: str = ""  # the output read ("output[2]"), when the model has several


MAX_VALUES = 4096  # a value output's numbers kept in a summary (a whole feature map is not a readout)


def main_output(output) -> torch.Tensor:
    """The tensor that is "the prediction": ``out`` (torchvision) or ``logits`` (Hugging Face) of
    a dict, else its first tensor; a tuple's first."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        for key in PREFERRED_KEYS:
            if key in output and isinstance(output[key], torch.Tensor):
                return output[key]
        values = list(output.values())
    elif isinstance(output, (tuple, list)):
        values = list(output)
    else:
        raise DeepvisError(f"the model returned a {type(output).__name__}, not tensors")
    for value in values:
        try:
            return main_output(value)
        except DeepvisError:
            continue
    raise DeepvisError("the model's output holds no tensor")


def output_kind(tensor: torch.Tensor) -> str:
    if tensor.ndim == 2 and tensor.shape[1] > 1:
        return "classification"
    if tensor.ndim == 4 and tensor.shape[1] > 1:
        return "segmentation"
    return "other"


def probabilities(scores: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Softmax, unless the model already outputs probabilities (non-negative, summing to one)."""
    scores = scores.detach().float()
    sums = scores.sum(dim)
    if scores.min() >= 0 and torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
        return scores
    return torch.softmax(scores, dim)


def class_probabilities(scores: torch.Tensor, activation: str | None, multilabel: bool) -> torch.Tensor:
    """(B, classes) probabilities from a head's scores: as they are when they came out of a
    softmax or sigmoid, exp of a log-softmax, else a sigmoid each (multi-label) or a softmax."""
    scores = scores.detach().float()
    if activation in ("softmax", "sigmoid"):
        return scores
    if activation == "log_softmax":
        return scores.exp()
    return torch.sigmoid(scores) if multilabel else probabilities(scores)


def segmentation_summary(shares, labels: list[str] | None = None, k: int = 5) -> Summary:
    """Top-k classes by their share of the pixels."""
    shares = torch.as_tensor(shares, dtype=torch.float32)
    values, indices = shares.topk(min(k, shares.numel()))
    rows = tuple(Prediction(int(i), label_of(labels, int(i)), float(v)) for v, i in zip(values, indices) if v > 0)
    text = ", ".join(f"{r.label} {r.score:.0%}" for r in rows[:3]) + " of pixels"
    return Summary("segmentation", rows, text)


def summarize(output, labels: list[str] | None = None, k: int = 5, kind: str | None = None,
              multilabel: bool = False, head=None, min_score: float | None = None,
              size: tuple[int, int] | None = None) -> Summary:
    """Top-k rows for the first sample of a batch; ``kind`` as the model declared it, if it did.

    ``head`` (``heads.Head``) picks the output read and says whether it already holds
    probabilities (it comes out of a softmax or sigmoid); None: ``main_output``.
    ``multilabel``: each output is its own yes/no (a sigmoid each, as digits_vit's "digit k is
    in the mosaic"), so the scores are independent probabilities and the text names every
    class at 50 % or more, not the one softmax winner. A detector's summary keeps detections
    scoring ``min_score`` or more (None: all the model returned), their boxes clipped to
    ``size`` (height, width) when given."""
    if kind == "detection" or (head is not None and head.detections):
        return detection_summary(head.pick(output) if head is not None else output, labels, k, min_score, size)
    tensor = (head.pick(output) if head is not None else main_output(output)).detach()
    activation = head.activation if head is not None else None
    named = head.name if head is not None and head.chosen != "only" else ""
    # One reduction, not an isfinite pass (40 ms on a 21x520x520 map): a NaN or an infinity
    # anywhere makes the sum non-finite, and finite logits cannot overflow a float32 sum.
    if not torch.isfinite(tensor.float().sum()):
        raise DeepvisError("the model's output contains NaN or infinite values (check the weights and input)")
    if kind == "image":
        return Summary("image", (), f"output picture {tuple(tensor.shape[1:])}")
    if kind == "descriptor":
        # Not class scores: a 64-channel descriptor grid read as 64 classes would name a winner.
        channels, height, width = tensor.shape[1:]
        length = tensor[0].float().norm(dim=0).mean()
        return Summary("descriptor", (), f"{channels}-d descriptor per cell of a {height}x{width} grid "
                                         f"(mean length {length:.3g}): deepvis match, the Correspondence tab",
                       output=named)
    kind = output_kind(tensor) if kind in (None, "other") else kind
    if kind == "classification" and multilabel:
        probs = class_probabilities(tensor[:1], activation, True)[0]
        values, indices = probs.topk(min(k, probs.numel()))
        rows = tuple(Prediction(int(i), label_of(labels, int(i)), float(v)) for v, i in zip(values, indices))
        present = [f"{label_of(labels, int(i))} {float(probs[i]):.0%}" for i in torch.nonzero(probs >= 0.5).flatten()]
        return Summary(kind, rows, ", ".join(present) if present else f"none present ({rows[0].label} "
                                                                        f"{rows[0].score:.0%})", output=named)
    if kind == "classification":
        probs = class_probabilities(tensor[:1], activation, False)[0]
        values, indices = probs.topk(min(k, probs.numel()))
        rows = tuple(Prediction(int(i), label_of(labels, int(i)), float(v)) for v, i in zip(values, indices))
        return Summary(kind, rows, f"{rows[0].label} {rows[0].score:.0%}", output=named)
    if kind == "segmentation":
        # One sigmoid channel is background (0) / foreground (1); argmax over channels is 3x
        # slower than max on a 21x520x520 map.
        threshold = 0.5 if activation == "sigmoid" else 0.0
        classes = (tensor[0, 0] > threshold).long() if tensor.shape[1] == 1 else tensor[0].max(0).indices
        counts = torch.bincount(classes.flatten(), minlength=max(2, tensor.shape[1])).float()
        return replace(segmentation_summary(counts / counts.sum(), labels, k), output=named)
    return value_summary(tensor[0], head.name if head is not None else "output", activation)


def value_summary(sample: torch.Tensor, name: str = "output", activation: str | None = None) -> Summary:
    """An output that is not class scores, as numbers: all of them when few, else their range."""
    flat = sample.detach().float().flatten().cpu()
    how = f" ({activation})" if activation else ""
    if flat.numel() <= 8:
        text = f"{name}{how}: " + ", ".join(f"{float(v):.4g}" for v in flat)
    else:
        text = (f"{name} {tuple(sample.shape)}{how}: min {flat.min():.3g}, mean {flat.mean():.3g}, "
                f"max {flat.max():.3g}")
    values = tuple(float(v) for v in flat[:MAX_VALUES])
    return Summary("other", (), text, values=values, output=name)


def detection_summary(detections, labels: list[str] | None = None, k: int = 5, min_score: float | None = None,
                      size: tuple[int, int] | None = None) -> Summary:
    """The first image's detections, best first, scoring ``min_score`` or more; ``k`` of them
    become the bar rows, every one of them a ``Detection``."""
    found = detections[0] if isinstance(detections, (list, tuple)) else detections
    scores = found["scores"].detach().float().cpu()
    boxes = found["boxes"].detach().float().cpu().reshape(-1, 4)
    classes = found["labels"].detach().cpu() if "labels" in found else torch.zeros(len(scores), dtype=torch.long)
    if size is not None:
        boxes = torch.stack([boxes[:, 0].clamp(0, size[1]), boxes[:, 1].clamp(0, size[0]),
                             boxes[:, 2].clamp(0, size[1]), boxes[:, 3].clamp(0, size[0])], 1)
    order = torch.argsort(scores, descending=True, stable=True)
    kept = tuple(Detection(tuple(float(v) for v in boxes[i]), int(classes[i]), label_of(labels, int(classes[i])),
                           float(scores[i]))
                 for i in order.tolist() if min_score is None or float(scores[i]) >= min_score)
    rows = tuple(Prediction(d.index, d.label, d.score) for d in kept[:k])
    if not kept:
        text = (f"no detections above {min_score:g}" if min_score is not None
                else "no detections above the model's score threshold")
    else:
        text = f"{len(kept)} detection{'s' * (len(kept) != 1)}: " + ", ".join(
            f"{d.label} {d.score:.0%}" for d in kept[:3])
    return Summary("detection", rows, text, detections=kept)
