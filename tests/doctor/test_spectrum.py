"""fit_alpha equals WeightWatcher 0.7.7's own default analyze(), layer by layer: alpha, xmin,
KS distance and eigenvalue count on every convolution and the classifier of the bundled
efficientnet_lite0, on a Linear layer with a planted power-law spectrum, and on small or odd
layers that take WeightWatcher's small-sample fit, its size limits and its Conv2d quirks.
Below 50 eigenvalues fit_alpha gives None (WeightWatcher itself fits down to 8); with
min_eigenvalues=0 it gives every alpha WeightWatcher reports, and None exactly where
WeightWatcher reports nothing or a failed fit."""

import numpy as np
import pytest
import scipy
import torch
from threadpoolctl import threadpool_limits
from torch import nn

ww = pytest.importorskip("weightwatcher")

from deepvis.doctor.spectrum import MIN_EIGENVALUES, eigenvalues_of, fit_alpha  # noqa: E402

# With CUDA, WeightWatcher reads weights as float16 and takes its SVDs on the GPU
# (weightwatcher/RMT_Util.py); fit_alpha reproduces the CPU path (float32 weights, LAPACK gesdd).
# Its own warnings (pandas deprecations, log10(0) on the all-zero layer) are not this file's concern.
pytestmark = [pytest.mark.skipif(torch.cuda.is_available(), reason="WeightWatcher changes precision under CUDA"),
              pytest.mark.filterwarnings("ignore:::weightwatcher")]

# WeightWatcher's fit is deterministic (no sampling), and fit_alpha repeats its arithmetic step for
# step. The eigenvalues come from the same LAPACK routine (gesdd) through numpy instead of scipy;
# builds and OpenBLAS threading can change their last bits (about 1e-15 relative, seen on the
# 1000x1280 classifier). While the same xmin wins, that moves alpha by about as little; had a
# different xmin won, alpha would be off by orders of magnitude more than this tolerance.
RTOL = 1e-9

# WeightWatcher hands a Conv1d's 3-D weight to scipy.linalg.svd, which batches it from SciPy 1.16;
# before that its analyze() raises on a Conv1d it does not skip.
SCIPY_BATCHES_SVD = tuple(int(part) for part in scipy.__version__.split(".")[:2]) >= (1, 16)


@pytest.fixture(autouse=True)
def one_blas_thread():
    """SVDs on one OpenBLAS thread (WeightWatcher's in scipy's copy, fit_alpha's in numpy's).

    With both cores busy elsewhere (other test processes), two-thread SVDs wait on each other:
    the efficientnet comparison took 25 s instead of 1.5 s.
    """
    with threadpool_limits(limits=1):
        yield


def weightwatcher_rows(model: nn.Module) -> dict[int, object]:
    """WeightWatcher's default analyze(): {layer id (index in named_modules()): details row}."""
    details = ww.WeightWatcher(model=model).analyze()
    return {int(row.layer_id): row for row in details.itertuples()}


def assert_same_fit(weight: np.ndarray, row, where: str) -> None:
    """fit_alpha (with no floor of its own) reports what WeightWatcher's details row says."""
    fit = fit_alpha(weight, min_eigenvalues=0)
    assert fit is not None, where
    assert fit.eigenvalues == row.num_evals, where
    assert fit.alpha == pytest.approx(row.alpha, rel=RTOL), where
    assert fit.xmin == pytest.approx(row.xmin, rel=RTOL), where
    assert fit.ks_distance == pytest.approx(row.D, rel=RTOL), where
    assert fit_alpha(weight) == (fit if fit.eigenvalues >= MIN_EIGENVALUES else None), where


def test_every_layer_of_efficientnet_lite0_matches_weightwatcher(lite0):
    modules = list(lite0.module.named_modules())
    rows = weightwatcher_rows(lite0.module)
    with_weights = [i for i, (_, m) in enumerate(modules) if isinstance(m, (nn.Conv2d, nn.Linear))]
    # WeightWatcher analyzes all 49 convolutions (even the 9 eigenvalues of a 3x3 depthwise one)
    # and the classifier: none is under its floor of 8 nominal eigenvalues.
    assert sorted(rows) == with_weights and len(rows) == 50
    for layer_id, row in rows.items():
        name, module = modules[layer_id]
        assert_same_fit(module.weight.detach().numpy(), row, name)
    # Our floor of 50 leaves alphas for the 1x1 convolutions with 80 to 320 channels and the
    # classifier; the stem, depthwise and narrow 1x1 convolutions get None.
    fitted = [layer_id for layer_id, row in rows.items() if row.num_evals >= MIN_EIGENVALUES]
    assert len(fitted) == 23 and modules[fitted[-1]][0] == "_fc"


