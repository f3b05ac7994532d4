"""The one rule for option values, its second half: a valid value too large for the data at hand
is lowered, said on one ``note:`` line, and the value used is what the JSON reports."""

import json

from atlasdata import write_noise_images
from clirun import run_command


def _notes(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("note:")]


def test_predict_top_beyond_the_classes_is_lowered_and_said(tmp_path):
    from deepvis.resources import sample_image

    done = run_command(["predict", "--model", "digits_cnn", "--input", sample_image("cat"), "--top", "50",
                        "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["top"] == 10 and len(result["predictions"]) == 10
    assert _notes(done.stderr) == ["note: --top 50 lowered to 10, the number of classes"]
    within = run_command(["predict", "--model", "digits_cnn", "--input", sample_image("cat"), "--top", "10",
                          "--json"], tmp_path)
    assert json.loads(within.stdout)["top"] == 10 and _notes(within.stderr) == []


def test_atlas_map_perplexity_beyond_the_rows_is_lowered_and_the_used_one_recorded(tmp_path):
    from deepvis.atlas.build import build_atlas

    data = tmp_path / "data"
    write_noise_images(data, 13)
    build_atlas({"source": "digits_cnn", "device": "cpu"}, data, tmp_path / "atlas", engine="local")
    done = run_command(["atlas", "map", tmp_path / "atlas", "--perplexity", "30", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["perplexity"] == 4.0 and info["perplexity_asked"] == 30  # (13 - 1) / 3
    assert len(_notes(done.stderr)) == 1 and "perplexity 30 lowered to 4" in _notes(done.stderr)[0]
