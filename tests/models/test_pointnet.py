"""The part segmenters for 3-D shapes: PointNet on points and VoxSegNet on voxels.

Both are scored on shapes generated fresh here, from a seed that neither training run nor
the recipes' own evaluation used.
"""

import numpy as np
import pytest
import torch

from deepvis.shapes3d import parts as parts3d
from deepvis.errors import DeepvisError
from deepvis.models import pointnet, voxnet

FRESH_SEED = 2024
MAX_WEIGHTS_BYTES = 3_000_000


@pytest.fixture(scope="module")
def pointnet_model():
    return pointnet.load_pretrained()


@pytest.fixture(scope="module")
def voxnet_model():
    return voxnet.load_pretrained()


def test_pointnet_weights_are_small_and_described():
    path = pointnet.weights_path()
    assert path.stat().st_size <= MAX_WEIGHTS_BYTES
    state, meta = pointnet.load_checkpoint()
    assert all(t.dtype in (torch.float32, torch.int64) for t in state.values())
    assert meta["part_names"] == parts3d.PART_NAMES
    assert meta["categories"] == parts3d.CATEGORIES
    assert meta["points"] == pointnet.POINTS
    assert FRESH_SEED not in (meta["seed"], meta["held_out_seed"])


def test_pointnet_reaches_its_stated_miou_on_fresh_shapes(pointnet_model):
    _, meta = pointnet.load_checkpoint()
    X, y, cat = parts3d.make_dataset(10, pointnet.POINTS, seed=FRESH_SEED)
    scores = pointnet.evaluate(pointnet_model, X, y, cat)
    print(f"fresh-shape mIoU {scores['miou']:.4f} (stated {meta['held_out_miou']:.4f}), "
          f"voted category {scores['miou_unknown_category']:.4f}; {scores['per_category']}")
    # 60 shapes: the mean's standard error is about 0.01.
    assert scores["miou"] >= meta["held_out_miou"] - 0.04
    assert scores["miou_unknown_category"] >= meta["held_out_miou_unknown_category"] - 0.04
    assert scores["miou"] >= 0.8


def test_pointnet_shapes_and_layer_names():
    model = pointnet.PointNetSeg().eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 300))
    assert logits.shape == (2, len(parts3d.PART_NAMES), 300)
    names = dict(model.named_modules())
    for name in ("input_transform", "conv1", "conv2", "feature_transform", "conv3", "conv4", "conv5", "bn5",
                 "global_pool", "global_relu", "seg_conv1", "seg_global", "seg_out"):
        assert name in names
    assert all(not m.inplace for m in model.modules() if isinstance(m, torch.nn.ReLU))
    with pytest.raises(DeepvisError, match=r"\(B, 3, N\)"):
        model(torch.randn(2, 300, 3))


