"""Making sense of a model's output: classifier scores, dense (segmentation) maps, or anything else.

Models return tensors, tuples or dicts (torchvision's segmentation nets return
``{"out": ..., "aux": ...}``). ``main_output`` picks the tensor a user means by "the
prediction", and ``summarize`` turns it into top-k rows for any of the three kinds.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from deepvis.errors import DeepvisError
from deepvis.core.labels import label_of


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    score: float  # class probability; for dense outputs, the share of pixels given this class

    def as_dict(self) -> dict:
        return {"index": self.index, "label": self.label, "score": self.score}


@dataclass(frozen=True)
class Summary:
    kind: str  # "classification", "segmentation", "image" or "other"
    predictions: tuple[Prediction, ...]
    text: str  # one line for status bars and non-classifier models


def main_output(output) -> torch.Tensor:
    """The tensor that is "the prediction": ``out`` (torchvision) or ``logits`` (Hugging Face) of
    a dict, else its first tensor; a tuple's first."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        for key in ("out", "logits"):
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


def segmentation_summary(shares, labels: list[str] | None = None, k: int = 5) -> Summary:
    """Top-k classes by their share of the pixels."""
    shares = torch.as_tensor(shares, dtype=torch.float32)
    values, indices = shares.topk(min(k, shares.numel()))
    rows = tuple(Prediction(int(i), label_of(labels, int(i)), float(v)) for v, i in zip(values, indices) if v > 0)
    text = ", ".join(f"{r.label} {r.score:.0%}" for r in rows[:3]) + " of pixels"
    return Summary("segmentation", rows, text)


def summarize(output, labels: list[str] | None = None, k: int = 5, kind: str | None = None,
              multilabel: bool = False) -> Summary:
    """Top-k rows for the first sample of a batch; ``kind`` as the model declared it, if it did.

    ``multilabel``: each output is its own yes/no (a sigmoid each, as digits_vit's "digit k is
    in the mosaic"), so the scores are independent probabilities and the text names every
    class at 50 % or more, not the one softmax winner."""
    tensor = main_output(output).detach()
    # One reduction, not an isfinite pass (40 ms on a 21x520x520 map): a NaN or an infinity
    # anywhere makes the sum non-finite, and finite logits cannot overflow a float32 sum.
    if not torch.isfinite(tensor.float().sum()):
        raise DeepvisError("the model's output contains NaN or infinite values (check the weights and input)")
    if kind == "image":
        return Summary("image", (), f"output picture {tuple(tensor.shape[1:])}")
    kind = output_kind(tensor) if kind in (None, "other") else kind
    if kind == "classification" and multilabel:
        probs = torch.sigmoid(tensor[0].float())
        values, indices = probs.topk(min(k, probs.numel()))
        rows = tuple(Prediction(int(i), label_of(labels, int(i)), float(v)) for v, i in zip(values, indices))
        present = [f"{label_of(labels, int(i))} {float(probs[i]):.0%}" for i in torch.nonzero(probs >= 0.5).flatten()]
        return Summary(kind, rows, ", ".join(present) if present else f"none present ({rows[0].label} "
                                                                        f"{rows[0].score:.0%})")
    if kind == "classification":
        probs = probabilities(tensor[:1])[0]
        values, indices = probs.topk(min(k, probs.numel()))
        rows = tuple(Prediction(int(i), label_of(labels, int(i)), float(v)) for v, i in zip(values, indices))
        return Summary(kind, rows, f"{rows[0].label} {rows[0].score:.0%}")
    if kind == "segmentation":
        # One sigmoid channel is background (0) / foreground (1); argmax over channels is 3x
        # slower than max on a 21x520x520 map.
        classes = (tensor[0, 0] > 0).long() if tensor.shape[1] == 1 else tensor[0].max(0).indices
        counts = torch.bincount(classes.flatten(), minlength=max(2, tensor.shape[1])).float()
        return segmentation_summary(counts / counts.sum(), labels, k)
    flat = tensor[0].float().flatten()
    text = (f"output {tuple(tensor.shape[1:])}: min {flat.min():.3g}, mean {flat.mean():.3g}, "
            f"max {flat.max():.3g}")
    return Summary(kind, (), text)
