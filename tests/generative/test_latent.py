"""Latent-space engine: generators load from their weights alone, paths start and end at
their samples, slerp stays on the prior's shell, the bundled digits GAN makes digits, and
inversion finds a generated image again."""

import numpy as np
import pytest
import torch
from torch import nn

from deepvis.errors import DeepvisError
from deepvis.generative.generators import load_generator
from deepvis.generative.latent import corner_grid, invert, path, principal_directions, random_walk


@pytest.fixture(scope="module")
def digits_gan():
    return load_generator()


class TutorialGenerator(nn.Module):
    """The PyTorch DCGAN tutorial's netG, as users train it (smaller widths for speed)."""

    def __init__(self, nz=100, ngf=8, nc=3):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, z):
        return self.main(z)


@pytest.mark.parametrize("wrapped", [False, True])
def test_a_tutorial_dcgan_loads_from_its_state_dict(tmp_path, wrapped):
    torch.manual_seed(0)
    net = TutorialGenerator().eval()
    for m in net.modules():  # non-trivial BatchNorm statistics, as after training
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    path_ = tmp_path / "netG.pth"
    torch.save({"netG_state_dict": net.state_dict(), "epoch": 5} if wrapped else net.state_dict(), path_)
    g = load_generator("dcgan", weights=str(path_))
    assert g.nz == 100
    z = g.latent(7, 3)
    with torch.inference_mode():
        expected = net(z.reshape(3, 100, 1, 1))
        np.testing.assert_allclose(g.generate(z).numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    assert g.images(z).shape == (3, 64, 64, 3)


def test_bad_generator_files_are_clear_errors(tmp_path):
    bad = tmp_path / "not_gan.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, bad)
    with pytest.raises(DeepvisError, match="examples layout"):
        load_generator("dcgan", weights=str(bad))
    with pytest.raises(DeepvisError, match="--weights"):
        load_generator("dcgan")
    with pytest.raises(DeepvisError, match="unknown generator"):
        load_generator("stylegan9")


def test_path_ends_are_the_samples_and_slerp_keeps_the_shell(digits_gan):
    a, b = digits_gan.latent(1), digits_gan.latent(2)
    for mode in ("slerp", "lerp"):
        zs = path(torch.cat([a, b]), 9, mode)
        np.testing.assert_allclose(zs[0].numpy(), a[0].numpy(), atol=1e-5)
        np.testing.assert_allclose(zs[-1].numpy(), b[0].numpy(), atol=1e-5)
        images = digits_gan.images(zs)
        np.testing.assert_array_equal(images[0], digits_gan.images(a)[0])
        np.testing.assert_array_equal(images[-1], digits_gan.images(b)[0])
    # Averaged over many pairs: slerp's midpoints stay near the ends' norms, lerp's dip inside.
    pairs = digits_gan.latent(5, 200).reshape(100, 2, -1)
    dips = {}
    for mode in ("slerp", "lerp"):
        mids = torch.stack([path(p, 3, mode)[1] for p in pairs])
        ends = pairs.norm(dim=2).mean(1)
        dips[mode] = float((mids.norm(dim=1) / ends).mean())
    assert dips["slerp"] == pytest.approx(1.0, abs=0.01)
    assert dips["lerp"] < 0.8  # about 1/sqrt(2) for independent Gaussian ends
    assert path(torch.cat([a, b, digits_gan.latent(3)]), 5)[2].shape == (16,)


def test_grid_walk_and_directions(digits_gan):
    corners = digits_gan.latent(3, 4)
    grid = corner_grid(corners, 4, 5)
    assert grid.shape == (20, 16)
    for corner, index in zip(corners, (0, 4, 15, 19)):
        np.testing.assert_allclose(grid[index].numpy(), corner.numpy(), atol=1e-5)
    walk = random_walk(corners[0], 50)
    steps = (walk[1:] - walk[:-1]).norm(dim=1)
    assert walk.shape == (50, 16) and float(steps.max()) < 2.0  # smooth: no jumps
    directions, variance = principal_directions(digits_gan, 4)
    assert directions.shape == (4, 16) and np.all(np.diff(variance) <= 1e-6)
    np.testing.assert_allclose(directions.norm(dim=1).numpy(), 1.0, rtol=1e-5)
    # Over 100 samples, the leading directions change the pictures more than random unit
    # directions do (measured mean pixel change at strength 2: 36.7, 35.9 vs 22.7 random).
    z = digits_gan.latent(11, 100)
    base = digits_gan.images(z).astype(float)
    random_dirs = torch.randn(100, 16, generator=torch.Generator().manual_seed(2))
    random_dirs /= random_dirs.norm(dim=1, keepdim=True)
    random_change = np.abs(digits_gan.images(z + 2 * random_dirs) - base).mean()
    for k in (0, 1):
        assert np.abs(digits_gan.images(z + 2 * directions[k]) - base).mean() > 1.3 * random_change


def test_bundled_digits_gan_makes_digits(digits_gan, digits):
    images = digits_gan.images(digits_gan.latent(123, 100))
    x = torch.stack([digits.input_tensor(image)[0] for image in images])
    with torch.inference_mode():
        probabilities = torch.softmax(digits.module(x), 1)
    confident = int((probabilities.max(1).values >= 0.9).sum())
    classes = set(probabilities.argmax(1).tolist())
    assert confident >= 65, confident  # measured 76 of 100
    assert len(classes) == 10  # every digit, not one mode


def test_inversion_finds_a_generated_image(digits_gan):
    target_z = digits_gan.latent(99)
    target = digits_gan.images(target_z)[0]
    reports = []
    z, errors = invert(digits_gan, target, steps=200, progress=lambda f, e: reports.append(f))
    assert errors[-1] < errors[0] / 10, (errors[0], errors[-1])  # measured 0.44 -> 0.0045
    found = digits_gan.images(z)[0].astype(float)
    assert np.abs(found - target).mean() < 20  # of 255
    assert reports and reports == sorted(reports)


def test_interpolate_command(tmp_path, capsys):
    from deepvis.cli import main
    from deepvis.io.images import read_image

    out, gif = tmp_path / "strip.png", tmp_path / "strip.gif"
    code = main(["interpolate", "--seeds", "1", "2", "--steps", "6", "--out", str(out), "--gif", str(gif),
                 "--directions", "3", "--grid", "4x5", "--walk", "10"])
    assert code == 0, capsys.readouterr().err
    strip = read_image(out)
    assert strip.shape[1] == 6 * strip.shape[0]  # six square samples side by side
    assert gif.stat().st_size > 0 and (tmp_path / "strip-directions.png").exists()
    grid = read_image(tmp_path / "strip-grid.png")
    assert grid.shape[1] * 4 == grid.shape[0] * 5  # 4 rows of 5 square samples
    assert (tmp_path / "strip-walk.gif").stat().st_size > 0
    assert main(["interpolate", "--seeds", "1", "--out", str(out)]) == 2
    assert "two seeds" in capsys.readouterr().err


def test_faces_generator_when_installed():
    pytest.importorskip("gan_face_generate")
    g = load_generator("faces")
    images = g.images(g.latent(0, 2))
    assert g.nz == 100 and images.shape == (2, 64, 64, 3)
    assert images.std() > 20  # pictures, not a flat colour


def test_inversion_with_a_feature_loss(digits_gan, digits):
    from deepvis.generative.latent import model_features

    target_z = digits_gan.latent(77)
    target = digits_gan.images(target_z)[0]
    features = model_features(digits)
    z, errors = invert(digits_gan, target, steps=150, features=features)
    assert errors[-1] < errors[0] / 5
    # The found sample is what digits_cnn calls the same digit as the target.
    with torch.inference_mode():
        a = digits.module(digits.input_tensor(digits_gan.images(z)[0])).argmax(1)
        b = digits.module(digits.input_tensor(target)).argmax(1)
    assert int(a) == int(b)
