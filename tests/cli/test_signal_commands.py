"""1-D models on the command line: a user's TorchScript classifier opens on a .wav (resampled
to its rate), activations and saliency over time equal the engine's, and malformed signal
files are one error line."""

import json

import numpy as np
import pytest
import torch
from scipy.io import wavfile

from deepvis.io.signals import fit_signal, read_signal

from clirun import run_commands
from testnets import Tiny1D


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    d = tmp_path_factory.mktemp("signals")
    t = np.arange(32000) / 16000
    wavfile.write(d / "chirp.wav", 16000, (0.6 * np.sin(2 * np.pi * (200 + 300 * t) * t) * 32767).astype(np.int16))
    (d / "bad.wav").write_bytes(b"RIFF1234WAVEjunkjunk")
    (d / "ragged.csv").write_text("1,2\n3\n")
    torch.jit.script(Tiny1D().eval()).save(str(d / "net.pt"))
    from scipy.signal import resample_poly

    from deepvis.models.signals_wavenet import make_signals

    X, y = make_signals(5, seed=11, split="test")
    for i in range(5):  # written at 16 kHz: the command resamples them to the model's 8 kHz
        wavfile.write(d / f"bundled{i}.wav", 16000, resample_poly(X[i, 0], 2, 1).astype(np.float32))
    scripted = ["--model", d / "net.pt", "--input-size", "2048", "--sample-rate", "8000"]
    factory = ["--model", "testnets:Tiny1D", "--input-size", "2048", "--sample-rate", "8000"]
    commands = {
        "predict": ["predict", *scripted, "--input", d / "chirp.wav", "--json"],
        "activations": ["activations", *factory, "--input", d / "chirp.wav", "--layer", "relu2", "--out",
                        d / "act.png", "--npy", d / "act.npy"],
        "saliency": ["saliency", *factory, "--input", d / "chirp.wav", "--method", "gradient", "--target", "2",
                     "--out", d / "sal.png", "--npy", d / "sal.npy"],
        **{f"bundled{i}": ["predict", "--model", "signals_wavenet", "--input", d / f"bundled{i}.wav", "--json"]
           for i in range(5)},
        "bad_wav": ["predict", *scripted, "--input", d / "bad.wav"],
        "ragged": ["predict", *scripted, "--input", d / "ragged.csv"],
        "gradcam": ["saliency", *factory, "--input", d / "chirp.wav", "--method", "gradcam", "--target", "1",
                    "--out", d / "cam.png", "--npy", d / "cam.npy"],
        "guided": ["saliency", *factory, "--input", d / "chirp.wav", "--method", "guided", "--target", "1",
                   "--out", d / "guided.png", "--npy", d / "guided.npy"],
    }
    results = run_commands(commands, d)
    window = torch.from_numpy(fit_signal(read_signal(d / "chirp.wav"), 1, 2048, 8000))[None]
    return results, d, window, y


def _ok(result):
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_torchscript_1d_model_opens_on_a_wav(cli):
    results, d, window, _ = cli
    rows = json.loads(_ok(results["predict"]))["predictions"]
    with torch.inference_mode():
        probs = torch.softmax(Tiny1D().eval()(window), 1)[0]
    for row in rows:
        assert row["score"] == pytest.approx(float(probs[row["index"]]), abs=1e-5)


def test_activations_and_saliency_over_time(cli):
    from deepvis.attribution.saliency import Target, attribute
    from deepvis.core.probe import Probe

    results, d, window, _ = cli
    assert "8 channels x 2048 time steps" in _ok(results["activations"])
    net = Tiny1D().eval()
    with torch.inference_mode():
        expected = net.relu2(net.conv2(net.relu1(net.conv1(window))))[0].numpy()
    np.testing.assert_allclose(np.load(d / "act.npy"), expected, rtol=1e-5, atol=1e-6)
    _ok(results["saliency"])
    direct = attribute(net, Probe(net, window), window, "gradient", Target("class", 2))
    saliency = np.load(d / "sal.npy")
    assert saliency.shape == (2048,)
    np.testing.assert_allclose(saliency, direct, rtol=1e-4, atol=1e-8)


def test_gradcam_and_guided_backprop_over_time(cli):
    """Grad-CAM of a 1-D model is written out here: the class score's gradient at the last
    convolution's output, averaged over time, weights its channels; the ReLU of the weighted
    sum is the map (conv2 keeps the 2048 steps, so no resampling)."""
    from deepvis.attribution.saliency import Target, attribute
    from deepvis.core.probe import Probe

    results, d, window, _ = cli
    _ok(results["gradcam"])
    net = Tiny1D().eval()
    features = net.conv2(net.relu1(net.conv1(window)))
    score = net.fc(net.pool(net.relu2(features)).flatten(1))[0, 1]
    weights = torch.autograd.grad(score, features)[0].mean(2, keepdim=True)
    cam = torch.relu((weights * features).sum(1))[0].detach().numpy()
    written = np.load(d / "cam.npy")
    assert written.shape == (2048,) and cam.max() > 0
    np.testing.assert_allclose(written, cam, rtol=1e-4, atol=1e-6 * cam.max())
    _ok(results["guided"])
    guided = attribute(net, Probe(net, window), window, "guided", Target("class", 1))
    np.testing.assert_allclose(np.load(d / "guided.npy"), guided, rtol=1e-4, atol=1e-8)
    # Guided backprop zeroes negative gradients at every ReLU: it differs from the plain gradient.
    plain = attribute(net, Probe(net, window), window, "gradient", Target("class", 1))
    assert not np.allclose(guided, plain, atol=1e-6)


def test_the_bundled_wavenet_names_signals_resampled_from_16_khz(cli):
    results, _, _, y = cli
    from deepvis.models.signals_wavenet import CLASSES

    for i in range(5):
        rows = json.loads(_ok(results[f"bundled{i}"]))["predictions"]
        assert rows[0]["label"] == CLASSES[y[i]], (i, rows[:2])


@pytest.mark.parametrize("case, needle", [
    ("bad_wav", "bad.wav: malformed WAV"),
    ("ragged", "ragged.csv, line 2: 1 values where line 1 of the data has 2"),
])
def test_broken_signals_are_one_error_line(cli, case, needle):
    result = cli[0][case]
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and needle in lines[0], lines
