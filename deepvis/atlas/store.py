"""An atlas on disk: what a build wrote, read back by ``atlas map``, ``atlas units`` and the app.

    ATLAS/
      manifest.json     model (name, weights, fingerprint), layers, dataset root, counts,
                        versions, and one entry per build run (engine, workers, images/s)
      images/part-NNNNN.parquet   one row per readable image: path (relative to the dataset
                        root), label, top_index/top_prob (top-5 classes), feat:<layer> (pooled
                        float32 features, a fixed-size list per row)
      skipped.json      {relative path: why it could not be read}
      units.npz         per layer and unit: the top-k images (response, path, position) and
                        statistics, over exactly the parts it lists
      maps/<layer>-<method>.npz   2-D coordinates of every row, in row order, and their quality

A part and the unit profiles that include it are committed in that order, each by an atomic
rename. Readers see only the parts the unit file lists; a part it does not list (a build
stopped between the two renames, or one in progress) is removed by the next build, which
computes its images again. Readers never delete: the app may open an atlas while it grows.
"""

import json
import os
import time
from pathlib import Path

import numpy as np

from deepvis.atlas.unittopk import UnitTopK
from deepvis.errors import DeepvisError

FORMAT = 1
MANIFEST = "manifest.json"


def require_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise DeepvisError("atlases are Parquet files: pip install 'deepvis[atlas]' (or just pyarrow for the "
                           "single-process engine)") from None


