"""Explaining a region of a segmentation (Seg-Grad-CAM): "class c inside the blob I clicked"
on the bundled FCN, for two-digit scenes built in the test."""

import numpy as np
import pytest
import torch

from deepvis.attribution.saliency import Target, attribute
from deepvis.core.loading import load_model
from deepvis.core.probe import Probe
from deepvis.errors import DeepvisError
from deepvis.models import digits_fcn
from deepvis.models.digits_cnn import load_split
from deepvis.segmentation.dense import dense_maps
from deepvis.segmentation.regions import blob_region, blob_under


def _two_digit_scenes(count=20, seed=0, same_class=False):
    """64x64 scenes with one held-out digit (x3) in the left half and another in the right,
    of another class, or with ``same_class`` of the same one."""
    _, X_test, _, y_test = load_split()
    rng = np.random.default_rng(seed)
    scenes = []
    for _ in range(count):
        a = rng.integers(len(X_test))
        others = (y_test == y_test[a]) if same_class else (y_test != y_test[a])
        b = rng.choice(np.flatnonzero(others & (np.arange(len(y_test)) != a)))
        canvas = np.zeros((64, 64), np.float32)
        for index, x0 in ((a, rng.integers(2, 8)), (b, rng.integers(34, 40))):
            y0 = rng.integers(4, 36)
            canvas[y0:y0 + 24, x0:x0 + 24] = digits_fcn.upscale(X_test[index:index + 1], 3)[0, 0]
        scenes.append((canvas, int(y_test[a])))
    return scenes


def _left_shares(method: str, same_class: bool, compare: bool = True):
    """For each scene: the left half's share of the map explaining the left digit's class inside
    the blob clicked on it, and without the region."""
    model = load_model("digits_fcn", device="cpu")
    probe = Probe(model.module, model.example_input())
    inside, everywhere = [], []
    for canvas, left in _two_digit_scenes(same_class=same_class):
        x = torch.from_numpy(canvas)[None, None]
        with torch.inference_mode():
            labels = dense_maps(model.module(x)).labels
        ys, xs = np.nonzero(labels[:, :32] == left + 1)  # click the left digit's predicted pixels
        if len(ys) == 0:
            inside.append(0.0)
            everywhere.append(0.0)
            continue
        k, region = blob_region(labels, xs[len(xs) // 2], ys[len(ys) // 2])
        assert k == left + 1 and region[2] <= 0.6
        targets = [(Target("class", k, region=region), inside)] + [(Target("class", k), everywhere)] * compare
        for target, out in targets:
            saliency = np.abs(attribute(model.module, probe, x, method, target))
            out.append(float(saliency[:, :32].sum() / max(saliency.sum(), 1e-12)))
    return np.array(inside), np.array(everywhere)


def test_region_gradcam_points_at_the_clicked_digit():
    inside, _ = _left_shares("gradcam", same_class=False, compare=False)
    print(f"region Grad-CAM, two digits of different classes: the left half's share of the map for the left one, "
          f"median {np.median(inside):.3f}, > 0.5 in {(inside > 0.5).sum()}/{len(inside)} scenes")
    assert (inside > 0.5).mean() >= 0.8


def test_the_region_tells_two_digits_of_one_class_apart():
    # Grad-CAM weighs channels by their gradient averaged over the whole map, so for two digits
    # of one class it lights both whatever the region; the gradient itself is local.
    inside, everywhere = _left_shares("gradient", same_class=True)
    print(f"region gradient, two digits of one class: left half's share median {np.median(inside):.3f} with the "
          f"region, {np.median(everywhere):.3f} without")
    assert (inside > 0.7).mean() >= 0.8
    assert np.median(everywhere) < 0.7


def test_blob_under_a_click():
    labels = np.zeros((10, 10), np.int64)
    labels[2:5, 1:4] = 3
    labels[6:9, 6:9] = 3  # the same class elsewhere: another blob
    k, blob = blob_under(labels, 2, 3)
    assert k == 3 and blob.sum() == 9 and not blob[7, 7]
    assert blob_region(labels, 2, 3) == (3, (0.1, 0.2, 0.4, 0.5))
    labels[0, 0] = -1
    with pytest.raises(DeepvisError, match="did not see that pixel"):
        blob_region(labels, 0, 0)


def test_a_drawn_mask_region():
    from deepvis.attribution.saliency import RegionMask

    model = load_model("digits_fcn", device="cpu")
    probe = Probe(model.module, model.example_input())
    canvas, left = _two_digit_scenes(count=1, seed=4, same_class=True)[0]
    x = torch.from_numpy(canvas)[None, None]
    # A rectangle drawn as a mask explains exactly what the same box does.
    box = np.zeros((64, 64), bool)
    box[8:40, 0:32] = True
    as_mask = attribute(model.module, probe, x, "gradient", Target("class", left + 1, region=RegionMask.of(box)))
    as_box = attribute(model.module, probe, x, "gradient", Target("class", left + 1, region=(0, 0.125, 0.5, 0.625)))
    np.testing.assert_allclose(as_mask, as_box, rtol=1e-5, atol=1e-8)
    # A mask of another size is stretched over the map; the blob itself as the region points at it.
    with torch.inference_mode():
        labels = dense_maps(model.module(x)).labels
    ys, xs = np.nonzero(labels[:, :32] == left + 1)
    _, blob = blob_under(labels, xs[len(xs) // 2], ys[len(ys) // 2])
    small = RegionMask.of(blob[::2, ::2] | blob[1::2, 1::2])
    assert small.at(64, 64).shape == (64, 64) and (small.at(64, 64) & blob).sum() > 0.8 * blob.sum()
    saliency = np.abs(attribute(model.module, probe, x, "gradient", Target("class", left + 1, region=small)))
    assert saliency[:, :32].sum() / saliency.sum() > 0.7
    assert "in a drawn region of" in Target("class", 1, region=small).describe()
    with pytest.raises(DeepvisError, match="some pixels set"):
        RegionMask.of(np.zeros((4, 4)))
