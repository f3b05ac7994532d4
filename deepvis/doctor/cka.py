"""Linear CKA between the layers of two models over the same inputs (Kornblith et al. 2019,
"Similarity of Neural Network Representations Revisited").

For a layer, X is the (n, p) matrix of its flattened activations over n inputs, centred per
column. Linear CKA of X and Y is ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F), computed through
the n x n Gram matrices K = X X^T and L = Y Y^T as <K, L> / (||K|| ||L||): one Gram per layer
(n^2 p work, done once), then every pair of layers costs n^2. Grams are kept in float64.

When the Grams of every layer of both models would not fit in ``GRAM_BUDGET_BYTES``, the
minibatch CKA of Nguyen et al. 2021 ("Do Wide and Deep Networks Learn the Same Things?") is
used instead: the unbiased HSIC estimator (Song et al. 2012) averaged over minibatches of
``MINIBATCH`` inputs, then CKA = mean HSIC(K, L) / sqrt(mean HSIC(K, K) mean HSIC(L, L)).
It converges to the same value and needs only one minibatch's activations at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

GRAM_BUDGET_BYTES = 2 << 30
MINIBATCH = 256


def centered_gram(features: torch.Tensor) -> torch.Tensor:
    """(n, ...) activations -> the (n, n) float64 Gram matrix of their centred, flattened rows."""
    x = features.reshape(features.shape[0], -1).double()
    x = x - x.mean(0, keepdim=True)
    return x @ x.T


def cka(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Linear CKA of two layers' activations over the same n inputs."""
    return cka_of_grams(centered_gram(features_a), centered_gram(features_b))


def cka_of_grams(k: torch.Tensor, l: torch.Tensor) -> float:
    norm = float(torch.sqrt((k * k).sum() * (l * l).sum()))
    return float((k * l).sum()) / norm if norm > 0 else float("nan")


def cka_matrix(grams_a: list[torch.Tensor], grams_b: list[torch.Tensor]) -> np.ndarray:
    """CKA of every layer of A (rows) against every layer of B (columns)."""
    norms_a = [float(torch.sqrt((k * k).sum())) for k in grams_a]
    norms_b = [float(torch.sqrt((l * l).sum())) for l in grams_b]
    out = np.full((len(grams_a), len(grams_b)), np.nan)
    for i, k in enumerate(grams_a):
        for j, l in enumerate(grams_b):
            if norms_a[i] > 0 and norms_b[j] > 0:
                out[i, j] = float((k * l).sum()) / (norms_a[i] * norms_b[j])
    return out


@dataclass(frozen=True)
class HollowGram:
    """A minibatch's Gram matrix with its diagonal zeroed, and the sums the unbiased HSIC
    estimator needs of it (computed once per layer, not once per layer pair)."""

    k: torch.Tensor  # (m, m), zero diagonal
    row_sums: torch.Tensor  # K 1
    total: float  # 1^T K 1

    @classmethod
    def of(cls, features: torch.Tensor) -> "HollowGram":
        x = features.reshape(features.shape[0], -1).double()
        k = x @ x.T  # the unbiased estimator centres by itself: the Gram of the raw rows
        k.fill_diagonal_(0)
        row_sums = k.sum(1)
        return cls(k, row_sums, float(row_sums.sum()))


def unbiased_hsic(a: HollowGram, b: HollowGram) -> float:
    """Song et al.'s unbiased HSIC estimator of two minibatch Grams (m >= 4):
    [tr(K L) + 1'K1 1'L1 / ((m-1)(m-2)) - 2 / (m-2) 1'K L 1] / (m (m-3))."""
    m = a.k.shape[0]
    trace = float((a.k * b.k).sum())  # both symmetric: tr(K L) is the sum of their product
    both = a.total * b.total / ((m - 1) * (m - 2))
    cross = 2 * float(a.row_sums @ b.row_sums) / (m - 2)
    return (trace + both - cross) / (m * (m - 3))


class MinibatchCKA:
    """Accumulates HSIC of every layer pair over minibatches (Nguyen et al. 2021)."""

    def __init__(self, layers_a: int, layers_b: int):
        self.cross = np.zeros((layers_a, layers_b))
        self.self_a = np.zeros(layers_a)
        self.self_b = np.zeros(layers_b)
        self.batches = 0

    def add(self, features_a: list[torch.Tensor], features_b: list[torch.Tensor]) -> None:
        """One minibatch: each layer's (m, ...) activations, m >= 4."""
        grams_a = [HollowGram.of(f) for f in features_a]
        grams_b = [HollowGram.of(f) for f in features_b]
        for i, k in enumerate(grams_a):
            self.self_a[i] += unbiased_hsic(k, k)
            for j, l in enumerate(grams_b):
                self.cross[i, j] += unbiased_hsic(k, l)
        for j, l in enumerate(grams_b):
            self.self_b[j] += unbiased_hsic(l, l)
        self.batches += 1

    def result(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.cross / np.sqrt(np.outer(self.self_a, self.self_b))
