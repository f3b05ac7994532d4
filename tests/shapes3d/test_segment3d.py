"""3-D segmentation engine and CLI: chunked PointNet equals one forward on the whole cloud,
critical points are the max pool's argmax, the committed models label generated shapes,
users' TorchScript point models load, and bad input is one clear line."""

import numpy as np
import pytest
import torch

from deepvis.shapes3d import parts as parts3d
from deepvis.errors import DeepvisError
from deepvis.models.pointnet import PointNetSeg
from deepvis.shapes3d.readers import Cloud
from deepvis.shapes3d.render import part_colors, render_points, view_matrix
from deepvis.resources import RESOURCES_DIR
from deepvis.shapes3d.segment import PointModel, _pointnet_chunked, load_point_model, segment_cloud

SHAPES = RESOURCES_DIR / "shapes"


@pytest.fixture(scope="module")
def random_pointnet():
    torch.manual_seed(0)
    net = PointNetSeg().eval()
    for m in net.modules():  # eval-mode batch norm with statistics that are not the identity
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    return net


@pytest.fixture(scope="module")
def pointnet():
    return load_point_model("pointnet_parts")


def test_chunked_forward_equals_one_forward_and_critical_points_are_the_pool_argmax(random_pointnet):
    pts, _ = parts3d.make_shape("airplane", np.random.default_rng(1), 5000)
    x = torch.from_numpy(pts.T.copy())[None]
    captured = []
    handle = random_pointnet.bn5.register_forward_hook(lambda _m, _a, out: captured.append(out))
    with torch.no_grad():
        whole = random_pointnet(x)
    handle.remove()
    argmax = captured[0][0].argmax(dim=1)  # the point that wins each global channel
    with torch.no_grad():
        chunked, critical = _pointnet_chunked(random_pointnet, x, chunk=999)
    assert torch.allclose(whole, chunked, atol=1e-5)
    assert torch.equal(critical, argmax)
    assert len(torch.unique(critical)) < 256  # points win several channels: a sparse skeleton


def test_features_of_a_layer_are_the_layers_output(random_pointnet):
    pts, labels = parts3d.make_shape("chair", np.random.default_rng(2), 3000)
    model = PointModel(random_pointnet, "points", "random")
    seg = segment_cloud(model, Cloud(pts, None, labels, "chair", "cloud"), chunk=1000, feature_layer="relu4")
    captured = []
    handle = random_pointnet.relu4.register_forward_hook(lambda _m, _a, out: captured.append(out))
    with torch.no_grad():
        random_pointnet(torch.from_numpy(pts.T.copy())[None])
    handle.remove()
    np.testing.assert_allclose(seg.extras["features"], captured[0][0].T.numpy(), atol=1e-5)
    assert "relu4" in model.layers() and "input_transform.conv1" not in model.layers()


def test_committed_pointnet_labels_generated_shapes(pointnet):
    rng = np.random.default_rng(77)
    for category in ("chair", "table", "lamp"):
        pts, truth = parts3d.make_shape(category, rng, 2048)
        seg = segment_cloud(pointnet, Cloud(pts, None, truth, category, "cloud"))
        assert seg.category == category  # the points' vote finds the category
        assert set(np.unique(seg.labels)) <= set(parts3d.CATEGORIES[category])
        assert seg.accuracy > 0.85, (category, seg.accuracy)


def test_segment3d_command_on_bundled_files(tmp_path, capsys):
    from deepvis.cli import main
    from deepvis.io.images import read_image

    out, png = tmp_path / "labels.npy", tmp_path / "chair.png"
    assert main(["segment3d", "--input", str(SHAPES / "chair.obj"), "--out", str(out), "--png", str(png),
                 "--points", "3000", "--critical"]) == 0
    labels = np.load(out)
    assert labels.shape == (3000,) and set(np.unique(labels)) <= set(parts3d.CATEGORIES["chair"])
    picture = read_image(png)
    assert picture.shape == (640, 640, 3) and picture.std() > 10
    assert "as chair" in capsys.readouterr().out
    assert main(["segment3d", "--input", str(SHAPES / "chair_parts.pts"), "--out", str(out)]) == 0
    line = capsys.readouterr().out
    accuracy = float(line.split("accuracy against the file's labels ")[1].split()[0])
    assert accuracy > 0.85
    assert main(["segment3d", "--input", str(SHAPES / "table.binvox"), "--out", str(out)]) == 2
    assert "voxnet_parts" in capsys.readouterr().err
    assert main(["segment3d", "--model", "voxnet_parts", "--input", str(SHAPES / "table.binvox"),
                 "--out", str(out)]) == 0
    grid_labels = np.load(out)
    assert len(grid_labels) > 50 and set(np.unique(grid_labels)) <= set(parts3d.CATEGORIES["table"])


