"""Hostile input, command by command: every case exits 2 with one ``error:`` line and writes
nothing.

Each case runs the real command in this process (the GUI ones in a subprocess) on a real
model, with its outputs pointed into an empty folder that must still be empty afterwards: a
command that fails half-way must not leave a PNG behind its failed ``--npy``.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from deepvis.cli import _run
from deepvis.resources import sample_image

CAT = str(sample_image("cat"))


class Gadget:
    """A pickled object in a checkpoint: loading it would run this module's code."""


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    """A folder of broken, hostile and odd files; returns its path."""
    from deepvis.models.digits_cnn import weights_path

    d = tmp_path_factory.mktemp("hostile")
    digits = torch.load(weights_path(), map_location="cpu", weights_only=True)
    state = digits.get("state_dict", digits) if isinstance(digits, dict) else digits
    from PIL import Image

    Image.fromarray((np.random.default_rng(0).random((32, 32)) * 255).astype(np.uint8)).save(d / "digit.png")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(d / "tiny.png")
    (d / "corrupt.png").write_bytes(os.urandom(2048))
    good_png = Path(CAT).read_bytes()
    (d / "truncated.png").write_bytes(good_png[: len(good_png) // 3])
    (d / "empty.png").write_bytes(b"")
    (d / "notes.txt").write_text("not an image\n")
    (d / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (d / "bad.json").write_text("{not json")
    (d / "adir").mkdir()
    (d / "empty_dir").mkdir()
    (d / "only_corrupt").mkdir()
    for i in range(3):
        (d / "only_corrupt" / f"x{i}.png").write_bytes(os.urandom(512))
    buffer_path = d / "good.pt"
    torch.save(state, buffer_path)
    blob = buffer_path.read_bytes()
    (d / "truncated.pt").write_bytes(blob[: len(blob) // 2])
    mismatched = dict(state)
    key = next(k for k in mismatched if k.endswith("weight"))
    mismatched[key] = torch.zeros(3, 3)
    torch.save(mismatched, d / "mismatched.pt")
    torch.save({k: v.to(torch.int64) for k, v in state.items()}, d / "int64.pt")
    torch.save({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()},
               d / "nan.pt")
    torch.save({"state_dict": state, "extra": Gadget()}, d / "pickled.pt")
    (d / "corrupt.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 5\nend_header\n1 2\n")
    (d / "empty.obj").write_text("# nothing\n")
    return d


M = ["--model", "digits_cnn"]
IMG = "{d}/digit.png"

# (name, argv) with {d}: the hostile folder, {o}: an empty output folder.
CASES = [
    # predict: inputs
    ("predict-missing", ["predict", *M, "--input", "{d}/missing.png"]),
    ("predict-corrupt", ["predict", *M, "--input", "{d}/corrupt.png"]),
    ("predict-truncated", ["predict", *M, "--input", "{d}/truncated.png"]),
    ("predict-empty", ["predict", *M, "--input", "{d}/empty.png"]),
    ("predict-text", ["predict", *M, "--input", "{d}/notes.txt"]),
    ("predict-folder", ["predict", *M, "--input", "{d}/adir"]),
    # predict: input spec
    ("predict-channels1-on-rgb", ["predict", "--model", "efficientnet_lite0", "--channels", "1", "--input", CAT]),
    ("predict-huge-size", ["predict", *M, "--input-size", "100000x100000", "--input", IMG]),
    ("predict-zero-size", ["predict", *M, "--input-size", "0x0", "--input", IMG]),
    ("predict-text-size", ["predict", *M, "--input-size", "abc", "--input", IMG]),
    ("predict-negative-size", ["predict", *M, "--input-size", "-5x5", "--input", IMG]),
    ("predict-nan-mean", ["predict", *M, "--mean", "nan", "--input", IMG]),
    ("predict-zero-std", ["predict", *M, "--std", "0", "--input", IMG]),
    ("predict-negative-std", ["predict", *M, "--std", "-1", "--input", IMG]),
    ("predict-two-means", ["predict", *M, "--mean", "0.5,0.5", "--input", IMG]),
    ("predict-top-0", ["predict", *M, "--top", "0", "--input", IMG]),
    ("predict-top-text", ["predict", *M, "--top", "many", "--input", IMG]),
    # predict: models and weights
    ("predict-unknown-model", ["predict", "--model", "no_such_model", "--input", IMG]),
    ("predict-truncated-model", ["predict", "--model", "{d}/truncated.pt", "--input", IMG]),
    ("predict-mismatched-weights", ["predict", *M, "--weights", "{d}/mismatched.pt", "--input", IMG]),
    ("predict-truncated-weights", ["predict", *M, "--weights", "{d}/truncated.pt", "--input", IMG]),
    ("predict-int64-weights", ["predict", *M, "--weights", "{d}/int64.pt", "--input", IMG]),
    ("predict-pickled-weights", ["predict", *M, "--weights", "{d}/pickled.pt", "--input", IMG]),
    ("predict-text-weights", ["predict", *M, "--weights", "{d}/notes.txt", "--input", IMG]),
    ("predict-missing-weights", ["predict", *M, "--weights", "{d}/missing.pt", "--input", IMG]),
    ("predict-nan-weights", ["predict", *M, "--weights", "{d}/nan.pt", "--input", IMG]),
    ("predict-missing-labels", ["predict", *M, "--labels", "{d}/missing.txt", "--input", IMG]),
    ("predict-bad-json-labels", ["predict", *M, "--labels", "{d}/bad.json", "--input", IMG]),
    ("predict-binary-labels", ["predict", *M, "--labels", "{d}/binary.bin", "--input", IMG]),
    ("predict-callable-not-a-model", ["predict", "--model", "os:getcwd", "--input", IMG]),
    ("predict-missing-package", ["predict", "--model", "no_such_pkg.mod:build", "--input", IMG]),
    ("predict-cuda-absent", ["predict", *M, "--device", "cuda", "--input", IMG]),
    ("predict-mps-absent", ["predict", *M, "--device", "mps", "--input", IMG]),
    ("info-truncated-model", ["info", "--model", "{d}/truncated.pt"]),
    ("info-zero-width", ["info", *M, "--input-size", "8x0"]),
    # activations
    ("activations-unknown-layer", ["activations", *M, "--input", IMG, "--layer", "nope", "--out", "{o}/a.png"]),
    ("activations-out-is-folder", ["activations", *M, "--input", IMG, "--layer", "conv1", "--out", "{d}/adir"]),
    ("activations-out-unwritable", ["activations", *M, "--input", IMG, "--layer", "conv1",
                                    "--out", "/proc/deepvis/a.png"]),
    ("activations-out-text", ["activations", *M, "--input", IMG, "--layer", "conv1", "--out", "{o}/a.txt"]),
    ("activations-npy-unwritable", ["activations", *M, "--input", IMG, "--layer", "conv1", "--out", "{o}/a.png",
                                    "--npy", "/proc/deepvis/a.npy"]),
    ("activations-npy-folder", ["activations", *M, "--input", IMG, "--layer", "conv1", "--out", "{o}/a.png",
                                "--npy", "{d}/adir"]),
    ("activations-bad-normalize", ["activations", *M, "--input", IMG, "--layer", "conv1", "--out", "{o}/a.png",
                                   "--normalize", "sometimes"]),
    ("activations-bad-colormap", ["activations", *M, "--input", IMG, "--layer", "conv1", "--out", "{o}/a.png",
                                  "--colormap", "rainbow"]),
    ("activations-corrupt-input", ["activations", *M, "--input", "{d}/corrupt.png", "--layer", "conv1",
                                   "--out", "{o}/a.png"]),
    ("activations-nan-weights", ["activations", *M, "--weights", "{d}/nan.pt", "--input", IMG, "--layer", "conv1",
                                 "--out", "{o}/a.png"]),
    # filters
    ("filters-unknown-layer", ["filters", *M, "--layer", "nope", "--out", "{o}/f.png"]),
    ("filters-linear-layer", ["filters", *M, "--layer", "fc1", "--out", "{o}/f.png"]),
    ("filters-out-folder", ["filters", *M, "--out", "{d}/adir"]),
    ("filters-npy-unwritable", ["filters", *M, "--out", "{o}/f.png", "--npy", "/proc/deepvis/f.npy"]),
    ("filters-max-0", ["filters", *M, "--out", "{o}/f.png", "--max-filters", "0"]),
    ("filters-bad-mode", ["filters", *M, "--out", "{o}/f.png", "--mode", "hsv"]),
    ("filters-out-text", ["filters", *M, "--out", "{o}/f.txt"]),
    # saliency
    ("saliency-bad-method", ["saliency", *M, "--input", IMG, "--method", "magic", "--out", "{o}/s.png"]),
    ("saliency-class-out-of-range", ["saliency", *M, "--input", IMG, "--method", "gradient", "--target", "99",
                                     "--out", "{o}/s.png"]),
    ("saliency-unknown-label", ["saliency", *M, "--input", IMG, "--method", "gradient", "--target", "eleven",
                                "--out", "{o}/s.png"]),
    ("saliency-unknown-unit-layer", ["saliency", *M, "--input", IMG, "--method", "gradient", "--unit", "nope:3",
                                     "--out", "{o}/s.png"]),
    ("saliency-unit-out-of-range", ["saliency", *M, "--input", IMG, "--method", "gradient", "--unit",
                                    "conv1:9999", "--out", "{o}/s.png"]),
    ("saliency-inverted-region", ["saliency", *M, "--input", IMG, "--method", "gradient", "--region",
                                  "0.5,0.5,0.2,0.2", "--out", "{o}/s.png"]),
    ("saliency-text-region", ["saliency", *M, "--input", IMG, "--method", "gradient", "--region", "a,b,c,d",
                              "--out", "{o}/s.png"]),
    ("saliency-overlay-nan", ["saliency", *M, "--input", IMG, "--method", "gradient", "--overlay", "nan",
                              "--out", "{o}/s.png"]),
    ("saliency-overlay-5", ["saliency", *M, "--input", IMG, "--method", "gradient", "--overlay", "5",
                            "--out", "{o}/s.png"]),
    ("saliency-overlay-negative", ["saliency", *M, "--input", IMG, "--method", "gradient", "--overlay", "-1",
                                   "--out", "{o}/s.png"]),
    ("saliency-samples-0", ["saliency", *M, "--input", IMG, "--method", "smoothgrad", "--samples", "0",
                            "--out", "{o}/s.png"]),
    ("saliency-gradcam-unknown-layer", ["saliency", *M, "--input", IMG, "--method", "gradcam", "--layer", "nope",
                                        "--out", "{o}/s.png"]),
    ("saliency-gradcam-linear-layer", ["saliency", *M, "--input", IMG, "--method", "gradcam", "--layer", "fc1",
                                       "--out", "{o}/s.png"]),
    ("saliency-gradcam-after-unit", ["saliency", *M, "--input", IMG, "--method", "gradcam", "--unit", "conv1:0",
                                     "--out", "{o}/s.png"]),
    ("saliency-npy-unwritable", ["saliency", *M, "--input", IMG, "--method", "gradient", "--out", "{o}/s.png",
                                 "--npy", "/proc/deepvis/s.npy"]),
    ("saliency-out-folder", ["saliency", *M, "--input", IMG, "--method", "gradient", "--out", "{d}/adir"]),
    ("saliency-missing-input", ["saliency", *M, "--input", "{d}/missing.png", "--method", "gradient",
                                "--out", "{o}/s.png"]),
    ("saliency-nan-weights", ["saliency", *M, "--weights", "{d}/nan.pt", "--input", IMG, "--method", "gradient",
                              "--out", "{o}/s.png"]),
    ("saliency-target-and-unit", ["saliency", *M, "--input", IMG, "--method", "gradient", "--target", "1",
                                  "--unit", "conv1:0", "--out", "{o}/s.png"]),
    # embed
    ("embed-missing-data", ["embed", *M, "--data", "{d}/missing", "--out", "{o}/e.png"]),
    ("embed-empty-data", ["embed", *M, "--data", "{d}/empty_dir", "--out", "{o}/e.png"]),
    ("embed-only-corrupt", ["embed", *M, "--data", "{d}/only_corrupt", "--out", "{o}/e.png"]),
    ("embed-perplexity-0", ["embed", *M, "--data", "digits", "--perplexity", "0", "--out", "{o}/e.png"]),
    ("embed-perplexity-nan", ["embed", *M, "--data", "digits", "--perplexity", "nan", "--out", "{o}/e.png"]),
    ("embed-perplexity-negative", ["embed", *M, "--data", "digits", "--perplexity", "-5", "--out", "{o}/e.png"]),
    ("embed-exaggeration-negative", ["embed", *M, "--data", "digits", "--exaggeration", "-1", "--out",
                                     "{o}/e.png"]),
    ("embed-exaggeration-nan", ["embed", *M, "--data", "digits", "--exaggeration", "nan", "--out", "{o}/e.png"]),
    ("embed-unknown-layer", ["embed", *M, "--data", "digits", "--layer", "nope", "--out", "{o}/e.png"]),
    ("embed-csv-unwritable", ["embed", *M, "--data", "digits", "--method", "pca", "--out", "{o}/e.png",
                              "--csv", "/proc/deepvis/e.csv"]),
    ("embed-csv-folder", ["embed", *M, "--data", "digits", "--method", "pca", "--out", "{o}/e.png",
                          "--csv", "{d}/adir"]),
    ("embed-out-folder", ["embed", *M, "--data", "digits", "--method", "pca", "--out", "{d}/adir"]),
    ("embed-bad-method", ["embed", *M, "--data", "digits", "--method", "mds", "--out", "{o}/e.png"]),
    ("embed-batch-0", ["embed", *M, "--data", "digits", "--batch", "0", "--out", "{o}/e.png"]),
    # dream
    ("dream-unit-out-of-range", ["dream", *M, "--input", IMG, "--layer", "conv2", "--unit", "99999",
                                 "--out", "{o}/d.png"]),
    ("dream-negative-unit", ["dream", *M, "--input", IMG, "--layer", "conv2", "--unit", "-1", "--out", "{o}/d.png"]),
    ("dream-octave-scale-nan", ["dream", *M, "--input", IMG, "--layer", "conv2", "--octave-scale", "nan",
                                "--out", "{o}/d.png"]),
    ("dream-octave-scale-below-1", ["dream", *M, "--input", IMG, "--layer", "conv2", "--octave-scale", "0.5",
                                    "--out", "{o}/d.png"]),
    ("dream-octave-scale-huge", ["dream", *M, "--input", IMG, "--layer", "conv2", "--octave-scale", "1000",
                                 "--out", "{o}/d.png"]),
    ("dream-step-size-nan", ["dream", *M, "--input", IMG, "--layer", "conv2", "--step-size", "nan",
                             "--out", "{o}/d.png"]),
    ("dream-step-size-inf", ["dream", *M, "--input", IMG, "--layer", "conv2", "--step-size", "inf",
                             "--out", "{o}/d.png"]),
    ("dream-step-size-negative", ["dream", *M, "--input", IMG, "--layer", "conv2", "--step-size", "-0.1",
                                  "--out", "{o}/d.png"]),
    ("dream-linear-layer", ["dream", *M, "--input", IMG, "--layer", "fc1", "--out", "{o}/d.png"]),
    ("dream-1x1-image", ["dream", *M, "--input", "{d}/tiny.png", "--layer", "conv2", "--out", "{o}/d.png"]),
    ("dream-nan-weights", ["dream", *M, "--weights", "{d}/nan.pt", "--input", IMG, "--layer", "conv2",
                           "--out", "{o}/d.png"]),
    ("dream-negative-smooth", ["dream", *M, "--input", IMG, "--layer", "conv2", "--smooth", "-1",
                               "--out", "{o}/d.png"]),
    ("dream-negative-jitter", ["dream", *M, "--input", IMG, "--layer", "conv2", "--jitter", "-5",
                               "--out", "{o}/d.png"]),
    ("dream-octaves-0", ["dream", *M, "--input", IMG, "--layer", "conv2", "--octaves", "0", "--out", "{o}/d.png"]),
    ("dream-unknown-layer", ["dream", *M, "--input", IMG, "--layer", "nope", "--out", "{o}/d.png"]),
    ("dream-out-unwritable", ["dream", *M, "--input", IMG, "--layer", "conv2", "--out", "/proc/deepvis/d.png"]),
    ("dream-out-folder", ["dream", *M, "--input", IMG, "--layer", "conv2", "--out", "{d}/adir"]),
    # visualize-unit
    ("visualize-size-60000", ["visualize-unit", *M, "--layer", "conv2", "--unit", "0", "--size", "60000",
                              "--out", "{o}/v.png"]),
    ("visualize-size-1", ["visualize-unit", *M, "--layer", "conv2", "--unit", "0", "--size", "1",
                          "--out", "{o}/v.png"]),
    ("visualize-unit-out-of-range", ["visualize-unit", *M, "--layer", "conv2", "--unit", "99999",
                                     "--out", "{o}/v.png"]),
    ("visualize-negative-unit", ["visualize-unit", *M, "--layer", "conv2", "--unit", "-1", "--out", "{o}/v.png"]),
    # Without --size a linear layer is visualized at the model's own 8x8; at another size it cannot run.
    ("visualize-linear-layer", ["visualize-unit", *M, "--layer", "fc1", "--unit", "0", "--size", "128", "--out",
                                "{o}/v.png"]),
    ("visualize-nan-weights", ["visualize-unit", *M, "--weights", "{d}/nan.pt", "--layer", "conv2", "--unit", "0",
                               "--steps", "4", "--out", "{o}/v.png"]),
    ("visualize-out-folder", ["visualize-unit", *M, "--layer", "conv2", "--unit", "0", "--out", "{d}/adir"]),
    ("visualize-steps-0", ["visualize-unit", *M, "--layer", "conv2", "--unit", "0", "--steps", "0",
                           "--out", "{o}/v.png"]),
    ("visualize-unit-text", ["visualize-unit", *M, "--layer", "conv2", "--unit", "some", "--out", "{o}/v.png"]),
    ("visualize-unknown-layer", ["visualize-unit", *M, "--layer", "nope", "--unit", "0", "--out", "{o}/v.png"]),
    # profile-units
    ("profile-missing-data", ["profile-units", *M, "--data", "{d}/missing", "--layer", "conv2", "--out", "{o}/p"]),
    ("profile-unknown-layer", ["profile-units", *M, "--data", "digits", "--layer", "nope", "--out", "{o}/p"]),
    ("profile-out-is-file", ["profile-units", *M, "--data", "digits", "--layer", "conv2",
                             "--out", "{d}/notes.txt"]),
    ("profile-top-0", ["profile-units", *M, "--data", "digits", "--layer", "conv2", "--top", "0", "--out", "{o}/p"]),
    ("profile-only-corrupt", ["profile-units", *M, "--data", "{d}/only_corrupt", "--layer", "conv2",
                              "--out", "{o}/p"]),
    # interpolate
    ("interpolate-one-seed", ["interpolate", "--seeds", "1", "--out", "{o}/i.png"]),
    ("interpolate-seed-overflow", ["interpolate", "--seeds", "99999999999999999999", "2", "--out", "{o}/i.png"]),
    ("interpolate-negative-seed", ["interpolate", "--seeds", "-1", "2", "--out", "{o}/i.png"]),
    ("interpolate-gif-text", ["interpolate", "--seeds", "1", "2", "--out", "{o}/i.png", "--gif", "{o}/x.txt"]),
    ("interpolate-walk-million", ["interpolate", "--seeds", "1", "2", "--out", "{o}/i.png", "--walk", "1000000"]),
    ("interpolate-unknown-generator", ["interpolate", "--generator", "no_such_gan", "--seeds", "1", "2",
                                       "--out", "{o}/i.png"]),
    ("interpolate-truncated-weights", ["interpolate", "--generator", "dcgan", "--weights", "{d}/truncated.pt",
                                       "--seeds", "1", "2", "--out", "{o}/i.png"]),
    ("interpolate-grid-1x1", ["interpolate", "--seeds", "1", "2", "--grid", "1x1", "--out", "{o}/i.png"]),
    ("interpolate-grid-text", ["interpolate", "--seeds", "1", "2", "--grid", "big", "--out", "{o}/i.png"]),
    ("interpolate-steps-0", ["interpolate", "--seeds", "1", "2", "--steps", "0", "--out", "{o}/i.png"]),
    ("interpolate-steps-million", ["interpolate", "--seeds", "1", "2", "--steps", "1000000", "--out", "{o}/i.png"]),
    ("interpolate-out-folder", ["interpolate", "--seeds", "1", "2", "--out", "{d}/adir"]),
    ("interpolate-out-unwritable", ["interpolate", "--seeds", "1", "2", "--out", "/proc/deepvis/i.png"]),
    ("interpolate-gif-unwritable", ["interpolate", "--seeds", "1", "2", "--out", "{o}/i.png",
                                    "--gif", "/proc/deepvis/i.gif"]),
    ("interpolate-directions-0", ["interpolate", "--seeds", "1", "2", "--directions", "0", "--out", "{o}/i.png"]),
    # segment3d
    ("segment3d-missing", ["segment3d", "--input", "{d}/missing.ply", "--out", "{o}/l.npy"]),
    ("segment3d-corrupt-ply", ["segment3d", "--input", "{d}/corrupt.ply", "--out", "{o}/l.npy"]),
    ("segment3d-text", ["segment3d", "--input", "{d}/notes.txt", "--out", "{o}/l.npy"]),
    ("segment3d-empty-obj", ["segment3d", "--input", "{d}/empty.obj", "--out", "{o}/l.npy"]),
    ("segment3d-out-folder", ["segment3d", "--input", "{shapes}/chair.obj", "--out", "{d}/adir"]),
    ("segment3d-out-unwritable", ["segment3d", "--input", "{shapes}/chair.obj", "--out", "/proc/deepvis/l.npy"]),
    ("segment3d-png-unwritable", ["segment3d", "--input", "{shapes}/chair.obj", "--out", "{o}/l.npy",
                                  "--png", "/proc/deepvis/l.png"]),
    ("segment3d-png-text", ["segment3d", "--input", "{shapes}/chair.obj", "--out", "{o}/l.npy",
                            "--png", "{o}/l.txt"]),
    ("segment3d-points-out-unwritable", ["segment3d", "--input", "{shapes}/chair.obj", "--out", "{o}/l.npy",
                                         "--points-out", "/proc/deepvis/p.npy"]),
    ("segment3d-points-out-folder", ["segment3d", "--input", "{shapes}/chair.obj", "--out", "{o}/l.npy",
                                     "--points-out", "{d}/adir"]),
    ("segment3d-bad-category", ["segment3d", "--input", "{shapes}/chair.obj", "--out", "{o}/l.npy",
                                "--category", "spaceship"]),
    ("segment3d-points-0", ["segment3d", "--input", "{shapes}/chair.obj", "--out", "{o}/l.npy", "--points", "0"]),
    ("segment3d-unknown-model", ["segment3d", "--model", "no_such_net", "--input", "{shapes}/chair.obj",
                                 "--out", "{o}/l.npy"]),
    ("segment3d-truncated-model", ["segment3d", "--model", "{d}/truncated.pt", "--input", "{shapes}/chair.obj",
                                   "--out", "{o}/l.npy"]),
    # bench and usage
    ("bench-unknown", ["bench", "nosuch", *M]),
    ("bench-live-frames-0", ["bench", "live", *M, "--frames", "0"]),
    ("bench-live-bad-saliency", ["bench", "live", *M, "--saliency", "magic"]),
    ("bench-embed-missing-input", ["bench", "embed", "--input", "{d}/missing"]),
    ("bench-seconds-nan", ["bench", "gui-live", *M, "--seconds", "nan"]),
    ("unknown-command", ["paint"]),
    ("unknown-option", ["predict", *M, "--input", IMG, "--colour", "red"]),
    ("missing-required", ["activations", *M, "--input", IMG]),
]


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("name,argv", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_exits_2_with_one_line_and_writes_nothing(name, argv, bad, tmp_path, capsys, monkeypatch):
    from deepvis.resources import RESOURCES_DIR

    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(out)
    before = _files(bad)
    args = [a.format(d=bad, o=out, shapes=RESOURCES_DIR / "shapes") for a in argv]
    try:
        code = _run(args)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2, f"exit {code}: {captured.err[-800:]}"
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err[-800:]
    assert "internal error" not in lines[0]
    assert _files(out) == set(), f"left behind: {_files(out)}"
    assert _files(bad) == before, f"wrote into the input folder: {_files(bad) - before}"


def test_the_battery_is_broad():
    commands = {argv[0] for _, argv in CASES}
    assert len(CASES) >= 100
    assert {"predict", "info", "activations", "filters", "saliency", "embed", "dream", "visualize-unit",
            "profile-units", "interpolate", "segment3d", "bench"} <= commands


GUI_CASES = [
    ("gui-bad-saliency", ["gui", *M, "--saliency", "magic"]),
    ("gui-bad-tab", ["gui", *M, "--tab", "Nope"]),
    ("gui-missing-camera", ["gui", *M, "--camera", "99", "--screenshot", "{o}/s.png"]),
    ("gui-missing-input", ["gui", *M, "--input", "{d}/missing.png", "--screenshot", "{o}/s.png"]),
    ("gui-corrupt-input", ["gui", *M, "--input", "{d}/corrupt.png", "--screenshot", "{o}/s.png"]),
    ("gui-screenshot-unwritable", ["gui", *M, "--input", CAT, "--screenshot", "/proc/deepvis/s.png"]),
    ("gui-screenshot-text", ["gui", *M, "--input", CAT, "--screenshot", "{o}/s.txt"]),
]


@pytest.fixture(scope="module")
def gui_runs(bad, tmp_path_factory):
    """Every GUI case in a process of its own, three at a time: each pays Qt's and torch's
    imports, and they wait on those more than on the cores. -> {name: (process, output folder)}."""
    from concurrent.futures import ThreadPoolExecutor

    def start(case):
        name, argv = case
        root = tmp_path_factory.mktemp(name)
        out = root / "out"
        out.mkdir()
        env = dict(os.environ, XDG_CONFIG_HOME=str(root / "config"))
        args = [a.format(d=bad, o=out) for a in argv]
        return name, (subprocess.run([sys.executable, "-m", "deepvis", *args], capture_output=True, text=True,
                                     timeout=120, cwd=out, env=env), out)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(pool.map(start, GUI_CASES))


@pytest.mark.slow
@pytest.mark.parametrize("name", [c[0] for c in GUI_CASES])
def test_hostile_gui_start_exits_2_soon(name, gui_runs):
    proc, out = gui_runs[name]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-1500:]
    assert _files(out) == set()


def test_file_names_that_are_not_utf8_work_end_to_end(tmp_path, capsys):
    """Linux file names are bytes; a folder with a Latin-1 name in it is a dataset like any other."""
    import shutil

    from deepvis.resources import sample_images

    data = tmp_path / "data"
    data.mkdir()
    odd = os.fsdecode(b"caf\xe9.png")
    for i, image in enumerate(sample_images()[:3]):
        shutil.copy(image, data / (odd if i == 0 else f"ok{i}{Path(image).suffix}"))
    out = tmp_path / os.fsdecode(b"out\xe9.png")
    table = tmp_path / "map.csv"
    assert _run(["embed", *M, "--data", str(data), "--method", "pca", "--out", str(out), "--csv", str(table)]) == 0
    assert out.is_file()
    rows = table.read_bytes().splitlines()
    assert len(rows) == 4 and any(b"caf\xe9.png" in row for row in rows)
    assert "3 points" in capsys.readouterr().out
