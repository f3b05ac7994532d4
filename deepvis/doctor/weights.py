"""What the weights say without any data: per layer with a weight matrix (convolutions,
linear layers), its norm, its share of near-zero weights and the power-law exponent alpha of
its eigenvalue spectrum (deepvis.doctor.spectrum, as WeightWatcher fits it).

An alpha outside the range WeightWatcher's authors call well trained is an advisory, not a
flag: the range was found on large pretrained networks, and the bundled models, healthy by
every measure with data, fall outside it (digits_cnn, 99.7 % accurate: alpha 1.6 to 1.95 in
three layers; efficientnet_lite0: 7.0 and 7.9 in two projection layers). Non-finite weights
are a flag."""

from __future__ import annotations

import numpy as np
from torch import nn

NEAR_ZERO = 1e-3  # |w| below this share of the layer's largest |w|: pruned, or never trained away from 0


def weight_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """(path, module) of every convolution and linear layer, in module order."""
    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
             nn.ConvTranspose3d)
    return [(path, m) for path, m in module.named_modules()
            if isinstance(m, kinds) and getattr(m, "weight", None) is not None]


def first_filters(module: nn.Module) -> np.ndarray | None:
    """The first convolution's weights (out, in, kh, kw) or (out, in, k), in module order."""
    for _, layer in module.named_modules():
        if isinstance(layer, (nn.Conv2d, nn.Conv1d)):
            return layer.weight.detach().float().cpu().numpy()
    return None


def weight_figures(module: nn.Module, progress=None, cancel=None) -> list[dict]:
    from deepvis.doctor.spectrum import ALPHA_RANGE, MIN_EIGENVALUES, fit_alpha
    from deepvis.errors import Cancelled

    layers = weight_layers(module)
    rows = []
    for k, (path, layer) in enumerate(layers):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        w = layer.weight.detach().float().cpu().numpy()
        if isinstance(layer, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            w = np.swapaxes(w, 0, 1)  # stored (in, out, ...): as a convolution's (out, in, ...) for its norm
        largest = float(np.abs(w).max()) if w.size else 0.0
        # Every alpha WeightWatcher reports (it never fits transposed convolutions); judged only
        # from MIN_EIGENVALUES eigenvalues up, where the fit has a tail to stand on.
        transposed = isinstance(layer, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))
        fit = fit_alpha(w, min_eigenvalues=0) if w.ndim in (2, 3, 4) and not transposed else None
        alpha = None if fit is None else fit.alpha
        advisory = None
        if alpha is not None and fit.eigenvalues >= MIN_EIGENVALUES and not ALPHA_RANGE[0] <= alpha <= ALPHA_RANGE[1]:
            advisory = "under-trained" if alpha > ALPHA_RANGE[1] else "over-trained"
        flags = []
        finite = bool(np.isfinite(w).all())
        if not finite:
            flags.append("nonfinite")
        rows.append({"name": path or "(model)", "type": type(layer).__name__, "shape": list(w.shape),
                     "norm": float(np.linalg.norm(w)) if finite else None,
                     "near_zero_fraction": float((np.abs(w) < NEAR_ZERO * largest).mean()) if largest else 1.0,
                     "alpha": alpha, "eigenvalues": None if fit is None else fit.eigenvalues,
                     "alpha_advisory": advisory, "flags": flags})
        if progress is not None:
            progress("weights", k + 1, len(layers))
    return rows
