"""Atlases over a folder of generated digits with corrupt files mixed in: the Ray path and the
single-process path give the same rows, features equal to the embedding path's, unit top-k
equal to a brute-force pass; reruns add nothing, a stopped build resumes, and a different
model is refused (a `ray start` cluster: test_atlas_cluster)."""

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from deepvis.atlas.build import build_atlas
from deepvis.atlas.demo import CORRUPT, write_digit_folder
from deepvis.atlas.store import Atlas
from deepvis.errors import Cancelled, DeepvisError

from atlasdata import COUNT, LAYERS, OPTIONS, by_path

pytestmark = pytest.mark.slow  # Ray starts and processes


def test_one_row_per_readable_image_and_the_corrupt_files_listed(folder, local_atlas, ray_atlas):
    root, readable = folder
    for atlas, result in (local_atlas, ray_atlas):
        assert sorted(atlas.rows()["path"]) == sorted(readable)
        assert result["added"] == COUNT and result["skipped"] == len(CORRUPT)
        assert set(atlas.skipped()) == set(CORRUPT)
        assert atlas.labels()[:3] == [p.split("/")[0] for p in atlas.rows()["path"][:3]]
        assert atlas.manifest["counts"] == {"images": COUNT, "skipped": len(CORRUPT), "parts": len(atlas.parts())}
        assert len(atlas.parts()) >= 2  # committed a part at a time
    assert ray_atlas[1]["engine"] == "ray" and ray_atlas[1]["workers"] == 2
    assert local_atlas[1]["engine"] == "local"


def test_features_equal_the_single_process_embedding_path(folder, local_atlas, ray_atlas, digits):
    from deepvis.embed.features import extract_features
    from deepvis.io.datasets import folder_dataset

    root, readable = folder
    reference = extract_features(digits, folder_dataset(root), "relu4", use_cache=False)
    paths = [str(Path(p).relative_to(root).as_posix()) for p in reference.paths]
    assert len(paths) == COUNT and len(reference.skipped) == len(CORRUPT)
    for atlas, _ in (local_atlas, ray_atlas):
        ours = by_path(atlas, atlas.features("relu4"), paths)
        assert np.abs(ours - reference.vectors).max() < 1e-5
    a, b = local_atlas[0], ray_atlas[0]
    ids = sorted(a.rows()["path"])
    assert np.abs(by_path(a, a.features("conv2"), ids) - by_path(b, b.features("conv2"), ids)).max() < 1e-5
    predicted = by_path(a, np.array(a.predictions(), dtype=object), paths)
    assert list(predicted) == reference.predictions
    # The bundled CNN reads most of its digits right: the stored predictions are real ones.
    truth = by_path(a, np.array(a.labels(), dtype=object), paths)
    assert np.mean(predicted == truth) > 0.9


def test_unit_top_k_equals_a_brute_force_pass(folder, local_atlas, ray_atlas, digits):
    import torch

    from deepvis.core.probe import Probe
    from deepvis.io.images import read_image

    root, readable = folder
    probe = Probe(digits.module, digits.example_input())
    x = torch.from_numpy(np.stack([digits.preprocessor.array(read_image(root / p)) for p in readable]))
    with torch.inference_mode():
        _, acts = probe.capture(x, ["conv2"])
    flat = acts["conv2"].flatten(2)
    best, where = flat.max(2)  # (N, C): every image's response per unit
    best, where = best.numpy(), where.numpy()
    k = 9
    for atlas, _ in (local_atlas, ray_atlas):
        units = atlas.units("conv2")
        assert units.values.shape == (best.shape[1], k)
        for c in range(best.shape[1]):
            order = np.lexsort((np.array(readable), -best[:, c]))[:k]
            assert np.allclose(units.values[c], best[order, c], atol=1e-5), c
            assert list(units.paths[c]) == [readable[i] for i in order], c
            assert list(units.where[c]) == list(where[order, c]), c
        stats = units.summary()
        assert np.allclose(stats["mean"], best.mean(0), atol=1e-4)
        assert np.allclose(stats["max"], best.max(0), atol=1e-5)
        assert np.allclose(stats["active"], (best > 0).mean(0))


