"""Models with several outputs (issue 29, item 1): every output listed, the head chosen by the
rule (a softmax or sigmoid, module or function; else the first, said in a note; --head
overrides), predictions equal to a direct call of the model, the other outputs values."""

import json

import numpy as np
import pytest
import torch

from deepvis.cli import main
from deepvis.core.loading import load_model


@pytest.fixture(scope="module")
def picture(tmp_path_factory):
    from deepvis.io.images import write_image

    path = tmp_path_factory.mktemp("heads") / "noise.png"
    write_image(path, (np.random.default_rng(3).random((30, 40, 3)) * 255).astype(np.uint8))
    return path


def _direct(model, path):
    from deepvis.io.images import read_image

    with torch.inference_mode():
        return model.module(model.input_tensor(read_image(path)))


def _predict(capsys, *args):
    assert main(["predict", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_softmax_output_is_the_prediction_and_the_others_are_values(picture, capsys):
    size = ["--model", "testnets:ThreeHeads", "--input-size", "24"]
    assert main(["info", *size, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [(o["name"], o["shape"], o["activation"]) for o in info["outputs"]] == [
        ("output[0]", [4], None), ("output[1]", [10], None), ("output[2]", [2], "softmax")]
    assert info["head"] == "output[2]" and [o["role"] for o in info["outputs"]][:2] == ["values", "values"]
    report = _predict(capsys, *size, "--input", str(picture))
    direct = _direct(load_model("testnets:ThreeHeads", device="cpu", input_size=(24, 24)), picture)
    assert report["output"] == "output[2]" and report["kind"] == "classification"
    # Read as the probabilities they are: not passed through a second softmax.
    got = {p["index"]: p["score"] for p in report["predictions"]}
    np.testing.assert_allclose([got[0], got[1]], direct[2][0].numpy(), atol=1e-5)

    # --head picks the landmarks: the user says they are class scores, so they are softmaxed.
    report = _predict(capsys, *size, "--input", str(picture), "--head", "output[1]", "--top", "10")
    got = {p["index"]: p["score"] for p in report["predictions"]}
    np.testing.assert_allclose([got[k] for k in range(10)], torch.softmax(direct[1][0], 0).numpy(), atol=1e-5)
    assert report["output"] == "output[1]" and not any("--head" in n for n in report["notes"])

    assert main(["predict", *size, "--input", str(picture), "--head", "output[7]"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no output named 'output[7]'" in err[0] and "output[0], output[1], output[2]" in err[0]


def test_without_an_activation_the_first_output_is_taken_and_said(picture, capsys):
    report = _predict(capsys, "--model", "testnets:TwoLogits", "--input-size", "12", "--input", str(picture),
                      "--top", "3")
    assert report["output"] == "output[0]"
    assert any("output[0] of 2 outputs taken as class logits; choose another with --head" in n for n in report["notes"])
    direct = _direct(load_model("testnets:TwoLogits", device="cpu", input_size=(12, 12)), picture)
    got = {p["index"]: p["score"] for p in report["predictions"]}
    np.testing.assert_allclose([got[k] for k in range(3)], torch.softmax(direct[0][0], 0).numpy(), atol=1e-5)


def test_a_functional_sigmoid_in_a_dict_is_found_and_read_as_it_is(picture, capsys):
    model = load_model("testnets:SigmoidPerClass", device="cpu", input_size=(12, 12))
    assert model.head.name == "output[present]" and model.head.activation == "sigmoid" and model.multilabel
    report = _predict(capsys, "--model", "testnets:SigmoidPerClass", "--input-size", "12", "--input", str(picture),
                      "--top", "4")
    got = {p["index"]: p["score"] for p in report["predictions"]}
    np.testing.assert_allclose([got[k] for k in range(4)], _direct(model, picture)["present"][0].numpy(), atol=1e-5)
