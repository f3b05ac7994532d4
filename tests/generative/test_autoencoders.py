"""Autoencoders and VAEs: the encoder/decoder split found in a model, the decoder as a
generator, and projecting pictures with the encoder (one pass, then optionally refined)."""

import numpy as np
import pytest
import torch

from deepvis.core.loading import load_model
from deepvis.errors import DeepvisError
from deepvis.generative.autoencoders import find_autoencoder
from deepvis.generative.generators import load_generator
from deepvis.generative.latent import invert, project
from deepvis.models.digits_cnn import load_split


def test_vae_with_heads_is_split_and_recognised():
    model = load_model("testnets:HeadsVAE", input_size=(8, 8), channels=1, device="cpu")
    assert model.task == "image" and model.output_range == "sigmoid"
    ae = find_autoencoder(model)
    assert ae.variational and ae.nz == 4 and ae.how == "its encoder/decoder submodules"
    x = torch.rand(3, 1, 8, 8)
    net = model.module
    with torch.inference_mode():
        h = net.encoder(x)
        mean, logvar = ae.encode_both(x)
        torch.testing.assert_close(mean, net.fc_mu(h))
        torch.testing.assert_close(logvar, net.fc_logvar(h))
        # The deterministic reconstruction is the model's own forward (the mean decoded).
        torch.testing.assert_close(ae.reconstruct(x), net(x))
        g = torch.Generator().manual_seed(0)
        sampled = ae.encode(x, sample=True, generator=g)
    assert not torch.allclose(sampled, mean)
    # Named by hand, the heads are still found after the named encoder trunk.
    named = find_autoencoder(model, encoder="encoder", decoder="decoder")
    assert named.variational and named.nz == 4


def test_missing_or_misnamed_parts_are_one_line_errors():
    model = load_model("testnets:EncoderOnly", input_size=(8, 8), channels=1, device="cpu")
    with pytest.raises(DeepvisError, match="has no decoder: name it with --decoder"):
        find_autoencoder(model)
    with pytest.raises(DeepvisError, match="--decoder decodr: the model has no such layer"):
        find_autoencoder(load_model("testnets:HeadsVAE", input_size=(8, 8), channels=1, device="cpu"),
                         decoder="decodr")
    # A "decoder" that does not make a picture is refused with what it makes.
    with pytest.raises(DeepvisError, match="not a picture"):
        find_autoencoder(model, encoder="encoder.0", decoder="encoder.1")
    scripted = load_model("testnets:TanhImageNet", input_size=(8, 8), device="cpu")
    with pytest.raises(DeepvisError, match="has no encoder"):
        find_autoencoder(scripted)


def test_vae_decoder_is_a_generator_with_an_encoder():
    g = load_generator("digits_vae")
    assert g.nz == 16 and g.variational and g.encoder is not None
    images = g.images(g.latent(0, 4))
    assert images.shape == (4, 8, 8, 3) and images.dtype == np.uint8
    model = load_model("digits_vae", device="cpu")
    _, X_test, _, _ = load_split()
    digits = (X_test[:5, 0] * 255).round().astype(np.uint8)
    z = g.encode(list(digits))
    with torch.inference_mode():
        mean, _ = model.module.encode(torch.from_numpy(digits.astype(np.float32) / 255)[:, None])
    torch.testing.assert_close(z, mean, atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_encoder_projection_then_refinement_beats_optimization_alone():
    g = load_generator("digits_vae")
    _, X_test, _, _ = load_split()
    rng = np.random.default_rng(0)
    picks = rng.choice(len(X_test), 12, replace=False)
    encoder_only, refined, optimized = [], [], []
    for i in picks:
        digit = (X_test[i, 0] * 255).round().astype(np.uint8)
        z, errors = project(g, digit, refine_steps=50)
        encoder_only.append(errors[0])
        refined.append(float(((g.generate(z) - torch.from_numpy(X_test[i:i + 1])) ** 2).mean()))
        _, history = invert(g, digit, steps=50, restarts=1, seed=int(i))
        optimized.append(history[-1])
    print(f"pixel MSE over {len(picks)} held-out digits: encoder {np.mean(encoder_only):.4f}, encoder + 50 steps "
          f"{np.mean(refined):.4f}, 50 steps from a random start {np.mean(optimized):.4f}")
    assert np.mean(refined) < np.mean(optimized)
    assert np.mean(refined) <= np.mean(encoder_only) + 1e-6
    assert sum(r < o for r, o in zip(refined, optimized)) >= 9
