"""Procedural part-labelled shapes: parts, normalization, uniform surface sampling, voxels, mIoU."""

import math

import numpy as np
import pytest

from deepvis.shapes3d import parts as parts3d
from deepvis.errors import DeepvisError


def test_part_ids_are_global_and_owned_by_one_category():
    ids = [i for part_ids in parts3d.CATEGORIES.values() for i in part_ids]
    assert sorted(ids) == list(range(len(parts3d.PART_NAMES)))
    for category, part_ids in parts3d.CATEGORIES.items():
        assert all(parts3d.PART_NAMES[i].startswith(category + "/") for i in part_ids)
    assert {"airplane", "chair", "table", "lamp"} <= set(parts3d.CATEGORIES)
    assert parts3d.CATEGORY_NAMES == list(parts3d.CATEGORIES)


@pytest.mark.parametrize("category", parts3d.CATEGORY_NAMES)
def test_shapes_have_all_their_parts_and_only_theirs(category):
    rng = np.random.default_rng(7)
    for _ in range(5):
        points, labels = parts3d.make_shape(category, rng, points=2048)
        assert points.shape == (2048, 3) and points.dtype == np.float32
        assert labels.shape == (2048,) and labels.dtype == np.int64
        assert set(labels.tolist()) == set(parts3d.CATEGORIES[category])
        norms = np.linalg.norm(points, axis=1)
        assert norms.max() == pytest.approx(1.0, abs=1e-5)
        assert np.abs(points.mean(axis=0)).max() < 1e-5  # centred on the centroid


def test_dataset_is_reproducible_and_ordered_by_category():
    X, y, cat = parts3d.make_dataset(2, points=256, seed=3)
    assert X.shape == (12, 256, 3) and y.shape == (12, 256) and cat.shape == (12,)
    assert cat.tolist() == [c for c in range(len(parts3d.CATEGORY_NAMES)) for _ in range(2)]
    X2, y2, _ = parts3d.make_dataset(2, points=256, seed=3)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    # A subset of categories, or a continuation with ``first``, reproduces the same shapes.
    Xm, _, catm = parts3d.make_dataset(2, points=256, seed=3, categories=["mug"])
    np.testing.assert_array_equal(Xm, X[cat == parts3d.CATEGORY_NAMES.index("mug")])
    assert set(catm.tolist()) == {parts3d.CATEGORY_NAMES.index("mug")}
    X1, _, _ = parts3d.make_dataset(1, points=256, seed=3, categories=["mug"], first=1)
    np.testing.assert_array_equal(X1[0], Xm[1])
    X3, _, _ = parts3d.make_dataset(2, points=256, seed=4)
    assert not np.allclose(X, X3)


def test_rotation_is_about_the_up_axis_only():
    # The same shape with and without the random turn: heights (y) match as multisets.
    a, _ = parts3d.make_shape("chair", np.random.default_rng(1), 1024, rotate=False, noise=0)
    b, _ = parts3d.make_shape("chair", np.random.default_rng(1), 1024, rotate=True, noise=0)
    # The rotation draws its angle after sampling, so the points are the same ones turned.
    np.testing.assert_allclose(np.sort(a[:, 1]), np.sort(b[:, 1]), atol=1e-5)
    assert not np.allclose(a, b, atol=1e-2)
    np.testing.assert_allclose(np.hypot(a[:, 0], a[:, 2]), np.hypot(b[:, 0], b[:, 2]), atol=1e-5)


def test_unknown_category_is_a_clear_error():
    with pytest.raises(DeepvisError, match="unknown shape category 'boat'"):
        parts3d.make_shape("boat", np.random.default_rng(0))


def test_box_faces_get_points_in_proportion_to_area():
    half = np.array([0.2, 0.5, 1.0])
    box = parts3d.Box(0, half)
    n = 60000
    points, labels = parts3d.sample_surface([box], n, np.random.default_rng(0))
    assert (labels == 0).all()
    on_face = np.isclose(np.abs(points), half, atol=1e-9)
    assert (on_face.sum(axis=1) >= 1).all()  # every point lies on the surface
    axis = on_face.argmax(axis=1)
    areas = np.array([half[1] * half[2], half[0] * half[2], half[0] * half[1]])
    expected = areas / areas.sum()
    observed = np.bincount(axis, minlength=3) / n
    # Binomial standard errors are about 0.002 here; 0.01 leaves room but catches a bias.
    np.testing.assert_allclose(observed, expected, atol=0.01)
    # Within a face, uniform too: each half of the largest face gets half of its points.
    big = points[axis == 0]
    assert abs((big[:, 2] > 0).mean() - 0.5) < 0.02
    assert abs((big[:, 1] > 0).mean() - 0.5) < 0.02