def test_bad_input_is_one_line(tmp_path, capsys):
    from deepvis.cli import main

    broken = tmp_path / "broken.ply"
    broken.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 100\nproperty float x\nend_header\n\x00")
    for argv in (["--input", str(broken)], ["--input", str(tmp_path / "missing.obj")],
                 ["--input", str(SHAPES / "chair.obj"), "--model", "nowhere.pt"],
                 ["--input", str(SHAPES / "chair.obj"), "--category", "boat"]):
        assert main(["segment3d", "--out", str(tmp_path / "x.npy"), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err


class _TinyPointNet(torch.nn.Module):
    """A user's point model: (B, 3, N) -> (B, 4, N)."""

    def __init__(self):
        super().__init__()
        self.mlp = torch.nn.Conv1d(3, 4, 1)

    def forward(self, x):
        return self.mlp(x)


def test_a_users_torchscript_point_model(tmp_path):
    torch.manual_seed(0)
    net = _TinyPointNet().eval()
    path = tmp_path / "mine.pt"
    torch.jit.save(torch.jit.script(net), str(path))
    model = load_point_model(str(path))
    pts, _ = parts3d.make_shape("mug", np.random.default_rng(0), 500)
    seg = segment_cloud(model, Cloud(pts, None, None, "mug", "cloud"))
    expected = net(torch.from_numpy(pts.T.copy())[None])[0].argmax(0).numpy()
    np.testing.assert_array_equal(seg.labels, expected)
    assert seg.part_names == ["part 0", "part 1", "part 2", "part 3"] and seg.critical is None
    assert model.layers() == []  # no hooks inside compiled code: the 3-D tab offers no feature colouring
    image_model = tmp_path / "image.pt"
    torch.jit.save(torch.jit.script(torch.nn.Conv2d(3, 4, 3)), str(image_model))
    with pytest.raises(DeepvisError, match="per-point scores"):
        load_point_model(str(image_model))


def test_render_points_draws_each_point_in_its_part_colour():
    rng = np.random.default_rng(0)
    pts = rng.uniform(-0.8, 0.8, (12, 3)).astype(np.float32)
    labels = np.arange(12)
    image = render_points(pts, part_colors(labels), size=400, point_px=9)
    rotated = pts @ view_matrix().T
    for i in np.argsort(-rotated[:, 2])[:4]:  # the nearest points are drawn on top
        x, y = int(200 + rotated[i, 0] * 180), int(200 - rotated[i, 1] * 180)
        drawn = image[y, x].astype(int)
        colour = part_colors(labels[i:i + 1])[0].astype(int)
        assert np.abs(drawn / max(drawn.max(), 1) - colour / max(colour.max(), 1)).max() < 0.12


def test_a_users_checkpoint_with_its_architecture_as_module_callable(tmp_path, capsys):
    from deepvis.cli import main
    from deepvis.models.pointnet import load_checkpoint

    state, _meta = load_checkpoint()
    torch.save(state, tmp_path / "mine.pth")  # a plain state dict, as a user's training loop saves it
    bundled, mine = tmp_path / "bundled.npy", tmp_path / "mine.npy"
    shape = str(SHAPES / "lamp.xyz")
    assert main(["segment3d", "--input", shape, "--out", str(bundled)]) == 0
    assert main(["segment3d", "--model", "deepvis.models.pointnet:PointNetSeg", "--weights", str(tmp_path / "mine.pth"),
                 "--input", shape, "--out", str(mine)]) == 0
    np.testing.assert_array_equal(np.load(mine), np.load(bundled))
    torch.save({"conv1.weight": torch.zeros(3)}, tmp_path / "wrong.pth")
    capsys.readouterr()
    assert main(["segment3d", "--model", "deepvis.models.pointnet:PointNetSeg", "--weights", str(tmp_path / "wrong.pth"),
                 "--input", shape, "--out", str(mine)]) == 2
    assert "does not fit the model" in capsys.readouterr().err
