"""Point index and density pictures for million-point maps: rectangle queries agree with a
brute-force mask, pixel counts land where the coordinates say and sum to the points in view,
and a mixed pixel takes its majority label's colour."""

import numpy as np
import pytest

from deepvis.embed.density import (Density, PointIndex, colorize_density, default_palette, density, density_counts,
                                   density_image)
from deepvis.embed.render import UNLABELLED


def clusters(n: int, k: int = 50, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 30, (k, 2))
    scales = rng.uniform(0.5, 4, k)
    labels = rng.integers(0, k, n)
    coords = centers[labels] + rng.normal(0, 1, (n, 2)) * scales[labels, None]
    return coords.astype(np.float32), labels


def brute(coords, x0, x1, y0, y1):
    x, y = coords[:, 0].astype(np.float64), coords[:, 1].astype(np.float64)
    return np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))


def random_rects(rng, coords, count):
    """Rectangles of every kind: random, around data points (edges exactly on points), past the
    data's bounds, thin, empty."""
    lo, hi = coords.min(0).astype(float), coords.max(0).astype(float)
    span = hi - lo
    for t in range(count):
        kind = t % 4
        if kind == 0:
            a, b = np.sort(rng.uniform(lo[0] - 0.2 * span[0], hi[0] + 0.2 * span[0], 2))
            c, d = np.sort(rng.uniform(lo[1] - 0.2 * span[1], hi[1] + 0.2 * span[1], 2))
        elif kind == 1:  # edges exactly on points' float32 coordinates
            i, j = rng.integers(0, len(coords), 2)
            a, b = sorted(float(v) for v in (coords[i, 0], coords[j, 0]))
            c, d = sorted(float(v) for v in (coords[i, 1], coords[j, 1]))
        elif kind == 2:  # small views around a point
            cx, cy = coords[rng.integers(0, len(coords))].astype(float)
            r = rng.uniform(0.01, 2.0)
            a, b, c, d = cx - r, cx + r, cy - r * 0.7, cy + r * 0.7
        else:  # covering everything, or one side past the data
            a, b = lo[0] - rng.uniform(0, 5), hi[0] + rng.uniform(-span[0] / 2, 5)
            c, d = lo[1] - rng.uniform(0, 5), hi[1] + rng.uniform(0, 5)
        yield float(a), float(b), float(c), float(d)


@pytest.mark.slow
def test_inside_equals_a_brute_force_mask():
    coords, labels = clusters(100_000)
    index = PointIndex(coords, labels)
    rng = np.random.default_rng(1)
    sizes = []
    for rect in random_rects(rng, coords, 400):
        expected = brute(coords, *rect)
        got = index.inside(*rect)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(np.sort(got), expected)
        assert len(np.unique(got)) == len(got)
        assert index.count_inside(*rect) == len(expected)
        np.testing.assert_array_equal(np.sort(index.order[index.positions(*rect)]), expected)
        sizes.append(len(expected))
    # The rectangles covered the range from empty to everything.
    assert min(sizes) == 0 and max(sizes) == len(coords) and np.median(sizes) > 10


def test_inside_edge_cases():
    # Bounds that are not float32 numbers, a degenerate axis, non-finite points, empty input.
    coords = np.array([[0.1, 5], [0.2, 5], [0.3, 5], [np.nan, 5], [0.2, np.inf]], np.float32)
    index = PointIndex(coords)
    assert index.gy == 1
    # float32(0.1) is just above 0.1 and float32(0.2) just above 0.2: compared exactly.
    assert sorted(index.inside(0.1, 0.2, 5, 5).tolist()) == [0]
    assert sorted(index.inside(0.1, float(np.float32(0.2)), 5, 5).tolist()) == [0, 1]
    x01 = float(np.float32(0.1))
    assert sorted(index.inside(np.nextafter(x01, 1), 1, 0, 10).tolist()) == [1, 2]  # just past point 0
    assert index.count_inside(-np.inf, np.inf, -np.inf, np.inf) == 3
    assert index.count_inside(1, 0, 0, 10) == 0  # x0 > x1
    assert index.count_inside(np.nan, 1, 0, 10) == 0
    empty = PointIndex(np.zeros((0, 2), np.float32))
    assert empty.count_inside(-1, 1, -1, 1) == 0 and len(empty.inside(-1, 1, -1, 1)) == 0
    with pytest.raises(ValueError):
        PointIndex(coords, np.zeros(3, int))


def test_counts_sum_to_the_points_in_view_and_sit_where_the_coordinates_say():
    coords, labels = clusters(100_000)
    index = PointIndex(coords, labels)
    rng = np.random.default_rng(2)
    for rect in random_rects(rng, coords, 60):
        x0, x1, y0, y1 = rect
        w, h = int(rng.integers(1, 90)), int(rng.integers(1, 60))
        inside = brute(coords, *rect)
        for source in (index, coords):
            counts, _ = density_counts(source, (x0, x1), (y0, y1), w, h)
            assert counts.shape == (h, w) and counts.dtype == np.int64
            assert counts.sum() == len(inside)
        if len(inside) == 0 or x1 <= x0 or y1 <= y0:
            continue
        # Each point's pixel from its coordinates, in float64 as documented: row 0 is the top.
        p = coords[inside].astype(np.float64)
        col = np.minimum(np.floor((p[:, 0] - x0) * (w / (x1 - x0))).astype(int), w - 1)
        row = h - 1 - np.minimum(np.floor((p[:, 1] - y0) * (h / (y1 - y0))).astype(int), h - 1)
        expected = np.zeros((h, w), np.int64)
        np.add.at(expected, (row, col), 1)
        np.testing.assert_array_equal(density_counts(index, (x0, x1), (y0, y1), w, h)[0], expected)


