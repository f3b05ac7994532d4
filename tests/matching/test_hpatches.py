"""The HPatches protocol against a direct implementation on two small sequences (same points,
same matches, same accuracy), dense RootSIFT against OpenCV called directly, and broken
sequence folders refused with one error naming the file."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from deepvis.errors import DeepvisError
from deepvis.matching.hpatches import evaluate, read_sequences, rootsift_dense


def _texture(seed: int, size: int = 96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.random((size // 8, size // 8, 3))
    big = np.kron(small, np.ones((8, 8, 1))) * 0.6 + rng.random((size, size, 3)) * 0.4
    return (big * 255).astype(np.uint8)


def _write_sequences(root):
    """v_shift: image 2 is image 1 moved by (5, -3); i_light: image 2 is image 1 darker (H = I)."""
    base = _texture(0)
    v, i = root / "v_shift", root / "i_light"
    v.mkdir(parents=True)
    i.mkdir(parents=True)
    Image.fromarray(base).save(v / "1.png")
    moved = np.zeros_like(base)
    moved[:-3, 5:] = base[3:, :-5]  # (x, y) -> (x + 5, y - 3)
    Image.fromarray(moved).save(v / "2.png")
    np.savetxt(v / "H_1_2", [[1, 0, 5], [0, 1, -3], [0, 0, 1]])
    Image.fromarray(base).save(i / "1.png")
    Image.fromarray((base * 0.6).astype(np.uint8)).save(i / "2.png")
    np.savetxt(i / "H_1_2", np.eye(3))
    return root


def _describe(image: np.ndarray) -> torch.Tensor:
    """A fixed random 5x5 convolution of the pixels, unit length per pixel: cheap and local."""
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(16, 3, 5, 5, generator=generator)
    x = torch.from_numpy(image).float().permute(2, 0, 1)[None] / 255
    x = x - x.mean((2, 3), keepdim=True)  # what the illumination change moves
    return F.normalize(F.conv2d(x, weight, padding=2)[0], dim=0)


def _direct(root) -> dict:
    """The protocol written out point by point."""
    accuracies = {"viewpoint": [], "illumination": []}
    for name, kind in (("v_shift", "viewpoint"), ("i_light", "illumination")):
        one = np.asarray(Image.open(root / name / "1.png").convert("RGB"))
        two = np.asarray(Image.open(root / name / "2.png").convert("RGB"))
        h = np.loadtxt(root / name / "H_1_2")
        d1, d2 = _describe(one).numpy(), _describe(two).numpy()
        errors = []
        for y in range(16, one.shape[0] - 16, 8):
            for x in range(16, one.shape[1] - 16, 8):
                p = h @ np.array([x, y, 1.0])
                tx, ty = p[0] / p[2], p[1] / p[2]
                if not (16 <= tx < two.shape[1] - 16 and 16 <= ty < two.shape[0] - 16):
                    continue
                similarity = np.einsum("c,chw->hw", d1[:, y, x], d2)
                by, bx = np.unravel_index(np.argmax(similarity), similarity.shape)
                errors.append(np.hypot(bx - tx, by - ty))
        errors = np.array(errors)
        accuracies[kind].append([float((errors <= t).mean()) for t in range(1, 11)])
    every = accuracies["viewpoint"] + accuracies["illumination"]
    return {"mma": {str(t): float(np.mean([a[t - 1] for a in every])) for t in range(1, 11)},
            "viewpoint": {str(t): accuracies["viewpoint"][0][t - 1] for t in range(1, 11)},
            "illumination": {str(t): accuracies["illumination"][0][t - 1] for t in range(1, 11)}}


def test_the_protocol_equals_a_direct_implementation(tmp_path):
    root = _write_sequences(tmp_path / "seq")
    result = evaluate(_describe, read_sequences(root))
    direct = _direct(root)
    assert result["pairs"] == 2 and result["points"] == 2 * 64 - 8  # 8x8 query grid; the shift drops one row
    for key in ("mma", "viewpoint", "illumination"):
        assert result[key] == pytest.approx(direct[key], abs=1e-12)
    assert result["viewpoint"]["1"] > 0.9  # a pure shift of a textured picture is matched


def test_dense_rootsift_equals_opencv_called_directly():
    import cv2

    image = _texture(3, 48)
    dense = rootsift_dense(image).numpy()
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    points = [(0, 0), (20, 17), (47, 47)]
    _, raw = cv2.SIFT_create().compute(grey, [cv2.KeyPoint(float(x), float(y), 16.0, 0.0) for x, y in points])
    root = np.sqrt(raw / raw.sum(1, keepdims=True))
    for (x, y), expected in zip(points, root):
        assert np.allclose(dense[:, y, x], expected, atol=1e-6)
    assert np.allclose(np.linalg.norm(dense, axis=0), 1, atol=1e-5)


@pytest.mark.parametrize("break_it,message", [
    (lambda d: (d / "v_shift" / "H_1_2").unlink(), "no H_1_2"),
    (lambda d: np.savetxt(d / "v_shift" / "H_1_2", np.eye(2)), "not an invertible 3x3"),
    (lambda d: (d / "v_shift" / "H_1_2").write_text("a b c\n"), "not a 3x3 matrix"),
    (lambda d: [p.unlink() for p in (d / "i_light").iterdir()], "a sequence needs 1.png"),
])
def test_a_broken_sequence_is_one_error_naming_the_file(tmp_path, break_it, message):
    root = _write_sequences(tmp_path / "seq")
    break_it(root)
    with pytest.raises(DeepvisError, match=message):
        read_sequences(root)
