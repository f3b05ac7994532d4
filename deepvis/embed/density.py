"""Maps of up to millions of points: a spatial index for "which points are in this rectangle"
and a density picture of a view, both fast enough to run on every pan and zoom.

``PointIndex`` sorts the points into a uniform grid of buckets (row-major, with prefix
offsets), so a rectangle's points are a few contiguous runs of the sorted arrays: the buckets
wholly inside the rectangle are taken without looking at their points, and only the ring of
buckets the rectangle's edges cut through is tested point by point.

``density`` counts the points per pixel of a view (row 0 is the top of the view: the map's y
grows upward, a picture's rows go down) and, given labels, finds each pixel's most common
label; ``Density.rgba`` turns that into RGBA with log-scaled brightness, and
``density_image`` does both.

Rectangles are closed (a point on an edge is inside), and bounds are compared exactly even
though the coordinates are float32: a bound is rounded outward-safe to float32 first, so
``inside`` agrees with a float64 mask ``(x >= x0) & (x <= x1) & ...``.
"""

import math
from dataclasses import dataclass

import numpy as np

from deepvis.embed.render import UNLABELLED
from deepvis.render.colormaps import CATEGORICAL

BUCKET_POINTS = 8  # points per bucket on average: few enough that a small view reads little
BRIGHTNESS_FLOOR = 0.45  # a lone point stays visible on the dark background next to a 10,000-point pixel


def _at_least(v: float) -> np.float32:
    """The smallest float32 >= v: ``x >= _at_least(v)`` is exactly ``x >= v`` for float32 x."""
    with np.errstate(over="ignore"):
        f = np.float32(v)
    if float(f) < v:
        f = np.nextafter(f, np.float32(np.inf))
    return f


def _at_most(v: float) -> np.float32:
    with np.errstate(over="ignore"):
        f = np.float32(v)
    if float(f) > v:
        f = np.nextafter(f, np.float32(-np.inf))
    return f


