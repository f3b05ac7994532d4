"""Forward arguments beyond the input (issue 29, item 4): named in one error line with the fix
when missing, and --call-arg constants given to every call, TorchScript included."""

import numpy as np
import pytest
import torch

from deepvis.core.callargs import parse_call_args
from testnets import FIXTURES


# torch 2.14 warns on every torch.jit call that TorchScript is deprecated; these tests load
# TorchScript files on purpose (users bring them), so the warning says nothing here.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*deprecated:FutureWarning")


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    path = FIXTURES / "needs_rate.pt"  # NeedsRate scripted once (fixtures/make_scripted.py)
    signal = tmp_path_factory.mktemp("callargs") / "window.npy"
    np.save(signal, np.sin(np.linspace(0, 60, 256)).astype(np.float32))
    return path, signal


def test_a_missing_forward_argument_is_named_with_the_fix(scripted, capsys):
    from deepvis.cli import main

    path, _ = scripted
    assert main(["info", "--model", str(path), "--input-size", "256", "--sample-rate", "16000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "forward needs sr besides the input" in err[0] and "--call-arg sr=VALUE" in err[0]
    assert main(["info", "--model", "testnets:NeedsRate", "--input-size", "256", "--sample-rate", "16000",
                 "--call-arg", "sr=16000", "--call-arg", "bogus=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no argument bogus" in err[0] and "sr, gain" in err[0]


def test_call_args_reach_every_call_of_a_scripted_model(scripted, tmp_path, capsys):
    from deepvis.cli import main
    from deepvis.core.loading import load_model
    from deepvis.io.signals import read_signal

    path, signal = scripted
    assert main(["predict", "--model", str(path), "--input-size", "256", "--sample-rate", "16000", "--input",
                 str(signal), "--call-arg", "sr=8000", "--call-arg", "gain=2.5", "--npy", str(tmp_path / "out.npy")]) == 0
    loaded = load_model(str(path), device="cpu", input_size=(1, 256), sample_rate=16000,
                        call_args={"sr": 8000, "gain": 2.5})
    x = loaded.signal_tensor(read_signal(signal))
    with torch.inference_mode():
        expected = torch.jit.load(str(path))(x, 8000, 2.5)[0].numpy()  # the file itself, called by hand
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, rtol=1e-5, atol=1e-6)
    assert parse_call_args(["sr=16000", "gain=0.5", "mode=fast"]) == {"sr": 16000, "gain": 0.5, "mode": "fast"}


def test_an_onnx_file_is_read_as_one_whatever_its_name(tmp_path, capsys):
    """A hand-made ONNX ModelProto's bytes (ir_version 9, producer "pytorch", an empty graph),
    saved as .onnx and as .pt: read as ONNX either way (its empty graph is then one line), and
    refused as --weights, where ONNX has no place."""
    from deepvis.cli import main

    proto = b"\x08\x09" + b"\x12\x07pytorch" + b"\x1a\x052.5.0" + b"\x3a\x00" + b"\x42\x04\x0a\x00\x10\x11"
    for name in ("model.onnx", "model.pt"):
        (tmp_path / name).write_bytes(proto)
        assert main(["info", "--model", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{name} has 0 inputs" in err[0]
    assert main(["info", "--model", "digits_cnn", "--weights", str(tmp_path / "model.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is an ONNX model: give it as --model" in err[0]
    torch.save({"w": torch.zeros(2)}, tmp_path / "state.pt")  # a real checkpoint is not taken for one
    from deepvis.core.checkpoint import is_onnx

    assert not is_onnx(tmp_path / "state.pt")


def test_saliency_defaults_to_the_gradient(tmp_path, capsys):
    from deepvis.cli import main
    from deepvis.resources import SAMPLE_SETS

    digit = sorted(SAMPLE_SETS["digits"].path.glob("*.png"))[0]
    assert main(["saliency", "--model", "digits_cnn", "--input", str(digit), "--out", str(tmp_path / "s.png")]) == 0
    assert capsys.readouterr().out.startswith("gradient for ")
