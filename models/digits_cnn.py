"""DigitsCNN: a small CNN for scikit-learn's bundled 8x8 handwritten digits.

It is the toolbox's own trained network: small enough to train in seconds on a CPU and to
ship in the repository, and with readable layer names (``conv1`` ... ``relu4``, ``fc2``) for
the activation, filter, saliency and embedding views. ``fc1``/``relu4`` give the 128-d
penultimate features used for t-SNE maps.

Input is (N, 1, 8, 8) float in [0, 1]: the sklearn pixels divided by 16, ink bright.
The data comes from ``sklearn.datasets.load_digits`` and needs no download.

Retrain and overwrite the committed weights with::

    python -m deepvis.models.digits_cnn [--epochs N] [--seed S] [--out PATH]
"""

from __future__ import annotations

import pathlib

import numpy as np
import torch
from torch import nn

from deepvis.models import WEIGHTS_DIR, load_committed
from deepvis.models.recipe import (adam_cosine, fit, recipe_arguments, save_weights, seeded, steps_per_epoch,
                                   timed_training)

LABELS = [str(i) for i in range(10)]
INPUT_SIZE = (8, 8)


class DigitsCNN(nn.Module):
    """conv-conv-pool-conv, then two dense layers; returns logits over the ten digits."""

    def __init__(self):
        super().__init__()
        # Named attributes rather than nn.Sequential, and separate non-inplace ReLU modules,
        # so hooks can find every layer by a readable name and see its own output.
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        # 32 channels here (not 128) keeps fc1, and so the weight file, small: 32*4*4 inputs.
        self.conv3 = nn.Conv2d(64, 32, 3, padding=1)
        self.relu3 = nn.ReLU()
        # Flatten rather than global pooling: on a 4x4 map, where a stroke sits matters.
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(32 * 4 * 4, 128)
        self.relu4 = nn.ReLU()
        self.dropout = nn.Dropout(0.3)
        self.fc2 = nn.Linear(128, len(LABELS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.conv1(x))
        x = self.relu2(self.conv2(x))
        x = self.pool(x)
        x = self.relu3(self.conv3(x))
        x = self.flatten(x)
        x = self.relu4(self.fc1(x))
        x = self.dropout(x)
        return self.fc2(x)


def load_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """X_train, X_test (float32, (N, 1, 8, 8), in [0, 1]) and y_train, y_test (int64).

    The split is fixed (stratified, random_state=0) so that reported accuracies and the
    committed weights always refer to the same held-out quarter.
    """
    # Imported here: building the model for the zoo should not pay for importing scikit-learn.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    return X_train, X_test, y_train, y_test


def _augment(x: torch.Tensor) -> torch.Tensor:
    # The digits are centred by sklearn's preprocessing, so a one-pixel jitter is the only
    # variation worth simulating; zero fill matches the dark background.
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (1, 1, 1, 1))
    dy = torch.randint(0, 3, (n,))
    dx = torch.randint(0, 3, (n,))
    rows = (dy[:, None] + torch.arange(h))[:, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, :]
    shifted = padded[torch.arange(n)[:, None, None], 0, rows, cols][:, None]
    return (shifted + 0.05 * torch.randn_like(shifted)).clamp_(0.0, 1.0)


def train(epochs: int = 40, seed: int = 0, progress=None, batch_size: int = 32) -> DigitsCNN:
    """Train from scratch on the training split only; deterministic for a given seed.

    ``progress``, if given, is called as ``progress(epoch, mean_loss)`` after each epoch.
    """
    # All randomness (init, shuffling, jitter, noise, dropout) draws from the global generators.
    seeded(seed)
    X_train, _, y_train, _ = load_split()
    X, y = torch.from_numpy(X_train), torch.from_numpy(y_train)
    model = DigitsCNN()
    optimizer, scheduler = adam_cosine(model, 2e-3, epochs, steps_per_epoch(len(X), batch_size))
    return fit(model, epochs, lambda epoch: (X, y), progress, loss_fn=nn.CrossEntropyLoss(), optimizer=optimizer,
               scheduler=scheduler, batch_size=batch_size, augment=_augment)


@torch.no_grad()
def evaluate(model: nn.Module, X: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of ``model`` on (X, y); leaves the model in eval mode."""
    model.eval()
    logits = model(torch.as_tensor(X))
    return float((logits.argmax(dim=1) == torch.as_tensor(y)).float().mean())


def weights_path() -> pathlib.Path:
    """Where the committed trained weights live."""
    return WEIGHTS_DIR / "digits_cnn.pt"


def load_pretrained() -> DigitsCNN:
    """The committed trained model, on the CPU, in eval mode."""
    return load_committed(DigitsCNN(), weights_path().name)


def _main(argv: list[str] | None = None) -> None:
    args = recipe_arguments("digits_cnn", __doc__, 40, weights_path()).parse_args(argv)
    model, seconds = timed_training(train, args.epochs, args.seed)
    _, X_test, _, y_test = load_split()
    print(f"trained in {seconds:.1f} s; held-out accuracy {evaluate(model, X_test, y_test):.4f}")
    save_weights(model, args.out)


if __name__ == "__main__":
    _main()
