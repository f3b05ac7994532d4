"""A classifier's figures against a labelled dataset: accuracy, per-class recall, the
confusion matrix, the most confused pairs and the most confidently wrong inputs.

Dataset labels are folder names (or the digits' "0".."9"); each is matched to a class of the
model by name, else as a class index written as a number. Inputs whose label names no class
are left out of the figures (and counted).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

CONFUSED_PAIRS = 5
WRONG_KEPT = 8


def match_labels(dataset_labels: list[str | None], class_names: list[str] | None, classes: int) -> list[int | None]:
    """Each dataset label as the model's class index, or None."""
    by_name = {name: i for i, name in enumerate(class_names or [])}
    matched = []
    for label in dataset_labels:
        if label is None:
            matched.append(None)
        elif label in by_name:
            matched.append(by_name[label])
        elif label.strip().isdigit() and int(label) < classes:
            matched.append(int(label))
        else:
            matched.append(None)
    return matched


@dataclass
class ClassTally:
    """Predictions against targets, accumulated input by input."""

    classes: int
    confusion: np.ndarray = field(init=False)
    wrong: list = field(default_factory=list)  # a heap of (confidence, input index, true, predicted)
    unmatched: int = 0

    def __post_init__(self):
        self.confusion = np.zeros((self.classes, self.classes), np.int64)

    def add(self, index: int, target: int | None, predicted: int, confidence: float) -> None:
        if target is None:
            self.unmatched += 1
            return
        self.confusion[target, predicted] += 1
        if target != predicted:
            item = (confidence, -index, target, predicted)
            if len(self.wrong) < WRONG_KEPT:
                heapq.heappush(self.wrong, item)
            else:
                heapq.heappushpop(self.wrong, item)

    def figures(self, class_names: list[str] | None) -> dict | None:
        total = int(self.confusion.sum())
        if not total:
            return None
        present = np.flatnonzero(self.confusion.sum(0) + self.confusion.sum(1))  # classes seen or predicted
        name = (lambda i: class_names[i] if class_names and i < len(class_names) else str(i))
        truth = self.confusion.sum(1)
        recall = {name(int(i)): float(self.confusion[i, i] / truth[i]) for i in present if truth[i]}
        off = self.confusion.copy()
        np.fill_diagonal(off, 0)
        pairs = []
        for flat in np.argsort(off, axis=None)[::-1][:CONFUSED_PAIRS]:
            t, p = np.unravel_index(flat, off.shape)
            if off[t, p] == 0:
                break
            pairs.append({"true": name(int(t)), "predicted": name(int(p)), "count": int(off[t, p])})
        wrong = [{"input": -i, "true": name(t), "predicted": name(p), "confidence": c}
                 for c, i, t, p in sorted(self.wrong, reverse=True)]
        return {"accuracy": float(np.trace(self.confusion) / total), "inputs": total, "recall": recall,
                "labels": [name(int(i)) for i in present],
                "confusion": self.confusion[np.ix_(present, present)].tolist(),
                "most_confused": pairs, "confidently_wrong": wrong, "unmatched_inputs": self.unmatched}
