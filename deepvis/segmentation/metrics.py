"""Segmentation metrics against ground truth, from one pixel confusion matrix.

Rows are ground truth, columns predictions; ignored pixels (``IGNORE``) and pixels the
model did not see never enter it. IoU is TP / (TP + FP + FN) per class, undefined (NaN) for
a class that is neither in the truth nor predicted; mIoU averages the defined ones, as
MMSegmentation does, so a class predicted where there is none counts as 0. Boundary F1
(Csurka et al. 2013) scores each class's contour: the share of predicted boundary pixels
within ``band`` pixels of a true one and the reverse, combined as F1.
"""

from dataclasses import dataclass

import numpy as np

from deepvis.segmentation.masks import IGNORE


def confusion(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """int64 (classes, classes) pixel counts; truth ``IGNORE`` and predictions < 0 are left out."""
    if truth.shape != predicted.shape:
        raise ValueError(f"truth {truth.shape} and prediction {predicted.shape} differ in shape")
    keep = (truth != IGNORE) & (truth >= 0) & (truth < classes) & (predicted >= 0) & (predicted < classes)
    index = truth[keep].astype(np.int64) * classes + predicted[keep].astype(np.int64)
    return np.bincount(index, minlength=classes * classes).reshape(classes, classes)


@dataclass(frozen=True)
class Scores:
    iou: np.ndarray  # (classes,) NaN where the class is neither true nor predicted
    precision: np.ndarray  # (classes,) NaN where never predicted
    recall: np.ndarray  # (classes,) NaN where never true
    miou: float
    pixel_accuracy: float
    present: np.ndarray  # (classes,) bool: in the truth

    def as_dict(self, labels=None) -> dict:
        def number(v):
            return None if np.isnan(v) else float(v)

        rows = []
        for k in range(len(self.iou)):
            if np.isnan(self.iou[k]):
                continue
            rows.append({"index": k, "label": labels[k] if labels and k < len(labels) else str(k),
                         "iou": number(self.iou[k]), "precision": number(self.precision[k]),
                         "recall": number(self.recall[k]), "in_truth": bool(self.present[k])})
        return {"miou": number(self.miou), "pixel_accuracy": number(self.pixel_accuracy), "classes": rows}


def scores(matrix: np.ndarray) -> Scores:
    matrix = matrix.astype(np.float64)
    tp = np.diag(matrix)
    true = matrix.sum(1)
    predicted = matrix.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        union = true + predicted - tp
        iou = np.where(union > 0, tp / union, np.nan)
        precision = np.where(predicted > 0, tp / predicted, np.nan)
        recall = np.where(true > 0, tp / true, np.nan)
    defined = ~np.isnan(iou)
    total = matrix.sum()
    return Scores(iou=iou, precision=precision, recall=recall,
                  miou=float(iou[defined].mean()) if defined.any() else float("nan"),
                  pixel_accuracy=float(tp.sum() / total) if total else float("nan"), present=true > 0)


def boundaries(labels: np.ndarray, k: int) -> np.ndarray:
    """Pixels of class ``k`` with a 4-neighbour of another class."""
    mask = labels == k
    edge = np.zeros_like(mask)
    edge[:-1] |= mask[:-1] != mask[1:]
    edge[1:] |= mask[1:] != mask[:-1]
    edge[:, :-1] |= mask[:, :-1] != mask[:, 1:]
    edge[:, 1:] |= mask[:, 1:] != mask[:, :-1]
    return edge & mask


def boundary_f1(truth: np.ndarray, predicted: np.ndarray, classes: int, band: int = 2) -> float:
    """Mean over the classes in the truth of each class's boundary F1 within ``band`` pixels."""
    from deepvis.io.images import quiet_cv2

    cv2 = quiet_cv2()
    valid = truth != IGNORE
    values = []
    for k in range(classes):
        if not (truth[valid] == k).any():
            continue
        t = boundaries(np.where(valid, truth, -2), k)
        p = boundaries(np.where(valid, predicted, -2), k)
        if not t.any() and not p.any():
            values.append(1.0)
            continue
        if not t.any() or not p.any():
            values.append(0.0)
            continue
        # Distance of every pixel to the nearest boundary pixel of the other map.
        to_t = cv2.distanceTransform((~t).astype(np.uint8), cv2.DIST_L2, 3)
        to_p = cv2.distanceTransform((~p).astype(np.uint8), cv2.DIST_L2, 3)
        precision = float((to_t[p] <= band).mean())
        recall = float((to_p[t] <= band).mean())
        values.append(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
    return float(np.mean(values)) if values else float("nan")