class Atlas:
    def __init__(self, path: str | Path):
        require_pyarrow()
        self.path = Path(path)
        manifest = self.path / MANIFEST
        if not manifest.is_file():
            raise DeepvisError(f"{self.path} is not an atlas (no {MANIFEST}): build one with deepvis atlas build")
        try:
            self.manifest = json.loads(manifest.read_text())
        except (OSError, ValueError) as exc:
            raise DeepvisError(f"cannot read {manifest}: {exc}") from None
        if not isinstance(self.manifest, dict):
            raise self.damaged(manifest, "it is not a JSON object")
        if self.manifest.get("format") != FORMAT:
            raise DeepvisError(f"{self.path} is an atlas of format {self.manifest.get('format')!r}; "
                               f"this deepvis reads format {FORMAT}")
        _check_manifest(self.manifest, lambda what: self.damaged(manifest, what))
        self._rows = None

    def damaged(self, path: Path, what: str) -> DeepvisError:
        """The one line for a damaged file of this atlas: which, what is wrong, how to repair."""
        if path.name == MANIFEST:  # without it nothing of the atlas can be trusted
            repair = "build the atlas again into a new folder (deepvis atlas build --out NEW)"
        else:  # the unit profiles list the parts they cover: both go, the build computes them again
            units = self.path / "units.npz"
            moved = f"{path}" + (f" and {units}" if path != units else "")
            repair = (f"move {moved} away and run deepvis atlas build --out {self.path} again: it computes the "
                      f"atlas's images again")
        return DeepvisError(f"{path} is damaged ({what}): {repair}")

    # --- what it holds ------------------------------------------------------------------------

    @property
    def layers(self) -> list[str]:
        return list(self.manifest["layers"])

    @property
    def root(self) -> Path:
        return Path(self.manifest["dataset"]["root"])

    @property
    def model_name(self) -> str:
        return self.manifest["model"]["name"]

    @property
    def class_names(self) -> list[str] | None:
        return self.manifest["model"].get("labels")

    def parts(self) -> list[Path]:
        """The committed parts: those the unit profiles include."""
        included = self.included_parts()
        return [p for p in self._part_files() if p.name in included]

    def _part_files(self) -> list[Path]:
        folder = self.path / "images"
        return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []

    def skipped(self) -> dict[str, str]:
        return _read_json(self.path / "skipped.json", {})

    def rows(self) -> dict[str, np.ndarray]:
        """path, label and top_index of every row, in row order (cached)."""
        if self._rows is None:
            table = self._read(["path", "label", "top_index"])
            self._rows = {"path": np.array(table["path"].to_pylist(), dtype=object),
                          "label": np.array(table["label"].to_pylist(), dtype=object),
                          "top_index": _fixed_lists(table["top_index"], np.int32)}
        return self._rows

    def __len__(self) -> int:
        return len(self.rows()["path"])

    def labels(self) -> list[str | None]:
        return [label or None for label in self.rows()["label"]]

    def predictions(self) -> list[str | None] | None:
        names, top = self.class_names, self.rows()["top_index"]
        if top.shape[1] == 0 or (top[:, 0] < 0).all():
            return None
        return [None if i < 0 else (names[i] if names and i < len(names) else str(i)) for i in top[:, 0]]

    def sources(self) -> dict[str, tuple[int, int]] | None:
        """{path: (size in bytes, modification time in ns)} of every row's file as the build read
        it; None for an atlas built before sources were recorded (then a changed file cannot be
        told, only a missing one)."""
        import pyarrow.parquet as pq

        found = {}
        for part in self.parts():
            if "source_size" not in pq.read_schema(part).names:
                return None
            table = self.read_part(part, ["path", "source_size", "source_mtime"])
            found.update(zip(table["path"].to_pylist(), zip(table["source_size"].to_pylist(),
                                                            table["source_mtime"].to_pylist())))
        return found

    def image_path(self, row: int) -> Path:
        return self.root / self.rows()["path"][row]

    def features(self, layer: str) -> np.ndarray:
        """(rows, channels) float32 features of ``layer``."""
        self._check_layer(layer)
        return _fixed_lists(self._read([f"feat:{layer}"])[f"feat:{layer}"], np.float32)

    def feature_batches(self, layer: str):
        """The same, a row group at a time, for data larger than memory."""
        import pyarrow.parquet as pq

        self._check_layer(layer)
        import pyarrow as pa

        for part in self.parts():
            try:
                batches = list(pq.ParquetFile(part).iter_batches(columns=[f"feat:{layer}"]))
            except (pa.ArrowException, OSError) as exc:
                raise self.damaged(part, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}") from None
            for batch in batches:
                yield _fixed_lists(batch.column(0), np.float32)

    def units(self, layer: str) -> UnitTopK:
        self._check_layer(layer)
        arrays = self._units_arrays()
        if arrays is None:
            raise DeepvisError(f"{self.path} has no unit profiles yet")
        return UnitTopK.from_arrays(arrays, f"{layer}/")

    # --- maps -------------------------------------------------------------------------------

    def map_file(self, layer: str, method: str) -> Path:
        return self.path / "maps" / f"{_safe(layer)}-{method}.npz"

    def maps(self) -> list[tuple[str, str]]:
        found = []
        for layer in self.layers:
            for method in ("tsne", "pca", "umap"):
                if self.map_file(layer, method).is_file():
                    found.append((layer, method))
        return found

    def load_map(self, layer: str, method: str) -> tuple[np.ndarray, dict]:
        """(coords (rows, 2) float32, info) of a map made by ``atlas map``."""
        path = self.map_file(layer, method)
        if not path.is_file():
            raise DeepvisError(f"{self.path} has no {method} map of {layer}: make it with deepvis atlas map")
        with np.load(path, allow_pickle=False) as d:
            coords, info = d["coords"], json.loads(str(d["info"]))
        if len(coords) != len(self):
            raise DeepvisError(f"the {method} map of {layer} has {len(coords)} points but the atlas {len(self)} "
                               f"rows: make it again with deepvis atlas map")
        return coords, info

    def save_map(self, layer: str, method: str, coords: np.ndarray, info: dict) -> Path:
        path = self.map_file(layer, method)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part.npz")
        np.savez(tmp, coords=np.asarray(coords, np.float32), info=np.array(json.dumps(info)))
        os.replace(tmp, path)
        return path

    # --- internals --------------------------------------------------------------------------

    def _check_layer(self, layer: str) -> None:
        if layer not in self.layers:
            raise DeepvisError(f"{self.path} holds the layers {', '.join(self.layers)}; not {layer!r}")

    def _read(self, columns):
        import pyarrow as pa

        parts = self.parts()
        if not parts:
            raise DeepvisError(f"{self.path} holds no images yet")
        return pa.concat_tables([self.read_part(p, columns) for p in parts])

    def read_part(self, part: Path, columns):
        """``columns`` of one Parquet part; a damaged part is one error naming it and the repair."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.read_table(part, columns=columns)
        except (pa.ArrowException, OSError) as exc:  # truncated, overwritten, a column missing
            raise self.damaged(part, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}") from None

    def _units_arrays(self):
        import zipfile

        path = self.path / "units.npz"
        if not path.is_file():
            return None
        # Never unpickled (allow_pickle=False): an atlas may come from anywhere, and a pickle runs
        # code. Object arrays and broken archives are refused as damage.
        try:
            with np.load(path, allow_pickle=False) as d:
                arrays = {key: d[key] for key in d.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            what = ("it holds pickled objects, which deepvis never loads" if "allow_pickle" in str(exc)
                    else f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}")
            raise self.damaged(path, what) from None
        if "parts" not in arrays:
            raise self.damaged(path, "no list of the parts it covers")
        return arrays

    def included_parts(self) -> set[str]:
        arrays = self._units_arrays()
        return set() if arrays is None else {str(p) for p in arrays["parts"]}

    def drop_orphan_parts(self) -> None:
        """Remove the parts no unit file lists (for the builder, which alone writes parts)."""
        included = self.included_parts()
        for part in self._part_files():
            if part.name not in included:
                part.unlink(missing_ok=True)


def _check_manifest(m: dict, damaged) -> None:
    """The fields readers rely on, with the types they need; ``damaged(what)`` makes the error."""
    layers = m.get("layers")
    if not isinstance(layers, list) or not layers or not all(isinstance(x, str) for x in layers):
        raise damaged("'layers' is not a list of layer names")
    model = m.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        raise damaged("'model' has no name")
    labels = model.get("labels")
    if labels is not None and not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        raise damaged("'model.labels' is not a list of names")
    if not isinstance(model.get("options", {}), dict):
        raise damaged("'model.options' is not an object")
    dataset = m.get("dataset")
    if not isinstance(dataset, dict) or not isinstance(dataset.get("root"), str):
        raise damaged("'dataset.root' is not a folder name")
    if not isinstance(m.get("k", 1), int) or isinstance(m.get("k", 1), bool):
        raise damaged("'k' is not a whole number")


def create_atlas(path: Path, manifest: dict) -> Atlas:
    path.mkdir(parents=True, exist_ok=True)
    (path / "images").mkdir(exist_ok=True)
    write_json(path / MANIFEST, {"format": FORMAT, **manifest, "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return Atlas(path)


def write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def _read_json(path: Path, default):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as exc:
        raise DeepvisError(f"cannot read {path}: {exc}") from None


def _fixed_lists(column, dtype) -> np.ndarray:
    """A (chunked) fixed-size-list Arrow column as a (rows, width) array."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], column.type)
    width = column.type.list_size
    return column.flatten().to_numpy(zero_copy_only=False).astype(dtype, copy=False).reshape(-1, width)


def _safe(layer: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in layer) or "output"