def test_a_planted_power_law_spectrum_is_fitted_as_weightwatcher_fits_it():
    rng = np.random.default_rng(7)
    planted_alpha, inputs, outputs = 3.0, 150, 300
    # Eigenvalues drawn from p(lambda) ~ lambda^-3 for lambda >= 1 (inverse-CDF sampling), set
    # as the squared singular values of W = U diag(sqrt(lambda)) V^T with random orthonormal U, V.
    eigenvalues = (1 - rng.random(inputs)) ** (-1 / (planted_alpha - 1))
    u, _ = np.linalg.qr(rng.standard_normal((outputs, inputs)))
    v, _ = np.linalg.qr(rng.standard_normal((inputs, inputs)))
    linear = nn.Linear(inputs, outputs)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(u * np.sqrt(eigenvalues) @ v.T))
    weight = linear.weight.detach().numpy()
    np.testing.assert_allclose(eigenvalues_of(weight), np.sort(eigenvalues), rtol=1e-5)

    row = weightwatcher_rows(nn.Sequential(linear))[1]
    assert_same_fit(weight, row, "planted")
    fit = fit_alpha(weight)
    assert fit.eigenvalues == inputs and abs(fit.alpha - planted_alpha) < 0.5 and fit.xmin >= 1


def small_and_odd_layers() -> list[nn.Module]:
    torch.manual_seed(0)
    layers = [
        nn.Linear(30, 40),  # 30 eigenvalues: WeightWatcher fits them, we need min_eigenvalues < 50
        nn.Linear(6, 10),  # 6 < 8: WeightWatcher skips it
        nn.Linear(8, 8),  # the identity: 8 equal eigenvalues, its small-sample fit leaves alpha 0
        nn.Linear(60, 60),  # all zeros: no eigenvalue above 1e-5, its fit fails (alpha -1)
        nn.Linear(60, 60),  # rank 1: one eigenvalue above 1e-5, its fit fails (alpha -1)
        nn.Linear(60, 60),  # the identity: 60 equal eigenvalues, alpha infinite
        nn.Conv2d(16, 1, 2),  # (1, 16, 2, 2): 4 eigenvalues, but its M * rf is 16 * 4: analyzed
        nn.Conv2d(4000, 20, 2),  # 80 eigenvalues, but its M * rf is 4000 * 4 > 15000: skipped
        nn.Conv2d(3, 5, 3),  # 27 eigenvalues: out > in
        nn.Conv2d(5, 3, 3),  # 27 eigenvalues: out < in, the slices transposed
        nn.Conv2d(1, 1, 3),  # out + in < kh + kw: read as channels-first, still 9 eigenvalues
    ]
    with torch.no_grad():
        layers[2].weight.copy_(torch.eye(8))
        layers[3].weight.zero_()
        layers[4].weight.copy_(torch.outer(torch.arange(60.0) + 1, torch.ones(60)))
        layers[5].weight.copy_(torch.eye(60))
    return layers


def conv1d_layers() -> list[nn.Module]:
    torch.manual_seed(1)
    # WeightWatcher's M for a Conv1d is the smallest of (out, in, k): k = 3 is under 8, skipped.
    return [nn.Conv1d(32, 64, 9), nn.Conv1d(32, 64, 3), nn.Conv1d(64, 64, 64)]


@pytest.mark.parametrize("make_layers", [
    small_and_odd_layers,
    pytest.param(conv1d_layers, marks=pytest.mark.skipif(not SCIPY_BATCHES_SVD,
                                                         reason="WeightWatcher needs SciPy >= 1.16 for a Conv1d")),
])
def test_small_and_odd_layers_give_none_exactly_where_weightwatcher_reports_no_alpha(make_layers):
    layers = make_layers()
    rows = weightwatcher_rows(nn.Sequential(*layers))  # layer i is named_modules() entry i + 1
    for i, layer in enumerate(layers, start=1):
        weight = layer.weight.detach().numpy()
        where = f"{i}: {type(layer).__name__}{tuple(weight.shape)}"
        if i not in rows:  # skipped by WeightWatcher
            assert fit_alpha(weight, min_eigenvalues=0) is None, where
        elif rows[i].status == "failed":
            assert rows[i].alpha == -1 and fit_alpha(weight, min_eigenvalues=0) is None, where
        else:
            assert_same_fit(weight, rows[i], where)
    if make_layers is small_and_odd_layers:
        assert sorted(rows) == [1, 3, 4, 5, 6, 7, 9, 10, 11]
        assert rows[3].alpha == 0 and rows[6].alpha == np.inf
    else:
        assert sorted(rows) == [1, 3]
        assert fit_alpha(layers[2].weight.detach().numpy()).eigenvalues == 64


def test_fit_alpha_is_deterministic_and_reads_weights_as_float32():
    weight = np.random.default_rng(3).standard_normal((320, 1280))
    fit = fit_alpha(weight)
    assert fit == fit_alpha(weight) == fit_alpha(weight.astype(np.float32)) and fit.eigenvalues == 320
    assert fit_alpha(np.zeros((4, 4, 3, 3, 3))) is None  # a Conv3d: WeightWatcher has no such layer
    weight[0, 0] = np.nan
    assert fit_alpha(weight) is None
