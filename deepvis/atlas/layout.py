"""``deepvis atlas map``: the 2-D layout of every row of an atlas, for up to millions of rows.

Features are read a row group at a time and reduced to ``PCA_DIMS`` principal components
fitted on a sample, so the whole layer never sits in memory at full width. t-SNE (and UMAP)
is then fitted on a sample of at most ``sample`` rows and every other row is placed into
that map with the fitted model's ``transform``, as openTSNE recommends for large data: the
layout's cost grows with the sample, the placing linearly with the rest. The map's quality
(10-NN accuracy of the labels, trustworthiness against the full-width features) is measured
on a random sample of rows.
"""

import time

import numpy as np

from deepvis.atlas.store import Atlas
from deepvis.embed.projection import METHODS, PCA_DIMS, knn_score, project, trustworthiness
from deepvis.errors import Cancelled, DeepvisError

SAMPLE = 20_000  # rows the t-SNE / UMAP layout is fitted on
QUALITY_SAMPLE = 4000  # rows the quality figures are measured on
PLACE_CHUNK = 10_000


def atlas_map(atlas: Atlas, layer: str | None = None, method: str = "tsne", sample: int = SAMPLE,
              perplexity: float = 30.0, seed: int = 0, progress=None, cancel=None) -> dict:
    """Lay out ``layer`` (default: the atlas's first), save the map in the atlas, return its info.
    ``progress(stage, done, total)``; ``cancel`` (a threading.Event) raises Cancelled."""
    layer = layer or atlas.layers[0]
    if method not in METHODS:
        raise DeepvisError(f"unknown method {method!r}: expected one of {', '.join(METHODS)}")
    if sample < 100:
        raise DeepvisError("--sample must be at least 100")
    start = time.perf_counter()
    rows = len(atlas)
    if rows < 3:
        raise DeepvisError(f"{atlas.path} holds {rows} images: a map needs at least 3")
    rng = np.random.default_rng(seed)
    quality_rows = np.sort(rng.choice(rows, min(rows, QUALITY_SAMPLE), replace=False))
    fit_rows = np.sort(rng.choice(rows, min(rows, sample), replace=False))

    def report(stage, done, total):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        if progress is not None:
            progress(stage, done, total)

    reduced, quality_full = _reduce(atlas, layer, fit_rows, quality_rows, seed, report)
    if not np.isfinite(reduced).all():
        raise DeepvisError(f"the features of {layer} contain NaN or infinite values")
    if method == "pca" or rows <= sample:
        fitted = project(reduced, method, perplexity=perplexity, seed=seed, cancel=cancel,
                         progress=lambda it, total, _c: report(method, it, total))
        coords = fitted.coords
        fitted_on = rows
    else:
        fitted = project(reduced[fit_rows], method, perplexity=perplexity, seed=seed, cancel=cancel,
                         progress=lambda it, total, _c: report(method, it, total))
        coords = np.empty((rows, 2), np.float32)
        coords[fit_rows] = fitted.coords
        rest = np.setdiff1d(np.arange(rows), fit_rows)
        for i in range(0, len(rest), PLACE_CHUNK):
            report("placing", i, len(rest))
            chunk = rest[i:i + PLACE_CHUNK]
            coords[chunk] = fitted.transform(reduced[chunk])
        fitted_on = len(fit_rows)
    labels = atlas.labels()
    knn, k = knn_score(coords[quality_rows], [labels[i] for i in quality_rows])
    trust = trustworthiness(quality_full, coords[quality_rows])
    info = {"layer": layer, "method": method, "rows": rows, "fitted_on": fitted_on, "seed": seed,
            "perplexity": fitted.params.get("perplexity") if method == "tsne" else None,
            "pca_dims": int(reduced.shape[1]),
            "quality_rows": int(len(quality_rows)), "knn": None if knn is None else round(knn, 4), "knn_k": k,
            "trust": None if trust is None else round(trust, 4), "seconds": round(time.perf_counter() - start, 2)}
    lowered = fitted.note(perplexity) if method == "tsne" else ""
    if lowered:  # a few rows: openTSNE needs three perplexities' worth of neighbours
        info["perplexity_asked"] = perplexity
    atlas.save_map(layer, method, coords, info)
    return {**info, "note": lowered} if lowered else info


def _reduce(atlas: Atlas, layer: str, fit_rows, quality_rows, seed, report):
    """(rows, <= PCA_DIMS) principal components of every row, and the full-width features of
    ``quality_rows``; two streaming passes over the parts."""
    from sklearn.decomposition import PCA

    fit_parts, quality_parts = [], []
    offset = 0
    for batch in atlas.feature_batches(layer):
        n = len(batch)
        for wanted, parts in ((fit_rows, fit_parts), (quality_rows, quality_parts)):
            inside = wanted[(wanted >= offset) & (wanted < offset + n)] - offset
            parts.append(batch[inside])
        offset += n
        report("reading", offset, len(atlas))
    fit, quality = np.concatenate(fit_parts), np.concatenate(quality_parts)
    dims = min(PCA_DIMS, fit.shape[1], len(fit))
    if fit.shape[1] <= PCA_DIMS:
        reduced = np.concatenate(list(atlas.feature_batches(layer)))
        return reduced.astype(np.float32), quality
    pca = PCA(n_components=dims, random_state=seed).fit(fit)
    reduced = np.empty((len(atlas), dims), np.float32)
    offset = 0
    for batch in atlas.feature_batches(layer):
        reduced[offset:offset + len(batch)] = pca.transform(batch)
        offset += len(batch)
        report("reducing", offset, len(atlas))
    return reduced, quality
