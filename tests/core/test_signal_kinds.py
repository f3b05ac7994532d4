"""1-D models as they come (issue 29, items 6 and 7): no Conv1d to see, (batch, time) windows
found by a dry run or declared, and one output per window read as a value."""

import json

import numpy as np
import pytest
import torch

from deepvis.cli import main
from deepvis.core.loading import load_model
from deepvis.io.signals import read_signal
from testnets import FIXTURES, TimeOnly

# torch 2.14 warns on every torch.jit call; time_vad.pt is a TorchScript file on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*deprecated:FutureWarning")
VAD = ["--model", str(FIXTURES / "time_vad.pt"), "--call-arg", "sr=16000", "--input-size", "512",
       "--sample-rate", "16000"]


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    t = np.arange(16000) / 16000
    path = tmp_path_factory.mktemp("signals") / "tone.npy"
    np.save(path, (0.8 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    return path


def test_a_batch_time_model_without_a_conv1d_is_a_signal_model(recording, capsys):
    size = ["--model", "testnets:TimeOnly", "--input-size", "256", "--sample-rate", "8000"]
    assert main(["predict", *size, "--input", str(recording), "--json"]) == 0  # one number and a rate: a signal
    report = json.loads(capsys.readouterr().out)
    assert any("takes (batch, time) windows" in n for n in report["notes"])
    loaded = load_model("testnets:TimeOnly", device="cpu", input_size=(256, 256), sample_rate=8000,
                        input_kind="signal")
    x = loaded.signal_tensor(read_signal(recording))
    assert tuple(x.shape) == (1, 1, 256)
    with torch.inference_mode():
        expected = torch.softmax(TimeOnly().eval()(x[:, 0]), 1)[0].numpy()  # the model as written, (batch, time)
    got = {p["index"]: p["score"] for p in report["predictions"]}
    np.testing.assert_allclose([got[0], got[1]], expected, atol=1e-5)
    # Declared the other way, its dry run fails in one line.
    assert main(["info", *size, "--signal-layout", "bct"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "(1, 1, 256)" in err[0]


def test_one_probability_per_window_is_a_value(recording, capsys):
    assert main(["info", *VAD]) == 0
    out = capsys.readouterr().out
    assert "signal 1x512 at 16000 Hz" in out and "takes (batch, time) windows" in out
    assert main(["predict", *VAD, "--input", str(recording), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    loaded = load_model(str(FIXTURES / "time_vad.pt"), device="cpu", input_size=(512, 512), sample_rate=16000,
                        input_kind="signal", call_args={"sr": 16000})
    assert loaded.head.activation == "sigmoid" and loaded.task == "other"
    x = loaded.signal_tensor(read_signal(recording))
    with torch.inference_mode():
        expected = torch.jit.load(str(FIXTURES / "time_vad.pt"))(x[:, 0], 16000)[0].numpy()
    assert report["kind"] == "other" and "predictions" not in report
    np.testing.assert_allclose(report["values"], expected, atol=1e-5)
    assert 0.5 < report["values"][0] < 1  # a loud tone reads as speech, through its sigmoid
