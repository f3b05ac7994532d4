"""3-D file readers (deepvis.shapes3d.readers): meshes, point clouds and voxel grids written in the test
with known content, every broken-file case, and the bundled samples in resources/shapes.

Meshes are a unit cube, so every sampled point must lie on a face and carry that face's normal;
voxel grids are asymmetric, so a swapped axis would show.
"""

import numpy as np
import pytest
import trimesh

from deepvis.errors import DeepvisError
from deepvis.shapes3d.readers import SUPPORTED_3D_SUFFIXES, Cloud, Voxels, read_3d, read_cloud, read_voxels
from deepvis.resources import RESOURCES_DIR

SHAPES_DIR = RESOURCES_DIR / "shapes"
MESH_TYPES = ["ply", "off", "obj", "stl"]


def _error(fn, *needles) -> str:
    """Run ``fn``; it must raise DeepvisError with a one-line message containing every needle."""
    with pytest.raises(DeepvisError) as info:
        fn()
    message = str(info.value)
    assert message and "\n" not in message and "Traceback" not in message
    for needle in needles:
        assert str(needle).lower() in message.lower(), f"{needle!r} not in {message!r}"
    return message


def _write(path, data):
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def _cube_file(tmp_path, ext, shift=(0.0, 0.0, 0.0)):
    cube = trimesh.creation.box(extents=(1, 1, 1))  # faces at +-0.5
    cube.apply_translation(shift)
    return _write(tmp_path / f"cube.{ext}", cube.export(file_type=ext))


def _ply_header(count, props, faces=None):
    lines = ["ply", "format ascii 1.0", f"element vertex {count}"]
    lines += [f"property {kind} {name}" for kind, name in props]
    if faces is not None:
        lines += [f"element face {faces}", "property list uchar int vertex_indices"]
    return "\n".join(lines + ["end_header", ""])


def _asymmetric_grid(resolution=8):
    grid = np.zeros((resolution,) * 3, dtype=bool)
    grid[0, 0, 0] = True
    grid[1:3, 0, 0] = True        # a run along x
    grid[0, 1:5, 0] = True        # a longer run along y
    grid[0, 0, 1:6] = True        # and z
    grid[resolution - 1, resolution - 2, 3] = True
    return grid


# ----------------------------------------------------------------------------- meshes


@pytest.mark.parametrize("ext", MESH_TYPES)
def test_mesh_samples_lie_on_the_cube_with_face_normals(tmp_path, ext):
    cloud = read_cloud(_cube_file(tmp_path, ext), points=500, seed=3, normalize=False)
    assert cloud.kind == "mesh" and cloud.labels is None and cloud.source.endswith(f"cube.{ext}")
    assert cloud.points.shape == (500, 3) and cloud.points.dtype == np.float32
    assert cloud.normals.shape == (500, 3) and cloud.normals.dtype == np.float32
    # On a face of the unit cube the largest coordinate is exactly 0.5 in magnitude ...
    np.testing.assert_allclose(np.abs(cloud.points).max(axis=1), 0.5, atol=1e-6)
    # ... and that face's outward normal is the axis of that coordinate, with its sign.
    np.testing.assert_allclose(np.linalg.norm(cloud.normals, axis=1), 1, atol=1e-6)
    axis = np.abs(cloud.points).argmax(axis=1)
    expected = np.zeros_like(cloud.normals)
    expected[np.arange(500), axis] = np.sign(cloud.points[np.arange(500), axis])
    np.testing.assert_allclose(cloud.normals, expected, atol=1e-6)


