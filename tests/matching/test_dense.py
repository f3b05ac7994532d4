"""Dense correspondence from a layer's features: the heat map is the cosine similarity of the
upsampled, unit-length features computed directly; a shifted copy of a photo is matched where
the shift puts the point; mutual nearest neighbours are mutual; bad requests are one error."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deepvis.core.loading import load_model
from deepvis.core.probe import Probe
from deepvis.errors import DeepvisError
from deepvis.io.images import read_image
from deepvis.matching.dense import describe, heatmap, match, mutual_nearest
from deepvis.resources import sample_image

LAYER = "_blocks.2"  # stride 4: fine enough to place a match within a few pixels


@pytest.fixture(scope="module")
def lite0():
    model = load_model("efficientnet_lite0")
    return model, Probe(model.module, model.example_input())


@pytest.fixture(scope="module")
def pair():
    photo = read_image(sample_image("cat"))
    a = np.ascontiguousarray(photo[40:200, 60:220])  # 160 x 160
    b = np.ascontiguousarray(photo[48:208, 54:214])  # the same view moved: a point (x, y) of a is (x + 6, y - 8) in b
    return a, b


def test_the_heatmap_is_the_cosine_similarity_of_the_upsampled_features(lite0, pair):
    model, probe = lite0
    a, b = (describe(model, probe, picture, LAYER) for picture in pair)
    x = torch.from_numpy(((pair[1] / 255.0 - np.array(model.spec.mean)) / np.array(model.spec.std))
                         .astype(np.float32)).permute(2, 0, 1)[None]
    with torch.no_grad():
        grid = probe.capture_until(x, LAYER)
    direct_b = F.normalize(F.interpolate(grid, size=(160, 160), mode="bilinear", align_corners=False)[0], dim=0)
    assert torch.allclose(direct_b, b.pixels, atol=1e-5)
    direct = torch.einsum("c,chw->hw", a.pixels[:, 70, 90], direct_b).numpy()
    assert np.allclose(heatmap(a, b, (90, 70)), direct, atol=1e-5)


def test_a_moved_view_is_matched_where_the_move_puts_the_point(lite0, pair):
    model, probe = lite0
    a, b = (describe(model, probe, picture, LAYER) for picture in pair)
    for x, y in ((80, 60), (100, 90), (60, 110)):  # inside the part both views share
        found = match(a, b, (x, y))
        assert np.hypot(found.best[0] - (x + 6), found.best[1] - (y - 8)) <= 4, found.best
        assert found.confidence >= 1
    for pair_ in mutual_nearest(a, b, count=30):
        assert pair_["similarity"] <= 1 + 1e-6
    # Mutual: each pair's cells are each other's best match.
    fa = F.normalize(a.grid.flatten(1), dim=0)
    fb = F.normalize(b.grid.flatten(1), dim=0)
    s = fa.T @ fb
    forward, backward = s.argmax(1), s.argmax(0)
    mutual = (backward[forward] == torch.arange(len(forward))).sum()
    assert len(mutual_nearest(a, b, count=10_000)) == int(mutual)


def test_bad_requests_are_one_error(lite0, pair):
    model, probe = lite0
    a = describe(model, probe, pair[0], LAYER)
    with pytest.raises(DeepvisError, match="outside the first picture"):
        heatmap(a, a, (500, 3))
    with pytest.raises(DeepvisError, match="no spatial grid"):
        describe(model, probe, pair[0], "_fc")
    with pytest.raises(DeepvisError, match="no layer"):
        describe(model, probe, pair[0], "nope")


def test_a_grid_too_large_for_all_pairs_is_pooled_and_its_pairs_still_land_on_the_picture():
    """An early layer at a picture's full size (here a 100 x 90 grid of a 200 x 180 picture,
    9,000 cells): pooled by 2 to 50 x 45, a picture against itself pairs every pooled cell with
    itself, at the centre of the four cells it averages."""
    from deepvis.matching.dense import MUTUAL_CELLS, DescriptorMap

    grid = F.normalize(torch.randn(16, 90, 100, generator=torch.Generator().manual_seed(0)), dim=0)
    picture = DescriptorMap(torch.zeros(16, 180, 200), grid, "early")
    assert 90 * 100 > MUTUAL_CELLS >= 45 * 50
    pairs = mutual_nearest(picture, picture, count=10_000)
    assert len(pairs) == 45 * 50
    for pair_ in pairs:
        assert pair_["a"] == pytest.approx(pair_["b"]) and pair_["similarity"] == pytest.approx(1, abs=1e-5)
    # Pooled cell (0, 0) averages layer cells (0..1, 0..1), whose centre is picture pixel (1.5, 1.5).
    assert min(p["a"] for p in pairs) == pytest.approx((1.5, 1.5))
