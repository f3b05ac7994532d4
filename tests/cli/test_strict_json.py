"""Every ``--json`` output is strict JSON (issue 31): NaN and infinities are null, which any
parser reads; Python's json module would write the bare NaN that strict parsers refuse."""

import json

import numpy as np
import pytest

from deepvis.cli import main
from deepvis.cli.common import print_json
from deepvis.resources import sample_image


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
], ids=["models", "info", "predict", "receptive-field", "segment-with-undefined-metrics"])
def test_command_json_is_strict(argv, tmp_path, capsys):
    from PIL import Image

    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "blank.png")
    truth = np.full((64, 64), 255, np.int64)
    truth[:8, :8] = 0  # one class, in a corner: the other classes' IoU and F1 are undefined
    np.save(tmp_path / "one_class.npy", truth)
    assert main([a.format(tmp=tmp_path) for a in argv]) == 0
    report = _strict(capsys.readouterr().out)
    assert report
