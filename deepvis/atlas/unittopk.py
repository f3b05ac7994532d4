"""Each unit's k most exciting images over an atlas, merged batch by batch, and its statistics.

A unit's response to an image is its spatial maximum (as in ``profile_units``). Merging keeps
the k largest responses of the union, so merging per-worker or per-batch partial top-k lists
gives exactly the top-k of a single pass over all images; ties go to the smaller path, so
the result does not depend on the order batches arrive in.
"""

import numpy as np

STAT_KEYS = ("count", "active", "sum", "sumsq", "min", "max", "mean_sum")


class UnitTopK:
    def __init__(self, channels: int, k: int, map_shape: tuple[int, int]):
        self.k = k
        self.map_shape = tuple(int(v) for v in map_shape)
        self.values = np.full((channels, 0), -np.inf, np.float32)
        self.paths = np.empty((channels, 0), dtype=object)
        self.where = np.zeros((channels, 0), np.int64)  # flat index into the unit's map
        self.stats = {key: np.zeros(channels, np.float64) for key in STAT_KEYS}
        self.stats["min"][:] = np.inf
        self.stats["max"][:] = -np.inf

    @property
    def channels(self) -> int:
        return self.values.shape[0]

    def update(self, maxima: np.ndarray, where: np.ndarray, paths, means: np.ndarray) -> None:
        """``maxima``/``where``/``means``: (n, C) spatial maximum, its flat position, spatial mean."""
        if len(maxima) == 0:
            return
        m = maxima.astype(np.float64)
        s = self.stats
        s["count"] += len(m)
        s["active"] += (m > 0).sum(0)
        s["sum"] += m.sum(0)
        s["sumsq"] += (m * m).sum(0)
        s["min"] = np.minimum(s["min"], m.min(0))
        s["max"] = np.maximum(s["max"], m.max(0))
        s["mean_sum"] += means.astype(np.float64).sum(0)
        paths = np.asarray(paths, dtype=object)
        values = np.concatenate([self.values, maxima.T.astype(np.float32)], 1)
        names = np.concatenate([self.paths, np.broadcast_to(paths, (self.channels, len(paths)))], 1)
        where = np.concatenate([self.where, where.T.astype(np.int64)], 1)
        keep = _top(values, names, self.k)
        self.values = np.take_along_axis(values, keep, 1)
        self.paths = np.take_along_axis(names, keep, 1)
        self.where = np.take_along_axis(where, keep, 1)

    def merge(self, other: "UnitTopK") -> None:
        """Fold in another partial result over different images."""
        for key in ("count", "active", "sum", "sumsq", "mean_sum"):
            self.stats[key] += other.stats[key]
        self.stats["min"] = np.minimum(self.stats["min"], other.stats["min"])
        self.stats["max"] = np.maximum(self.stats["max"], other.stats["max"])
        values = np.concatenate([self.values, other.values], 1)
        names = np.concatenate([self.paths, other.paths], 1)
        where = np.concatenate([self.where, other.where], 1)
        keep = _top(values, names, self.k)
        self.values = np.take_along_axis(values, keep, 1)
        self.paths = np.take_along_axis(names, keep, 1)
        self.where = np.take_along_axis(where, keep, 1)

    def locations(self) -> np.ndarray:
        """(C, k, 2) (y, x) of each top response in the unit's map."""
        y, x = np.divmod(self.where, self.map_shape[1])
        return np.stack([y, x], 2)

    def summary(self) -> dict[str, np.ndarray]:
        """Per unit: mean and standard deviation of the response, the fraction of images where
        it is positive, its range, and the mean activation over all positions."""
        s = self.stats
        n = np.maximum(s["count"], 1)
        mean = s["sum"] / n
        return {"mean": mean, "std": np.sqrt(np.maximum(s["sumsq"] / n - mean * mean, 0)),
                "active": s["active"] / n, "min": s["min"], "max": s["max"], "mean_activation": s["mean_sum"] / n}

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        arrays = {f"{prefix}values": self.values, f"{prefix}paths": self.paths.astype(str),
                  f"{prefix}where": self.where, f"{prefix}map_shape": np.array(self.map_shape),
                  f"{prefix}k": np.array(self.k)}
        arrays.update({f"{prefix}stat_{key}": value for key, value in self.stats.items()})
        return arrays

    @classmethod
    def from_arrays(cls, arrays, prefix: str) -> "UnitTopK":
        values = arrays[f"{prefix}values"]
        result = cls(values.shape[0], int(arrays[f"{prefix}k"]), tuple(arrays[f"{prefix}map_shape"]))
        result.values = values.astype(np.float32)
        result.paths = arrays[f"{prefix}paths"].astype(object)
        result.where = arrays[f"{prefix}where"].astype(np.int64)
        result.stats = {key: arrays[f"{prefix}stat_{key}"].astype(np.float64) for key in STAT_KEYS}
        return result


def _top(values: np.ndarray, names: np.ndarray, k: int) -> np.ndarray:
    """Column order of the k largest values per row; equal values by path, so the outcome does
    not depend on which batch came first (dead ReLU units tie at 0 over every image)."""
    rows, cols = values.shape
    if cols <= k:
        return np.lexsort((names.astype(str), -values), axis=1) if cols else np.zeros((rows, 0), np.int64)
    order = np.argsort(-values, axis=1, kind="stable")[:, :k + 1]
    ranked = np.take_along_axis(values, order, 1)
    tied = np.flatnonzero(ranked[:, k - 1] == ranked[:, k])  # a tie crosses the cut: paths decide
    order = order[:, :k].copy()
    for r in tied:
        order[r] = np.lexsort((names[r].astype(str), -values[r]))[:k]
    # Ties inside the top k must be ordered by path too, not by arrival.
    ranked = np.take_along_axis(values, order, 1)
    inner = np.flatnonzero((ranked[:, 1:] == ranked[:, :-1]).any(1))
    for r in np.setdiff1d(inner, tied):
        o = order[r]
        order[r] = o[np.lexsort((names[r, o].astype(str), -values[r, o]))]
    return order
