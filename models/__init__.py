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


def load_part_segmenter(cls, path, recipe: str):
    """A committed 3-D part segmenter (PointNet, the voxel net) on the CPU in eval mode; refused
    when the shapes' part list changed since it was trained."""
    from deepvis.shapes3d import parts as parts3d
    from deepvis.errors import DeepvisError

    state, meta = read_checkpoint(path)
    if meta["part_names"] != parts3d.PART_NAMES:
        raise DeepvisError(f"{Path(path).name} was trained on other parts; retrain with python -m {recipe}")
    model = cls(len(meta["part_names"]))
    model.load_state_dict(state)
    return model.eval()
