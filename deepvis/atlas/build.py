"""``deepvis atlas build``: features, predictions and unit profiles of a model over an image
folder of any size, on Ray Data (a local Ray by default, a cluster with an address) or in this
process when Ray is not installed. Both paths run the same worker on the same batches.

The driver consumes the workers' batches as they stream in: it writes rows to Parquet parts,
merges each unit's top-k, lists unreadable files, and commits a part with the unit profiles
that include it, so a build stopped at any point resumes where it stopped. A rerun computes
only the images the atlas does not hold yet; a different model is refused, never mixed in.
"""

import logging
import os
import platform
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from deepvis.atlas.lock import LOCK, AtlasLock
from deepvis.atlas.store import Atlas, create_atlas, require_pyarrow, write_json
from deepvis.atlas.unittopk import UnitTopK
from deepvis.atlas.worker import TOPK, AtlasWorker
from deepvis.errors import Cancelled, DeepvisError
from deepvis.io.outputs import FOLDER, check_output

ENGINES = ("auto", "ray", "local")
ADDRESS_TIMEOUT_S = 5.0  # a Ray head answers a connection at once; nothing listening fails the build here
PART_ROWS = 8192  # rows per Parquet part: what a stopped build loses at most


def list_images(root: Path) -> list[str]:
    """Image files under ``root`` as sorted paths relative to it (POSIX separators)."""
    from deepvis.io.images import IMAGE_SUFFIXES

    if not root.is_dir():
        raise DeepvisError(f"{root} is not a folder")
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                   if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DeepvisError(f"no images in {root} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def ray_available() -> bool:
    try:
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


def build_atlas(model_options: dict, data, out, layers=None, k: int = 9, address: str | None = None,
                workers: int | None = None, batch: int = 64, engine: str = "auto", part_rows: int = PART_ROWS,
                progress=None, cancel=None, model=None) -> dict:
    """Build or extend the atlas ``out`` over the images under ``data``; returns what it did.

    ``model_options``: ``source`` and ``weights`` and load_model's keyword arguments, from
    which each worker loads its own copy; ``model``, when given, is that model already loaded
    here (the single-process path uses it). ``progress(done, total)`` after each batch;
    ``cancel`` (a threading.Event) stops after the current batch, keeping what is done.
    """
    from deepvis.core.cache import model_fingerprint
    from deepvis.core.loading import load_model
    from deepvis.core.probe import Probe

    require_pyarrow()
    if engine not in ENGINES:
        raise DeepvisError(f"unknown engine {engine!r}: expected one of {', '.join(ENGINES)}")
    address = address or os.environ.get("RAY_ADDRESS") or None
    if engine == "auto":
        engine = "ray" if (address or ray_available()) else "local"
    if engine == "ray" and not ray_available():
        raise DeepvisError("the Ray engine needs Ray Data: pip install 'deepvis[atlas]' (or --engine local)")
    if engine == "local" and address:
        raise DeepvisError("--address runs on a Ray cluster: it needs --engine ray or auto")
    if k < 1:
        raise DeepvisError("--top must be at least 1")
    root = Path(data).expanduser().resolve()
    out = Path(out).expanduser()
    check_output(out, FOLDER)  # a file, or a folder that cannot be written: before the model loads
    if address and engine == "ray":
        from deepvis.atlas.rayauth import prepare_token_auth

        check_ray_address(address)
        prepare_token_auth(address)
    files = list_images(root)
    options = dict(model_options)
    if model is None:
        model = load_model(options.get("source"), options.get("weights"),
                           **{key: v for key, v in options.items() if key not in ("source", "weights")})
    if model.signal is not None:
        raise DeepvisError(f"{model.name} takes signals: an atlas is built over images")
    probe = Probe(model.module, model.example_input())
    fingerprint = model_fingerprint(model)
    fresh = not (out / "manifest.json").exists()
    made = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DeepvisError(f"cannot write {out}: {exc.strerror or exc}") from None
    lock = AtlasLock(out)
    lock.acquire()  # a build in progress refuses this one here, before anything is touched
    try:
        result = _build_locked(out, model, options, fingerprint, root, files, layers, probe, k, engine, address,
                               workers, batch, part_rows, progress, cancel)
        if fresh and not result["added"]:
            # Nothing readable: an empty atlas would only fail later, in map and units.
            raise DeepvisError(f"no image under {root} could be read ({len(files)} files, {result['skipped']} "
                               f"skipped, e.g. {result['skipped_files'][0] if result['skipped_files'] else 'none'}): "
                               f"nothing to build an atlas of")
    except BaseException:
        # Still holding the lock: no other build can have started in it. A first build that
        # committed no rows leaves nothing (its stop still writes the unit file, of no parts);
        # one stopped later keeps its parts and resumes.
        if fresh and not any((out / "images").glob("part-*.parquet")):
            _remove_unfinished(out, made)
        raise
    finally:
        lock.release()
    return result


def _remove_unfinished(out: Path, made: bool) -> None:
    """What a first build wrote into ``out`` and did not finish: the folder if it made it, else
    the atlas's own files (a folder the user made, empty before, stays; the lock is released by
    its holder)."""
    import shutil

    if made:
        shutil.rmtree(out, ignore_errors=True)
        return
    for name in ("manifest.json", "skipped.json", "units.npz", "images", "maps"):
        target = out / name
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)


