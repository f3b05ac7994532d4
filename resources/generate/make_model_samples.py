"""Regenerate the bundled inputs of the bundled models (run once; the outputs are committed).

    python resources/generate/make_model_samples.py

Each small model opens on its own kind of input (a photo means nothing to a digit classifier):

- ``digits/``: one held-out 8x8 digit per class (the test quarter of ``digits_cnn.load_split``),
  enlarged x8 by nearest neighbours so a file viewer shows it; area downscaling gives back the
  8x8 digit exactly.
- ``mosaics/``: held-out 32x32 mosaics of ``digits_vit`` (its test split and held-out seed),
  enlarged x4 by nearest neighbours.
- ``scenes/``: held-out 64x64 scenes of ``digits_fcn`` enlarged x4, with their ground truth in
  ``scenes/truth/`` (palette PNGs of the same name: 0 background, digit d is class d + 1).
- ``signals/recording.wav``: 120 held-out windows of ``signals_wavenet``'s five classes, one
  after another (15 s at 8 kHz); window k of the file is signal k.

Items are the first held-out ones, in order, that the committed model reads right (a
demonstration of a working model; the models' held-out scores, over every item, are in their
modules and in docs/benchmarks.md). Everything is generated from scikit-learn's digits and
from synthetic signals, so it is ours (CC0) and small; fixed seeds keep it identical.
"""

from pathlib import Path

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent.parent  # resources/; this folder is not part of the package
MOSAICS = 6
SCENES = 6
SCENE_MIN_IOU = 0.6
RECORDING_WINDOWS = 120


def _grey_png(values01: np.ndarray, scale: int, path: Path) -> None:
    grey = np.clip(np.rint(values01 * 255), 0, 255).astype(np.uint8)
    Image.fromarray(np.kron(grey, np.ones((scale, scale), np.uint8))).save(path, optimize=True)


def _palette_png(mask: np.ndarray, scale: int, path: Path) -> None:
    from deepvis.render.colormaps import voc_palette

    # A palette PNG: the pixel values are the class ids (what read_mask reads), and a viewer
    # shows them in the segmentation tab's colours.
    image = Image.fromarray(np.kron(mask.astype(np.uint8), np.ones((scale, scale), np.uint8)), mode="P")
    image.putpalette(np.asarray(voc_palette(256), np.uint8).reshape(-1).tolist())
    image.save(path, optimize=True)


def digits() -> None:
    from deepvis.models.digits_cnn import load_pretrained, load_split

    out = HERE / "digits"
    out.mkdir(exist_ok=True)
    _, X_test, _, y_test = load_split()
    with torch.no_grad():
        predicted = load_pretrained()(torch.from_numpy(X_test)).argmax(1).numpy()
    for digit in range(10):
        i = next(i for i in range(len(y_test)) if y_test[i] == digit and predicted[i] == digit)
        _grey_png(X_test[i, 0], 8, out / f"digit-{digit}.png")


def mosaics() -> None:
    from deepvis.models.digits_vit import held_out, load_pretrained

    out = HERE / "mosaics"
    out.mkdir(exist_ok=True)
    X, Y, layout = held_out()
    with torch.no_grad():
        named = torch.sigmoid(load_pretrained()(torch.from_numpy(X))).numpy() > 0.5
    right = [i for i in range(len(X)) if (named[i] == (Y[i] > 0.5)).all() and (layout[i] >= 0).sum() >= 2]
    for n, i in enumerate(right[:MOSAICS]):
        digits_in = "".join(str(d) for d in layout[i] if d >= 0)
        _grey_png(X[i, 0], 4, out / f"mosaic-{n}-{digits_in}.png")


def scenes() -> None:
    from deepvis.models.digits_fcn import HELD_OUT_SCENES, HELD_OUT_SEED, NUM_CLASSES, load_pretrained, make_scenes

    out, truth = HERE / "scenes", HERE / "scenes" / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    X, masks = make_scenes(HELD_OUT_SCENES, HELD_OUT_SEED, "test")
    with torch.no_grad():
        labels = load_pretrained()(torch.from_numpy(X)).argmax(1).numpy()
    kept = 0
    for i in range(len(X)):
        present = [c for c in range(1, NUM_CLASSES) if (masks[i] == c).any() or (labels[i] == c).any()]
        ious = [((masks[i] == c) & (labels[i] == c)).sum() / ((masks[i] == c) | (labels[i] == c)).sum()
                for c in present]
        if min(ious) < SCENE_MIN_IOU:
            continue
        _grey_png(X[i, 0], 4, out / f"scene-{kept}.png")
        _palette_png(masks[i], 4, truth / f"scene-{kept}.png")
        kept += 1
        if kept == SCENES:
            break


def recording() -> None:
    from deepvis.models.signals_wavenet import write_recording

    out = HERE / "signals"
    out.mkdir(exist_ok=True)
    write_recording(out / "recording.wav", count=RECORDING_WINDOWS)


if __name__ == "__main__":
    digits()
    mosaics()
    scenes()
    recording()
