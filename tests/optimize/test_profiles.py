"""Unit profiles (groundwork for the dreams issue): the kept top-k are the k largest spatial
maxima, checked by brute force; patches are the measured receptive field; cached; CLI."""

import numpy as np
import pytest
import torch

from deepvis.io.datasets import digits_dataset
from deepvis.core.probe import Probe
from deepvis.optimize.profiles import profile_units, receptive_field


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPVIS_CACHE", str(tmp_path / "cache"))


def test_top_k_are_the_k_largest_by_brute_force(digits):
    data = digits_dataset()
    profiles = profile_units(digits, data, "conv2", k=5, batch=37)  # a batch that does not divide N
    x = torch.from_numpy(np.stack([digits.preprocessor.array(data.image(i)) for i in range(len(data))]))
    with torch.inference_mode():
        conv2 = digits.module.conv2(digits.module.relu1(digits.module.conv1(x)))
    maxima = conv2.flatten(2).max(2).values.T.numpy()  # (C, N)
    expected = -np.sort(-maxima, 1)[:, :5]
    np.testing.assert_allclose(profiles.values, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.take_along_axis(maxima, profiles.items, 1), profiles.values, rtol=1e-5, atol=1e-6)
    c, j = 7, 0
    y, xx = profiles.locations[c, j]
    assert conv2[profiles.items[c, j], c, y, xx] == pytest.approx(profiles.values[c, j], rel=1e-5)
    assert profiles.patches.shape == (64, 5, 48, 48, 3)


def test_receptive_fields_and_cache(digits):
    probe = Probe(digits.module, digits.example_input())
    assert [receptive_field(digits, probe, layer) for layer in ("conv1", "conv2")] == [3, 5]
    first = profile_units(digits, digits_dataset(), "conv1", k=3)
    again = profile_units(digits, digits_dataset(), "conv1", k=3)
    np.testing.assert_array_equal(first.items, again.items)
    assert first.field == again.field == 3


def test_profile_units_command(tmp_path, capsys):
    from deepvis.cli import main

    out = tmp_path / "profiles"
    code = main(["profile-units", "--model", "digits_cnn", "--data", "digits", "--layer", "conv1", "--top", "4",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert len(list(out.glob("unit_*.png"))) == 32 and (out / "sheet.png").exists()
    lines = (out / "top.csv").read_text().splitlines()
    assert lines[0].startswith("unit,rank,value") and len(lines) == 1 + 32 * 4


def test_bundled_photos_dataset_and_default_data(tmp_path, capsys):
    from deepvis.cli import main
    from deepvis.io.datasets import samples_dataset

    data = samples_dataset()
    assert len(data) == 4 * 16 and sorted(set(data.labels)) == ["astronaut", "cat", "coffee", "rocket"]
    whole, crop = data.image(0), data.image(1)
    assert crop.shape[0] == crop.shape[1] and crop.shape[0] < min(whole.shape[:2])
    assert samples_dataset().key == data.key and samples_dataset(seed=1).key != data.key
    out = tmp_path / "profiles"
    assert main(["profile-units", "--model", "digits_cnn", "--layer", "conv1", "--top", "3", "--out", str(out)]) == 0
    assert "top 3 of 64 images" in capsys.readouterr().out
