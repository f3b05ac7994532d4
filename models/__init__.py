"""Network definitions, training recipes and small trained weights of deepvis.

Imported as ``deepvis.models``. Weight files live in ``weights/`` beside this file.
"""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def load_committed(model, filename: str):
    """``model`` with the committed state dict ``weights/filename``, on the CPU, in eval mode."""
    import torch

    model.load_state_dict(torch.load(WEIGHTS_DIR / filename, map_location="cpu", weights_only=True))
    return model.eval()


def train_epoch(model, X, y, loss_fn, optimizer, scheduler, batch_size: int, clip: float, augment=None) -> float:
    """One pass over (X, y) in shuffled minibatches (torch's global generator), gradients
    clipped to ``clip``, the scheduler stepped per batch; ``augment`` is applied to each batch's
    inputs. Returns the mean loss."""
    import torch
    from torch import nn

    order = torch.randperm(len(X))
    total = 0.0
    for start in range(0, len(X), batch_size):
        idx = order[start : start + batch_size]
        inputs = X[idx] if augment is None else augment(X[idx])
        loss = loss_fn(model(inputs), y[idx])
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        scheduler.step()
        total += loss.item() * len(idx)
    return total / len(X)


def read_checkpoint(path) -> tuple[dict, dict]:
    """A committed ``{"state_dict", "meta"}`` checkpoint: its weights and their metadata."""
    import torch

    saved = torch.load(path, map_location="cpu", weights_only=True)
    return saved["state_dict"], saved["meta"]
