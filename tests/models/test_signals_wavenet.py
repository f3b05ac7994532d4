"""The signals WaveNet: committed weights, measured causality and receptive field, the signal
generator, and that the recipe really learns."""

import numpy as np
import pytest
import torch

from deepvis.models import signals_wavenet as sw

FRESH_SEED = 2024  # test-split signals that neither training nor the recipe's own report used
MAX_WEIGHTS_BYTES = 1_000_000


@pytest.fixture(autouse=True)
def one_thread():
    # On a busy two-core machine two threads ran these convolutions many times slower than one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model():
    return sw.load_pretrained()


def input_gradient(model, x, t):
    """|d sum_c features[0, c, t] / d x[0, 0, :]|, shape (T,)."""
    x = x.clone().requires_grad_(True)
    model.features(x)[0, :, t].sum().backward()
    return x.grad[0, 0].abs()


@pytest.mark.slow
def test_committed_weights_score_on_fresh_test_signals(model):
    path = sw.weights_path()
    assert path.stat().st_size <= MAX_WEIGHTS_BYTES
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert all(t.dtype == torch.float32 for t in state.values())
    assert not model.training

    X, y = sw.make_signals(1000, seed=FRESH_SEED, split="test")
    confusion = sw.confusion_matrix(model, X, y)
    accuracy = np.trace(confusion) / len(y)
    print(f"held-out accuracy of committed weights: {accuracy:.4f} on {len(y)} fresh test signals")
    print(f"confusion (rows true, columns predicted: {', '.join(sw.CLASSES)}):\n{confusion}")
    assert confusion.sum() == 1000 and (confusion.sum(axis=1) >= 190).all()
    assert accuracy == pytest.approx(sw.evaluate(model, X, y))
    assert accuracy >= 0.95
    assert (np.diag(confusion) / confusion.sum(axis=1)).min() >= 0.85  # no class left behind


def test_architecture_shapes_and_names():
    model = sw.SignalsWaveNet().eval()
    assert model.kernel_size == 2
    assert model.dilations == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    with torch.no_grad():
        x = torch.randn(3, 1, sw.WINDOW)
        logits = model(x)
        features = model.features(x)
    assert logits.shape == (3, len(sw.CLASSES)) == (3, 5)
    assert features.shape == (3, 5, sw.WINDOW)
    torch.testing.assert_close(logits, features.mean(dim=2))  # the pool is a plain mean over time
    with torch.no_grad():
        assert model(torch.randn(2, 1, 700)).shape == (2, 5)  # any length works
    names = dict(model.named_modules())
    for name in ("input_conv", "blocks.0.dilated", "blocks.3.dilated", "blocks.3.gate", "blocks.3.residual",
                 "blocks.3.skip", "blocks.8.dilated", "skip_relu", "post_conv", "post_relu", "out_conv", "pool"):
        assert name in names
    assert [names[f"blocks.{i}.dilated"].dilation[0] for i in range(9)] == model.dilations
    assert all(not m.inplace for m in model.modules() if isinstance(m, torch.nn.ReLU))
    assert names["blocks.8"].residual is None  # the last residual output would feed nothing
    assert sum(p.numel() for p in model.parameters()) < 250_000
    model(torch.randn(2, 1, 600)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())  # no dead weights
    with pytest.raises(ValueError, match=r"\(N, 1, T\)"):
        model(torch.randn(2, 1024))


def test_measured_causality_and_receptive_field(model):
    rf = sw.receptive_field(model)
    assert rf == 1 + sum((model.kernel_size - 1) * d for d in model.dilations) == 512
    x = torch.randn(1, 1, sw.WINDOW, generator=torch.Generator().manual_seed(0))
    for t in (0, 100, 700, sw.WINDOW - 1):
        grad = input_gradient(model, x, t)
        # Causal: nothing after t matters, the input at t itself does.
        assert torch.all(grad[t + 1 :] == 0), f"output {t} depends on later inputs"
        assert grad[t] > 0
        depends = torch.nonzero(grad).flatten()
        assert depends.max().item() == t
        if t >= rf - 1:
            # Far from the start: exactly the rf samples t - rf + 1 ... t, each of them.
            assert len(depends) == rf
            assert depends.min().item() == t - rf + 1
        else:
            assert len(depends) == t + 1
    # An untrained network has the same field: it comes from the wiring, not the weights.
    fresh = sw.SignalsWaveNet()
    assert len(torch.nonzero(input_gradient(fresh, x, 900))) == sw.receptive_field(fresh)


