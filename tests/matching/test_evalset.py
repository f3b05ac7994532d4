"""Evaluation sequences made from pictures: readable in the HPatches layout, and each warped
image is the first one moved by its stored homography."""

import numpy as np

from deepvis.io.images import read_image
from deepvis.matching.evalset import write_sequences
from deepvis.matching.hpatches import inside, query_points, read_sequences, warp


def test_made_sequences_hold_the_homographies_they_were_warped_by(tmp_path):
    rng = np.random.default_rng(0)
    picture = (np.kron(rng.random((12, 16, 3)), np.ones((8, 8, 1))) * 255).astype(np.uint8)  # 96 x 128 blocks
    sequences = read_sequences(write_sequences({"blocks": picture}, tmp_path / "seq"))
    assert [(s.name, s.kind, len(s.images)) for s in sequences] == [("i_blocks", "illumination", 6),
                                                                      ("v_blocks", "viewpoint", 6)]
    view = sequences[1]
    first = read_image(view.images[0]).astype(np.float64)
    for k in (2, 6):
        moved = read_image(view.images[k - 1]).astype(np.float64)
        points = query_points(128, 96) + 3.5  # the middle of each 8x8 block, away from its edges
        target = warp(view.homographies[k], points)
        keep = inside(target, 128, 96)
        ty, tx = np.round(target[keep, 1]).astype(int), np.round(target[keep, 0]).astype(int)
        sy, sx = np.round(points[keep, 1]).astype(int), np.round(points[keep, 0]).astype(int)
        # Points on 8x8 blocks: the value a point had is found where its homography puts it.
        agree = (np.abs(moved[ty, tx] - first[sy, sx]).max(1) < 40).mean()
        assert agree > 0.8, (k, agree)
    assert np.allclose(sequences[0].homographies[4], np.eye(3))
