"""Stale atlas sources (issue 31): the build records each image's size and modification time;
`atlas units` tells the top images deleted or changed since, blanks their patches and marks
them stale instead of cutting black or wrong patches while reporting every image read."""

import numpy as np

from deepvis.atlas.build import build_atlas
from deepvis.atlas.store import Atlas
from deepvis.atlas.units import unit_patches

from atlasdata import write_noise_images


def test_deleted_and_changed_sources_are_told_and_marked(tmp_path):
    from PIL import Image

    data = tmp_path / "data"
    write_noise_images(data, 24)
    out = tmp_path / "atlas"
    build_atlas({"source": "digits_cnn", "device": "cpu"}, data, out, engine="local")
    atlas = Atlas(out)
    sources = atlas.sources()
    assert len(sources) == 24 and sources["a/x0000.png"][0] == (data / "a/x0000.png").stat().st_size
    units = atlas.units("relu4")
    used = sorted({str(p) for p in units.paths.reshape(-1) if str(p)})
    gone, redrawn = used[:2], used[2]
    for name in gone:
        (data / name).unlink()
    Image.fromarray((np.random.default_rng(99).random((16, 16)) * 255).astype(np.uint8)).save(data / redrawn)
    result = unit_patches(atlas, "relu4")
    assert (result["images_missing"], result["images_changed"]) == (2, 1) and result["sources_recorded"]
    with np.load(result["file"], allow_pickle=False) as saved:
        stale, patches = saved["stale"], saved["patches"]
    expected = np.isin(units.paths.astype(str), [*gone, redrawn])
    assert np.array_equal(stale, expected) and stale.any()
    assert not patches[stale].any()  # blank, not a patch of another picture
    live = expected == False  # noqa: E712 (an array)
    dead = np.zeros_like(live)
    dead[result["dead"]] = True
    assert patches[live & ~dead].any()
