"""An image folder of generated digits (corrupt files mixed in) and its atlases, built once."""

import pytest

from deepvis.atlas.build import build_atlas
from deepvis.atlas.demo import write_digit_folder
from deepvis.atlas.store import Atlas

from atlasdata import COUNT, LAYERS, OPTIONS


@pytest.fixture(scope="session")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    readable = write_digit_folder(root, COUNT)
    return root, readable


@pytest.fixture(scope="session")
def local_atlas(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("atlas") / "local"
    result = build_atlas(OPTIONS, folder[0], out, layers=LAYERS, engine="local", batch=128, part_rows=1000)
    return Atlas(out), result


@pytest.fixture(scope="session")
def ray_atlas(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("atlas") / "ray"
    result = build_atlas(OPTIONS, folder[0], out, layers=LAYERS, engine="ray", workers=2, batch=128, part_rows=1000)
    return Atlas(out), result
