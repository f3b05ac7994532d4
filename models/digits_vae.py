"""DigitsVAE: a small convolutional variational autoencoder for scikit-learn's 8x8 digits.

Unlike ``digits_ae``, its 16-d latent space is pulled towards N(0, I), so a code drawn from
the prior decodes to a plausible digit and straight lines between codes stay on the digit
manifold; that is what the latent-space views sample. ``encoder`` is the shared trunk,
``fc_mu``/``fc_logvar`` the two posterior heads, ``decoder`` maps a code (N, 16) to
(N, 1, 8, 8) in [0, 1]. Calling the model gives the deterministic reconstruction
``decode(mu)``; ``reconstruct(x, sample=True)`` draws from the posterior instead.

Input is the same as ``digits_cnn``'s: the sklearn pixels divided by 16, ink bright, from
the same fixed split (``digits_cnn.load_split``); training sees the training split only.

Retrain and overwrite the committed weights with::

    python -m deepvis.models.digits_vae [--epochs N] [--seed S] [--out PATH]
"""

from __future__ import annotations

import pathlib

import torch
from torch import nn
from torch.nn import functional as F

from deepvis.models import WEIGHTS_DIR, load_committed
from deepvis.models.digits_ae import reconstruction_mse
from deepvis.models.digits_cnn import load_split
from deepvis.models.recipe import (adam_cosine, fit, recipe_arguments, save_weights, seeded, steps_per_epoch,
                                   timed_training)

LATENT = 16
HIDDEN = 128
# Weight of the KL term once warmed up. At 1 the KL term wins against the weak Bernoulli
# signal of grey pixels: five or so latent dimensions stay in use, reconstructions blur and
# digits_cnn reads only ~88 % of them correctly. At 0.5 the codes stay close enough to the
# prior that ~80 % of prior samples are read with >= 0.9 confidence, and ~96 % of
# reconstructions keep their class.
BETA = 0.5
# Epochs over which the KL weight ramps from ~0 up to BETA, so the decoder learns to use the
# codes before the prior pulls them together (otherwise more dimensions collapse for good).
WARMUP_EPOCHS = 15


class DigitsVAE(nn.Module):
    """conv-conv(stride 2)-dense trunk, mean and log-variance heads, dense-deconv decoder."""

    def __init__(self, latent: int = LATENT, hidden: int = HIDDEN):
        super().__init__()
        # Separate non-inplace ReLU modules, so a hook on any of them sees its own output.
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),  # 4x4
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, hidden),
            nn.ReLU(),
        )
        self.fc_mu = nn.Linear(hidden, latent)
        self.fc_logvar = nn.Linear(hidden, latent)
        self.decoder = nn.Sequential(
            nn.Linear(latent, hidden),
            nn.ReLU(),
            # 32 channels at 4x4 (not the encoder's 64) keeps this layer, and so the weight
            # file, small; the decoder's quality is limited by the blur of the KL term anyway.
            nn.Linear(hidden, 32 * 4 * 4),
            nn.ReLU(),
            nn.Unflatten(1, (32, 4, 4)),
            nn.ConvTranspose2d(32, 32, 4, stride=2, padding=1),  # 8x8
            nn.ReLU(),
            nn.Conv2d(32, 1, 3, padding=1),
            nn.Sigmoid(),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 1, 8, 8) in [0, 1] -> posterior mean and log-variance, each (N, LATENT)."""
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (N, LATENT) -> images (N, 1, 8, 8) in [0, 1]."""
        return self.decoder(z)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A code drawn from N(mu, exp(logvar)), differentiable in mu and logvar.

        ``generator`` makes the draw reproducible without touching torch's global generator.
        """
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        return mu + eps * torch.exp(0.5 * logvar)

    def reconstruct(self, x: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``x``'s posterior mean, or with ``sample`` a code drawn from its posterior."""
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar, generator) if sample else mu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Deterministic: the views expect the same picture for the same input, and hooks on
        # the decoder then see activations that do not flicker from call to call.
        return self.reconstruct(x)


def loss_terms(model: DigitsVAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bernoulli reconstruction loss and KL(q(z|x) || N(0, I)), each in nats per digit.

    The reconstruction uses one code drawn from torch's global generator.
    """
    mu, logvar = model.encode(x)
    recon = model.decode(model.reparameterize(mu, logvar))
    # Summed over pixels, not averaged: that is the log-likelihood of the digit, and so the
    # scale on which the KL term (also summed over dimensions) is meant to weigh against it.
    rec = F.binary_cross_entropy(recon, x, reduction="sum") / len(x)
    kl = (-0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(dim=1)).mean()
    return rec, kl


def train(epochs: int = 150, seed: int = 0, progress=None, batch_size: int = 32) -> DigitsVAE:
    """Train from scratch on the training split only; deterministic for a given seed.

    ``progress``, if given, is called as ``progress(epoch, mean_loss)`` after each epoch; the
    loss is reconstruction + BETA * KL in nats per digit (the full weight, also during the
    warm-up, so that epochs compare).
    """
    # Init, shuffling and the reparameterisation noise all draw from the global generators.
    seeded(seed)
    X_train, _, _, _ = load_split()
    X = torch.from_numpy(X_train)
    model = DigitsVAE()
    steps = steps_per_epoch(len(X), batch_size)
    optimizer, scheduler = adam_cosine(model, 2e-3, epochs, steps)
    warmup_steps = WARMUP_EPOCHS * steps
    step = [0]

    def batch_loss(x, _):
        rec, kl = loss_terms(model, x)
        beta = BETA * min(1.0, (step[0] + 1) / warmup_steps)
        step[0] += 1
        return rec + beta * kl, rec.item() + BETA * kl.item()

    return fit(model, epochs, lambda epoch: (X, X), progress, loss_fn=None, batch_loss=batch_loss,
               optimizer=optimizer, scheduler=scheduler, batch_size=batch_size)


def weights_path() -> pathlib.Path:
    """Where the committed trained weights live."""
    return WEIGHTS_DIR / "digits_vae.pt"


def load_pretrained() -> DigitsVAE:
    """The committed trained model, on the CPU, in eval mode."""
    return load_committed(DigitsVAE(), weights_path().name)


def _main(argv: list[str] | None = None) -> None:
    args = recipe_arguments("digits_vae", __doc__, 150, weights_path()).parse_args(argv)
    model, seconds = timed_training(train, args.epochs, args.seed)
    X_train, X_test, _, _ = load_split()
    baseline = float(((X_test - X_train.mean(axis=0)) ** 2).mean())
    with torch.no_grad():
        rec, kl = loss_terms(model, torch.from_numpy(X_test))
    print(f"trained in {seconds:.1f} s; held-out MSE {reconstruction_mse(model, X_test):.5f} "
          f"(mean-digit baseline {baseline:.5f}); held-out reconstruction {rec:.2f} nats, KL {kl:.2f} nats")
    save_weights(model, args.out)


if __name__ == "__main__":
    _main()