def check_ray_address(address: str) -> None:
    """A Ray address of the form host:port (or ray://host:port) must take a connection within
    ``ADDRESS_TIMEOUT_S``; Ray itself retries for minutes against nothing."""
    import socket

    text = address.removeprefix("ray://")
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or address in ("auto", "local"):
        return  # "auto", "local" and other forms are Ray's to judge
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=ADDRESS_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise DeepvisError(f"no Ray cluster at {address}: {reason} within {ADDRESS_TIMEOUT_S:.0f} s (start it with "
                           f"ray start --head, or leave --address out for a Ray on this machine)") from None


def _build_locked(out, model, options, fingerprint, root, files, layers, probe, k, engine, address, workers, batch,
                  part_rows, progress, cancel) -> dict:
    atlas = _open_or_create(out, model, options, fingerprint, root, layers, probe, k)
    atlas.drop_orphan_parts()
    layers = atlas.layers
    k = int(atlas.manifest["k"])

    done = set()
    for part in atlas.parts():
        done.update(atlas.read_part(part, ["path"])["path"].to_pylist())
    skipped = atlas.skipped()
    todo = [f for f in files if f not in done and f not in skipped]
    units = _load_units(atlas, layers, probe, k)
    result = {"atlas": str(out), "engine": engine, "images": len(files), "already": len(done) + len(skipped),
              "added": 0, "skipped": 0, "skipped_files": [], "seconds": 0.0, "images_per_s": None}
    if not todo:
        return result

    writer = _PartWriter(atlas, layers, units, skipped, part_rows)
    start = time.perf_counter()
    first_batch_at = None
    first_batch_rows = 0
    processed = 0
    used = {"workers": 1, "threads": torch_threads()}
    try:
        batches = (_ray_batches(options, layers, root, todo, batch, workers, address, used)
                   if engine == "ray" else _local_batches(model, options, layers, root, todo, batch))
        for out_batch in batches:
            if first_batch_at is None:
                first_batch_at, first_batch_rows = time.perf_counter(), len(out_batch["path"])
            processed += len(out_batch["path"])
            writer.add(out_batch)
            if progress is not None:
                progress(processed, len(todo))
            if cancel is not None and cancel.is_set():
                batches.close()
                raise Cancelled()
        writer.commit()
    except BaseException:
        # Stopped, or a worker or the cluster failed: what was computed is committed, so the
        # rerun starts after it.
        try:
            writer.commit()
        except Exception:
            pass  # the disk that refused the part refuses it again; the rerun computes it
        raise
    finally:
        seconds = time.perf_counter() - start
        _record_build(atlas, engine, address, used, batch, processed, writer, seconds, first_batch_at, start)
    result.update(**used, added=writer.added, skipped=len(writer.new_skipped), skipped_files=writer.new_skipped,
                  seconds=round(seconds, 2), images_per_s=round(processed / seconds, 2) if seconds else None,
                  first_batch_s=round(first_batch_at - start, 2) if first_batch_at else None)
    # Past the first batch, which carries the start of Ray and its workers (seconds on a laptop):
    # the rate a long build runs at.
    end = start + seconds
    if first_batch_at is not None and processed > first_batch_rows and end > first_batch_at:
        result["steady_images_per_s"] = round((processed - first_batch_rows) / (end - first_batch_at), 2)
    return result