def test_mesh_sampling_is_area_weighted_and_seeded(tmp_path):
    path = _cube_file(tmp_path, "obj")
    cloud = read_cloud(path, points=6000, seed=0, normalize=False)
    # Six equal faces: each gets about a sixth of the points.
    axis_sign = np.abs(cloud.normals).argmax(axis=1) * 2 + (cloud.normals.sum(axis=1) > 0)
    counts = np.bincount(axis_sign, minlength=6)
    assert counts.min() > 800 and counts.max() < 1200, counts
    again = read_cloud(path, points=6000, seed=0, normalize=False)
    other = read_cloud(path, points=6000, seed=1, normalize=False)
    np.testing.assert_array_equal(cloud.points, again.points)
    assert not np.allclose(cloud.points, other.points)


def test_mesh_is_normalized_to_the_unit_sphere(tmp_path):
    cloud = read_cloud(_cube_file(tmp_path, "stl", shift=(10, -4, 3)), points=1000)
    assert np.linalg.norm(cloud.points, axis=1).max() == pytest.approx(1.0, abs=1e-5)
    assert np.abs(cloud.points.mean(axis=0)).max() < 0.1  # moved from (10, -4, 3) to the origin
    # Scaling and moving do not turn normals.
    np.testing.assert_allclose(np.abs(cloud.normals).max(axis=1), 1, atol=1e-6)


def test_multi_part_obj_is_sampled_over_all_parts(tmp_path):
    a = trimesh.creation.box(extents=(1, 1, 1))
    b = trimesh.creation.box(extents=(1, 1, 1))
    b.apply_translation((5, 0, 0))
    path = _write(tmp_path / "two.obj", trimesh.Scene([a, b]).export(file_type="obj"))
    cloud = read_cloud(path, points=2000, normalize=False)
    near_b = (cloud.points[:, 0] > 2).mean()
    assert 0.4 < near_b < 0.6


# ----------------------------------------------------------------------------- point clouds


def test_ply_vertices_only_is_a_cloud_with_normals_and_labels(tmp_path):
    header = _ply_header(4, [("float", "x"), ("float", "y"), ("float", "z"), ("float", "nx"),
                             ("float", "ny"), ("float", "nz"), ("int", "label")])
    rows = "0 0 0 0 0 1 2\n1 0 0 0 0 1 3\n0 2 0 0 1 0 3\n0 0 3 1 0 0 5\n"
    cloud = read_cloud(_write(tmp_path / "c.ply", header + rows), normalize=False)
    assert cloud.kind == "cloud"
    np.testing.assert_array_equal(cloud.points, [[0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 3]])
    np.testing.assert_array_equal(cloud.normals, [[0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0]])
    assert cloud.labels.dtype == np.int64 and cloud.labels.tolist() == [2, 3, 3, 5]


def test_binary_ply_cloud_keeps_all_points(tmp_path):
    xyz = np.random.default_rng(0).normal(size=(5000, 3))
    path = _write(tmp_path / "scan.ply", trimesh.PointCloud(xyz).export(file_type="ply"))
    cloud = read_cloud(path, points=100, normalize=False)
    assert cloud.kind == "cloud" and len(cloud) == 5000 and cloud.normals is None
    np.testing.assert_allclose(cloud.points, xyz, atol=1e-6)


