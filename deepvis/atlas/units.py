"""``deepvis atlas units``: each unit's top-k patches from an atlas's merged profiles, and
optionally every unit's feature visualization (the Microscope pass), cached in the atlas.

Patches are cut from the original files around each top response, one receptive field wide,
as ``profile_units`` cuts them. Visualizations run a batch of units per task: on Ray as
parallel tasks (each loads the model once), else in this process; finished batches are saved
as they come, so a stopped run keeps them and a rerun does only the rest.
"""

import os
from pathlib import Path

import numpy as np

from deepvis.atlas.store import Atlas, _safe
from deepvis.errors import Cancelled, DeepvisError

VIS_SIZE = 128
VIS_STEPS = 128
VIS_BATCH = 16  # units per visualization task


def atlas_model_source(atlas: Atlas) -> tuple[str | None, str | None, dict]:
    """(source, weights, load_model's other options): how the atlas's build loaded its model."""
    m = atlas.manifest["model"]
    options = dict(m.get("options") or {"source": m.get("source")})
    source, weights = options.pop("source", None), options.pop("weights", None)
    # JSON made the sizes lists; load_model takes tuples.
    return source, weights, {key: (tuple(v) if isinstance(v, list) else v) for key, v in options.items()}


def load_atlas_model(atlas: Atlas, device: str = "auto"):
    """The atlas's model, loaded as its build loaded it; refused if the weights changed since."""
    from deepvis.core.cache import model_fingerprint
    from deepvis.core.loading import load_model

    m = atlas.manifest["model"]
    source, weights, options = atlas_model_source(atlas)
    model = load_model(source, weights, device=device, **options)
    if model_fingerprint(model) != m["fingerprint"]:
        raise DeepvisError(f"{m['name']} no longer has the weights {atlas.path} was built with "
                           f"(fingerprint {m['fingerprint'][:12]}): rebuild the atlas")
    return model


def patches_file(atlas: Atlas, layer: str) -> Path:
    return atlas.path / "units" / f"{_safe(layer)}-patches.npz"


def vis_file(atlas: Atlas, layer: str) -> Path:
    return atlas.path / "units" / f"{_safe(layer)}-vis.npz"


def unit_patches(atlas: Atlas, layer: str, model=None, progress=None, cancel=None) -> dict:
    """(C, k, PATCH, PATCH, 3) uint8 patches of every unit's top-k, saved in the atlas; black for
    dead units (never active over the atlas's images), whose "top" images would be arbitrary."""
    from deepvis.core.probe import Probe
    from deepvis.io.images import read_image
    from deepvis.optimize.profiles import dead_units, field_patches, receptive_field

    if not atlas.parts():
        raise DeepvisError(f"{atlas.path} holds no images: there are no top images to cut patches from")
    units = atlas.units(layer)
    model = model or load_atlas_model(atlas)
    probe = Probe(model.module, model.example_input())
    dead = dead_units(units.values)
    names = sorted({str(p) for p in units.paths[~dead].reshape(-1) if str(p)})  # a dead unit's are not cut
    index = {name: i for i, name in enumerate(names)}
    recorded = atlas.sources()
    blank = np.zeros((*model.spec.size, model.spec.channels), np.uint8)
    fitted, missing, changed = {}, set(), set()
    for i, name in enumerate(names):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        file = atlas.root / name
        try:
            stat = file.stat()
        except OSError:
            missing.add(name)  # moved or deleted since the build
            fitted[i] = blank
            continue
        if recorded is not None and name in recorded and (stat.st_size, stat.st_mtime_ns) != tuple(recorded[name]):
            changed.add(name)  # another picture under the same name: its patch would be a lie
            fitted[i] = blank
            continue
        try:
            fitted[i] = model.preprocessor.fit(read_image(file))
        except DeepvisError:
            changed.add(name)  # unreadable now, read by the build
            fitted[i] = blank
        if progress is not None:
            progress(i + 1, len(names))
    items = np.vectorize(lambda p: index.get(str(p), -1), otypes=[np.int64])(units.paths)
    stale = np.vectorize(lambda p: str(p) in missing or str(p) in changed, otypes=[bool])(units.paths)
    fitted[-1] = blank
    field = receptive_field(model, probe, layer)
    patches = field_patches(fitted, items, units.locations(), units.map_shape, field, model.spec.size, skip=dead)
    path = patches_file(atlas, layer)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.npz")
    np.savez(tmp, patches=patches, field=field, stale=stale)  # stale: (units, k), the blank patches of lost sources
    os.replace(tmp, path)
    return {"layer": layer, "units": int(patches.shape[0]), "k": int(patches.shape[1]), "field": int(field),
            "images_read": len(names) - len(missing) - len(changed), "images_missing": len(missing),
            "images_changed": len(changed), "sources_recorded": recorded is not None,
            "dead": [int(u) for u in np.flatnonzero(dead)], "file": str(path)}


def load_patches(atlas: Atlas, layer: str) -> np.ndarray | None:
    path = patches_file(atlas, layer)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as d:
        return d["patches"]


