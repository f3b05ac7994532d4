"""``deepvis receptive-field`` and ``deepvis sample`` as a user runs them: a dilated causal
stack's field is 1 + sum((k - 1) d) and causal; a PixelCNN's masked stack is strictly causal
with its blind spot drawn; samples repeat for a seed; bad requests are one error line."""

import json

import numpy as np
import pytest

from deepvis.io.images import read_image

from clirun import run_commands


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    d = tmp_path_factory.mktemp("rf")
    commands = {
        "causal": ["receptive-field", "--model", "testnets:CausalStack", "--at", "50", "--size", "96", "--out",
                   d / "causal.png", "--npy", d / "causal.npy", "--json"],
        "masked": ["receptive-field", "--model", "testnets:MaskedStack", "--at", "6,5", "--size", "10x10", "--out",
                   d / "masked.png", "--npy", d / "masked.npy", "--json"],
        "cnn": ["receptive-field", "--model", "digits_cnn", "--layer", "relu2", "--at", "3,3", "--out", d / "cnn.png",
                "--json"],
        "outside": ["receptive-field", "--model", "digits_cnn", "--layer", "relu2", "--at", "9,3", "--out",
                    d / "never.png"],
        "vector": ["receptive-field", "--model", "digits_cnn", "--layer", "fc1", "--at", "0,0", "--out",
                   d / "never.png"],
        "plain_pixelcnn": ["receptive-field", "--model", "digits_pixelcnn_plain", "--at", "4,0", "--out", d / "p.png",
                           "--npy", d / "plain.npy", "--json"],
        "gated_pixelcnn": ["receptive-field", "--model", "digits_pixelcnn", "--at", "4,0", "--out", d / "g.png",
                           "--npy", d / "gated.npy", "--json"],
        "sample_a": ["sample", "--model", "testnets:TinyPixelCNN", "--size", "8x8", "--count", "4", "--seed", "3",
                     "--out", d / "a.png", "--npy", d / "a.npy"],
        "sample_b": ["sample", "--model", "testnets:TinyPixelCNN", "--size", "8x8", "--count", "4", "--seed", "3",
                     "--out", d / "b.png", "--npy", d / "b.npy"],
        "sample_classifier": ["sample", "--model", "digits_cnn", "--out", d / "never.png"],
        "wavenet": ["receptive-field", "--model", "signals_wavenet", "--at", "500", "--out", d / "wavenet.png",
                    "--json"],
        "dims": ["receptive-field", "--model", "testnets:CausalStack", "--at", "3,3", "--out", d / "never.png"],
    }
    results = run_commands(commands, d)
    return results, d


def _json(result):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_dilated_causal_stack(cli):
    results, d = cli
    report = _json(results["causal"])
    assert report["measured_size"] == 1 + sum((2 - 1) * dil for dil in (1, 2, 4, 8, 16)) == 32
    assert report["theoretical_size"] == [32] and report["measured_extent"] == [32]
    assert report["causal"] is True and report["strictly_causal"] is False
    field = np.load(d / "causal.npy")
    assert field.shape == (96,) and np.flatnonzero(field).tolist() == list(range(19, 51))


def test_pixelcnn_blind_spot(cli):
    results, d = cli
    report = _json(results["masked"])
    assert report["strictly_causal"] is True
    field = np.load(d / "masked.npy")
    assert not field[6, 5:].any() and not field[7:].any()  # nothing at or after the pixel
    assert not field[5, 8] and field[5, 4]  # above-right: the blind spot
    picture = read_image(d / "masked.png")
    scale = picture.shape[0] // 10
    assert tuple(picture[5 * scale + scale // 2, 8 * scale + scale // 2]) == (240, 150, 40)  # drawn orange
    assert tuple(picture[6 * scale + scale // 2, 5 * scale + scale // 2]) == (230, 40, 40)  # the query, red


def test_the_bundled_pixelcnns_blind_spot(cli):
    results, d = cli
    plain, gated = _json(results["plain_pixelcnn"]), _json(results["gated_pixelcnn"])
    assert plain["strictly_causal"] and gated["strictly_causal"]
    assert gated["measured_size"] == 4 * 8  # every earlier pixel of (4, 0)
    missed = np.load(d / "gated.npy") & ~np.load(d / "plain.npy")
    # The plain model's blind spot at (4, 0): above and at least d + 3 columns right, d rows up.
    expected = np.zeros((8, 8), bool)
    for up in range(1, 5):
        expected[4 - up, up + 3:] = True
    np.testing.assert_array_equal(missed, expected)
    assert plain["measured_size"] == 32 - expected.sum() == 22


def test_a_classifier_layer(cli):
    report = _json(cli[0]["cnn"])
    assert report["measured_extent"] == [5, 5] and report["theoretical_size"] == [5, 5]
    assert report["causal"] is False  # ordinary convolutions look both ways


def test_samples_repeat_for_a_seed(cli):
    results, d = cli
    for case in ("sample_a", "sample_b"):
        assert results[case].returncode == 0, results[case].stderr
    a, b = np.load(d / "a.npy"), np.load(d / "b.npy")
    assert a.shape == (4, 1, 8, 8) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert set(np.round(np.unique(a) * 4, 6)) <= {0.0, 1.0, 2.0, 3.0, 4.0}  # the model's 5 levels
    assert read_image(d / "a.png").shape[0] >= 512


@pytest.mark.parametrize("case, needle", [
    ("outside", "--at 9,3 is outside relu2's 8x8 positions"),
    ("vector", "fc1 has no pixels"),
    ("dims", "takes 1-D input: give --at and --size as T"),
    ("sample_classifier", "sample draws from autoregressive"),
])
def test_bad_queries_are_one_error_line(cli, case, needle):
    result = cli[0][case]
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and needle in lines[0], lines


def test_a_1d_models_default_layer_has_time_steps_and_its_picture_a_sane_width(cli):
    results, d = cli
    report = _json(results["wavenet"])  # its last layer with a time axis is a global pool of length 1
    assert report["layer"] == "out_conv" and report["measured_size"] == 501  # causal: positions 0..500
    h, w = read_image(d / "wavenet.png").shape[:2]
    assert 1024 < w < 1200 and h < 300  # was 32,768 px wide, then 4,096: a 1024-px band, its axis and title
