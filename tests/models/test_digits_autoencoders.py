"""The digits autoencoder and VAE: committed weights, shapes, and that the recipes really learn.

Quality is judged on the held-out quarter of ``digits_cnn.load_split`` (neither recipe trains
on it): reconstruction error against the mean-digit baseline, whether the committed digits
CNN still reads the right class off the reconstructions, and, for the VAE, whether codes drawn
from the prior decode to digits that the CNN reads with confidence.
"""

import pytest
import torch

from deepvis.models import digits_ae, digits_cnn, digits_vae

MAX_WEIGHTS_BYTES = 1_000_000
# Measured on the committed weights: AE 0.0057 and VAE 0.0149 against a baseline of 0.0740,
# i.e. 0.08 and 0.20 of it; 0.35 leaves room for a retrain on another machine.
MSE_OVER_BASELINE = 0.35
# Measured: AE 0.978, VAE 0.962 (the CNN itself gets 0.993 of the originals right).
MIN_CLASS_KEPT = 0.90
# Measured: 0.80 of 500 prior samples at >= 0.9 confidence.
PRIOR_SAMPLES = 500
MIN_CONFIDENT_SHARE = 0.60
CONFIDENCE = 0.9

MODULES = {"ae": digits_ae, "vae": digits_vae}


@pytest.fixture(scope="module")
def split():
    return [torch.from_numpy(a) for a in digits_cnn.load_split()]


@pytest.fixture(scope="module")
def cnn():
    return digits_cnn.load_pretrained()


@pytest.fixture(scope="module", params=sorted(MODULES))
def pretrained(request):
    return request.param, MODULES[request.param].load_pretrained()


def test_committed_weights_are_small_float32_state_dicts():
    for name, module in MODULES.items():
        path = module.weights_path()
        assert path.name == f"digits_{name}.pt"
        assert path.stat().st_size <= MAX_WEIGHTS_BYTES
        state = torch.load(path, map_location="cpu", weights_only=True)
        assert all(t.dtype == torch.float32 for t in state.values())
        model = module.load_pretrained()
        assert not model.training
        assert all(p.device.type == "cpu" for p in model.parameters())


@torch.no_grad()
def test_held_out_reconstruction_far_below_mean_digit_baseline(pretrained, split):
    name, model = pretrained
    X_train, X_test, _, _ = split
    baseline = float(((X_test - X_train.mean(dim=0)) ** 2).mean())
    mse = float(((model(X_test) - X_test) ** 2).mean())
    print(f"{name}: held-out MSE {mse:.5f}, mean-digit baseline {baseline:.5f} (ratio {mse / baseline:.3f})")
    assert mse <= MSE_OVER_BASELINE * baseline


@torch.no_grad()
def test_digits_cnn_reads_the_true_class_off_reconstructions(pretrained, split, cnn):
    name, model = pretrained
    _, X_test, _, y_test = split
    kept = float((cnn(model(X_test)).argmax(dim=1) == y_test).float().mean())
    print(f"{name}: digits_cnn reads the true class off {kept:.3f} of {len(y_test)} held-out reconstructions")
    assert kept >= MIN_CLASS_KEPT


@torch.no_grad()
def test_vae_prior_samples_are_confidently_read_digits(cnn):
    model = digits_vae.load_pretrained()
    z = torch.randn(PRIOR_SAMPLES, digits_vae.LATENT, generator=torch.Generator().manual_seed(0))
    images = model.decode(z)
    assert images.shape == (PRIOR_SAMPLES, 1, 8, 8)
    probs = cnn(images).softmax(dim=1)
    confidence, classes = probs.max(dim=1)
    share = float((confidence >= CONFIDENCE).float().mean())
    counts = torch.bincount(classes, minlength=10).tolist()
    print(f"vae: {share:.3f} of {PRIOR_SAMPLES} prior samples read with confidence >= {CONFIDENCE}; classes {counts}")
    assert share >= MIN_CONFIDENT_SHARE
    # Samples from the prior should cover the digits, not collapse onto a few easy ones.
    assert sum(c >= PRIOR_SAMPLES // 50 for c in counts) == 10


@torch.no_grad()
def test_ae_shapes_and_layer_names():
    model = digits_ae.DigitsAE().eval()
    x = torch.rand(5, 1, 8, 8)
    z = model.encode(x)
    assert z.shape == (5, digits_ae.LATENT) == (5, 16)
    out = model.decode(torch.randn(5, digits_ae.LATENT) * 10)
    assert out.shape == (5, 1, 8, 8)
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert torch.equal(model(x), model.decode(z))
    assert isinstance(model.encoder, torch.nn.Sequential) and isinstance(model.decoder, torch.nn.Sequential)
    assert all(not m.inplace for m in model.modules() if isinstance(m, torch.nn.ReLU))


@torch.no_grad()
def test_vae_shapes_names_and_determinism(split):
    model = digits_vae.load_pretrained()
    names = dict(model.named_children())
    assert {"encoder", "fc_mu", "fc_logvar", "decoder"} <= set(names)
    assert all(not m.inplace for m in model.modules() if isinstance(m, torch.nn.ReLU))

    x = split[1][:20]
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (20, digits_vae.LATENT) == (20, 16)
    out = model(x)
    assert out.shape == (20, 1, 8, 8)
    assert 0.0 <= out.min() and out.max() <= 1.0
    # The forward pass is the posterior mean's reconstruction, the same on every call.
    assert torch.equal(out, model.decode(mu))
    assert torch.equal(out, model(x))
    assert torch.equal(out, model.reconstruct(x))

    sampled = model.reconstruct(x, sample=True, generator=torch.Generator().manual_seed(1))
    again = model.reconstruct(x, sample=True, generator=torch.Generator().manual_seed(1))
    assert sampled.shape == out.shape and 0.0 <= sampled.min() and sampled.max() <= 1.0
    assert torch.equal(sampled, again)
    assert not torch.allclose(sampled, out, atol=1e-3)
    z = model.reparameterize(mu, logvar, generator=torch.Generator().manual_seed(2))
    assert z.shape == mu.shape and not torch.equal(z, mu)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODULES))
def test_short_training_from_scratch_learns_and_is_deterministic(name, split):
    module = MODULES[name]
    losses = []
    model = module.train(epochs=3, seed=0, progress=lambda epoch, loss: losses.append(loss))
    assert not model.training
    _, X_test, _, _ = split
    mse = module.reconstruction_mse(model, X_test.numpy())
    print(f"{name}: losses over 3 epochs {[round(v, 4) for v in losses]}; held-out MSE {mse:.5f}")
    assert len(losses) == 3 and losses[2] < losses[1] < losses[0]

    again = module.train(epochs=1, seed=0)
    first = module.train(epochs=1, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), first.state_dict().values()))
