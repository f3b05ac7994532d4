"""Every ``--json`` output is strict JSON (issue 31): NaN and infinities are null, which any
parser reads; Python's json module would write the bare NaN that strict parsers refuse."""

import json

import numpy as np
import pytest

from deepvis.cli import main
from deepvis.cli.common import print_json
from deepvis.resources import sample_image

from atlasdata import write_noise_images
from clirun import run_command


def _strict(text: str):
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_print_json_writes_null_for_what_is_not_finite(capsys):
    print_json({"iou": float("nan"), "f1": [1.0, float("inf"), np.float32("nan")], "n": np.int64(3)})
    assert _strict(capsys.readouterr().out) == {"iou": None, "f1": [1.0, None, None], "n": 3}


@pytest.mark.parametrize("argv", [
    ["models", "--json"],
    ["info", "--model", "digits_cnn", "--json"],
    ["predict", "--model", "digits_cnn", "--input", str(sample_image("cat")), "--json"],
    ["receptive-field", "--model", "digits_pixelcnn", "--at", "3,3", "--json", "--out", "{tmp}/r.png"],
    ["segment", "--model", "digits_fcn", "--input", "{tmp}/blank.png", "--gt", "{tmp}/one_class.npy", "--json",
     "--out", "{tmp}/s.png"],
    ["fetch", "--json"],
    ["profile-units", "--model", "digits_cnn", "--data", "{tmp}/noise", "--layer", "conv2", "--top", "2", "--json",
     "--out", "{tmp}/profiles"],
    ["bench", "live", "--model", "digits_cnn", "--frames", "3", "--json"],
    ["doctor", "--model", "digits_cnn", "--limit", "20", "--json"],
    ["compare", "--model", "digits_cnn", "--against", "{weights}", "--limit", "20", "--json"],
    ["match", "--model", "digits_fcn", "--input", "{tmp}/blank.png", "--input2", "{tmp}/blank.png", "--json"],
    ["graph", "--model", "digits_cnn", "--json"],
], ids=["models", "info", "predict", "receptive-field", "segment-with-undefined-metrics", "fetch", "profile-units",
        "bench", "doctor", "compare", "match", "graph"])
def test_command_json_is_strict(argv, tmp_path, capsys):
    from PIL import Image

    write_noise_images(tmp_path / "noise", 4)
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "blank.png")
    truth = np.full((64, 64), 255, np.int64)
    truth[:8, :8] = 0  # one class, in a corner: the other classes' IoU and F1 are undefined
    np.save(tmp_path / "one_class.npy", truth)
    from deepvis.models.digits_cnn import weights_path

    assert main([a.format(tmp=tmp_path, weights=weights_path()) for a in argv]) == 0
    report = _strict(capsys.readouterr().out)
    assert report


def test_the_atlas_commands_json_is_strict(tmp_path):
    """build, map and units on an atlas of 13 noise pictures: a map whose t-SNE perplexity must be
    lowered for so few rows (the one rule for option values: said, and the value used reported)."""
    write_noise_images(tmp_path / "data", 13)
    build = run_command(["atlas", "build", "--model", "digits_cnn", "--data", tmp_path / "data", "--out",
                         tmp_path / "atlas", "--engine", "local", "--json"], tmp_path)
    assert build.returncode == 0, build.stderr
    assert _strict(build.stdout)["images"] == 13
    mapped = run_command(["atlas", "map", tmp_path / "atlas", "--json"], tmp_path)
    assert mapped.returncode == 0, mapped.stderr
    info = _strict(mapped.stdout)
    assert info["perplexity"] == 4.0 and info["perplexity_asked"] == 30  # (13 - 1) / 3
    notes = [line for line in mapped.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "perplexity 30 lowered to 4" in notes[0]
    units = run_command(["atlas", "units", tmp_path / "atlas", "--json"], tmp_path)
    assert units.returncode == 0, units.stderr
    assert _strict(units.stdout)["units"] > 0


def test_every_command_that_has_json_is_parsed_above():
    import argparse

    from deepvis.cli import build_parser

    def with_json(parser, command=""):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from with_json(sub, f"{command} {name}".strip())
            elif "--json" in action.option_strings:
                yield command

    covered = {"models", "info", "predict", "receptive-field", "segment", "fetch", "profile-units", "bench",
               "atlas build", "atlas map", "atlas units", "doctor", "compare", "match", "graph"}
    assert set(with_json(build_parser())) == covered
