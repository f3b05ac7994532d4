"""What is made from an atlas: maps that keep neighbours (also for the rows placed into a map
fitted on a sample), unit patches equal to ``profile_units``', feature visualizations as Ray
tasks equal to the single-process ones, and the CLI's one-line errors."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from deepvis.atlas.layout import atlas_map
from deepvis.atlas.store import Atlas
from deepvis.atlas.units import load_patches, load_visualizations, unit_patches, visualize_units
from deepvis.embed.projection import knn_accuracy
from deepvis.errors import DeepvisError

from atlasdata import COUNT, by_path
from clirun import run_command

pytestmark = pytest.mark.slow  # Ray starts and processes


@pytest.fixture
def atlas_copy(local_atlas, tmp_path):
    shutil.copytree(local_atlas[0].path, tmp_path / "atlas")
    return Atlas(tmp_path / "atlas")


def test_a_tsne_map_fitted_on_a_sample_keeps_neighbours_for_the_placed_rows_too(atlas_copy):
    info = atlas_map(atlas_copy, "relu4", "tsne", sample=800)
    assert info["rows"] == COUNT and info["fitted_on"] == 800
    assert info["knn"] >= 0.9 and info["trust"] >= 0.9, info
    coords, stored = atlas_copy.load_map("relu4", "tsne")
    assert coords.shape == (COUNT, 2) and np.isfinite(coords).all() and stored == info
    # The rows t-SNE never saw were placed among their own digits: classify each placed row by
    # its 10 nearest fitted rows on the map.
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)  # the same draw atlas_map made for its sample
    rng.choice(COUNT, min(COUNT, 4000), replace=False)
    fitted = np.sort(rng.choice(COUNT, 800, replace=False))
    placed = np.setdiff1d(np.arange(COUNT), fitted)
    labels = np.array(atlas_copy.labels())
    knn = KNeighborsClassifier(10).fit(coords[fitted], labels[fitted])
    assert knn.score(coords[placed], labels[placed]) >= 0.9
    assert ("relu4", "tsne") in atlas_copy.maps()


def test_pca_map_and_bad_requests(atlas_copy):
    info = atlas_map(atlas_copy, "relu4", "pca")
    coords, _ = atlas_copy.load_map("relu4", "pca")
    assert knn_accuracy(coords, atlas_copy.labels()) == pytest.approx(info["knn"], abs=0.05)
    assert info["knn"] > 0.6  # ten classes: chance is 0.1
    with pytest.raises(DeepvisError, match="holds the layers"):
        atlas_map(atlas_copy, "fc", "pca")
    with pytest.raises(DeepvisError, match="no tsne map of conv2"):
        atlas_copy.load_map("conv2", "tsne")


def test_unit_patches_equal_profile_units(atlas_copy, folder, digits):
    from deepvis.io.datasets import folder_dataset
    from deepvis.optimize.profiles import profile_units

    root, readable = folder
    result = unit_patches(atlas_copy, "conv2", digits)
    patches = load_patches(atlas_copy, "conv2")
    reference = profile_units(digits, folder_dataset(root), "conv2", k=9, use_cache=False)
    assert patches.shape == reference.patches.shape and result["field"] == reference.field
    # Units never active on the folder have no patches in either, and the same units are dead.
    assert result["dead"] == np.flatnonzero(reference.dead).tolist() and len(result["dead"]) > 0
    assert not patches[result["dead"]].any()
    units = atlas_copy.units("conv2")
    relative = [str(p)[len(str(root)) + 1:] for p in reference.paths]
    compared = 0
    for c in range(units.channels):
        if len(set(units.values[c].tolist())) < units.k:
            continue  # ties: either image is a right answer
        assert [relative[i] for i in reference.items[c]] == list(units.paths[c]), c
        assert np.array_equal(patches[c], reference.patches[c]), c
        compared += 1
    assert compared > units.channels // 2


def test_unit_visualizations_as_ray_tasks_equal_the_single_process_ones(atlas_copy, digits):
    units = [0, 5, 17, 40]
    ray = visualize_units(atlas_copy, "conv2", engine="ray", size=32, steps=8, units=units)
    assert ray["visualized"] == 4 and ray["engine"] == "ray"
    images, done = load_visualizations(atlas_copy, "conv2")
    assert list(np.flatnonzero(done)) == units
    assert visualize_units(atlas_copy, "conv2", engine="ray", size=32, steps=8, units=units)["visualized"] == 0
    here = visualize_units(atlas_copy, "conv2", engine="local", size=32, steps=8, units=[1], model=digits)
    assert here["visualized"] == 1
    from deepvis.atlas.units import _visualize_batch

    _, local = _visualize_batch(digits, "conv2", units, 32, 8, 0)
    diff = np.abs(images[units].astype(int) - local.astype(int))
    assert diff.mean() < 1.0, diff.mean()  # threads may change the last float bits, not the picture
    with pytest.raises(DeepvisError, match="own input size"):
        visualize_units(atlas_copy, "relu4", engine="local", size=32, steps=8, model=digits)


def deepvis(*args):
    return run_command(args, Path.cwd())


def test_cli_builds_maps_and_refuses_with_one_line(folder, tmp_path, local_atlas):
    out = tmp_path / "cli"
    proc = deepvis("atlas", "build", "--model", "digits_cnn", "--data", str(folder[0]), "--out", str(out),
                   "--engine", "local", "--layers", "relu4", "--json")
    assert proc.returncode == 0, proc.stderr
    import json

    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["added"] == COUNT and result["skipped"] == 3
    assert proc.stderr.count("skipped ") == 3
    atlas = Atlas(out)
    reference = local_atlas[0]
    ids = sorted(reference.rows()["path"])
    assert np.abs(by_path(atlas, atlas.features("relu4"), ids)
                  - by_path(reference, reference.features("relu4"), ids)).max() < 1e-5
    proc = deepvis("atlas", "map", str(out), "--method", "pca", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["rows"] == COUNT
    for args, message in (
            (("atlas", "build", "--model", "digits_cnn", "--weights", "none", "--data", str(folder[0]),
              "--out", str(out), "--engine", "local"), "was built with"),
            (("atlas", "map", str(tmp_path)), "is not an atlas"),
            (("atlas", "units", str(out), "--layer", "nope"), "holds the layers relu4"),
            (("atlas", "build", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "x"),
              "--engine", "local"), "is not a folder")):
        proc = deepvis(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