def test_a_rerun_adds_nothing_and_new_images_only_are_added(folder, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(folder[0], root)
    out = tmp_path / "atlas"
    first = build_atlas(OPTIONS, root, out, layers=LAYERS, engine="local", part_rows=1000)
    assert first["added"] == COUNT
    again = build_atlas(OPTIONS, root, out, engine="local")
    assert again["added"] == 0 and again["skipped"] == 0 and again["already"] == COUNT + len(CORRUPT)
    write_digit_folder(tmp_path / "more", 30, seed=5, corrupt=False)
    shutil.copytree(tmp_path / "more", root / "new")
    more = build_atlas(OPTIONS, root, out, engine="local")
    assert more["added"] == 30
    atlas = Atlas(out)
    assert len(atlas) == COUNT + 30 and len(set(atlas.rows()["path"])) == COUNT + 30
    assert atlas.units("conv2").stats["count"][0] == COUNT + 30
    assert [b["images"] for b in atlas.manifest["builds"]] == [COUNT + len(CORRUPT), 30]  # a no-op run is no build


def test_a_different_model_or_layers_or_folder_is_refused(folder, local_atlas, tmp_path):
    atlas, _ = local_atlas
    with pytest.raises(DeepvisError, match="was built with digits_cnn .*give another --out"):
        build_atlas({**OPTIONS, "weights": "none"}, folder[0], atlas.path, engine="local")
    with pytest.raises(DeepvisError, match="holds the layers conv2, relu4"):
        build_atlas(OPTIONS, folder[0], atlas.path, layers=["conv1"], engine="local")
    other = tmp_path / "other"
    write_digit_folder(other, 5, corrupt=False)
    with pytest.raises(DeepvisError, match="is an atlas of"):
        build_atlas(OPTIONS, other, atlas.path, engine="local")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(DeepvisError, match="exists and is not an atlas"):
        build_atlas(OPTIONS, other, tmp_path / "full", engine="local")
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"
    with pytest.raises(DeepvisError, match="not an atlas"):
        Atlas(tmp_path / "full")


def test_a_stopped_build_keeps_its_parts_and_resumes(folder, local_atlas, tmp_path):
    out = tmp_path / "atlas"
    cancel = threading.Event()

    def progress(done, total):
        if done >= 1100:
            cancel.set()

    with pytest.raises(Cancelled):
        build_atlas(OPTIONS, folder[0], out, layers=LAYERS, engine="local", batch=100, part_rows=500,
                    progress=progress, cancel=cancel)
    stopped = Atlas(out)
    # What was computed before the stop is kept (1100 files read, a corrupt one among them),
    # and the unit profiles count exactly the rows kept.
    assert 1100 - len(CORRUPT) <= len(stopped) < COUNT
    assert stopped.units("conv2").stats["count"][0] == len(stopped)
    # A part written without its unit profiles (a crash between the two, or a build still
    # running) is invisible to readers, which delete nothing; the next build removes it.
    orphan = out / "images" / "part-99999.parquet"
    shutil.copy(stopped.parts()[0], orphan)
    reader = Atlas(out)
    assert orphan.exists() and orphan not in reader.parts() and len(reader) == len(stopped)
    resumed = build_atlas(OPTIONS, folder[0], out, engine="local")
    assert not orphan.exists()
    assert resumed["added"] == COUNT - len(stopped)
    atlas, reference = Atlas(out), local_atlas[0]
    ids = sorted(reference.rows()["path"])
    assert np.abs(by_path(atlas, atlas.features("relu4"), ids)
                  - by_path(reference, reference.features("relu4"), ids)).max() < 1e-5
    assert np.array_equal(atlas.units("conv2").paths, reference.units("conv2").paths)
