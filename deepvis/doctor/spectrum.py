"""The power-law exponent alpha of a layer's eigenvalue spectrum, as WeightWatcher fits it.

Heavy-Tailed Self-Regularization (C. H. Martin and M. W. Mahoney, "Implicit Self-Regularization
in Deep Neural Networks", JMLR 22(165), 2021; "Predicting trends in the quality of
state-of-the-art neural networks without access to training or testing data", Nature
Communications 12, 4122, 2021) looks at the eigenvalues of X = W^T W of a weight matrix W (its
empirical spectral density, ESD). Training turns the Marchenko-Pastur bulk of a random matrix
into a heavy tail; fitting that tail to a power law p(lambda) ~ lambda^-alpha for
lambda >= xmin gives alpha. Their WeightWatcher tool (github.com/CalculatedContent/WeightWatcher)
reports it per layer: small alpha (about 2) is a strongly correlated, well-trained layer; large
alpha is a nearly random, under-trained one; alpha below 2 can mean over-fitting.

This module reproduces, with numpy alone, the ``alpha`` column of
``weightwatcher.WeightWatcher(model=m).analyze()`` with its default arguments in WeightWatcher
0.7.7 on a CPU-only machine (``tests/doctor/test_spectrum.py`` compares the two layer by layer):

- which layers: WeightWatcher reads a weight the way a PyTorch Linear (out, in), Conv1d
  (out, in, k) or Conv2d (out, in, kh, kw) stores it, and skips a layer whose nominal eigenvalue
  count M * rf is under 8 or over 15000 or whose larger side N is over 50000 (M, N and the
  receptive field rf as it computes them, quirks included; see ``_weightwatcher_dims``);
- the eigenvalues: squared singular values of the weights read as float32 and computed in
  float64; a Conv2d is cut into its kh * kw (out, in) matrices, each scaled by sqrt(1/2) (its
  default ``conv2d_norm``), and their eigenvalues pooled into one spectrum;
- the fit (its own ``WW_powerlaw.WWFit``, not the ``powerlaw`` package; no xmax, no
  ``fix_fingers``): eigenvalues at or below 1e-5 are dropped, every eigenvalue but the largest
  is tried as xmin, alpha = 1 + n / sum(log(x / xmin)) over the n eigenvalues >= xmin, and the
  xmin with the smallest Kolmogorov-Smirnov distance wins. Under 20 eigenvalues it switches to
  a bias-corrected small-sample fit (``_fit_small_sample``).

One rule is ours, not WeightWatcher's: ``fit_alpha`` gives no alpha for a spectrum of fewer
than ``MIN_EIGENVALUES`` eigenvalues. WeightWatcher's own floor is 8 (so it fits, for example,
the 9 eigenvalues of a 3x3 depthwise convolution); a power law fitted to a few dozen points
says little, and its source notes "really 50" where it once checked. Pass
``min_eigenvalues=0`` to get every alpha WeightWatcher reports.

Numpy only (no torch, no scipy): the checkpoint doctor runs it on arrays it already has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Fewer eigenvalues than this: no alpha (see the module docstring; WeightWatcher's floor is 8).
MIN_EIGENVALUES = 50

# WeightWatcher labels a layer "over-trained" when alpha < 2.0 and "under-trained" when
# alpha > 6.0 (weightwatcher 0.7.7: constants.py OVER_TRAINED_THRESH / UNDER_TRAINED_THRESH,
# applied at the end of WeightWatcher.fit_powerlaw); its README adds that alpha near 2 is best.
ALPHA_RANGE = (2.0, 6.0)

# WeightWatcher 0.7.7's defaults (constants.py), named for what they do here.
WEIGHTWATCHER_MIN_EVALS = 8  # DEFAULT_MIN_EVALS: nominal eigenvalue count M * rf below this: layer skipped
WEIGHTWATCHER_MAX_EVALS = 15000  # DEFAULT_MAX_EVALS: nominal count above this: layer skipped
WEIGHTWATCHER_MAX_N = 50000  # DEFAULT_MAX_N: larger matrix side above this: layer skipped
ZERO_EIGENVALUE = 1e-5  # EVALS_THRESH: eigenvalues at or below this are left out of the fit
SMALL_SAMPLE = 20  # WW_powerlaw.SMALL_N_CUTOFF: fewer eigenvalues in the fit: small-sample fit
SMALL_SAMPLE_MIN_TAIL = 8  # WWFit.fit_powerlaw_smallN k_min: shortest tail it tries
# conv2d_norm (on by default) multiplies each kh*kw slice by sqrt(conv2d_count / 2), and
# conv2d_count is 1 when the slices are pooled (the default); it changes which eigenvalues
# clear ZERO_EIGENVALUE, so it is kept.
CONV2D_SCALE = math.sqrt(1 / 2)


@dataclass(frozen=True)
class SpectrumFit:
    """A power-law fit of the tail of one layer's eigenvalue spectrum."""

    alpha: float  # the exponent: p(lambda) ~ lambda^-alpha for lambda >= xmin
    xmin: float  # where the fitted tail starts (an eigenvalue)
    eigenvalues: int  # eigenvalues in the whole spectrum (zeros included)
    ks_distance: float  # Kolmogorov-Smirnov distance between the tail and the fitted power law


