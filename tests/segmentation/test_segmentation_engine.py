"""2-D segmentation engine: metrics against an independent computation, ground-truth
masks read as indices (palette, Cityscapes, colours), nearest resizing, dense maps."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional as F

from deepvis.core.inputspec import InputSpec, Preprocessor
from deepvis.errors import DeepvisError
from deepvis.segmentation.dense import UNSEEN, dense_maps, seen_box, shares
from deepvis.segmentation.masks import (IGNORE, check_classes, cityscapes_train_ids, find_mask, fit_mask,
                                        read_colour_table, read_mask, resize_mask)
from deepvis.segmentation.metrics import boundary_f1, confusion, scores
from deepvis.render.colormaps import voc_palette
from deepvis.segmentation.render import hatch_ignored, overlay


def test_metrics_equal_an_independent_confusion_matrix():
    from sklearn.metrics import confusion_matrix

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 5, (40, 50))
    predicted = np.where(rng.random((40, 50)) < 0.7, truth, rng.integers(0, 5, (40, 50)))
    truth[:5] = IGNORE  # unlabelled rows: never counted
    predicted[-3:, :] = UNSEEN  # pixels the model did not see: never counted
    matrix = confusion(truth, predicted, 5)
    keep = (truth != IGNORE) & (predicted >= 0)
    np.testing.assert_array_equal(matrix, confusion_matrix(truth[keep], predicted[keep], labels=range(5)))
    s = scores(matrix)
    for k in range(5):
        t, p = (truth == k) & keep, (predicted == k) & keep
        assert s.iou[k] == pytest.approx((t & p).sum() / (t | p).sum())
        assert s.precision[k] == pytest.approx((t & p).sum() / p.sum())
        assert s.recall[k] == pytest.approx((t & p).sum() / t.sum())
    assert s.miou == pytest.approx(np.mean(s.iou))
    assert s.pixel_accuracy == pytest.approx((truth[keep] == predicted[keep]).mean())


def test_a_class_neither_true_nor_predicted_is_left_out_of_the_mean():
    truth = np.array([[0, 0, 1, 1]])
    predicted = np.array([[0, 2, 1, 1]])
    s = scores(confusion(truth, predicted, 4))
    assert np.isnan(s.iou[3])  # absent everywhere: undefined
    assert s.iou[2] == 0  # predicted where there is none: counts as 0
    assert s.miou == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert s.as_dict(["bg", "a", "b", "c"])["classes"][2] == {"index": 2, "label": "b", "iou": 0.0, "precision": 0.0,
                                                             "recall": None, "in_truth": False}


def test_boundary_f1_tolerates_the_band_and_not_more():
    truth = np.zeros((60, 60), np.int64)
    truth[20:40, 20:40] = 1
    assert boundary_f1(truth, truth, 2) == 1.0
    shifted = np.roll(truth, 2, axis=1)
    assert boundary_f1(truth, shifted, 2, band=2) == pytest.approx(1.0)
    far = np.roll(truth, 8, axis=1)
    assert boundary_f1(truth, far, 2, band=2) < 0.5


def test_voc_palette_png_is_read_as_indices(tmp_path):
    ids = np.zeros((6, 8), np.uint8)
    ids[1:4, 2:6] = 15  # person
    ids[0] = 255  # VOC's unlabelled border
    img = Image.fromarray(ids, mode="P")
    img.putpalette(voc_palette().ravel().tolist())
    img.save(tmp_path / "voc.png")
    assert tuple(voc_palette()[15]) == (192, 128, 128)  # VOC's person pink: the file holds colours too
    mask = read_mask(tmp_path / "voc.png")
    np.testing.assert_array_equal(mask, ids.astype(np.int64))
    check_classes(mask, 21)
    with pytest.raises(DeepvisError, match="has class 15, but the model has 11 classes"):
        check_classes(mask, 11, "voc.png")


def test_cityscapes_label_ids_become_train_ids():
    label_ids = np.array([[7, 8, 26, 0], [33, 24, 1, 23]])
    np.testing.assert_array_equal(cityscapes_train_ids(label_ids), [[0, 1, 13, IGNORE], [18, 11, IGNORE, 10]])


def test_colour_masks_need_a_table_and_grey_ones_do_not(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:2] = (128, 64, 128)
    rgb[2:] = (70, 70, 70)
    Image.fromarray(rgb).save(tmp_path / "colour.png")
    with pytest.raises(DeepvisError, match="colour mask: give its colour -> class table"):
        read_mask(tmp_path / "colour.png")
    (tmp_path / "table.json").write_text('{"128,64,128": 0, "70,70,70": 2}')
    mask = read_mask(tmp_path / "colour.png", read_colour_table(tmp_path / "table.json"))
    np.testing.assert_array_equal(mask, [[0] * 4] * 2 + [[2] * 4] * 2)
    (tmp_path / "short.json").write_text('[[128, 64, 128]]')
    with pytest.raises(DeepvisError, match=r"colour \(70, 70, 70\) is not in the colour table \(8 pixels\)"):
        read_mask(tmp_path / "colour.png", read_colour_table(tmp_path / "short.json"))
    grey = np.repeat(np.array([[3, 4], [5, 255]], np.uint8)[:, :, None], 3, axis=2)
    Image.fromarray(grey).save(tmp_path / "grey_rgb.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "grey_rgb.png"), [[3, 4], [5, 255]])
    Image.fromarray(np.array([[1000, 2]], np.uint16)).save(tmp_path / "wide.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "wide.png"), [[1000, 2]])


def test_resizing_is_nearest_and_shapes_must_match(tmp_path):
    mask = np.array([[0, 1], [2, 255]])
    big = resize_mask(mask, (4, 4))
    assert set(np.unique(big)) == {0, 1, 2, 255}  # no interpolated, made-up ids
    np.testing.assert_array_equal(big, np.kron(mask, np.ones((2, 2), int)))
    assert fit_mask(mask, (6, 6)).shape == (6, 6)
    with pytest.raises(DeepvisError, match="different shapes cannot be matched"):
        fit_mask(mask, (4, 6), "m.png")
    np.save(tmp_path / "float.npy", np.zeros((2, 2), np.float32))
    with pytest.raises(DeepvisError, match="2-D integer array"):
        read_mask(tmp_path / "float.npy")


def test_masks_are_found_by_name(tmp_path):
    images, gts = tmp_path / "images", tmp_path / "gt"
    images.mkdir()
    gts.mkdir()
    for name in ("a_gt.png", "b_mask.png", "c.png", "aachen_000000_000019_gtFine_labelIds.png"):
        (gts / name).write_bytes(b"x")
    assert find_mask(images / "a.jpg", gts).name == "a_gt.png"
    assert find_mask(images / "b.jpg", gts).name == "b_mask.png"
    assert find_mask(images / "c.jpg", gts).name == "c.png"
    assert find_mask(images / "aachen_000000_000019_leftImg8bit.png", gts).name == \
        "aachen_000000_000019_gtFine_labelIds.png"
    assert find_mask(images / "d.jpg", gts) is None


def test_dense_maps_at_the_pictures_resolution():
    torch.manual_seed(0)
    scores_ = torch.randn(1, 5, 12, 16)
    maps = dense_maps({"out": scores_}, (30, 40), modes=("labels", "margin", "entropy"))
    up = F.interpolate(scores_, size=(30, 40), mode="bilinear", align_corners=False)[0]
    np.testing.assert_array_equal(maps.labels, up.argmax(0).numpy())
    probs = torch.softmax(up, 0)
    np.testing.assert_allclose(maps.confidence, probs.max(0).values.numpy(), rtol=1e-5)
    top2 = probs.topk(2, 0).values
    np.testing.assert_allclose(maps.margin, (top2[0] - top2[1]).numpy(), rtol=1e-4, atol=1e-6)
    assert (maps.entropy >= 0).all() and (maps.entropy <= np.log(5) + 1e-5).all()
    # Labels alone come from the logits and agree.
    np.testing.assert_array_equal(dense_maps(scores_, (30, 40)).labels, maps.labels)
    # One sigmoid channel: background and foreground.
    binary = dense_maps(torch.tensor([[[[-2.0, 3.0]]]]), modes=("labels", "confidence"))
    np.testing.assert_array_equal(binary.labels, [[0, 1]])
    np.testing.assert_allclose(binary.confidence, [[1 - 1 / (1 + np.exp(2)), 1 / (1 + np.exp(-3))]], rtol=1e-5)
    with pytest.raises(DeepvisError, match="NaN"):
        dense_maps(torch.full((1, 3, 2, 2), float("nan")))


def test_the_seen_box_is_the_preprocessors_crop():
    frame = np.zeros((300, 451, 3), np.uint8)
    frame[:, 75:376] = 200  # the 300x300 centre a square model sees
    box = seen_box(frame.shape[:2], (64, 64), "crop")
    y0, y1, x0, x1 = box
    assert (y1 - y0, x1 - x0) == (300, 300) and frame[:, x0:x1].min() == 200
    fitted = Preprocessor(InputSpec(3, 64, 64)).fit(frame)
    assert fitted.min() == 200  # the model saw only the bright centre
    maps = dense_maps(torch.zeros(1, 3, 64, 64), frame.shape[:2], box)
    assert (maps.labels[:, :x0] == UNSEEN).all() and (maps.labels[:, x0:x1] >= 0).all()
    np.testing.assert_allclose(shares(maps.labels, 3), [1, 0, 0])
    assert seen_box((300, 451), (64, 64), "stretch") == (0, 300, 0, 451)


def test_overlay_colours_hides_and_hatches():
    image = np.full((10, 10, 3), 100, np.uint8)
    labels = np.zeros((10, 10), np.int64)
    labels[:, 5:] = 15
    labels[0] = UNSEEN
    palette = voc_palette()
    out = overlay(image, labels, palette, opacity=1.0, boundaries=False)
    assert tuple(out[5, 8]) == tuple(palette[15]) and tuple(out[5, 2]) == tuple(palette[0])
    assert out[0, 0, 0] < 100  # unseen: darkened
    hidden = overlay(image, labels, palette, opacity=1.0, hidden=[15], boundaries=False)
    assert tuple(hidden[5, 8]) == (100, 100, 100)
    edged = overlay(image, labels, palette, opacity=0.5)
    assert tuple(edged[5, 4]) == (255, 255, 255)  # the class edge
    truth = np.full((10, 10), IGNORE)
    hatched = hatch_ignored(out, truth)
    assert (hatched == 255).all(axis=2).mean() > 0.2 and (hatched != 255).any()