def _expand(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The positions start..end-1 of every span, concatenated, without a Python loop."""
    lengths = ends - starts
    keep = lengths > 0
    starts, lengths = starts[keep], lengths[keep]
    if len(starts) == 0:
        return np.empty(0, np.int64)
    shift = starts - (np.cumsum(lengths) - lengths)
    return np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(shift, lengths)


class PointIndex:
    """Points bucketed on a uniform grid over their bounding box, for rectangle queries.

    ``order`` lists the point indices bucket by bucket; ``xs``, ``ys`` (and ``codes``, the label
    codes, when given) are the coordinates in that order; bucket ``b``'s points are positions
    ``offsets[b]:offsets[b + 1]``. Points with a non-finite coordinate are left out (they are
    inside no rectangle).
    """

    def __init__(self, coords: np.ndarray, label_codes: np.ndarray | None = None,
                 bucket_points: int = BUCKET_POINTS):
        coords = np.asarray(coords, np.float32).reshape(-1, 2)
        self.n = len(coords)
        finite = np.isfinite(coords).all(1)
        kept = np.flatnonzero(finite) if not finite.all() else None
        pts = coords if kept is None else coords[kept]
        lo, hi = (pts.min(0), pts.max(0)) if len(pts) else (np.zeros(2), np.zeros(2))
        self.xmin, self.ymin = float(lo[0]), float(lo[1])
        self.xmax, self.ymax = float(hi[0]), float(hi[1])
        w, h = self.xmax - self.xmin, self.ymax - self.ymin
        buckets = max(1, len(pts) // bucket_points)
        # Square-ish buckets: as many columns per row as the box is wider than tall.
        aspect = (w / h) if w > 0 and h > 0 else 1.0
        self.gx = int(min(4096, max(1, round(math.sqrt(buckets * aspect))))) if w > 0 else 1
        self.gy = int(min(4096, max(1, round(buckets / self.gx)))) if h > 0 else 1
        self._sx = self.gx / w if w > 0 else 0.0
        self._sy = self.gy / h if h > 0 else 0.0

        bx = self._columns(pts[:, 0].astype(np.float64))
        by = self._rows(pts[:, 1].astype(np.float64))
        bucket = by * self.gx + bx
        order = np.argsort(bucket, kind="stable")
        self.order = order if kept is None else kept[order]
        self.xs = np.ascontiguousarray(pts[order, 0])
        self.ys = np.ascontiguousarray(pts[order, 1])
        self.offsets = np.zeros(self.gx * self.gy + 1, np.int64)
        np.cumsum(np.bincount(bucket, minlength=self.gx * self.gy), out=self.offsets[1:])
        self.codes = None
        self.n_labels = 0
        if label_codes is not None:
            label_codes = np.asarray(label_codes).reshape(-1)
            if len(label_codes) != self.n:
                raise ValueError(f"{len(label_codes)} label codes for {self.n} points")
            self.codes = label_codes[self.order].astype(np.int32)
            self.n_labels = int(label_codes.max()) + 1 if len(label_codes) else 0

    # The same float64 arithmetic at build and query time: bucket(x) is monotonic in x, so a
    # point >= x0 is never in a column left of x0's, and columns strictly between x0's and
    # x1's hold only points inside [x0, x1].
    def _columns(self, x):
        return np.clip(np.floor((x - self.xmin) * self._sx), 0, self.gx - 1).astype(np.int64)

    def _rows(self, y):
        return np.clip(np.floor((y - self.ymin) * self._sy), 0, self.gy - 1).astype(np.int64)

    def _axis_ranges(self, lo, hi, vmin, vmax, scale, g):
        """(first, last) candidate bucket and (first, last) wholly-inside bucket along one axis,
        or None when nothing can be inside."""
        if not (lo <= hi) or hi < vmin or lo > vmax:  # also NaN bounds
            return None
        a0 = 0 if lo <= vmin else int(min(g - 1, math.floor((lo - vmin) * scale)))
        a1 = g - 1 if hi >= vmax else int(min(g - 1, math.floor((hi - vmin) * scale)))
        b0 = 0 if lo <= vmin else a0 + 1
        b1 = g - 1 if hi >= vmax else a1 - 1
        return a0, a1, b0, b1

    def _spans(self, rows: np.ndarray, c0: int, c1: int):
        base = rows * self.gx
        return self.offsets[base + c0], self.offsets[base + c1 + 1]

    def _query(self, x0, x1, y0, y1):
        """The rectangle's points as (slices of the sorted arrays, tested positions)."""
        ax = self._axis_ranges(x0, x1, self.xmin, self.xmax, self._sx, self.gx)
        ay = self._axis_ranges(y0, y1, self.ymin, self.ymax, self._sy, self.gy)
        if ax is None or ay is None or self.n == 0:
            return [], np.empty(0, np.int64)
        ax0, ax1, bx0, bx1 = ax
        ay0, ay1, by0, by1 = ay
        slices = []
        edge_starts, edge_ends = [], []
        if bx0 <= bx1 and by0 <= by1:
            starts, ends = self._spans(np.arange(by0, by1 + 1), bx0, bx1)
            # Runs that touch (the rows span all columns) merge into one slice.
            breaks = np.flatnonzero(starts[1:] != ends[:-1]) + 1
            first = np.r_[0, breaks]
            last = np.r_[breaks, len(starts)] - 1
            slices = [slice(int(s), int(e)) for s, e in zip(starts[first], ends[last]) if e > s]
            outer_rows = np.r_[np.arange(ay0, by0), np.arange(by1 + 1, ay1 + 1)]
            inner_rows = np.arange(by0, by1 + 1)
            for rows, c0, c1 in ((outer_rows, ax0, ax1), (inner_rows, ax0, bx0 - 1), (inner_rows, bx1 + 1, ax1)):
                if len(rows) and c0 <= c1:
                    s, e = self._spans(rows, c0, c1)
                    edge_starts.append(s)
                    edge_ends.append(e)
        else:
            s, e = self._spans(np.arange(ay0, ay1 + 1), ax0, ax1)
            edge_starts.append(s)
            edge_ends.append(e)
        if edge_starts:
            edge = _expand(np.concatenate(edge_starts), np.concatenate(edge_ends))
        else:
            edge = np.empty(0, np.int64)
        if len(edge):
            xs, ys = self.xs[edge], self.ys[edge]
            edge = edge[(xs >= _at_least(x0)) & (xs <= _at_most(x1)) & (ys >= _at_least(y0)) & (ys <= _at_most(y1))]
        return slices, edge

    def positions(self, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
        """Positions in the sorted arrays (``xs``, ``ys``, ``codes``, ``order``) of the points
        inside the closed rectangle."""
        slices, edge = self._query(x0, x1, y0, y1)
        return np.concatenate([np.arange(s.start, s.stop, dtype=np.int64) for s in slices] + [edge])

    def inside(self, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
        """int64 indices of the points with x0 <= x <= x1 and y0 <= y <= y1, grouped by bucket
        (not sorted)."""
        slices, edge = self._query(x0, x1, y0, y1)
        return np.concatenate([self.order[s] for s in slices] + [self.order[edge]])

    def count_inside(self, x0: float, x1: float, y0: float, y1: float) -> int:
        slices, edge = self._query(x0, x1, y0, y1)
        return sum(s.stop - s.start for s in slices) + len(edge)

    def gather(self, x0: float, x1: float, y0: float, y1: float, codes: bool = True):
        """(xs, ys, codes or None) of the points inside: views of the sorted arrays when the
        rectangle takes one run of them (a view of everything), copies otherwise."""
        slices, edge = self._query(x0, x1, y0, y1)

        def take(a):
            if a is None:
                return None
            if len(slices) == 1 and not len(edge):
                return a[slices[0]]
            return np.concatenate([a[s] for s in slices] + [a[edge]])

        return take(self.xs), take(self.ys), take(self.codes if codes else None)


def default_palette(n_labels: int) -> np.ndarray:
    """Label code i's colour: the categorical colours in turn, as ``label_colors`` gives them to
    names in the same order."""
    return CATEGORICAL[np.arange(max(n_labels, 0)) % len(CATEGORICAL)]


@dataclass
class Density:
    """A view's points per pixel, kept sparse: ``pixels`` are the flat ids (row * width + col,
    row 0 the top of the view) of the non-empty pixels in increasing order, ``counts`` their
    point counts and ``labels`` their most common label code (or None without labels)."""

    width: int
    height: int
    pixels: np.ndarray
    counts: np.ndarray
    labels: np.ndarray | None = None

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def count_image(self) -> np.ndarray:
        """int64 (height, width) points per pixel."""
        out = np.zeros(self.width * self.height, np.int64)
        out[self.pixels] = self.counts
        return out.reshape(self.height, self.width)

    def label_image(self) -> np.ndarray | None:
        """int32 (height, width) most common label code per pixel, -1 where empty."""
        if self.labels is None:
            return None
        out = np.full(self.width * self.height, -1, np.int32)
        out[self.pixels] = self.labels
        return out.reshape(self.height, self.width)

    def rgba(self, palette: np.ndarray | None = None, floor: float = BRIGHTNESS_FLOOR) -> np.ndarray:
        """uint8 (height, width, 4): brightness ``floor + (1 - floor) * log1p(count) /
        log1p(max count)`` of the pixel's label colour (``palette[code]``, default
        ``default_palette``; the unlabelled grey for -1 and for maps without labels), alpha 0 where empty."""
        out = np.zeros(self.width * self.height, np.uint32)  # one RGBA pixel per element
        if len(self.pixels) == 0:
            return out.view(np.uint8).reshape(self.height, self.width, 4)
        c = self.counts.astype(np.float32)
        np.log1p(c, out=c)
        c *= np.float32((1 - floor) * 255 / max(float(c.max()), 1e-9))
        c += np.float32(floor * 255)
        level = c.astype(np.int32)
        if self.labels is None:
            table = np.asarray([UNLABELLED], np.float32)
            colour = 0
        else:
            if palette is None:
                palette = default_palette(int(self.labels.max()) + 1)
            table = np.concatenate([np.asarray([UNLABELLED], np.float32),
                                    np.asarray(palette, np.float32).reshape(-1, 3)])
            colour = self.labels + 1
        # Every (colour, brightness) pair's RGBA, so each pixel is one lookup.
        lut = np.empty((len(table), 256, 4), np.uint8)
        lut[..., :3] = table[:, None, :] * (np.arange(256, dtype=np.float32) / 255)[None, :, None]
        lut[..., 3] = 255
        out[self.pixels] = lut.view(np.uint32).reshape(-1)[colour * 256 + level]
        return out.view(np.uint8).reshape(self.height, self.width, 4)


def density(index_or_coords, x_range, y_range, width: int, height: int,
            label_codes: np.ndarray | None = None) -> Density:
    """Points per pixel of the view ``x_range`` x ``y_range`` drawn ``width`` x ``height``
    pixels (row 0 the top of the view, its largest y; column 0 its left), and with labels
    (``label_codes`` per point, or the index's own) each pixel's most common label code (ties:
    the smaller code; -1 is unlabelled).

    A point's column is ``floor((x - x0) * (width / (x1 - x0)))`` in float64, its row counted
    likewise from the bottom and then flipped; a point on the view's right or top edge counts in
    the last column or the first row, so the counts sum to the points ``inside`` the closed view.
    """
    (x0, x1), (y0, y1) = (float(v) for v in x_range), (float(v) for v in y_range)
    width, height = int(width), int(height)
    n_labels = 0
    if isinstance(index_or_coords, PointIndex):
        index = index_or_coords
        if label_codes is not None:
            label_codes = np.asarray(label_codes).reshape(-1)
            at = index.positions(x0, x1, y0, y1)
            xs, ys, codes = index.xs[at], index.ys[at], label_codes[index.order[at]]
            n_labels = int(label_codes.max()) + 1 if len(label_codes) else 0
        else:
            xs, ys, codes = index.gather(x0, x1, y0, y1)
            n_labels = index.n_labels
    else:
        coords = np.asarray(index_or_coords, np.float32).reshape(-1, 2)
        x, y = coords[:, 0], coords[:, 1]
        keep = np.flatnonzero((x >= _at_least(x0)) & (x <= _at_most(x1)) & (y >= _at_least(y0)) & (y <= _at_most(y1)))
        xs, ys = x[keep], y[keep]
        codes = None
        if label_codes is not None:
            label_codes = np.asarray(label_codes).reshape(-1)
            codes = label_codes[keep]
            n_labels = int(label_codes.max()) + 1 if len(label_codes) else 0
    pixels = width * height
    if len(xs) == 0 or pixels == 0:
        empty = np.zeros(0, np.int64)
        return Density(width, height, empty, empty, None if codes is None else np.zeros(0, np.int32))

    # float64: in float32 the offset from a far-off view corner would lose whole pixels. In
    # place where possible: each fresh 8 MB temporary costs its page faults on every frame.
    t = np.subtract(xs, x0, dtype=np.float64)
    t *= width / (x1 - x0) if x1 > x0 else 0.0
    col = t.astype(np.int32)
    np.minimum(col, width - 1, out=col)  # a point on the right edge: the last column
    np.subtract(ys, y0, out=t, dtype=np.float64)
    t *= height / (y1 - y0) if y1 > y0 else 0.0
    row = t.astype(np.int32)
    del t
    np.subtract(height - 1, row, out=row)
    np.maximum(row, 0, out=row)  # a point on the top edge: the first row
    if codes is None:
        row *= width
        row += col
        counts = np.bincount(row, minlength=pixels)
        nz = np.flatnonzero(counts)
        return Density(width, height, nz, counts[nz])

    # Most common label per pixel: sort (pixel, label) keys, count the runs of equal keys and
    # keep each pixel's longest run. numpy's integer sort is fast enough (5 ms for 1e6 keys).
    stride = n_labels + 1  # code -1 (unlabelled) is 0 in the key
    key_type = np.int32 if pixels * stride < 2 ** 31 else np.int64
    key = row.astype(key_type, copy=False)
    key *= width * stride
    col = col.astype(key_type, copy=False)
    col *= stride
    key += col
    del col, row
    key += codes
    key += 1
    key.sort()
    n = len(key)
    starts = _run_starts(key)
    run_keys = key[starts]
    del key
    run_pixel = run_keys // stride
    run_keys -= run_pixel * stride  # the label code + 1
    run_counts = np.diff(starts, append=n)
    first = _run_starts(run_pixel)  # runs are sorted by pixel: each pixel's first run
    group = np.cumsum(_flags(run_pixel)) - 1
    # Longest run wins; among equal runs the smaller label (its part of the score is larger).
    best = np.zeros(len(first), np.int64)
    np.maximum.at(best, group, run_counts * stride + (stride - 1 - run_keys))
    return Density(width, height, run_pixel[first].astype(np.int64), np.diff(starts[first], append=n),
                   ((stride - 2) - best % stride).astype(np.int32))


def _flags(a: np.ndarray) -> np.ndarray:
    """True where a sorted array's value differs from the one before (and at 0)."""
    flags = np.empty(len(a), bool)
    flags[:1] = True
    np.not_equal(a[1:], a[:-1], out=flags[1:])
    return flags


def _run_starts(a: np.ndarray) -> np.ndarray:
    return np.flatnonzero(_flags(a))


def density_counts(index_or_coords, x_range, y_range, width: int, height: int,
                   label_codes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``density``'s counts as int64 (height, width) and its labels as int32 (height, width)
    (-1 where empty; None without labels)."""
    d = density(index_or_coords, x_range, y_range, width, height, label_codes)
    return d.count_image(), d.label_image()


def colorize_density(counts: np.ndarray, labels: np.ndarray | None = None, palette: np.ndarray | None = None,
                     floor: float = BRIGHTNESS_FLOOR) -> np.ndarray:
    """RGBA uint8 of dense ``counts`` (and ``labels``), as ``Density.rgba``."""
    h, w = counts.shape
    nz = np.flatnonzero(counts)
    d = Density(w, h, nz, counts.reshape(-1)[nz], None if labels is None else labels.reshape(-1)[nz])
    return d.rgba(palette, floor)


def density_image(index_or_coords, x_range, y_range, width: int, height: int, label_codes=None,
                  palette=None) -> np.ndarray:
    """uint8 (height, width, 4) RGBA density picture of the view, row 0 at the top (``density``
    coloured by ``Density.rgba``)."""
    return density(index_or_coords, x_range, y_range, width, height, label_codes).rgba(palette)