def test_generator_shapes_balance_and_determinism():
    X, y, params = sw.make_signals(503, seed=7, return_params=True)
    assert X.shape == (503, 1, sw.WINDOW) and X.dtype == np.float32
    assert y.shape == (503,) and y.dtype == np.int64
    counts = np.bincount(y, minlength=len(sw.CLASSES))
    assert counts.max() - counts.min() <= 1
    assert np.isfinite(X).all() and 0.2 < np.abs(X).max() < 5
    assert len(set(y[:20].tolist())) > 2  # shuffled, not in class order
    for key in ("freq", "freq_end", "phase", "amplitude", "snr_db"):
        assert params[key].shape == (503,)
    periodic = y != sw.CLASSES.index("noise bursts")
    assert np.all((params["freq"][periodic] >= 50) & (params["freq"][periodic] <= 1500))
    assert np.all((params["amplitude"] >= 0.3) & (params["amplitude"] <= 1.0))
    assert np.isnan(params["freq"][~periodic]).all()
    chirp = y == sw.CLASSES.index("chirp")
    assert np.all(np.abs(np.log2(params["freq_end"][chirp] / params["freq"][chirp])) >= 1.0 - 1e-9)
    assert np.all(params["freq_end"][periodic & ~chirp] == params["freq"][periodic & ~chirp])

    X2, y2 = sw.make_signals(503, seed=7)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X_test, _ = sw.make_signals(503, seed=7, split="test")
    X_other, _ = sw.make_signals(503, seed=8)
    assert not np.allclose(X, X_test) and not np.allclose(X, X_other)
    with pytest.raises(ValueError, match="split"):
        sw.make_signals(3, seed=0, split="validation")


def test_generated_signals_have_their_frequencies():
    X, y, params = sw.make_signals(300, seed=3, split="test", return_params=True)
    bins = np.fft.rfftfreq(sw.WINDOW, 1 / sw.SAMPLE_RATE)
    resolution = sw.SAMPLE_RATE / sw.WINDOW  # 7.8 Hz
    spectra = np.abs(np.fft.rfft(X[:, 0] * np.hanning(sw.WINDOW), axis=1))
    # Steady tones: the spectral peak is at the drawn frequency (a square's and a sawtooth's
    # fundamental is its strongest partial).
    for name in ("sine", "square", "sawtooth"):
        rows = np.flatnonzero(y == sw.CLASSES.index(name))
        peaks = bins[spectra[rows].argmax(axis=1)]
        assert np.all(np.abs(peaks - params["freq"][rows]) <= resolution), name
    # A sine is one partial; a square has odd harmonics; a sawtooth also even ones.
    i = np.flatnonzero((y == sw.CLASSES.index("sine")) & (params["snr_db"] > 20))[0]
    clean_share = (spectra[i] ** 2)[np.abs(bins - params["freq"][i]) <= 3 * resolution].sum() / (spectra[i] ** 2).sum()
    assert clean_share > 0.95
    # A chirp's energy moves: the first quarter peaks near its start frequency, the last near its end.
    for i in np.flatnonzero(y == sw.CLASSES.index("chirp"))[:10]:
        quarter = sw.WINDOW // 4
        qbins = np.fft.rfftfreq(quarter, 1 / sw.SAMPLE_RATE)
        first = qbins[np.abs(np.fft.rfft(X[i, 0, :quarter] * np.hanning(quarter))).argmax()]
        last = qbins[np.abs(np.fft.rfft(X[i, 0, -quarter:] * np.hanning(quarter))).argmax()]
        f0, f1 = params["freq"][i], params["freq_end"][i]
        assert (last - first) * (f1 - f0) > 0
    # Noise bursts: mostly quiet, with loud stretches.
    for i in np.flatnonzero(y == sw.CLASSES.index("noise bursts"))[:10]:
        level = np.abs(X[i, 0])
        assert np.mean(level < 0.08) > 0.2 and level.max() > 0.2


@pytest.mark.slow
def test_short_training_from_scratch_lowers_the_loss():
    losses = []
    model = sw.train(epochs=3, seed=0, signals_per_epoch=320, batch_size=16,
                     progress=lambda epoch, loss: losses.append(loss))
    assert not model.training
    X, y = sw.make_signals(300, seed=FRESH_SEED, split="test")
    accuracy = sw.evaluate(model, X, y)
    print(f"losses {[round(loss, 3) for loss in losses]}; held-out accuracy after 60 steps {accuracy:.3f}")
    assert len(losses) == 3 and losses[0] > losses[1] > losses[2]
    assert losses[2] < losses[0] - 0.1  # starts at about ln 5 = 1.61
    assert accuracy > 0.3  # chance is 0.2