def test_curved_surfaces_are_sampled_uniformly():
    rng = np.random.default_rng(1)
    # A cone's side: the share of points below half height is the share of the area there.
    r, h = 1.0, 2.0
    cone = parts3d.Frustum(0, r, 0.0, h, bottom=False, top=False)
    pts, _ = parts3d.sample_surface([cone], 40000, rng)
    assert abs((pts[:, 1] < 0).mean() - 0.75) < 0.01  # lower half holds 1 - (1/2)^2 of the area
    # A spheroid (a, a, c) against its area per unit of z, 2 pi sqrt(a^2 (1 - z^2/c^2) + a^4 z^2/c^4),
    # integrated numerically: points spread by angle instead would crowd the poles.
    a, c = 0.3, 1.0
    sph = parts3d.Ellipsoid(0, (a, a, c))
    pts, _ = parts3d.sample_surface([sph], 40000, rng)
    z = np.linspace(-c, c, 200001)
    density = 2 * np.pi * np.sqrt(a**2 * (1 - z**2 / c**2) + a**4 * z**2 / c**4)
    dz = z[1] - z[0]
    assert sph.area == pytest.approx(density.sum() * dz, rel=2e-3)
    for lo, hi in [(-0.25, 0.25), (0.5, 0.75), (0.9, 1.0)]:
        band = (z >= lo) & (z < hi)
        expected = density[band].sum() / density.sum()
        assert abs(((pts[:, 2] >= lo) & (pts[:, 2] < hi)).mean() - expected) < 0.01
    # Area estimate against the closed form for a sphere.
    assert parts3d.Ellipsoid(0, (0.7, 0.7, 0.7)).area == pytest.approx(4 * math.pi * 0.49, rel=1e-3)


def test_surface_inside_another_solid_is_hidden():
    a = parts3d.Box(0, (1.0, 1.0, 1.0))
    b = parts3d.Box(1, (1.0, 1.0, 1.0), offset=(1.0, 0.0, 0.0))
    pts, labels = parts3d.sample_surface([a, b], 20000, np.random.default_rng(2))
    assert not (a.inside(pts[labels == 1]).any() or b.inside(pts[labels == 0]).any())
    # The union is a 3 x 2 x 2 box: area 32, of which each label owns half.
    assert abs((labels == 0).mean() - 0.5) < 0.02
    # A part entirely inside another has no visible surface and gets no points.
    inner = parts3d.Box(2, (0.5, 0.5, 0.5))
    _, labels = parts3d.sample_surface([a, inner], 2000, np.random.default_rng(3))
    assert set(labels.tolist()) == {0}
    with pytest.raises(DeepvisError, match="no surface"):
        parts3d.sample_surface([parts3d.Box(0, (0.0, 0.0, 0.0))], 100, np.random.default_rng(3))
    # An open shell hides nothing.
    shell = parts3d.Frustum(2, 0.5, 0.5, 1.0, bottom=False, top=False, solid=False)
    assert not shell.inside(np.zeros((1, 3))).any()


def test_normalize_unit_sphere():
    pts = np.array([[0, 0, 0], [2, 0, 0], [0, 4, 0], [0, 0, 6]], dtype=np.float64) + 10
    out = parts3d.normalize_unit_sphere(pts)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-6)
    assert np.linalg.norm(out, axis=1).max() == pytest.approx(1.0)
    with pytest.raises(DeepvisError, match="coincide"):
        parts3d.normalize_unit_sphere(np.ones((5, 3)))
    with pytest.raises(DeepvisError, match=r"\(N, 3\)"):
        parts3d.normalize_unit_sphere(np.ones((5, 2)))


