"""The one rule for option values, its second half: a valid value too large for the data at hand
is lowered, said on one ``note:`` line, and the value used is what the JSON reports (atlas map's
perplexity: test_strict_json)."""

import json

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
