"""Where deepvis caches what it computes, and the model fingerprint that keys those caches.

Shared by the feature cache (deepvis.embed) and by the unit pictures and unit profiles
(deepvis.optimize).
"""

import hashlib
import os
from pathlib import Path

from deepvis.core.loading import LoadedModel


def default_cache_dir() -> Path:
    """``$DEEPVIS_CACHE``, else ``$XDG_CACHE_HOME/deepvis/features`` (``~/.cache`` by default)."""
    if os.environ.get("DEEPVIS_CACHE"):
        return Path(os.environ["DEEPVIS_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "deepvis" / "features"


def model_fingerprint(model: LoadedModel) -> str:
    """A digest of every parameter and buffer: the same weights give the same cache entry."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in model.module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    spec = model.spec
    digest.update(repr((spec.channels, spec.height, spec.width, spec.mean, spec.std, spec.fit)).encode())
    return digest.hexdigest()
