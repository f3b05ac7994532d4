"""Bundled sample data of deepvis, imported as ``deepvis.resources``."""

from dataclasses import dataclass
from pathlib import Path

RESOURCES_DIR = Path(__file__).resolve().parent
IMAGES_DIR = RESOURCES_DIR / "images"
MACO_TEMPLATE = RESOURCES_DIR / "maco" / "magnitude.npy"
"""Natural-image Fourier magnitude, (3, 256, 129) float16: MACO's fixed magnitude (see
resources/generate/make_maco_template.py)."""
FIRST_PHOTO = "cat.png"
"""The photo the bundled photos open on: one the default model gets right (Egyptian cat)."""


@dataclass(frozen=True)
class SampleSet:
    """A kind of input the bundled models take, and the bundled files of that kind."""

    kind: str
    title: str  # for the File > Samples menu
    path: Path  # a folder of images, or one recording
    truth: Path | None = None  # a folder of ground-truth masks named like the images
    first: str | None = None  # the file a folder opens on


SAMPLE_SETS = {s.kind: s for s in (
    SampleSet("photos", "Photos (ImageNet models)", IMAGES_DIR, first=FIRST_PHOTO),
    SampleSet("digits", "Digits, 8x8 (digits_cnn, _ae, _vae, _pixelcnn)", RESOURCES_DIR / "digits"),
    SampleSet("mosaics", "Digit mosaics, 32x32 (digits_vit)", RESOURCES_DIR / "mosaics"),
    SampleSet("scenes", "Digit scenes with ground truth, 64x64 (digits_fcn)", RESOURCES_DIR / "scenes",
              truth=RESOURCES_DIR / "scenes" / "truth"),
    SampleSet("signals", "Signal recording, 8 kHz (signals_wavenet)", RESOURCES_DIR / "signals" / "recording.wav"),
)}
"""Every bundled input, by kind; a zoo entry names the kind its model takes."""


def sample_images() -> list[Path]:
    """The bundled photos, sorted by name."""
    return sorted(p for p in IMAGES_DIR.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})


def sample_image(name: str) -> Path:
    """One bundled photo by stem, e.g. ``sample_image("cat")``."""
    for p in sample_images():
        if p.stem == name:
            return p
    raise KeyError(f"no bundled image named {name!r}; have {[p.stem for p in sample_images()]}")


def sample_set_of(path) -> SampleSet | None:
    """The bundled sample set ``path`` is (or lies in), else None."""
    try:
        resolved = Path(str(path)).resolve()
    except (OSError, RuntimeError):
        return None
    for sample in SAMPLE_SETS.values():
        if resolved == sample.path or sample.path in resolved.parents:
            return sample
    return None
