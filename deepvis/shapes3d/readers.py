"""Reading 3-D files: meshes and point clouds as :class:`Cloud`, voxel grids as :class:`Voxels`.

Every reader returns plain numpy arrays in one layout, whatever the file held, and turns every
way a file can be bad (missing, empty, truncated, NaN coordinates, wrong columns, labels that do
not match the points) into a one-line :class:`~deepvis.errors.DeepvisError` that names the file.

Accepted files
--------------
Meshes ``.ply .off .obj .stl`` (read with trimesh) are sampled uniformly over their surface
(area-weighted) with the normal of the face each point came from. A ``.ply`` without faces is a
point cloud; an ``.obj``/``.off``/``.stl`` without faces is an error (it is usually a broken mesh).

Point clouds keep all their points (``points`` only applies to mesh sampling):

* ``.ply`` with vertices only; vertex properties ``nx ny nz`` are normals and one of ``label``,
  ``labels``, ``class``, ``seg``, ``part``, ``scalar_label`` holds per-point labels.
* ``.xyz .txt .csv``: one point per line, columns separated by whitespace, commas or semicolons;
  ``#`` and ``//`` lines are comments; one non-numeric header line (and a point-count line) is
  skipped. Columns: ``x y z`` | ``x y z label`` | ``x y z nx ny nz`` | ``x y z nx ny nz label``.
  Columns 4-6 are taken as normals only when they are unit vectors; otherwise (RGB colours, as in
  many scans) they are ignored. This covers ModelNet40's resampled ``.txt`` (6 columns) and
  ShapeNet part's "normal" release (7 columns).
* ``.pts``: the same columns; labels come from a ``.seg`` file of the same stem beside it or, in
  the ShapeNet part benchmark layout, in ``../points_label/``. ShapeNet's labels are 1-based and
  are kept as stored (``Cloud.labels`` is what the file says; mapping to a network's classes is
  the caller's business).
* ``.npy``: an ``(N, C)`` array with the column layouts above; ``.npz``: points under
  ``points``/``xyz``/``pos``/``coords``/``vertices``/``data`` (or the only array), optional
  ``normals``/``normal``, optional ``labels``/``label``/``seg``/``segmentation``/``part_labels``.

Voxel grids: ``.binvox`` (read with trimesh) and ``.npy``/``.npz`` cubic 3-D arrays. A bool array
(or integers/floats that are all 0 or 1) is occupancy. Any other integer array is a label volume
in which **-1 marks empty voxels** (``deepvis.shapes3d.parts.BACKGROUND``; 0 is a valid part, as class
indices of a segmentation network start at 0): ``occupancy = labels >= 0``. Grids are indexed
``occupancy[i, j, k]`` for the voxel at x=i, y=j (up, as in ShapeNet), z=k, like ``parts3d.voxelize``.
A leading or trailing axis of length 1 (a batch or channel axis) is dropped.

Arrays are never unpickled (``allow_pickle=False``): a pickle can run arbitrary code, and no
point cloud needs one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from deepvis.errors import DeepvisError
from deepvis.shapes3d.parts import BACKGROUND, normalize_unit_sphere

__all__ = [
    "CLOUD_SUFFIXES",
    "MESH_SUFFIXES",
    "SUPPORTED_3D_SUFFIXES",
    "VOXEL_SUFFIXES",
    "Cloud",
    "Voxels",
    "read_3d",
    "read_cloud",
    "read_voxels",
]

MESH_SUFFIXES: frozenset[str] = frozenset({".ply", ".off", ".obj", ".stl"})
"""Suffixes read as meshes by trimesh (``.ply`` only when it has faces)."""

CLOUD_SUFFIXES: frozenset[str] = frozenset({".ply", ".xyz", ".txt", ".csv", ".pts", ".npy", ".npz"})
"""Suffixes that can hold a point cloud."""

VOXEL_SUFFIXES: frozenset[str] = frozenset({".binvox", ".npy", ".npz"})
"""Suffixes that can hold a voxel grid (``.npy``/``.npz`` when the array is 3-D)."""

SUPPORTED_3D_SUFFIXES: frozenset[str] = MESH_SUFFIXES | CLOUD_SUFFIXES | VOXEL_SUFFIXES
"""Every suffix :func:`read_3d` accepts (lower case, with the dot)."""

_TEXT_SUFFIXES = {".xyz", ".txt", ".csv", ".pts"}
_POINT_KEYS = ("points", "xyz", "pos", "coords", "vertices", "data", "point", "pc")
_NORMAL_KEYS = ("normals", "normal", "norm")
_LABEL_KEYS = ("labels", "label", "seg", "segmentation", "part_labels", "part_label")
_VOXEL_KEYS = ("occupancy", "voxels", "voxel", "vox", "grid", "data")
_PLY_LABEL_PROPS = ("label", "labels", "class", "seg", "part", "scalar_label", "scalar_labels")


@dataclass
class Cloud:
    """Points of a shape, in the unit sphere unless read with ``normalize=False``."""

    points: np.ndarray  # (N, 3) float32
    normals: np.ndarray | None  # (N, 3) float32, unit length (zero where the file had none)
    labels: np.ndarray | None  # (N,) int64, as stored in the file (ShapeNet: 1-based)
    source: str
    kind: Literal["mesh", "cloud"]

    def __len__(self) -> int:
        return len(self.points)


@dataclass
class Voxels:
    """A cubic voxel grid."""

    occupancy: np.ndarray  # (R, R, R) bool
    labels: np.ndarray | None  # (R, R, R) int64, -1 where empty
    source: str

    @property
    def resolution(self) -> int:
        return int(self.occupancy.shape[0])


def _suffixes(names) -> str:
    return " ".join(sorted(names))


def _check_file(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DeepvisError(f"3-D file {path} does not exist")
    if path.is_dir():
        raise DeepvisError(f"3-D file {path} is a folder, not a file")
    if path.stat().st_size == 0:
        raise DeepvisError(f"3-D file {path} is empty")
    return path


def read_3d(path, points: int = 2048, seed: int = 0, normalize: bool = True) -> Cloud | Voxels:
    """Read any supported 3-D file: a voxel grid for ``.binvox`` and 3-D arrays, else a cloud."""
    path = _check_file(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_3D_SUFFIXES:
        raise DeepvisError(f"{path}: unsupported 3-D file type {suffix or '(no suffix)'!r}; "
                           f"use one of {_suffixes(SUPPORTED_3D_SUFFIXES)}")
    if suffix == ".binvox" or (suffix in {".npy", ".npz"} and _holds_volume(path)):
        return read_voxels(path)
    return read_cloud(path, points=points, seed=seed, normalize=normalize)


# ----------------------------------------------------------------------------- point clouds


def read_cloud(path, points: int = 2048, seed: int = 0, normalize: bool = True) -> Cloud:
    """Read a mesh (sampled to ``points`` points with ``seed``) or a point cloud (kept whole).

    With ``normalize`` the points are centred and scaled into the unit sphere
    (:func:`deepvis.shapes3d.parts.normalize_unit_sphere`); normals are unaffected by that.
    """
    path = _check_file(path)
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES | CLOUD_SUFFIXES:
        raise DeepvisError(f"{path}: unsupported point cloud or mesh type {suffix or '(no suffix)'!r}; "
                           f"use one of {_suffixes(MESH_SUFFIXES | CLOUD_SUFFIXES)}")
    if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 1:
        raise DeepvisError(f"cannot sample {path}: the number of points must be a positive integer, got {points!r}")

    if suffix in MESH_SUFFIXES:
        xyz, normals, labels, kind = _read_trimesh(path, suffix, int(points), seed)
    elif suffix in _TEXT_SUFFIXES:
        xyz, normals, labels = _split_columns(_read_text_table(path), path)
        if suffix == ".pts":
            labels = _read_seg(path, len(xyz)) if labels is None else labels
        kind = "cloud"
    elif suffix == ".npy":
        xyz, normals, labels = _split_columns(_load_npy(path), path)
        kind = "cloud"
    else:
        xyz, normals, labels = _npz_cloud(path)
        kind = "cloud"

    if len(xyz) == 0:
        raise DeepvisError(f"{path} has no points")
    if not np.isfinite(xyz).all():
        bad = int(np.flatnonzero(~np.isfinite(xyz).all(axis=1))[0])
        raise DeepvisError(f"{path} has NaN or infinite coordinates (first at point {bad})")
    if normalize:
        # Checked here so the message names the file (parts3d's own check cannot).
        if np.ptp(xyz, axis=0).max() == 0:
            raise DeepvisError(f"{path}: all {len(xyz)} points coincide, so the shape cannot be scaled "
                               f"to the unit sphere")
        xyz = normalize_unit_sphere(xyz)  # from float64, so far-off scans keep their precision
    xyz = np.ascontiguousarray(xyz, dtype=np.float32)
    if normals is not None:
        normals = _unit(normals, path)
    return Cloud(points=xyz, normals=normals, labels=labels, source=str(path), kind=kind)


def _unit(normals: np.ndarray, path: Path) -> np.ndarray:
    normals = np.asarray(normals, dtype=np.float64)
    if not np.isfinite(normals).all():
        raise DeepvisError(f"{path} has NaN or infinite normals")
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    # Some exporters write zero normals for points they could not orient; keep those as zero.
    return (normals / np.where(length > 0, length, 1.0)).astype(np.float32)


def _read_trimesh(path: Path, suffix: str, count: int, seed: int):
    import trimesh

    if suffix == ".stl":
        _check_binary_stl(path)
    try:
        geometry = trimesh.load(str(path), file_type=suffix[1:], process=False)
    except Exception as exc:  # trimesh's loaders raise whatever their parsers hit on damaged files
        raise DeepvisError(f"{path} is not a readable {suffix[1:].upper()} file (truncated or corrupt: "
                           f"{type(exc).__name__}: {str(exc).strip()[:120]})") from None
    meshes, clouds = _geometries(geometry)
    if not meshes and not clouds:
        # trimesh returns an empty scene, not an error, for truncated or garbage files.
        raise DeepvisError(f"{path} holds no geometry (it is empty, truncated, or not in {suffix[1:].upper()} format)")
    if not meshes:
        if suffix != ".ply":
            raise DeepvisError(f"{path} is a mesh file with no faces; save point clouds as .ply, .xyz or .npy")
        return _ply_cloud(path, clouds)
    mesh = meshes[0] if len(meshes) == 1 else trimesh.util.concatenate(meshes)
    if not np.isfinite(mesh.vertices).all():
        raise DeepvisError(f"{path} has NaN or infinite vertex coordinates")
    area = float(mesh.area)
    if not area > 0:
        raise DeepvisError(f"{path} is a mesh of zero area (all {len(mesh.faces)} faces are degenerate)")
    xyz, face_index = trimesh.sample.sample_surface(mesh, count, seed=seed)
    normals = np.asarray(mesh.face_normals)[face_index]
    return np.asarray(xyz, dtype=np.float64), normals, None, "mesh"


def _geometries(geometry):
    """The non-empty meshes and point clouds of whatever ``trimesh.load`` returned."""
    import trimesh

    parts = list(geometry.dump()) if isinstance(geometry, trimesh.Scene) else [geometry]
    meshes = [g for g in parts if isinstance(g, trimesh.Trimesh) and len(g.faces)]
    clouds = [g for g in parts if isinstance(g, (trimesh.Trimesh, trimesh.PointCloud)) and len(g.vertices)
              and not (isinstance(g, trimesh.Trimesh) and len(g.faces))]
    return meshes, clouds


def _check_binary_stl(path: Path):
    """A truncated binary STL makes trimesh retry it as text and return nothing; say what is wrong."""
    with open(path, "rb") as f:
        head = f.read(84)
    size = path.stat().st_size
    if head[:5].lower() == b"solid":
        return  # text STL (or a binary one whose header starts with "solid": trimesh sorts it out)
    if len(head) < 84:
        raise DeepvisError(f"{path} is truncated: {size} bytes is too short for a binary STL header")
    triangles = int(np.frombuffer(head[80:84], "<u4")[0])
    if size < 84 + 50 * triangles:
        raise DeepvisError(f"{path} is truncated: its header announces {triangles} triangles "
                           f"({84 + 50 * triangles} bytes) but the file has {size} bytes")


def _ply_cloud(path: Path, clouds):
    xyz = np.concatenate([np.asarray(c.vertices, dtype=np.float64) for c in clouds])
    normals = labels = None
    # trimesh exposes a point cloud's extra vertex properties only through its raw PLY metadata.
    raw = clouds[0].metadata.get("_ply_raw", {}).get("vertex", {}).get("data") if len(clouds) == 1 else None
    if isinstance(raw, dict):
        props = {name.lower(): np.asarray(values).reshape(-1) for name, values in raw.items()}
        if all(k in props for k in ("nx", "ny", "nz")):
            normals = np.stack([props["nx"], props["ny"], props["nz"]], axis=1)
        for name in _PLY_LABEL_PROPS:
            if name in props:
                labels = _as_labels(props[name], path, f"vertex property {name!r}")
                break
    return xyz, normals, labels, "cloud"


def _read_text_table(path: Path) -> np.ndarray:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DeepvisError(f"{path} is not a text point cloud (it contains binary data)") from None
    rows: list[tuple[int, list[str]]] = []
    delimiter = None
    header_skipped = False
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith(("#", "//")):
            continue
        if delimiter is None:
            delimiter = "," if "," in line else ";" if ";" in line else " "
        tokens = line.split(delimiter) if delimiter != " " else line.split()
        tokens = [t.strip() for t in tokens]
        if not rows and not header_skipped and not _numeric(tokens):
            header_skipped = True
            delimiter = None  # the header's separator need not be the data's
            continue
        rows.append((number, tokens))
    # Some formats (Leica .pts, many .xyz exporters) start with the point count on a line of its own.
    if len(rows) > 1 and len(rows[0][1]) == 1 and len(rows[1][1]) != 1 and _numeric(rows[0][1]):
        rows = rows[1:]
    if not rows:
        raise DeepvisError(f"{path} has no points")
    width = len(rows[0][1])
    for number, tokens in rows:
        if len(tokens) != width:
            raise DeepvisError(f"{path} line {number} has {len(tokens)} columns where earlier lines have {width}")
    try:
        return np.array([tokens for _, tokens in rows], dtype=np.float64)
    except ValueError:
        for number, tokens in rows:
            if not _numeric(tokens):
                raise DeepvisError(f"{path} line {number} is not numeric: {' '.join(tokens)[:60]!r}") from None
        raise


def _numeric(tokens) -> bool:
    try:
        [float(t) for t in tokens]
    except ValueError:
        return False
    return True


def _split_columns(table: np.ndarray, path: Path):
    """Points, normals and labels from an (N, 3|4|6|7) table (see the module docstring)."""
    if table.ndim == 1 and table.size in (3, 4, 6, 7):
        table = table[None, :]  # a one-point file
    if table.ndim != 2 or table.shape[1] not in (3, 4, 6, 7):
        raise DeepvisError(f"{path} has shape {tuple(table.shape)}; expected N rows of 3 (x y z), 4 (x y z label), "
                           f"6 (x y z nx ny nz) or 7 (x y z nx ny nz label) columns")
    if not np.issubdtype(table.dtype, np.number) or np.issubdtype(table.dtype, np.complexfloating):
        raise DeepvisError(f"{path} holds {table.dtype} values, not numbers")
    table = table.astype(np.float64, copy=False)
    xyz = table[:, :3]
    normals = labels = None
    if table.shape[1] in (4, 7):
        labels = _as_labels(table[:, -1], path, "the label column")
    if table.shape[1] >= 6:
        extra = table[:, 3:6]
        length = np.linalg.norm(extra, axis=1)
        if np.isfinite(extra).all() and np.all((np.abs(length - 1) < 0.02) | (length == 0)):
            normals = extra
    return xyz, normals, labels


def _as_labels(values, path: Path, what: str) -> np.ndarray:
    values = np.asarray(values).reshape(-1)
    if np.issubdtype(values.dtype, np.integer) or values.dtype == bool:
        return values.astype(np.int64)
    if not np.issubdtype(values.dtype, np.floating):
        raise DeepvisError(f"{path}: {what} holds {values.dtype} values, not integer labels")
    if not np.isfinite(values).all() or not np.all(values == np.round(values)):
        raise DeepvisError(f"{path}: {what} holds non-integer values, so it is not a label column")
    return values.astype(np.int64)


def _read_seg(path: Path, count: int) -> np.ndarray | None:
    for seg in (path.with_suffix(".seg"), path.parent.parent / "points_label" / (path.stem + ".seg")):
        if seg.is_file():
            break
    else:
        return None
    try:
        text = seg.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DeepvisError(f"label file {seg} is not text") from None
    try:
        labels = np.array([int(float(t)) for t in text.split()], dtype=np.int64)
    except ValueError:
        raise DeepvisError(f"label file {seg} holds something other than one integer label per line") from None
    if len(labels) != count:
        raise DeepvisError(f"label file {seg} has {len(labels)} labels but {path.name} has {count} points")
    return labels


def _load_npy(path: Path) -> np.ndarray:
    # np.load treats any file without the NumPy magic as a pickle, which would misreport garbage
    # as "Python objects"; check the magic first.
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise DeepvisError(f"{path} is not a .npy file (it does not start with the NumPy header)")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DeepvisError(f"{path} holds Python objects, which are not loaded (unpickling can run "
                               f"arbitrary code); save a plain numeric array") from None
        raise DeepvisError(f"{path} is not a readable .npy file (truncated or corrupt: {str(exc)[:120]})") from None
    except Exception as exc:  # a damaged header reaches numpy's literal parser: SyntaxError, TokenError, ...
        raise DeepvisError(f"{path} is not a readable .npy file (truncated or corrupt: "
                           f"{type(exc).__name__}: {str(exc)[:120]})") from None


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic == b"\x93NUMPY":
        return {"data": _load_npy(path)}  # a .npy saved under a .npz name
    if magic[:2] != b"PK":
        raise DeepvisError(f"{path} is not a .npz file (it is not a zip archive of arrays)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DeepvisError(f"{path} holds Python objects, which are not loaded (unpickling can run "
                               f"arbitrary code); save plain numeric arrays") from None
        raise DeepvisError(f"{path} is not a readable .npz file (truncated or corrupt: {str(exc)[:120]})") from None
    except Exception as exc:  # zip, zlib and numpy's header parser each raise their own types
        raise DeepvisError(f"{path} is not a readable .npz file (truncated or corrupt: "
                           f"{type(exc).__name__}: {str(exc)[:120]})") from None


def _pick(arrays: dict, keys, path: Path, what: str, required: bool):
    lower = {k.lower(): k for k in arrays}
    for key in keys:
        if key in lower:
            return lower[key]
    if required and len(arrays) == 1:
        return next(iter(arrays))
    if required:
        raise DeepvisError(f"{path} has no {what} array: found keys {sorted(arrays)}, expected one of "
                           f"{', '.join(keys)}")
    return None


def _npz_cloud(path: Path):
    arrays = _load_npz(path)
    if not arrays:
        raise DeepvisError(f"{path} holds no arrays")
    key = _pick(arrays, _POINT_KEYS, path, "points", required=True)
    xyz, normals, labels = _split_columns(np.asarray(arrays[key]), path)
    normal_key = _pick(arrays, _NORMAL_KEYS, path, "normals", required=False)
    if normal_key is not None:
        normals = np.asarray(arrays[normal_key], dtype=np.float64)
        if normals.shape != xyz.shape:
            raise DeepvisError(f"{path}: {normal_key!r} has shape {normals.shape} but the points are {xyz.shape}")
    label_key = _pick(arrays, _LABEL_KEYS, path, "labels", required=False)
    if label_key is not None:
        labels = _as_labels(arrays[label_key], path, repr(label_key))
        if len(labels) != len(xyz):
            raise DeepvisError(f"{path}: {label_key!r} has {len(labels)} labels but there are {len(xyz)} points")
    return xyz, normals, labels


# ----------------------------------------------------------------------------- voxel grids


def read_voxels(path) -> Voxels:
    """Read a cubic voxel grid from ``.binvox``, ``.npy`` or ``.npz``."""
    path = _check_file(path)
    suffix = path.suffix.lower()
    if suffix not in VOXEL_SUFFIXES:
        raise DeepvisError(f"{path}: unsupported voxel grid type {suffix or '(no suffix)'!r}; "
                           f"use one of {_suffixes(VOXEL_SUFFIXES)}")
    if suffix == ".binvox":
        return Voxels(occupancy=_read_binvox(path), labels=None, source=str(path))
    if suffix == ".npy":
        volume, labels = _load_npy(path), None
    else:
        arrays = _load_npz(path)
        if not arrays:
            raise DeepvisError(f"{path} holds no arrays")
        label_key = _pick(arrays, _LABEL_KEYS, path, "labels", required=False)
        grid_key = _pick(arrays, _VOXEL_KEYS, path, "occupancy", required=label_key is None)
        volume = arrays[grid_key] if grid_key is not None else arrays[label_key]
        labels = arrays[label_key] if grid_key is not None and label_key is not None else None
    occupancy, found_labels = _volume(np.asarray(volume), path)
    if labels is not None:
        _, labels = _volume(np.asarray(labels), path, force_labels=True)
        if labels.shape != occupancy.shape:
            raise DeepvisError(f"{path}: labels have shape {labels.shape} but the occupancy is {occupancy.shape}")
        found_labels = labels
    return Voxels(occupancy=occupancy, labels=found_labels, source=str(path))


def _volume(volume: np.ndarray, path: Path, force_labels: bool = False):
    """(occupancy, labels or None) from a cubic array; see the module docstring for the rules."""
    while volume.ndim > 3 and volume.shape[0] == 1:
        volume = volume[0]  # (1, R, R, R): a batch or channel axis of one
    while volume.ndim > 3 and volume.shape[-1] == 1:
        volume = volume[..., 0]
    if volume.ndim != 3 or len(set(volume.shape)) != 1 or volume.shape[0] == 0:
        raise DeepvisError(f"{path} holds an array of shape {tuple(volume.shape)}; a voxel grid must be a "
                           f"non-empty cube (R, R, R)")
    if volume.dtype == bool and not force_labels:
        return volume.copy(), None
    if not (np.issubdtype(volume.dtype, np.integer) or np.issubdtype(volume.dtype, np.floating)
            or volume.dtype == bool):
        raise DeepvisError(f"{path} holds {volume.dtype} values; a voxel grid must be bool or integer")
    if np.issubdtype(volume.dtype, np.floating):
        if not np.isfinite(volume).all() or not np.all(volume == np.round(volume)):
            raise DeepvisError(f"{path} holds fractional values (probabilities?); save occupancy as bool "
                               f"(e.g. volume > 0.5) or labels as integers")
    if not force_labels and np.isin(volume, (0, 1)).all():
        return volume.astype(bool), None
    labels = volume.astype(np.int64)
    if labels.min() < BACKGROUND:
        raise DeepvisError(f"{path}: label volume has value {int(labels.min())}; use {BACKGROUND} for empty "
                           f"voxels and labels from 0")
    return labels != BACKGROUND, labels


def _read_binvox(path: Path) -> np.ndarray:
    from trimesh.exchange import binvox

    try:
        with open(path, "rb") as f:
            parsed = binvox.parse_binvox(f, writeable=True)
    except Exception as exc:  # header parsing raises ValueError, IndexError or decode errors
        raise DeepvisError(f"{path} is not a readable binvox file ({str(exc).strip()[:120]})") from None
    shape = tuple(int(s) for s in np.ravel(parsed.shape))
    if len(shape) != 3 or len(set(shape)) != 1 or shape[0] <= 0:
        raise DeepvisError(f"{path}: binvox dimensions {shape} are not a non-empty cube")
    rle = np.asarray(parsed.rle_data, dtype=np.uint8)
    # The payload is (value, count) byte pairs; checking it here gives a clear message where
    # trimesh would fail deep in a reshape.
    total = int(rle[1::2].astype(np.int64).sum()) if len(rle) % 2 == 0 else -1
    if total != int(np.prod(shape)) or (len(rle) and rle[0::2].max() > 1):
        raise DeepvisError(f"{path} is truncated or corrupt: its data does not hold the "
                           f"{shape[0]}x{shape[1]}x{shape[2]} voxels its header announces")
    grid = binvox.voxel_from_binvox(parsed.rle_data, shape, parsed.translate, parsed.scale, axis_order="xzy")
    return np.ascontiguousarray(grid.matrix, dtype=bool)


def _holds_volume(path: Path) -> bool:
    """Whether a .npy/.npz holds a voxel grid (an array of 3 or more dimensions) rather than points."""
    if path.suffix.lower() == ".npy":
        volume = _load_npy(path)
        return volume.ndim >= 3
    return any(np.ndim(a) >= 3 for a in _load_npz(path).values())