def load_visualizations(atlas: Atlas, layer: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(images (C, S, S, 3) uint8, done (C,) bool) or None."""
    path = vis_file(atlas, layer)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as d:
        return d["images"], d["done"].astype(bool)


def _visualize_batch(model_options_or_model, layer: str, units: list[int], size: int, steps: int, seed: int):
    """One task: feature visualizations of ``units`` (loads the model when given its options)."""
    import torch

    from deepvis.core.loading import LoadedModel, load_model
    from deepvis.optimize.unitviz import UnitVisualizer, VizSettings

    model = model_options_or_model
    if not isinstance(model, LoadedModel):
        torch.set_num_threads(1)
        options = dict(model)
        model = load_model(options.pop("source", None), options.pop("weights", None), device="cpu",
                           **{key: (tuple(v) if isinstance(v, list) else v) for key, v in options.items()})
    viz = UnitVisualizer(model)
    settings = VizSettings(layer=layer, unit=units[0], size=size, steps=steps)
    return units, viz.run_units(settings, units, seed=seed + units[0])


MAX_VIS_BYTES = 2**31  # every unit's picture is kept in one array (units x size x size x RGB)


def check_visualization(atlas: Atlas, layer: str, size: int, steps: int, model) -> int:
    """Every unit of ``layer`` visualized at ``size``: refused before anything is computed or
    written when it cannot run or its pictures would not fit; returns the unit count."""
    from deepvis.optimize.unitviz import UnitVisualizer, VizSettings

    channels = atlas.manifest.get("channels", {}).get(layer) if layer in atlas.layers else None
    if not isinstance(channels, int):
        raise DeepvisError(f"{atlas.path} holds the layers {', '.join(atlas.layers)}; not {layer!r}")
    need = channels * size * size * 3
    if need > MAX_VIS_BYTES:
        raise DeepvisError(f"{channels} units of {layer} at {size}x{size} make {need / 2**30:.1f} GiB of pictures, "
                           f"more than the {MAX_VIS_BYTES / 2**30:.0f} GiB allowed: lower --size")
    UnitVisualizer(model).check(VizSettings(layer=layer, unit=0, size=size, steps=steps))  # one clear error, not N
    return int(channels)


def visualize_units(atlas: Atlas, layer: str, engine: str = "auto", address: str | None = None,
                    size: int = VIS_SIZE, steps: int = VIS_STEPS, seed: int = 0, units=None, model=None,
                    progress=None, cancel=None) -> dict:
    """Feature visualizations of ``units`` (default: every unit of ``layer``), saved in the atlas."""
    from deepvis.atlas.build import ray_available

    model = model or load_atlas_model(atlas)
    channels = check_visualization(atlas, layer, size, steps, model)
    stored = load_visualizations(atlas, layer)
    if stored is not None and stored[0].shape == (channels, size, size, 3):
        images, done = stored[0].copy(), stored[1].copy()
    else:
        images, done = np.zeros((channels, size, size, 3), np.uint8), np.zeros(channels, bool)
    wanted = [u for u in (units if units is not None else range(channels)) if not done[u]]
    if any(not 0 <= u < channels for u in wanted):
        raise DeepvisError(f"{layer} has {channels} units")
    batches = [wanted[i:i + VIS_BATCH] for i in range(0, len(wanted), VIS_BATCH)]
    address = address or os.environ.get("RAY_ADDRESS") or None
    use_ray = engine == "ray" or (engine == "auto" and (address or ray_available()))
    if use_ray and not ray_available():
        raise DeepvisError("the Ray engine needs Ray: pip install 'deepvis[atlas]' (or --engine local)")
    finished = 0

    def keep(units_done, pictures):
        nonlocal finished
        images[units_done] = pictures
        done[units_done] = True
        finished += len(units_done)
        _save_vis(atlas, layer, images, done)
        if progress is not None:
            progress(finished, len(wanted))

    if not batches:
        return {"layer": layer, "visualized": 0, "done": int(done.sum()), "units": channels}
    if use_ray:
        from deepvis.atlas.build import ray_session

        options = atlas.manifest["model"].get("options")
        with ray_session(address) as ray:
            task = ray.remote(num_cpus=1)(_visualize_batch)
            pending = [task.remote(options, layer, b, size, steps, seed) for b in batches]
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                keep(*ray.get(ready[0]))
                if cancel is not None and cancel.is_set():
                    for ref in pending:
                        ray.cancel(ref, force=True)
                    raise Cancelled()
    else:
        for b in batches:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            keep(*_visualize_batch(model, layer, b, size, steps, seed))
    return {"layer": layer, "visualized": finished, "done": int(done.sum()), "units": channels,
            "engine": "ray" if use_ray else "local"}


def _save_vis(atlas: Atlas, layer: str, images: np.ndarray, done: np.ndarray) -> None:
    path = vis_file(atlas, layer)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.npz")
    np.savez(tmp, images=images, done=done)
    os.replace(tmp, path)
