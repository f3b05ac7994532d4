"""Unit profiles (groundwork for the dreams issue): the kept top-k are the k largest spatial
maxima, checked by brute force; patches are the measured receptive field; cached; CLI."""

import numpy as np
import pytest
import torch

from deepvis.io.datasets import digits_dataset
from deepvis.core.probe import Probe
from deepvis.optimize.profiles import DEAD_TEXT, PATCH, SHEET_FILL, profile_sheet, profile_units, receptive_field
from deepvis.render.tiling import picture_grid


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPVIS_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def conv2_of_digits(digits):
    """The digits model's conv2 over the whole digits dataset, (N, C, H, W), computed here."""
    data = digits_dataset()
    x = torch.from_numpy(np.stack([digits.preprocessor.array(data.image(i)) for i in range(len(data))]))
    with torch.inference_mode():
        return digits.module.conv2(digits.module.relu1(digits.module.conv1(x)))


def test_top_k_are_the_k_largest_by_brute_force(digits, conv2_of_digits):
    data = digits_dataset()
    profiles = profile_units(digits, data, "conv2", k=5, batch=37)  # a batch that does not divide N
    conv2 = conv2_of_digits
    maxima = conv2.flatten(2).max(2).values.T.numpy()  # (C, N)
    expected = -np.sort(-maxima, 1)[:, :5]
    np.testing.assert_allclose(profiles.values, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.take_along_axis(maxima, profiles.items, 1), profiles.values, rtol=1e-5, atol=1e-6)
    c, j = 7, 0
    y, xx = profiles.locations[c, j]
    assert conv2[profiles.items[c, j], c, y, xx] == pytest.approx(profiles.values[c, j], rel=1e-5)
    assert profiles.patches.shape == (64, 5, 48, 48, 3)

    # Units with no positive response at any image and position are dead: no top patches, and
    # the sheet says "dead" where their row of patches would be.
    dead = maxima.max(1) <= 0
    assert np.flatnonzero(dead).tolist() == [5, 10, 14, 21, 32, 35, 39, 42]
    np.testing.assert_array_equal(profiles.dead, dead)
    assert not profiles.patches[dead].any()
    assert profiles.patches[~dead].any(axis=(1, 2, 3, 4)).all()
    sheet = profile_sheet(profiles)
    row = PATCH + 2
    assert sheet.shape == (32 * row, 5 * row, 3)
    for unit in range(32):
        band = sheet[unit * row:(unit + 1) * row]
        if dead[unit]:
            assert band.min() == SHEET_FILL and band.max() == DEAD_TEXT  # the word on the fill, no picture
        else:
            np.testing.assert_array_equal(band, picture_grid(profiles.patches[unit], 5, border=1, fill=SHEET_FILL))


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


def test_profile_units_lists_dead_units_with_no_top_images(tmp_path, capsys, conv2_of_digits):
    import json

    from deepvis.cli import main

    dead = np.flatnonzero(conv2_of_digits.amax((0, 2, 3)).numpy() <= 0).tolist()
    alive = sorted(set(range(64)) - set(dead))
    out = tmp_path / "profiles"
    args = ["profile-units", "--model", "digits_cnn", "--data", "digits", "--layer", "conv2", "--top", "3",
            "--out", str(out)]
    assert main([*args, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["dead"] == dead == [5, 10, 14, 21, 32, 35, 39, 42] and info["units"] == 64
    assert len(info["dead_max"]) == 8 and max(info["dead_max"]) <= 0
    assert sorted(p.name for p in out.glob("unit_*.png")) == [f"unit_{u:04d}.png" for u in alive]
    rows = [line.split(",") for line in (out / "top.csv").read_text().splitlines()[1:]]
    assert sorted({int(r[0]) for r in rows}) == alive and len(rows) == 56 * 3
    assert main(args) == 0  # from the cache now
    text = capsys.readouterr().out
    assert "for 56 units of conv2" in text
    assert "8 dead units (max <= 0 on every image, no top images): 5, 10, 14, 21, 32, 35, 39, 42" in text


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