def eigenvalues_of(weight: np.ndarray) -> np.ndarray:
    """The eigenvalues of W^T W that WeightWatcher builds for a layer weight, ascending.

    ``weight`` as PyTorch stores it: Linear (out, in), Conv1d (out, in, k) or Conv2d
    (out, in, kh, kw).
    """
    # WeightWatcher reads weights with torch's .float() and computes in float64 (W.astype(float)).
    w = np.asarray(weight, dtype=np.float32).astype(np.float64)
    if w.size == 0:
        return np.zeros(0)
    if w.ndim == 2:
        singular = np.linalg.svd(w, compute_uv=False)
    elif w.ndim == 3:
        # WeightWatcher hands the whole (out, in, k) tensor to scipy.linalg.svd, which (SciPy >= 1.16)
        # treats it as `out` stacked (in, k) matrices; of the pooled singular values it keeps the
        # largest min(out, in, k), its component count for a Conv1d.
        singular = np.sort(np.linalg.svd(w, compute_uv=False).ravel())[-min(w.shape):]
    elif w.ndim == 4:
        out_channels, in_channels, kh, kw = w.shape
        slices = w.transpose(2, 3, 0, 1).reshape(kh * kw, out_channels, in_channels) * CONV2D_SCALE
        if out_channels < in_channels:
            slices = slices.transpose(0, 2, 1)  # WeightWatcher makes each slice tall before its SVD
        singular = np.linalg.svd(slices, compute_uv=False).ravel()
    else:
        raise ValueError(f"expected a Linear, Conv1d or Conv2d weight (2 to 4 dimensions), got shape {w.shape}")
    return np.sort(singular * singular)


def fit_alpha(weight: np.ndarray, *, min_eigenvalues: int = MIN_EIGENVALUES) -> SpectrumFit | None:
    """The power-law fit of ``weight``'s eigenvalue spectrum, as WeightWatcher's default analyze().

    None where WeightWatcher skips the layer (any shape but 2 to 4 dimensions, or its size
    limits), where the spectrum has fewer than ``min_eigenvalues`` eigenvalues, where the
    weights are not all finite (WeightWatcher's SVD raises) and where its fit fails (fewer than
    two eigenvalues above 1e-5, or a NaN alpha; WeightWatcher then reports alpha = -1).
    """
    w = np.asarray(weight)
    if w.ndim not in (2, 3, 4) or _weightwatcher_skips(w.shape) or _eigenvalue_count(w.shape) < min_eigenvalues:
        return None
    w = w.astype(np.float32)
    if not np.isfinite(w).all():
        return None
    eigenvalues = eigenvalues_of(w)
    fitted = eigenvalues[eigenvalues > ZERO_EIGENVALUE]
    fit = _fit_small_sample(fitted) if len(fitted) < SMALL_SAMPLE else _fit_power_law(fitted)
    if fit is None or math.isnan(fit[0]):
        return None
    alpha, xmin, ks_distance = fit
    return SpectrumFit(alpha=float(alpha), xmin=float(xmin), eigenvalues=len(eigenvalues),
                       ks_distance=float(ks_distance))


def _eigenvalue_count(shape: tuple[int, ...]) -> int:
    """len(eigenvalues_of(weight)) from the weight's shape alone, without the SVD."""
    if len(shape) == 4:
        return min(shape[0], shape[1]) * shape[2] * shape[3]
    return min(shape)