def test_one_point_lands_in_its_pixel_upright():
    coords = np.array([[1.0, 9.0], [9.5, 0.5], [5, 5]], np.float32)  # top-left, bottom-right, centre
    counts, _ = density_counts(coords, (0, 10), (0, 10), 10, 10)
    assert counts[0, 1] == 1  # y = 9 is near the top: row 0
    assert counts[9, 9] == 1
    assert counts[4, 5] == 1  # y = 5.0 is the bottom edge of row 4 (rows cover [y, y + 1))
    assert counts.sum() == 3
    rgba = density_image(coords, (0, 10), (0, 10), 10, 10)
    assert rgba.shape == (10, 10, 4) and rgba.dtype == np.uint8
    assert rgba[0, 1, 3] == 255 and rgba[0, 0, 3] == 0 and (rgba[..., 3] > 0).sum() == 3
    # The view's edges count: a point on the right and top edges is in the last column, first row.
    counts, _ = density_counts(np.array([[10, 10]], np.float32), (0, 10), (0, 10), 10, 10)
    assert counts[0, 9] == 1


def test_majority_label_colours_a_mixed_pixel():
    # One pixel with three points of label 4 and two of label 1; another with a 1-1 tie.
    coords = np.array([[0.5, 0.5]] * 5 + [[1.5, 0.5]] * 2 + [[0.5, 1.5]], np.float32)
    codes = np.array([4, 1, 4, 1, 4, 7, 2, -1])
    palette = default_palette(8)
    counts, labels = density_counts(coords, (0, 2), (0, 2), 2, 2, label_codes=codes)
    assert counts.tolist() == [[1, 0], [5, 2]]
    assert labels.tolist() == [[-1, -1], [4, 2]]  # the tie goes to the smaller code
    rgba = density_image(coords, (0, 2), (0, 2), 2, 2, label_codes=codes, palette=palette)
    assert rgba[0, 1, 3] == 0  # empty
    assert rgba[1, 0, 3] == 255
    # The brightest pixel is the label colour itself; hue is the majority's.
    np.testing.assert_allclose(rgba[1, 0, :3], palette[4], atol=1)
    dim = rgba[1, 1, :3].astype(float)
    np.testing.assert_allclose(dim / dim.max(), palette[2] / palette[2].max(), atol=0.02)
    np.testing.assert_allclose(rgba[0, 0, :3] / rgba[0, 0, :3].max(), np.array(UNLABELLED) / max(UNLABELLED),
                               atol=0.02)
    # Brightness is log-scaled: 2 points of 5 give floor + (1 - floor) * log(3) / log(6).
    d = density(coords, (0, 2), (0, 2), 2, 2, label_codes=codes)
    assert d.total == 8
    expected = 0.45 + 0.55 * np.log1p(2) / np.log1p(5)
    assert abs(rgba[1, 1, :3].max() / palette[2].max() - expected) < 0.02
    # The index's own labels give the same, and a dense round trip the same picture.
    index = PointIndex(coords, codes)
    np.testing.assert_array_equal(density_counts(index, (0, 2), (0, 2), 2, 2)[1], labels)
    np.testing.assert_array_equal(colorize_density(counts, labels, palette), rgba)


def test_majority_labels_agree_with_counting_per_pixel():
    coords, labels = clusters(20_000, k=7, seed=3)
    index = PointIndex(coords, labels)
    lo, hi = coords.min(0), coords.max(0)
    x0, x1, y0, y1 = float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])
    w, h = 23, 17
    counts, got = density_counts(index, (x0, x1), (y0, y1), w, h)
    p = coords.astype(np.float64)
    col = np.minimum(np.floor((p[:, 0] - x0) * (w / (x1 - x0))).astype(int), w - 1)
    row = h - 1 - np.minimum(np.floor((p[:, 1] - y0) * (h / (y1 - y0))).astype(int), h - 1)
    per_label = np.zeros((h, w, 7), int)
    np.add.at(per_label, (row, col, labels), 1)
    np.testing.assert_array_equal(per_label.sum(2), counts)
    expected = np.where(counts > 0, per_label.argmax(2), -1)  # argmax: the first (smallest) of ties
    np.testing.assert_array_equal(got, expected)
    assert (per_label.max(2) < counts).any(), "no mixed pixels: the test would prove nothing"


def test_a_million_points_build_and_answer():
    coords, labels = clusters(1_000_000, seed=4)
    index = PointIndex(coords, labels)
    lo, hi = coords.min(0).astype(float), coords.max(0).astype(float)
    assert index.count_inside(lo[0], hi[0], lo[1], hi[1]) == 1_000_000
    d = density(index, (lo[0] - 1, hi[0] + 1), (lo[1] - 1, hi[1] + 1), 1200, 800)
    assert isinstance(d, Density) and d.total == 1_000_000
    assert d.labels is not None and d.labels.min() >= 0 and d.labels.max() < 50
    cx, cy = coords[123].astype(float)
    small = (cx - 0.2, cx + 0.2, cy - 0.2, cy + 0.2)
    np.testing.assert_array_equal(np.sort(index.inside(*small)), brute(coords, *small))
    half = (lo[0], (lo[0] + hi[0]) / 2, lo[1], hi[1])
    assert index.count_inside(*half) == len(brute(coords, *half))
