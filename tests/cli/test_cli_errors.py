"""The ``deepvis`` command line as a user runs it: a subprocess per command.

Bad input must end with exit code 2 and exactly one ``error: ...`` line on stderr, never a
traceback; each headless command also gets one happy-path run with its output checked.
Every command pays torch's import (seconds), so all of them are started at once by a module
fixture, a few at a time, and the tests only read their results.
"""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepvis.io.images import read_image
from deepvis.resources import sample_image

pytestmark = pytest.mark.slow  # real `deepvis` processes

CAT_CLASSES = {"Egyptian cat", "tabby", "tiger cat"}


def _digit_png(path):
    """A white '7'-like stroke on black, 16x16 (the digits model sees it at 8x8)."""
    img = np.zeros((16, 16, 3), np.uint8)
    img[3:5, 3:13] = 255  # top bar
    for row in range(5, 14):  # diagonal down-left
        col = 12 - (row - 5) // 2
        img[row, col - 1:col + 1] = 255
    Image.fromarray(img).save(path)
    return path


def _inputs(d: Path) -> dict:
    files = {"cat": sample_image("cat"), "digit": _digit_png(d / "digit.png")}
    data = files["cat"].read_bytes()
    files["corrupt"] = d / "corrupt.png"
    files["corrupt"].write_bytes(data[: len(data) // 3])
    from deepvis.models.digits_cnn import weights_path

    data = weights_path().read_bytes()
    files["truncated"] = d / "truncated.pt"
    files["truncated"].write_bytes(data[: len(data) // 2])
    return files


def _commands(d: Path, f: dict) -> dict:
    digits = ["--model", "digits_cnn"]
    return {
        # bad input
        "corrupt_image": ["predict", *digits, "--input", f["corrupt"]],
        "missing_input": ["predict", *digits, "--input", d / "no_such_photo.jpg"],
        "truncated_weights": ["info", *digits, "--weights", f["truncated"]],
        "unknown_layer": ["activations", *digits, "--input", f["digit"], "--layer", "relu9",
                          "--out", d / "never.png"],
        "unknown_model": ["info", "--model", "resnt18"],
        "bad_input_size": ["info", *digits, "--input-size", "12xq"],
        "missing_argument": ["activations", *digits, "--input", f["digit"], "--out", d / "never2.png"],
        # happy paths
        "models": ["models", "--json"],
        "info": ["info", *digits, "--json"],
        "predict": ["predict", "--model", "efficientnet_lite0", "--input", f["cat"], "--json"],
        "activations": ["activations", *digits, "--input", f["digit"], "--layer", "relu2",
                        "--out", d / "act.png", "--npy", d / "act.npy"],
        "filters": ["filters", *digits, "--out", d / "filters.png"],
    }


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    files = _inputs(d)
    commands = _commands(d, files)
    env = {k: v for k, v in os.environ.items() if k != "DEEPVIS_DEBUG"}
    env["OMP_NUM_THREADS"] = "1"  # several processes share two cores

    def run(argv):
        return subprocess.run([sys.executable, "-m", "deepvis", *map(str, argv)], capture_output=True,
                              text=True, cwd=d, env=env, timeout=240)

    with ThreadPoolExecutor(max_workers=min(4, max(2, os.cpu_count() or 2))) as pool:
        results = dict(zip(commands, pool.map(run, commands.values())))
    return results, files, d


def _assert_one_error_line(result, *needles):
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: ") and line[len("error: "):].strip()
    for needle in needles:
        assert needle.lower() in line.lower(), f"{needle!r} not in {line!r}"
    return line


@pytest.mark.parametrize("case, needles", [
    ("corrupt_image", ["corrupt.png", "truncated", "--allow-truncated"]),
    ("missing_input", ["no_such_photo.jpg", "no such file"]),
    ("truncated_weights", ["truncated.pt", "truncated"]),
    ("unknown_layer", ["'relu9'", "did you mean", "relu2"]),
    ("unknown_model", ["unknown model 'resnt18'", "did you mean resnet18"]),
    ("bad_input_size", ["bad input size '12xq'", "HxW"]),
    ("missing_argument", ["required", "--layer"]),
])
def test_bad_input_is_one_error_line(case, needles, cli):
    results, _, d = cli
    _assert_one_error_line(results[case], *needles)
    assert results[case].stdout == "" or "usage" not in results[case].stdout.lower()
    # Nothing half-written is left behind.
    assert not (d / "never.png").exists() and not (d / "never2.png").exists()


def _ok(result):
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_models_json(cli):
    rows = json.loads(_ok(cli[0]["models"]))
    assert isinstance(rows, list)
    by_name = {row["name"]: row for row in rows}
    assert {"efficientnet_lite0", "digits_cnn", "resnet18", "lraspp_mobilenet_v3_large"} <= set(by_name)
    assert by_name["efficientnet_lite0"]["default"] is True
    assert sum(row["default"] for row in rows) == 1
    assert by_name["efficientnet_lite0"]["weights"] and Path(by_name["efficientnet_lite0"]["weights"]).is_file()
    assert by_name["digits_cnn"]["weights"] and Path(by_name["digits_cnn"]["weights"]).is_file()
    assert by_name["digits_cnn"]["input"] == [1, 8, 8]
    assert by_name["lraspp_mobilenet_v3_large"]["task"] == "segmentation"


def test_info_json(cli):
    info = json.loads(_ok(cli[0]["info"]))
    assert info["name"] == "digits_cnn" and info["task"] == "classification" and info["labels"] == 10
    assert info["input"]["channels"] == 1 and (info["input"]["height"], info["input"]["width"]) == (8, 8)
    assert info["scripted"] is False and info["inner_layers_unavailable"] is None
    shapes = {layer["name"]: layer["shape"] for layer in info["layers"]}
    assert shapes["conv1"] == [32, 8, 8]
    assert shapes["conv2"] == shapes["relu2"] == [64, 8, 8]
    assert shapes["pool"] == [64, 4, 4] and shapes["conv3"] == [32, 4, 4]
    assert shapes["fc1"] == [128] and shapes["fc2"] == [10] and shapes["output"] == [10]
    # conv1 (32*1*9+32) + conv2 (64*32*9+64) + conv3 (32*64*9+32) + fc1 (512*128+128) + fc2 (128*10+10)
    assert info["parameters"] == 320 + 18496 + 18464 + 65664 + 1290


def test_predict_json(cli):
    report = json.loads(_ok(cli[0]["predict"]))
    assert report["model"] == "efficientnet_lite0" and report["kind"] == "classification"
    assert report["weights_from"] == "bundled" and report["out"] is None and report["output"] == "output"
    rows = report["predictions"]
    assert len(rows) == 5
    assert all(set(row) == {"index", "label", "score"} for row in rows)
    assert rows[0]["label"] in CAT_CLASSES
    scores = [row["score"] for row in rows]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0 + 1e-6
    assert sum(row["score"] for row in rows if row["label"] in CAT_CLASSES) > 0.5


def test_activations_png_and_npy(cli):
    import torch

    from deepvis.core.loading import load_model
    from deepvis.core.probe import Probe

    results, files, d = cli
    out = _ok(results["activations"])
    assert "relu2" in out and "64" in out
    act = np.load(d / "act.npy")
    assert act.dtype == np.float32 and act.shape == (64, 8, 8)
    assert act.min() >= 0 and act.max() > 0  # after a ReLU, and the stroke excites something

    # The saved activation is what the model computes on that picture.
    model = load_model("digits_cnn", device="cpu")
    probe = Probe(model.module, model.example_input())
    with torch.inference_mode():
        _, captured = probe.capture(model.input_tensor(read_image(files["digit"])), ["relu2"])
    assert np.allclose(act, captured["relu2"][0].numpy(), atol=1e-5)

    png = read_image(d / "act.png")
    assert png.ndim == 3 and min(png.shape[:2]) >= 512  # small grids are enlarged
    assert png.reshape(-1, 3).std(0).max() > 0  # not a blank image


def test_filters_png(cli):
    results, _, d = cli
    out = _ok(results["filters"])
    assert "conv1" in out and "32x1x3x3" in out
    png = read_image(d / "filters.png")
    assert png.ndim == 3 and min(png.shape[:2]) >= 512
    assert png.reshape(-1, 3).std(0).max() > 0