def _weightwatcher_dims(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """WeightWatcher's (N, M, rf) for a weight shape: the sizes its skip rules test.

    Linear and Conv1d: N and M are the largest and smallest dimension (of all three for a
    Conv1d), rf = 1. Conv2d: rf = kh * kw and (N, M) = (out, in), except that its slice loop
    swaps N and M once per slice when out < in, so they end up (in, out) only for an odd rf;
    and when out + in < kh + kw it takes the tensor for channels-first and keeps (out, in).
    """
    if len(shape) in (2, 3):
        return max(shape), min(shape), 1
    out_channels, in_channels, kh, kw = shape
    rf = kh * kw
    channels_last = out_channels + in_channels >= kh + kw
    if channels_last and out_channels < in_channels and rf % 2 == 1:
        return in_channels, out_channels, rf
    return out_channels, in_channels, rf


def _weightwatcher_skips(shape: tuple[int, ...]) -> bool:
    """Whether WeightWatcher's default analyze() leaves a layer of this weight shape out."""
    n, m, rf = _weightwatcher_dims(shape)
    nominal_eigenvalues = m * rf
    return (nominal_eigenvalues < WEIGHTWATCHER_MIN_EVALS or nominal_eigenvalues > WEIGHTWATCHER_MAX_EVALS
            or n > WEIGHTWATCHER_MAX_N)


def _fit_power_law(data: np.ndarray) -> tuple[float, float, float]:
    """(alpha, xmin, KS distance) of WWFit.fit_power_law_standard on ascending eigenvalues.

    The loop and its sums are written as WeightWatcher writes them, so the same eigenvalues give
    the same floating-point alphas and distances, and near-tied distances pick the same xmin.
    """
    count = len(data)
    log_data = np.log(data)
    alphas = np.zeros(count - 1)
    distances = np.ones(count - 1)  # 1 (the worst) where alpha <= 1 is no power law
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for i, xmin in enumerate(data[:-1]):
            n = float(count - i)
            alpha = 1 + n / (np.sum(log_data[i:]) - n * log_data[i])
            alphas[i] = alpha
            if alpha > 1:
                fitted_cdf = 1 - (data[i:] / xmin) ** (-alpha + 1)
                empirical_cdf = np.arange(n) / n
                distances[i] = np.max(np.abs(fitted_cdf - empirical_cdf))
    best = int(np.argmin(distances))
    return alphas[best], data[best], distances[best]


def _fit_small_sample(data: np.ndarray) -> tuple[float, float, float] | None:
    """(alpha, xmin, KS distance) of WWFit.fit_powerlaw_smallN on fewer than 20 eigenvalues.

    Tails of at least 8 eigenvalues are tried, alpha with the (n - 1) bias correction. The
    objective KS distance - 0.868 / sqrt(n) that fit_powerlaw_smallN minimises only decides
    whether any tail qualified: WWFit.__init__ then picks the xmin of smallest KS distance over
    all tails again, untried ones counting as distance 1 and alpha 0. With no qualifying tail,
    all eigenvalues are the tail; when they are all equal, alpha stays 0. None for a single
    eigenvalue (WWFit raises on it, so WeightWatcher reports a failed fit).
    """
    count = len(data)
    if count < 2:
        return None
    log_data = np.log(data)
    alphas = np.zeros(count - 1)
    distances = np.ones(count - 1)
    qualified = False
    with np.errstate(over="ignore"):
        for i, xmin in enumerate(data[:-1]):
            tail_size = count - i
            if tail_size < SMALL_SAMPLE_MIN_TAIL:
                continue
            n = float(tail_size)
            log_sum = np.sum(log_data[i:]) - n * log_data[i]
            if log_sum <= 1e-12:
                continue  # a tail of equal eigenvalues
            alpha = 1.0 + (n - 1.0) / log_sum
            alphas[i] = alpha
            if alpha <= 1.0:
                continue
            fitted_cdf = 1.0 - (data[i:] / xmin) ** (1.0 - alpha)
            empirical_cdf = np.arange(tail_size, dtype=np.float64) / n
            distances[i] = float(np.max(np.abs(empirical_cdf - fitted_cdf)))
            qualified = True
        if not qualified:
            n = float(count)
            log_sum = np.sum(log_data) - n * log_data[0]
            if log_sum > 1e-12:
                alphas[0] = 1.0 + (n - 1.0) / log_sum
                fitted_cdf = 1.0 - (data / data[0]) ** (1.0 - alphas[0])
                empirical_cdf = np.arange(count, dtype=np.float64) / n
                distances[0] = float(np.max(np.abs(empirical_cdf - fitted_cdf)))
    best = int(np.argmin(distances))
    return alphas[best], data[best], distances[best]