def _open_or_create(out: Path, model, options, fingerprint, root, layers, probe, k) -> Atlas:
    if (out / "manifest.json").exists():
        atlas = Atlas(out)
        m = atlas.manifest
        if m["model"].get("fingerprint") != fingerprint:
            raise DeepvisError(f"{out} was built with {m['model']['name']} ({m['model'].get('weights')}, fingerprint "
                               f"{str(m['model'].get('fingerprint'))[:12]}); this is {model.name} ({model.weights}, "
                               f"{fingerprint[:12]}): give another --out")
        if layers and list(layers) != atlas.layers:
            raise DeepvisError(f"{out} holds the layers {', '.join(atlas.layers)}: give another --out for "
                               f"{', '.join(layers)}")
        if Path(m["dataset"]["root"]) != root:
            raise DeepvisError(f"{out} is an atlas of {m['dataset']['root']}, not {root}: give another --out")
        return atlas
    if out.exists() and any(p.name != LOCK for p in out.iterdir()):
        raise DeepvisError(f"{out} exists and is not an atlas: give an empty or new folder")
    layers = list(layers) if layers else [probe.feature_layer().name]
    infos = [probe.layer(name) for name in layers]  # a clear error for a bad name
    spec = model.spec
    manifest = {
        "model": {"name": model.name, "source": options.get("source"), "weights": model.weights,
                  "fingerprint": fingerprint, "task": model.task, "labels": model.labels,
                  # what each worker loads the model from, and what ``atlas units`` loads again
                  "options": {key: value for key, value in options.items() if key != "device"}},
        "input": {"size": list(spec.size), "channels": spec.channels, "mean": list(spec.mean),
                  "std": list(spec.std), "fit": spec.fit},
        "layers": layers,
        "channels": {info.name: info.channels for info in infos},
        "k": k,
        "topk_predictions": TOPK,
        "dataset": {"root": str(root)},
        "counts": {"images": 0, "skipped": 0, "parts": 0},
        "versions": _versions(),
        "builds": [],
    }
    return create_atlas(out, manifest)


def _load_units(atlas: Atlas, layers, probe, k) -> dict[str, UnitTopK]:
    if atlas.included_parts():
        return {name: atlas.units(name) for name in layers}
    units = {}
    for name in layers:
        info = probe.layer(name)  # shapes are C x H x W, token and channels-last layers too
        units[name] = UnitTopK(info.channels, k, info.shape[1:] if info.spatial else (1, 1))
    return units


class _PartWriter:
    """Buffers rows, merges unit profiles, and commits Parquet parts with the profiles."""

    def __init__(self, atlas: Atlas, layers, units, skipped: dict, part_rows: int):
        self.atlas, self.layers, self.units, self.part_rows = atlas, layers, units, part_rows
        self.skipped = dict(skipped)
        self.new_skipped: list[str] = []
        self.pending: list[dict] = []
        self.pending_rows = 0
        self.added = 0
        self.committed = sorted(atlas.included_parts())
        self.next_part = len(self.committed)

    def add(self, batch: dict) -> None:
        errors = np.asarray(batch["error"], dtype=object)
        bad = np.array([bool(e) for e in errors])
        for path, error in zip(np.asarray(batch["path"])[bad], errors[bad]):
            self.skipped[str(path)] = str(error)
            self.new_skipped.append(f"{path}: {error}")
        good = ~bad
        if not good.any():
            return
        rows = {key: np.asarray(value)[good] for key, value in batch.items() if key != "error"}
        for name in self.layers:
            self.units[name].update(rows[f"max:{name}"], rows[f"argmax:{name}"], rows["path"], rows[f"feat:{name}"])
        self.pending.append(rows)
        self.pending_rows += int(good.sum())
        if self.pending_rows >= self.part_rows:
            self.commit()

    def commit(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.pending:
            rows = {key: np.concatenate([p[key] for p in self.pending]) for key in self.pending[0]}
            columns = {"path": pa.array([str(p) for p in rows["path"]], pa.string()),
                       "label": pa.array([str(v) for v in rows["label"]], pa.string()),
                       "top_index": _fixed(rows["top_index"].astype(np.int32)),
                       "top_prob": _fixed(rows["top_prob"].astype(np.float32))}
            if "source_size" in rows:  # the file as read: size and modification time (ns)
                columns["source_size"] = pa.array(rows["source_size"].astype(np.int64), pa.int64())
                columns["source_mtime"] = pa.array(rows["source_mtime"].astype(np.int64), pa.int64())
            for name in self.layers:
                columns[f"feat:{name}"] = _fixed(rows[f"feat:{name}"].astype(np.float32))
            name = f"part-{self.next_part:05d}.parquet"
            path = self.atlas.path / "images" / name
            tmp = path.with_name(name + ".tmp")
            pq.write_table(pa.table(columns), tmp)
            os.replace(tmp, path)
            self.committed.append(name)
            self.next_part += 1
            self.added += len(rows["path"])
            self.pending, self.pending_rows = [], 0
        # The unit profiles name the parts they include; committing them second makes the part count.
        parts = np.array(sorted(self.committed))
        arrays = {"parts": parts}
        for layer in self.layers:
            arrays.update(self.units[layer].to_arrays(f"{layer}/"))
        units_path = self.atlas.path / "units.npz"
        tmp = self.atlas.path / "units.part.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, units_path)
        write_json(self.atlas.path / "skipped.json", self.skipped)


def _fixed(array: np.ndarray):
    import pyarrow as pa

    return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(array).reshape(-1)), array.shape[1])


