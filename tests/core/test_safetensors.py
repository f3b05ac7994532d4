"""``.safetensors`` weights wherever ``--weights`` is: the bundled digits net from a safetensors
copy of its state dict predicts exactly as the built-in one, with the wrapper prefixes other
checkpoints get stripped, found by content under another name, and a truncated or garbled file
is a one-line error; nothing is unpickled, so no opt-in is asked."""

import json

import pytest
import torch
from safetensors.torch import save_file

from deepvis.core.checkpoint import load_checkpoint
from deepvis.core.loading import load_model
from deepvis.errors import DeepvisError
from deepvis.resources import sample_image

from clirun import run_commands


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    d = tmp_path_factory.mktemp("safetensors")
    state = load_model("digits_cnn", device="cpu").module.state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(d / "digits.safetensors"))
    # As a DataParallel or Lightning module saves it: every key under "module.".
    save_file({f"module.{k}": v.contiguous() for k, v in state.items()}, str(d / "wrapped.safetensors"))
    data = (d / "digits.safetensors").read_bytes()
    (d / "renamed.bin").write_bytes(data)
    (d / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    (d / "garbled.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    return d, state


@pytest.mark.parametrize("name", ["digits.safetensors", "wrapped.safetensors", "renamed.bin"])
def test_the_same_weights_from_a_safetensors_file(weights, name):
    d, state = weights
    model = load_model("digits_cnn", str(d / name), device="cpu")
    loaded = model.module.state_dict()
    assert set(loaded) == set(state)
    for key in state:
        torch.testing.assert_close(loaded[key], state[key], rtol=0, atol=0)


@pytest.mark.parametrize("name, needle", [("truncated.safetensors", "truncated or corrupt"),
                                          ("garbled.safetensors", "not a readable safetensors file")])
def test_a_broken_safetensors_file_is_one_line(weights, name, needle):
    d, _ = weights
    with pytest.raises(DeepvisError, match=needle) as info:
        load_checkpoint(d / name)
    assert "\n" not in str(info.value)


def test_predict_with_safetensors_weights_on_the_command_line(weights):
    d, _ = weights
    image = sample_image("coffee")
    results = run_commands({
        "builtin": ["predict", "--model", "digits_cnn", "--input", image, "--json"],
        "safetensors": ["predict", "--model", "digits_cnn", "--weights", d / "digits.safetensors", "--input", image,
                        "--json"],
        "truncated": ["predict", "--model", "digits_cnn", "--weights", d / "truncated.safetensors", "--input", image],
    }, d)
    assert results["safetensors"].returncode == 0, results["safetensors"].stderr
    given, builtin = json.loads(results["safetensors"].stdout), json.loads(results["builtin"].stdout)
    assert given["predictions"] == builtin["predictions"]
    assert (given["weights_from"], builtin["weights_from"]) == ("your file", "bundled")
    bad = results["truncated"]
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1
    assert "truncated or corrupt" in bad.stderr and "Traceback" not in bad.stderr
