"""What the committed 3-D part segmenters (pointnet.py, voxnet.py) share: loading one.

Kept out of deepvis.models' __init__, which every bundled net imports for WEIGHTS_DIR: this
needs the 3-D part list (deepvis.shapes3d.parts), and from the __init__ it would make the digits
nets, and the zoo and generators that load them, depend on the 3-D package.
"""

from pathlib import Path

from deepvis.models import read_checkpoint


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