def test_critical_points_are_the_argmax_before_the_max_pool(pointnet_model):
    X, _, _ = parts3d.make_dataset(1, 1024, seed=FRESH_SEED, categories=["airplane", "lamp"])
    x = torch.from_numpy(X).transpose(1, 2)
    seen = {}
    hooks = [pointnet_model.bn5.register_forward_hook(lambda m, i, o: seen.setdefault("pre", o)),
             pointnet_model.global_relu.register_forward_hook(lambda m, i, o: seen.setdefault("global", o))]
    try:
        with torch.no_grad():
            pointnet_model(x)
    finally:
        for h in hooks:
            h.remove()
    with torch.no_grad():
        indices, features = pointnet_model.critical_points(x)
    pre = seen["pre"]
    assert indices.dtype == torch.long and indices.shape == (2, pre.shape[1]) == (2, 256)
    torch.testing.assert_close(indices, pre.argmax(dim=2), rtol=0, atol=0)
    torch.testing.assert_close(features, seen["global"])
    # The winners' own features are the global feature; a few points decide it.
    winners = torch.gather(pre, 2, indices[:, :, None])[:, :, 0]
    torch.testing.assert_close(features, winners.clamp(min=0))
    assert len(set(indices[0].tolist())) < 256
    # Reordering the points reorders the critical points and leaves the feature alone.
    perm = torch.randperm(x.shape[2], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        indices_p, features_p = pointnet_model.critical_points(x[:, :, perm])
    torch.testing.assert_close(perm[indices_p], indices, rtol=0, atol=0)
    torch.testing.assert_close(features_p, features)


def test_feature_transform_regularizer():
    q, _ = torch.linalg.qr(torch.randn(2, 64, 64))
    assert pointnet.feature_transform_regularizer(q).item() == pytest.approx(0.0, abs=1e-8)
    assert pointnet.feature_transform_regularizer(2 * torch.eye(64)[None]).item() == pytest.approx(64 * 9)


def test_segment_single_cloud_and_named_category(pointnet_model):
    points, labels = parts3d.make_shape("table", np.random.default_rng(FRESH_SEED), 1024)
    pred = pointnet.segment(pointnet_model, points, "table")
    assert pred.shape == (1024,) and set(pred.tolist()) <= set(parts3d.CATEGORIES["table"])
    voted = pointnet.segment(pointnet_model, points)
    assert set(voted.tolist()) <= set(parts3d.CATEGORIES["table"])


def test_two_epochs_from_scratch_learn():
    losses = []
    pointnet.train(epochs=2, shapes_per_epoch=8, points=128, seed=1, progress=lambda e, loss, acc: losses.append(loss))
    assert len(losses) == 2 and losses[1] < losses[0]
    with pytest.raises(DeepvisError, match="reserved"):
        pointnet.train(epochs=1, seed=pointnet.HELD_OUT_SEED)


def test_voxnet_weights_are_small_and_described():
    assert voxnet.weights_path().stat().st_size <= MAX_WEIGHTS_BYTES
    _, meta = voxnet.load_checkpoint()
    assert meta["part_names"] == parts3d.PART_NAMES
    assert meta["resolution"] == voxnet.RESOLUTION
    assert meta["held_out_accuracy"] > meta["majority_accuracy"]


def test_voxnet_beats_the_per_category_majority_part(voxnet_model):
    _, meta = voxnet.load_checkpoint()
    occ, labels, cat = voxnet.voxel_dataset(5, FRESH_SEED)
    result = voxnet.evaluate(voxnet_model, occ, labels, cat)
    # The baseline even gets to pick its majority parts from these very shapes.
    baseline = voxnet.scores(voxnet.majority_baseline(occ, cat, voxnet.majority_parts(labels, cat)), labels, cat)
    print(f"VoxSegNet accuracy {result['accuracy']:.4f}, mIoU {result['miou']:.4f}; "
          f"majority {baseline['accuracy']:.4f}, {baseline['miou']:.4f}")
    assert result["accuracy"] >= baseline["accuracy"] + 0.15
    assert result["miou"] >= baseline["miou"] + 0.3
    assert result["accuracy"] >= meta["held_out_accuracy"] - 0.04
    assert result["miou"] >= meta["held_out_miou"] - 0.05


def test_voxnet_labels_only_occupied_voxels(voxnet_model):
    points, labels = parts3d.make_shape("lamp", np.random.default_rng(FRESH_SEED), 8192)
    occ = parts3d.voxelize(points)
    pred = voxnet.segment(voxnet_model, occ, "lamp")
    assert pred.shape == occ.shape
    assert (pred[~occ] == parts3d.BACKGROUND).all()
    assert set(np.unique(pred[occ]).tolist()) <= set(parts3d.CATEGORIES["lamp"])
    per_point = voxnet.segment_points(voxnet_model, points)
    assert per_point.shape == (8192,)
    assert (per_point == labels).mean() > 0.8
    with pytest.raises(DeepvisError, match="multiple of 4"):
        voxnet_model(torch.zeros(1, 1, 30, 30, 30))


def test_voxnet_part_weights_favour_rare_parts():
    labels = np.array([[0, 0, 0, 0, 0, 0, 0, 0, 1, 1, parts3d.BACKGROUND]])
    weights = voxnet.part_weights(labels, 3).numpy()
    assert weights[2] == 0  # absent part
    assert weights[1] / weights[0] == pytest.approx(2.0)  # a quarter as common -> twice the weight
    assert (weights[labels[labels >= 0]]).mean() == pytest.approx(1.0)
