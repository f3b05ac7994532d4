"""2-D maps of feature vectors (t-SNE, PCA, UMAP), new points placed into them, and how well
a map keeps neighbours.

t-SNE is openTSNE's: FFT-accelerated gradients, approximate nearest neighbours, PCA
initialization. Our path differs from a plain call in three measured ways:

* the vectors are reduced to at most ``PCA_DIMS`` principal components first (the usual
  t-SNE preprocessing: it keeps the neighbourhoods and makes the neighbour search cheaper);
* the FFT grid's intervals are ``INTERVAL_SIZE`` map units wide instead of 1 (see below);
* the optimization stops when the layout has settled (50 more iterations lower the KL
  divergence by less than 1%) instead of always running a fixed count: on 10k digit
  features it stops after about 300 of the 500 main iterations with the same 10-NN accuracy
  and trustworthiness as the full run;
* every ``check_every`` iterations the current layout is handed to ``progress``, so a view
  can animate the map as it forms.
"""

import math
import time
from dataclasses import dataclass, field

import numpy as np

from deepvis.errors import Cancelled, DeepvisError

METHODS = ("tsne", "pca", "umap")
PCA_DIMS = 50
INTERVAL_SIZE = 2.0


@dataclass
class EmbeddingMap:
    coords: np.ndarray  # float32 (N, 2)
    method: str
    params: dict
    seconds: float
    iterations: int = 0
    _placer: object = field(default=None, repr=False)  # what transform() uses

    def note(self, perplexity: float | None = None) -> str:
        """What was changed from the settings asked for ("" when nothing): openTSNE needs three
        perplexities' worth of neighbours, so a small map's perplexity is lowered to (n - 1) / 3."""
        used = self.params.get("perplexity")
        if self.method != "tsne" or perplexity is None or used is None or used >= perplexity:
            return ""
        return (f"perplexity {perplexity:g} lowered to {used:.3g} for {len(self.coords)} points "
                f"(at most (n - 1) / 3)")

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Place new feature vectors (M, D) into this map: (M, 2)."""
        if self._placer is None:
            raise DeepvisError(f"this {self.method} map cannot place new points")
        return np.asarray(self._placer(np.asarray(vectors, np.float32)), np.float32)


def check_tsne_settings(perplexity: float, exaggeration: float | None) -> None:
    """Raise a DeepvisError for values openTSNE cannot use (a perplexity of 0 crashes it)."""
    if not (math.isfinite(perplexity) and 1 <= perplexity <= 1000):
        raise DeepvisError(f"the perplexity must be a number from 1 to 1000, got {perplexity}")
    if exaggeration is not None and not (math.isfinite(exaggeration) and 0 < exaggeration <= 100):
        raise DeepvisError(f"the exaggeration must be above 0 and at most 100, got {exaggeration}")


def project(vectors: np.ndarray, method: str = "tsne", perplexity: float = 30.0, exaggeration: float | None = None,
            iterations: int = 500, early_iterations: int = 250, tolerance: float = 1e-2, check_every: int = 50,
            seed: int = 0, n_jobs: int = 0, progress=None, cancel=None) -> EmbeddingMap:
    """A 2-D map of ``vectors`` (N, D).

    ``progress(iteration, total, coords)`` is called as the layout forms (coords may be None
    before the first layout); ``cancel`` (a threading.Event) stops with Cancelled.
    """
    vectors = np.asarray(vectors, np.float32)
    if vectors.ndim != 2 or len(vectors) < 3:
        raise DeepvisError(f"a map needs at least 3 feature vectors, got {vectors.shape}")
    if not np.isfinite(vectors).all():
        raise DeepvisError("the feature vectors contain NaN or infinite values")
    if method not in METHODS:
        raise DeepvisError(f"unknown method {method!r}: expected one of {', '.join(METHODS)}")
    check_tsne_settings(perplexity, exaggeration)
    n_jobs = n_jobs or _cores()
    start = time.perf_counter()
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=seed).fit(vectors)
        coords = pca.transform(vectors).astype(np.float32)
        if progress is not None:
            progress(1, 1, coords)
        return EmbeddingMap(coords, method, {}, time.perf_counter() - start, 1, pca.transform)
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise DeepvisError("UMAP needs the optional package umap-learn (pip install umap-learn)") from None
        reducer = umap.UMAP(n_components=2, random_state=seed)
        coords = reducer.fit_transform(vectors).astype(np.float32)
        if progress is not None:
            progress(1, 1, coords)
        return EmbeddingMap(coords, method, {}, time.perf_counter() - start, 1, reducer.transform)
    return _tsne(vectors, perplexity, exaggeration, iterations, early_iterations, tolerance, check_every, seed,
                 n_jobs, progress, cancel, start)


def _cores() -> int:
    import os

    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _tsne(vectors, perplexity, exaggeration, iterations, early_iterations, tolerance, check_every, seed, n_jobs,
          progress, cancel, start) -> EmbeddingMap:
    from openTSNE import TSNEEmbedding, affinity, initialization

    n = len(vectors)
    perplexity = float(min(perplexity, (n - 1) / 3))  # openTSNE needs 3 * perplexity neighbours
    reduce = None
    data = vectors
    if vectors.shape[1] > PCA_DIMS and n > PCA_DIMS:
        from sklearn.decomposition import PCA

        reduce = PCA(n_components=PCA_DIMS, random_state=seed).fit(vectors)
        data = reduce.transform(vectors).astype(np.float32)
    if progress is not None:
        progress(0, early_iterations + iterations, None)
    affinities = affinity.PerplexityBasedNN(data, perplexity=perplexity, method="auto", n_jobs=n_jobs,
                                            random_state=seed, verbose=False)
    init = initialization.pca(data, random_state=seed)
    # FFT interpolation intervals of 2 map units instead of 1: the repulsive forces are
    # interpolated on a coarser grid, and the grid no longer grows with the map's spread (the
    # main phase went from 33 s to 8 s on 10k digits) while 10-NN accuracy and trustworthiness
    # stayed equal to scikit-learn's exact-gradient layout's to the third decimal.
    embedding = TSNEEmbedding(init, affinities, negative_gradient_method="fft", n_jobs=n_jobs, random_state=seed,
                              ints_in_interval=INTERVAL_SIZE)
    total = early_iterations + iterations
    done = 0

    def run(n_iter, exag, momentum, settle):
        nonlocal done
        last, ran = [None], [n_iter]

        def callback(iteration, error, current):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            if progress is not None:
                progress(done + iteration, total, np.asarray(current, np.float32))
            if settle:
                previous, last[0] = last[0], error
                if previous is not None and previous - error < tolerance * abs(previous):
                    ran[0] = iteration
                    return True  # settled: more iterations would barely lower the KL divergence
            return False

        embedding.optimize(n_iter=n_iter, exaggeration=exag, momentum=momentum, callbacks=callback,
                           callbacks_every_iters=check_every, inplace=True)
        done += ran[0]

    # openTSNE's own schedule: early exaggeration 12 with momentum 0.5, then the map proper.
    run(early_iterations, 12.0, 0.5, settle=False)
    run(iterations, exaggeration, 0.8, settle=True)
    coords = np.asarray(embedding, np.float32).copy()

    def place(new):
        new = reduce.transform(new).astype(np.float32) if reduce is not None else new
        return embedding.transform(new)

    params = {"perplexity": perplexity, "exaggeration": exaggeration, "pca_dims": data.shape[1]}
    return EmbeddingMap(coords, "tsne", params, time.perf_counter() - start, done, place)


KNN_K = 10
"""The k of the maps' k-NN accuracy, where every class has that many points to vote in each
training fold."""


def _knn_folds(labels, folds: int = 5):
    """(known mask, labels of the known points, fold count) for a stratified k-NN score, or None
    when there are too few labelled points or fewer than two classes."""
    known = np.array([label is not None for label in labels])
    if known.sum() < folds * 2:
        return None
    y = np.array([label for label in labels if label is not None])
    counts = np.unique(y, return_counts=True)[1]
    if len(counts) < 2:
        return None
    return known, y, max(2, int(min(folds, counts.min())))


def _smallest_in_training(y: np.ndarray, cv) -> int:
    """The smallest class's count in any training fold of ``cv``."""
    return int(min(np.unique(y[train], return_counts=True)[1].min() for train, _ in cv.split(np.zeros(len(y)), y)))


