"""Choosing the torch device from the ``--device`` option."""

import torch

from deepvis.errors import DeepvisError

from deepvis.core.defaults import DEVICE_CHOICES


def resolve_device(name: str | None = "auto") -> torch.device:
    """``auto`` takes CUDA, then Apple's MPS, then the CPU; a named accelerator must exist."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeepvisError(f"--device {name}: no CUDA device is available here (use --device cpu or auto)")
        return torch.device(name)
    if name == "mps":
        if not _mps_available():
            raise DeepvisError("--device mps: Apple's MPS backend is not available here (use --device cpu or auto)")
        return torch.device("mps")
    raise DeepvisError(f"unknown device {name!r}: expected one of {', '.join(DEVICE_CHOICES)}")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so that timings on accelerators measure the work, not the launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
