"""What the training recipes of the bundled nets share: seeding, the epoch loop, Adam with a
cosine decay, and the command line that retrains and saves committed weights.

A recipe keeps what is its own (the data, the loss, the schedule's shape) and hands the rest
here, so every net is trained the same way: minibatches in a shuffled order drawn from torch's
global generator, the scheduler stepped per batch, the loss reported per example.
"""

import argparse
import pathlib
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn


def seeded(seed: int) -> None:
    """Seed torch's and numpy's global generators: a recipe's init, shuffling, augmentation and
    noise all draw from them, so a seed fixes the whole run."""
    torch.manual_seed(seed)
    np.random.seed(seed)


def adam_cosine(model: nn.Module, lr: float, epochs: int, steps_per_epoch: int):
    """Adam at ``lr`` and a cosine decay over the run, without warm-up: full rate from the first
    step, so even a two-epoch run learns, and a rate near zero at the end settles the weights."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)


def steps_per_epoch(examples: int, batch_size: int) -> int:
    return -(-examples // batch_size)


def train_epoch(model, X, y, loss_fn, optimizer, scheduler, batch_size: int, clip: float | None = None,
                augment=None, batch_loss=None, min_batch: int = 1) -> float:
    """One pass over (X, y) in shuffled minibatches (torch's global generator); returns the mean
    loss per example.

    Each batch's loss is ``loss_fn(model(inputs), targets)``, or ``batch_loss(inputs, targets)``
    -> (loss to minimise, loss to report) where it is not a function of the output alone (a
    VAE's sampled code and its KL weight's warm-up). ``augment`` is applied to each batch's
    inputs; gradients are clipped to norm ``clip`` when given; batches smaller than
    ``min_batch`` are skipped (batch norm needs two examples); the scheduler steps per batch.
    """
    order = torch.randperm(len(X))
    total, seen = 0.0, 0
    for start in range(0, len(X), batch_size):
        idx = order[start : start + batch_size]
        if len(idx) < min_batch:
            continue
        inputs = X[idx] if augment is None else augment(X[idx])
        if batch_loss is None:
            loss = loss_fn(model(inputs), y[idx])
            reported = None
        else:
            loss, reported = batch_loss(inputs, y[idx])
        optimizer.zero_grad()
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        scheduler.step()
        total += (loss.item() if reported is None else reported) * len(idx)
        seen += len(idx)
    return total / max(seen, 1)


def fit(model: nn.Module, epochs: int, data: Callable[[int], tuple], progress=None, **epoch_options) -> nn.Module:
    """``epochs`` calls of :func:`train_epoch` on ``data(epoch)`` = (X, y) (the same tensors each
    epoch, or fresh ones); ``progress(epoch, mean_loss)`` after each. Returns the model in eval
    mode."""
    model.train()
    for epoch in range(epochs):
        X, y = data(epoch)
        loss = train_epoch(model, X, y, **epoch_options)
        if progress is not None:
            progress(epoch, loss)
    return model.eval()


def recipe_arguments(module: str, doc: str, epochs: int | None, weights: pathlib.Path | None,
                     epochs_help: str | None = None, out_help: str = "where to save the state dict",
                     seed_help: str = "torch/numpy seed; the committed weights use 0"):
    """``python -m deepvis.models.<module> [--epochs N] [--seed S] [--out PATH]``: an
    argparse parser that a recipe may add its own options to."""
    parser = argparse.ArgumentParser(prog=f"python -m deepvis.models.{module}", description=doc.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=epochs,
                        help=epochs_help or f"passes over the training split (default {epochs})")
    parser.add_argument("--seed", type=int, default=0, help=seed_help)
    parser.add_argument("--out", type=pathlib.Path, default=weights, help=out_help)
    return parser


def timed_training(train: Callable[..., nn.Module], *args, **kwargs) -> tuple[nn.Module, float]:
    """``train(*args, progress=print a line per epoch, **kwargs)`` and the seconds it took."""
    start = time.perf_counter()
    model = train(*args, progress=lambda epoch, loss: print(f"epoch {epoch + 1:3d}  loss {loss:.4f}  "
                                                            f"{time.perf_counter() - start:.0f} s", flush=True),
                  **kwargs)
    return model, time.perf_counter() - start


def save_weights(model: nn.Module, out: pathlib.Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out)
    print(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB)")
