"""DigitsAE: a small convolutional autoencoder for scikit-learn's 8x8 digits.

It squeezes each digit through a 16-d code and back, for the latent-space and
reconstruction views: ``encoder`` maps (N, 1, 8, 8) to (N, 16), ``decoder`` maps a code back
to (N, 1, 8, 8) in [0, 1]. Both are plain ``nn.Sequential`` stacks, so hooks can address
every layer as ``encoder.0`` ... ``decoder.6``.

Input is the same as ``digits_cnn``'s: the sklearn pixels divided by 16, ink bright, from
the same fixed split (``digits_cnn.load_split``); training sees the training split only.

Retrain and overwrite the committed weights with::

    python -m deepvis.models.digits_ae [--epochs N] [--seed S] [--out PATH]
"""

from __future__ import annotations

import pathlib

import numpy as np
import torch
from torch import nn

from deepvis.models import WEIGHTS_DIR, load_committed
from deepvis.models.digits_cnn import load_split
from deepvis.models.recipe import (adam_cosine, fit, recipe_arguments, save_weights, seeded, steps_per_epoch,
                                   timed_training)

LATENT = 16


class DigitsAE(nn.Module):
    """conv-conv(stride 2)-dense down to ``LATENT``, then the mirror image back up."""

    def __init__(self, latent: int = LATENT):
        super().__init__()
        # Separate non-inplace ReLU modules, so a hook on any of them sees its own output.
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),  # 4x4
            nn.ReLU(),
            # Flatten rather than pooling: where on the 4x4 map a stroke sits is the digit.
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, 64 * 4 * 4),
            nn.ReLU(),
            nn.Unflatten(1, (64, 4, 4)),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),  # 8x8
            nn.ReLU(),
            nn.Conv2d(32, 1, 3, padding=1),
            # Sigmoid keeps every output a valid pixel and pairs with the BCE loss of ``train``.
            nn.Sigmoid(),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 8, 8) in [0, 1] -> codes (N, LATENT)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (N, LATENT) -> images (N, 1, 8, 8) in [0, 1]."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def train(epochs: int = 100, seed: int = 0, progress=None, batch_size: int = 32) -> DigitsAE:
    """Train from scratch on the training split only; deterministic for a given seed.

    ``progress``, if given, is called as ``progress(epoch, mean_loss)`` after each epoch; the
    loss is the binary cross-entropy per pixel.
    """
    seeded(seed)
    X_train, _, _, _ = load_split()
    X = torch.from_numpy(X_train)
    model = DigitsAE()
    optimizer, scheduler = adam_cosine(model, 2e-3, epochs, steps_per_epoch(len(X), batch_size))
    # BCE rather than MSE: the pixels are ink intensities in [0, 1], and BCE keeps pushing
    # faint strokes towards their value where MSE's gradient has already died away.
    return fit(model, epochs, lambda epoch: (X, X), progress, loss_fn=nn.BCELoss(), optimizer=optimizer,
               scheduler=scheduler, batch_size=batch_size)


@torch.no_grad()
def reconstruction_mse(model: nn.Module, X: np.ndarray) -> float:
    """Mean squared error per pixel of ``model(X)`` against ``X``; leaves the model in eval mode."""
    model.eval()
    x = torch.as_tensor(X)
    return float(((model(x) - x) ** 2).mean())


def weights_path() -> pathlib.Path:
    """Where the committed trained weights live."""
    return WEIGHTS_DIR / "digits_ae.pt"


def load_pretrained() -> DigitsAE:
    """The committed trained model, on the CPU, in eval mode."""
    return load_committed(DigitsAE(), weights_path().name)


def _main(argv: list[str] | None = None) -> None:
    args = recipe_arguments("digits_ae", __doc__, 100, weights_path()).parse_args(argv)
    model, seconds = timed_training(train, args.epochs, args.seed)
    X_train, X_test, _, _ = load_split()
    baseline = float(((X_test - X_train.mean(axis=0)) ** 2).mean())
    print(f"trained in {seconds:.1f} s; held-out MSE {reconstruction_mse(model, X_test):.5f} "
          f"(mean-digit baseline {baseline:.5f})")
    save_weights(model, args.out)


if __name__ == "__main__":
    _main()