def knn_k(labels, k: int = KNN_K, folds: int = 5, seed: int = 0) -> int | None:
    """The k that ``knn_score`` uses: ``k``, lowered to the smallest class's count in a
    training fold. With more neighbours than a class has points, a point is outvoted by other
    classes however well its class clusters (four separate clusters of six images scored 0.51
    at k = 10). None when there is no score."""
    from sklearn.model_selection import StratifiedKFold

    split = _knn_folds(labels, folds)
    if split is None:
        return None
    _, y, folds = split
    return max(1, min(k, _smallest_in_training(y, StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed))))


def knn_score(coords: np.ndarray, labels, k: int = KNN_K, folds: int = 5,
              seed: int = 0) -> tuple[float | None, int | None]:
    """(mean k-NN classification accuracy of the 2-D layout over stratified folds, the k used
    as ``knn_k`` gives it, which callers say beside the score); (None, None) without labels."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    split = _knn_folds(labels, folds)
    if split is None:
        return None, None
    known, y, folds = split
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    neighbours = max(1, min(k, _smallest_in_training(y, cv)))
    scores = cross_val_score(KNeighborsClassifier(n_neighbors=neighbours), coords[known], y, cv=cv)
    return (float(scores.mean()) if np.isfinite(scores).all() else None), neighbours


def knn_accuracy(coords: np.ndarray, labels, k: int = KNN_K, folds: int = 5, seed: int = 0) -> float | None:
    """``knn_score``'s accuracy alone."""
    return knn_score(coords, labels, k, folds, seed)[0]


def knn_words(accuracy: float | None, k: int | None) -> str:
    """ "10-NN accuracy 0.998", and why when k is below KNN_K; "" without a score."""
    if accuracy is None or k is None:
        return ""
    why = "" if k >= KNN_K else f" (k lowered from {KNN_K}: the smallest class has {k} points in a training fold)"
    return f"{k}-NN accuracy {accuracy:.3f}{why}"


def trustworthiness(vectors: np.ndarray, coords: np.ndarray, k: int = 10, max_points: int = 4000,
                    seed: int = 0) -> float | None:
    """scikit-learn's trustworthiness (are the map's neighbours real neighbours?), on a random
    subset of at most ``max_points`` (its memory grows with N^2); None for fewer than 4 points,
    which have no neighbourhood to keep."""
    from sklearn.manifold import trustworthiness as sk_trustworthiness

    n = len(vectors)
    if n < 4:
        return None
    if n > max_points:
        idx = np.random.default_rng(seed).choice(n, max_points, replace=False)
        vectors, coords = vectors[idx], coords[idx]
    return float(sk_trustworthiness(vectors, coords, n_neighbors=min(k, len(vectors) // 2 - 1)))
