"""Network definitions, training recipes and small trained weights of deepvis.

Imported as ``deepvis.models``. Weight files live in ``weights/`` beside this file.
"""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def read_checkpoint(path) -> tuple[dict, dict]:
    """A committed ``{"state_dict", "meta"}`` checkpoint: its weights and their metadata."""
    import torch

    saved = torch.load(path, map_location="cpu", weights_only=True)
    return saved["state_dict"], saved["meta"]
