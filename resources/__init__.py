"""Bundled sample data of deepvis, imported as ``deepvis.resources``."""

from pathlib import Path

RESOURCES_DIR = Path(__file__).resolve().parent
IMAGES_DIR = RESOURCES_DIR / "images"


def sample_images() -> list[Path]:
    """The bundled photos, sorted by name."""
    return sorted(p for p in IMAGES_DIR.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})


def sample_image(name: str) -> Path:
    """One bundled photo by stem, e.g. ``sample_image("cat")``."""
    for p in sample_images():
        if p.stem == name:
            return p
    raise KeyError(f"no bundled image named {name!r}; have {[p.stem for p in sample_images()]}")
