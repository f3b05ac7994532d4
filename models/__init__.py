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


def read_checkpoint(path) -> tuple[dict, dict]:
    """A committed ``{"state_dict", "meta"}`` checkpoint: its weights and their metadata."""
    import torch

    saved = torch.load(path, map_location="cpu", weights_only=True)
    return saved["state_dict"], saved["meta"]