def _local_batches(model, options, layers, root, todo, batch):
    worker = AtlasWorker(options, layers, str(root), model=model)
    for i in range(0, len(todo), batch):
        yield worker({"path": np.array(todo[i:i + batch], dtype=object)})


@contextmanager
def ray_session(address: str | None):
    """Ray, connected to the cluster at ``address`` or started locally on this machine's cores;
    a Ray this function started is shut down at the end."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        for name in ("ray", "ray.data", "ray.data._internal"):
            logging.getLogger(name).setLevel(logging.ERROR)
        if address:
            from deepvis.atlas.rayauth import prepare_token_auth

            check_ray_address(address)  # Ray would retry for minutes against nothing
            prepare_token_auth(address)  # and for 20 s against a cluster that wants a token
        try:
            if address:
                ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
            else:
                # "local": a new Ray on this machine; no address would join a `ray start` cluster
                # running here instead, which is what --address is for.
                ray.init(address="local", num_cpus=_cores(), include_dashboard=False,
                         logging_level=logging.ERROR, log_to_driver=False)
        except Exception as exc:  # a wrong address, a cluster of another Ray version
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DeepvisError(f"cannot start or reach Ray{f' at {address}' if address else ''}: {first}") from None
    try:
        yield ray
    finally:
        if started_here:
            ray.shutdown()


def _ray_batches(options, layers, root, todo, batch, workers, address, used: dict):
    import ray.data

    with ray_session(address) as ray:
        try:
            context = ray.data.DataContext.get_current()
            context.enable_progress_bars = False
            context.execution_options.verbose_progress = False
            resources = ray.cluster_resources()
            cpus = int(resources.get("CPU", 1))
            gpus = int(resources.get("GPU", 0))
            use_gpu = gpus > 0 and options.get("device", "auto") in ("auto", "cuda")
            most = gpus if use_gpu else cpus
            if workers and workers > most:
                used["note"] = (f"--workers {workers} lowered to {most}: the cluster has {most} "
                                f"{'GPUs' if use_gpu else 'CPUs'}, and a worker needs one")
                workers = most
            workers = workers or most
            threads = max(1, cpus // workers)
            used.update(workers=workers, threads=threads, cluster_cpus=cpus, cluster_gpus=gpus)
            worker_options = {**options, "device": "cuda" if use_gpu else "cpu"}
            dataset = ray.data.from_items([{"path": p} for p in todo],
                                          override_num_blocks=max(1, len(todo) // batch))
            with warnings.catch_warnings():
                # max_restarts is passed the deprecated way: Ray 2.60 has no named parameter for it.
                warnings.simplefilter("ignore")
                rows = dataset.map_batches(
                    AtlasWorker, fn_constructor_kwargs={"model_options": worker_options, "layers": layers,
                                                        "root": str(root), "threads": threads},
                    batch_size=batch, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers),
                    num_cpus=threads, num_gpus=1 if use_gpu else 0,
                    # A worker that dies is not restarted: its batch fails the build (which
                    # resumes); restartable actors make Ray warn on stderr about their arguments.
                    max_restarts=0)
            yield from rows.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=2)
        except DeepvisError:
            raise
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise DeepvisError(f"the Ray build failed: {type(exc).__name__}: {first}") from None


def _record_build(atlas, engine, address, used, batch, processed, writer, seconds, first_batch_at, start):
    manifest = atlas.manifest
    rows = sum(_parquet_rows(p) for p in atlas.parts())
    manifest["counts"] = {"images": rows, "skipped": len(writer.skipped), "parts": len(atlas.parts())}
    manifest["versions"] = _versions()
    manifest["builds"].append({"engine": engine, "address": address, **used, "batch": batch,
                               "images": processed, "seconds": round(seconds, 2),
                               "images_per_s": round(processed / seconds, 2) if seconds else None,
                               "first_batch_s": round(first_batch_at - start, 2) if first_batch_at else None,
                               "at": time.strftime("%Y-%m-%dT%H:%M:%S")})
    write_json(atlas.path / "manifest.json", manifest)


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _cores() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _versions() -> dict:
    import torch

    from deepvis import __version__

    versions = {"deepvis": __version__, "torch": torch.__version__, "python": platform.python_version()}
    for name in ("ray", "pyarrow"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    return versions