def test_voxelize_a_hand_made_cloud():
    points = np.array([
        [-1.0, -1.0, -1.0],  # first cell of every axis
        [1.0, 1.0, 1.0],  # the far corner falls in the last cell, not outside
        [0.01, -0.99, 0.99],  # x just above 0 -> cell 2 of 4
        [0.02, -0.98, 0.98],  # same voxel, another label
        [0.03, -0.97, 0.97],  # same voxel, the first label again
        [-0.49, 0.49, -0.51],  # x in [-0.5, 0) -> 1, y in [0, 0.5) -> 2, z < -0.5 -> 0
    ])
    labels = np.array([3, 1, 5, 2, 5, 0])
    occ = parts3d.voxelize(points, resolution=4)
    assert occ.shape == (4, 4, 4) and occ.dtype == bool
    expected = {(0, 0, 0): 3, (3, 3, 3): 1, (2, 0, 3): 5, (1, 2, 0): 0}
    assert {tuple(map(int, i)) for i in np.argwhere(occ)} == set(expected)
    assert parts3d.voxel_indices(points, 4).tolist() == [[0, 0, 0], [3, 3, 3], [2, 0, 3], [2, 0, 3], [2, 0, 3], [1, 2, 0]]
    grid = parts3d.voxelize_labels(points, labels, resolution=4)
    assert grid.dtype == np.int64
    for ijk, label in expected.items():
        assert grid[ijk] == label
    assert (grid[~occ] == parts3d.BACKGROUND).all()
    # A tie goes to the smaller id.
    tie = parts3d.voxelize_labels(points[2:4], labels[2:4], resolution=4)
    assert tie[2, 0, 3] == 2
    with pytest.raises(DeepvisError, match="normalize"):
        parts3d.voxelize(points * 2)


def test_miou_hand_made_cases():
    chair = parts3d.CATEGORY_NAMES.index("chair")
    seat, back, leg = parts3d.CATEGORIES["chair"]
    true = np.array([seat, seat, back, back])
    assert parts3d.shape_miou(true, true, parts3d.CATEGORIES["chair"]) == 1.0
    # Seat IoU 1/2 (one of two), back 1/2 (one right, one extra), leg absent in both -> 1.
    pred = np.array([seat, back, back, back])
    assert parts3d.shape_miou(pred, true, [seat, back, leg]) == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    # A part of another category is just wrong; background (-1) truth is ignored.
    pred_other = np.array([seat, seat, back, 0])
    assert parts3d.shape_miou(pred_other, true, [seat, back, leg]) == pytest.approx((1 + 1 / 2 + 1) / 3)
    with_bg = np.array([seat, seat, back, back, parts3d.BACKGROUND])
    assert parts3d.shape_miou(np.array([seat, seat, back, back, leg]), with_bg, [seat, back, leg]) == 1.0

    mug = parts3d.CATEGORY_NAMES.index("mug")
    body, handle = parts3d.CATEGORIES["mug"]
    result = parts3d.miou([true, pred, np.array([body, body, body, body])],
                          [true, true, np.array([body, body, handle, handle])], [chair, chair, mug])
    chair_mean = (1 + (1 / 2 + 2 / 3 + 1) / 3) / 2
    mug_score = (1 / 2 + 0) / 2
    assert result.per_category == pytest.approx({"chair": chair_mean, "mug": mug_score})
    assert result.instance == pytest.approx((1 + (1 / 2 + 2 / 3 + 1) / 3 + mug_score) / 3)
    assert result.category_mean == pytest.approx((chair_mean + mug_score) / 2)


def test_labels_from_logits_restricts_to_one_category():
    chair = parts3d.CATEGORY_NAMES.index("chair")
    n_parts = len(parts3d.PART_NAMES)
    logits = np.zeros((1, n_parts, 3))
    seat, back, leg = parts3d.CATEGORIES["chair"]
    logits[0, seat, 0] = 5
    logits[0, back, 1] = 5
    logits[0, 0, 2] = 9  # an airplane part wins this point outright...
    logits[0, leg, 2] = 4  # ...but the chair's best part there is the leg
    assert parts3d.labels_from_logits(logits, [chair]).tolist() == [[seat, back, leg]]
    # Voting: the chair parts hold most of the mass, so the chair wins.
    assert parts3d.labels_from_logits(logits).tolist() == [[seat, back, leg]]
    valid = np.array([[True, False, True]])
    assert parts3d.labels_from_logits(logits, [chair], valid=valid).tolist() == [[seat, parts3d.BACKGROUND, leg]]