@pytest.mark.parametrize("columns", [3, 4, 6, 7])
def test_text_columns(tmp_path, columns):
    rng = np.random.default_rng(columns)
    xyz = rng.normal(size=(50, 3))
    normals = rng.normal(size=(50, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    labels = rng.integers(0, 4, size=50)
    table = {3: xyz, 4: np.column_stack([xyz, labels]), 6: np.hstack([xyz, normals]),
             7: np.column_stack([xyz, normals, labels])}[columns]
    path = tmp_path / "c.xyz"
    np.savetxt(path, table, fmt="%.7f")
    cloud = read_cloud(path, normalize=False)
    np.testing.assert_allclose(cloud.points, xyz, atol=1e-6)
    if columns >= 6:
        np.testing.assert_allclose(cloud.normals, normals, atol=1e-5)
    else:
        assert cloud.normals is None
    if columns in (4, 7):
        assert cloud.labels.tolist() == labels.tolist()
    else:
        assert cloud.labels is None


def test_csv_with_header_comments_and_colours(tmp_path):
    text = ("x,y,z,r,g,b\n"
            "# a comment\n"
            "0,0,0,255,0,0\n"
            "1, 0, 0, 0,255,0\n"
            "\n"
            "0,1,0,0,0,255\n")
    cloud = read_cloud(_write(tmp_path / "scan.csv", text), normalize=False)
    np.testing.assert_array_equal(cloud.points, [[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    assert cloud.normals is None  # colours are not unit vectors, so they are not taken as normals


def test_point_count_line_is_skipped(tmp_path):
    cloud = read_cloud(_write(tmp_path / "c.txt", "3\n0 0 0\n1 0 0\n0 0 1\n"), normalize=False)
    assert len(cloud) == 3


def test_text_cloud_is_normalized(tmp_path):
    cloud = read_cloud(_write(tmp_path / "c.xyz", "10 10 10\n12 10 10\n10 14 10\n"))
    assert np.linalg.norm(cloud.points, axis=1).max() == pytest.approx(1.0, abs=1e-6)


def test_pts_with_sibling_seg(tmp_path):
    xyz = np.random.default_rng(0).uniform(-1, 1, size=(40, 3))
    labels = np.arange(40) % 3 + 1  # ShapeNet part labels are 1-based
    np.savetxt(tmp_path / "shape.pts", xyz, fmt="%.6f")
    np.savetxt(tmp_path / "shape.seg", labels, fmt="%d")
    cloud = read_cloud(tmp_path / "shape.pts", normalize=False)
    assert cloud.labels.tolist() == labels.tolist()  # kept as stored
    np.testing.assert_allclose(cloud.points, xyz, atol=1e-6)


def test_pts_in_shapenet_benchmark_layout(tmp_path):
    (tmp_path / "points").mkdir()
    (tmp_path / "points_label").mkdir()
    _write(tmp_path / "points" / "abc.pts", "0 0 0\n1 0 0\n0 1 0\n")
    _write(tmp_path / "points_label" / "abc.seg", "1\n2\n2\n")
    assert read_cloud(tmp_path / "points" / "abc.pts").labels.tolist() == [1, 2, 2]
    _write(tmp_path / "lonely.pts", "0 0 0\n1 0 0\n0 1 0\n")
    assert read_cloud(tmp_path / "lonely.pts").labels is None


def test_npy_clouds(tmp_path):
    xyz = np.random.default_rng(1).normal(size=(30, 3)).astype(np.float32)
    normals = np.tile([[0, 0, 1.0]], (30, 1))
    np.save(tmp_path / "a.npy", xyz)
    np.save(tmp_path / "b.npy", np.hstack([xyz, normals]))
    a = read_cloud(tmp_path / "a.npy", normalize=False)
    b = read_cloud(tmp_path / "b.npy", normalize=False)
    np.testing.assert_array_equal(a.points, xyz)
    assert a.normals is None
    np.testing.assert_array_equal(b.normals, normals)


@pytest.mark.parametrize("points_key, labels_key", [("points", "labels"), ("xyz", "seg"), ("pos", "label")])
def test_npz_keys(tmp_path, points_key, labels_key):
    xyz = np.random.default_rng(2).normal(size=(20, 3))
    normals = np.tile([[1.0, 0, 0]], (20, 1))
    labels = np.arange(20) % 5
    np.savez(tmp_path / "c.npz", **{points_key: xyz, "normals": normals, labels_key: labels})
    cloud = read_cloud(tmp_path / "c.npz", normalize=False)
    np.testing.assert_allclose(cloud.points, xyz, atol=1e-6)
    np.testing.assert_array_equal(cloud.normals, normals)
    assert cloud.labels.tolist() == labels.tolist()


def test_zero_normals_stay_zero(tmp_path):
    cloud = read_cloud(_write(tmp_path / "c.xyz", "0 0 0 0 0 1\n1 0 0 0 0 0\n0 1 0 0 1 0\n"), normalize=False)
    np.testing.assert_array_equal(cloud.normals, [[0, 0, 1], [0, 0, 0], [0, 1, 0]])


# ----------------------------------------------------------------------------- broken clouds


def test_missing_file(tmp_path):
    _error(lambda: read_cloud(tmp_path / "nope.ply"), "nope.ply", "does not exist")


def test_unsupported_suffix_lists_the_supported_ones(tmp_path):
    path = _write(tmp_path / "shape.fbx", "x")
    message = _error(lambda: read_3d(path), "shape.fbx", "unsupported")
    for suffix in (".ply", ".obj", ".stl", ".off", ".xyz", ".pts", ".npy", ".npz", ".binvox"):
        assert suffix in message
    _error(lambda: read_cloud(path), "shape.fbx", ".obj")
    _error(lambda: read_voxels(_write(tmp_path / "v.obj", "v 0 0 0")), "v.obj", ".binvox")


@pytest.mark.parametrize("ext", ["ply", "obj", "stl", "xyz", "npy", "npz", "binvox"])
def test_empty_file(tmp_path, ext):
    path = _write(tmp_path / f"empty.{ext}", b"")
    _error(lambda: read_3d(path), f"empty.{ext}", "empty")


@pytest.mark.parametrize("name, content", [
    ("zero.ply", _ply_header(0, [("float", "x"), ("float", "y"), ("float", "z")])),
    ("header_only.xyz", "x y z\n"),
    ("comments.txt", "# nothing here\n\n"),
])
def test_zero_points(tmp_path, name, content):
    _error(lambda: read_cloud(_write(tmp_path / name, content)), name)


def test_zero_points_npy(tmp_path):
    np.save(tmp_path / "none.npy", np.zeros((0, 3)))
    _error(lambda: read_cloud(tmp_path / "none.npy"), "none.npy", "no points")


@pytest.mark.parametrize("ext", ["obj", "off"])
def test_mesh_without_faces(tmp_path, ext):
    text = {"obj": "v 0 0 0\nv 1 0 0\nv 0 1 0\n", "off": "OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n"}[ext]
    _error(lambda: read_cloud(_write(tmp_path / f"nofaces.{ext}", text)), f"nofaces.{ext}")


def test_mesh_with_zero_area(tmp_path):
    path = _write(tmp_path / "flat.obj", "v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n")
    _error(lambda: read_cloud(path), "flat.obj", "zero area")


@pytest.mark.parametrize("name, content", [
    ("nan.obj", "v 0 0 0\nv nan 0 0\nv 0 1 0\nf 1 2 3\n"),
    ("inf.off", "OFF\n3 1 0\n0 0 0\n1 0 inf\n0 1 0\n3 0 1 2\n"),
    ("nan.xyz", "0 0 0\n1 nan 0\n0 1 0\n"),
])
def test_non_finite_coordinates(tmp_path, name, content):
    _error(lambda: read_cloud(_write(tmp_path / name, content)), name, "nan or infinite")


def test_non_finite_npy(tmp_path):
    np.save(tmp_path / "inf.npy", np.array([[0, 0, 0], [np.inf, 0, 0.0]]))
    _error(lambda: read_cloud(tmp_path / "inf.npy"), "inf.npy", "infinite")


def test_wrong_column_counts(tmp_path):
    _error(lambda: read_cloud(_write(tmp_path / "two.xyz", "0 0\n1 1\n")), "two.xyz", "columns")
    _error(lambda: read_cloud(_write(tmp_path / "ragged.xyz", "0 0 0\n1 1 1\n2 2\n")), "ragged.xyz", "line 3")
    _error(lambda: read_cloud(_write(tmp_path / "word.xyz", "0 0 0\n1 one 1\n")), "word.xyz", "line 2")
    np.save(tmp_path / "five.npy", np.zeros((4, 5)))
    _error(lambda: read_cloud(tmp_path / "five.npy"), "five.npy", "(4, 5)")


def test_fractional_label_column(tmp_path):
    _error(lambda: read_cloud(_write(tmp_path / "c.xyz", "0 0 0 0.5\n1 0 0 1\n")), "c.xyz", "label")


def test_all_points_coincide(tmp_path):
    _error(lambda: read_cloud(_write(tmp_path / "dot.xyz", "1 1 1\n1 1 1\n")), "dot.xyz", "coincide")


def test_binary_text_file(tmp_path):
    _error(lambda: read_cloud(_write(tmp_path / "bin.xyz", b"\xff\xfe\x00\x81" * 10)), "bin.xyz")


def test_seg_length_mismatch(tmp_path):
    _write(tmp_path / "s.pts", "0 0 0\n1 0 0\n0 1 0\n")
    _write(tmp_path / "s.seg", "1\n2\n")
    _error(lambda: read_cloud(tmp_path / "s.pts"), "s.seg", "2 labels", "3 points")
    _write(tmp_path / "s.seg", "1\n2\nthree\n")
    _error(lambda: read_cloud(tmp_path / "s.pts"), "s.seg")


def test_npz_labels_length_mismatch_and_missing_points(tmp_path):
    np.savez(tmp_path / "m.npz", points=np.zeros((5, 3)) + np.arange(5)[:, None], labels=np.arange(4))
    _error(lambda: read_cloud(tmp_path / "m.npz"), "m.npz", "4 labels", "5 points")
    np.savez(tmp_path / "k.npz", foo=np.zeros((5, 3)), bar=np.zeros(5))
    _error(lambda: read_cloud(tmp_path / "k.npz"), "k.npz", "points")


@pytest.mark.parametrize("ext", ["ply", "stl"])
def test_truncated_binary_mesh(tmp_path, ext):
    data = trimesh.creation.box().export(file_type=ext)
    path = _write(tmp_path / f"cut.{ext}", data[: len(data) // 2])
    _error(lambda: read_cloud(path), f"cut.{ext}", "truncated")


def test_truncated_binary_ply_cloud(tmp_path):
    data = trimesh.PointCloud(np.random.default_rng(0).normal(size=(100, 3))).export(file_type="ply")
    _error(lambda: read_cloud(_write(tmp_path / "cut.ply", data[:-40])), "cut.ply")


def test_garbage_mesh_files(tmp_path):
    _error(lambda: read_cloud(_write(tmp_path / "junk.obj", "hello\nworld\n")), "junk.obj")
    _error(lambda: read_cloud(_write(tmp_path / "junk.ply", "not a ply at all\n")), "junk.ply")
    _error(lambda: read_cloud(_write(tmp_path / "bad.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 7\n")), "bad.obj")


def test_truncated_and_corrupt_numpy(tmp_path):
    np.save(tmp_path / "full.npy", np.random.default_rng(0).normal(size=(100, 3)))
    data = (tmp_path / "full.npy").read_bytes()
    _error(lambda: read_cloud(_write(tmp_path / "cut.npy", data[:-100])), "cut.npy", "truncated")
    _error(lambda: read_cloud(_write(tmp_path / "junk.npy", b"not numpy")), "junk.npy", "not a .npy file")
    _error(lambda: read_cloud(_write(tmp_path / "junk.npz", b"not numpy")), "junk.npz", "not a .npz file")
    np.savez(tmp_path / "full.npz", points=np.zeros((100, 3)))
    data = (tmp_path / "full.npz").read_bytes()
    _error(lambda: read_cloud(_write(tmp_path / "cut.npz", data[: len(data) // 2])), "cut.npz")
    np.savez_compressed(tmp_path / "packed.npz", points=np.random.default_rng(0).normal(size=(500, 3)))
    data = bytearray((tmp_path / "packed.npz").read_bytes())
    data[200:260] = bytes(60)  # damage the deflate stream, keep the zip directory
    _error(lambda: read_cloud(_write(tmp_path / "damaged.npz", bytes(data))), "damaged.npz")


def test_pickled_arrays_are_never_loaded(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"points": 1}, None], dtype=object), allow_pickle=True)
    _error(lambda: read_cloud(tmp_path / "obj.npy"), "obj.npy", "python objects")
    np.savez(tmp_path / "obj.npz", points=np.array([None, 1], dtype=object))
    _error(lambda: read_cloud(tmp_path / "obj.npz"), "obj.npz", "python objects")


def test_bad_point_count(tmp_path):
    path = _cube_file(tmp_path, "obj")
    _error(lambda: read_cloud(path, points=0), "cube.obj", "positive")


# ----------------------------------------------------------------------------- voxels


def _binvox_by_hand(grid: np.ndarray) -> bytes:
    """Per the binvox spec: y runs fastest, then z, then x; data is (value, count<=255) byte pairs."""
    r = grid.shape[0]
    flat = grid.transpose(0, 2, 1).ravel().astype(np.uint8)
    pairs = []
    i = 0
    while i < len(flat):
        j = i
        while j < len(flat) and flat[j] == flat[i] and j - i < 255:
            j += 1
        pairs += [flat[i], j - i]
        i = j
    header = f"#binvox 1\ndim {r} {r} {r}\ntranslate 0 0 0\nscale 1\ndata\n".encode()
    return header + bytes(pairs)


def test_binvox_written_by_hand_follows_the_spec_axes(tmp_path):
    grid = _asymmetric_grid()
    voxels = read_voxels(_write(tmp_path / "g.binvox", _binvox_by_hand(grid)))
    assert voxels.occupancy.dtype == bool and voxels.labels is None and voxels.resolution == 8
    np.testing.assert_array_equal(voxels.occupancy, grid)


def test_binvox_round_trip_through_trimesh_exporter(tmp_path):
    grid = np.random.default_rng(0).random((16, 16, 16)) < 0.3
    data = trimesh.exchange.binvox.export_binvox(trimesh.voxel.VoxelGrid(grid))
    voxels = read_3d(_write(tmp_path / "r.binvox", data))
    assert isinstance(voxels, Voxels)
    np.testing.assert_array_equal(voxels.occupancy, grid)


def test_broken_binvox(tmp_path):
    good = _binvox_by_hand(_asymmetric_grid())
    _error(lambda: read_voxels(_write(tmp_path / "cut.binvox", good[:-3])), "cut.binvox", "truncated")
    _error(lambda: read_voxels(_write(tmp_path / "txt.binvox", "hello\n")), "txt.binvox", "binvox")
    flat = good.replace(b"dim 8 8 8", b"dim 8 4 16")
    _error(lambda: read_voxels(_write(tmp_path / "flat.binvox", flat)), "flat.binvox", "cube")


def test_npy_occupancy_and_labels(tmp_path):
    grid = _asymmetric_grid()
    np.save(tmp_path / "occ.npy", grid)
    np.save(tmp_path / "occ_uint8.npy", grid.astype(np.uint8))
    np.save(tmp_path / "occ_batch.npy", grid[None].astype(np.float32))
    for name in ("occ.npy", "occ_uint8.npy", "occ_batch.npy"):
        voxels = read_voxels(tmp_path / name)
        np.testing.assert_array_equal(voxels.occupancy, grid)
        assert voxels.labels is None
    labels = np.full(grid.shape, -1, dtype=np.int64)
    labels[grid] = np.arange(grid.sum()) % 4  # part 0 is a real part
    np.save(tmp_path / "labels.npy", labels.astype(np.int32))
    voxels = read_3d(tmp_path / "labels.npy")
    np.testing.assert_array_equal(voxels.occupancy, grid)
    assert voxels.labels.dtype == np.int64
    np.testing.assert_array_equal(voxels.labels, labels)


def test_npz_voxels(tmp_path):
    grid = _asymmetric_grid()
    labels = np.where(grid, 2, -1)
    np.savez(tmp_path / "v.npz", occupancy=grid, labels=labels)
    voxels = read_voxels(tmp_path / "v.npz")
    np.testing.assert_array_equal(voxels.occupancy, grid)
    np.testing.assert_array_equal(voxels.labels, labels)
    np.savez(tmp_path / "only_labels.npz", labels=labels)
    np.testing.assert_array_equal(read_voxels(tmp_path / "only_labels.npz").occupancy, grid)


def test_broken_voxel_arrays(tmp_path):
    np.save(tmp_path / "box.npy", np.zeros((8, 8, 4), dtype=bool))
    _error(lambda: read_voxels(tmp_path / "box.npy"), "box.npy", "(8, 8, 4)", "cube")
    np.save(tmp_path / "prob.npy", np.full((4, 4, 4), 0.3, dtype=np.float32))
    _error(lambda: read_voxels(tmp_path / "prob.npy"), "prob.npy", "fractional")
    np.save(tmp_path / "neg.npy", np.full((4, 4, 4), -3))
    _error(lambda: read_voxels(tmp_path / "neg.npy"), "neg.npy", "-1")
    np.save(tmp_path / "flat.npy", np.zeros((10, 3)))
    _error(lambda: read_voxels(tmp_path / "flat.npy"), "flat.npy", "cube")
    np.savez(tmp_path / "bad.npz", occupancy=np.zeros((4, 4, 4), bool), labels=np.zeros((5, 5, 5)))
    _error(lambda: read_voxels(tmp_path / "bad.npz"), "bad.npz", "shape")


def test_read_3d_dispatches_on_content(tmp_path):
    np.save(tmp_path / "cloud.npy", np.eye(3))
    np.save(tmp_path / "grid.npy", np.ones((4, 4, 4), bool))
    assert isinstance(read_3d(tmp_path / "cloud.npy"), Cloud)
    assert isinstance(read_3d(tmp_path / "grid.npy"), Voxels)
    assert isinstance(read_3d(_cube_file(tmp_path, "off"), points=64), Cloud)


# ----------------------------------------------------------------------------- bundled samples


def test_supported_suffixes():
    assert {".ply", ".off", ".obj", ".stl", ".xyz", ".txt", ".csv", ".pts", ".npy", ".npz", ".binvox"} \
        == set(SUPPORTED_3D_SUFFIXES)


def test_bundled_samples_load():
    files = sorted(p for p in SHAPES_DIR.iterdir() if p.suffix.lower() in SUPPORTED_3D_SUFFIXES)
    kinds = {p.suffix for p in files}
    assert {".obj", ".ply", ".xyz", ".pts", ".binvox"} <= kinds
    for path in files:
        assert path.stat().st_size < 200_000, path
        item = read_3d(path, points=1024)
        if isinstance(item, Cloud):
            assert len(item) >= 1024
            assert (item.normals is None) == (path.suffix == ".pts")  # meshes and lamp.xyz carry normals
            assert np.linalg.norm(item.points, axis=1).max() == pytest.approx(1.0, abs=1e-5)
        else:
            assert item.resolution == 32 and 0 < item.occupancy.sum() < 32 ** 3 / 4
    # ShapeNet part style: 1-based labels local to the category (chair: seat, back, leg).
    assert sorted(set(read_cloud(SHAPES_DIR / "chair_parts.pts").labels.tolist())) == [1, 2, 3]
    assert sorted(set(read_cloud(SHAPES_DIR / "airplane_parts.pts").labels.tolist())) == [1, 2, 3, 4]


def test_bundled_table_stands_upright():
    table = read_voxels(SHAPES_DIR / "table.binvox").occupancy
    per_height = table.sum(axis=(0, 2))  # y is up
    assert per_height.argmax() > 20  # the top is the widest slab
    assert per_height[0] == 0
