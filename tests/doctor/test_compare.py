"""Checkpoint comparison: linear CKA equals its definition on the features, minibatch CKA
approaches it, identical checkpoints give 1 on the diagonal, a timeline ends at 1, and the
command's JSON, picture and order of checkpoints."""

import json

import numpy as np
import pytest
import torch

from deepvis.core.loading import load_model
from deepvis.doctor import cka
from deepvis.doctor.compare import checkpoint_order, compare, timeline
from deepvis.io.datasets import digits_dataset

from clirun import run_command


def _direct_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Kornblith et al.'s feature-space formula, in float64 numpy: ||Y^T X||^2 / (||X^T X|| ||Y^T Y||)."""
    x = x.reshape(len(x), -1).astype(np.float64)
    y = y.reshape(len(y), -1).astype(np.float64)
    x, y = x - x.mean(0), y - y.mean(0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def test_linear_cka_equals_the_feature_space_formula_and_minibatch_cka_approaches_it():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 40))
    y = np.tanh(x @ rng.normal(size=(40, 25))) + 0.5 * rng.normal(size=(600, 25))
    exact = cka.cka(torch.from_numpy(x), torch.from_numpy(y))
    assert exact == pytest.approx(_direct_cka(x, y), abs=1e-6)
    assert cka.cka(torch.from_numpy(x), torch.from_numpy(x)) == pytest.approx(1.0, abs=1e-12)
    # Invariant to an orthogonal transform and to isotropic scaling, as the paper requires.
    q, _ = np.linalg.qr(rng.normal(size=(40, 40)))
    assert cka.cka(torch.from_numpy(3 * x @ q), torch.from_numpy(y)) == pytest.approx(exact, abs=1e-9)
    # Minibatch CKA (Nguyen et al.): Song et al.'s unbiased HSIC, here over one batch of all 600
    # against the paper's formula in numpy, then over six batches of 100: close to it.
    whole = cka.MinibatchCKA(1, 1)
    whole.add([torch.from_numpy(x)], [torch.from_numpy(y)])
    unbiased = _unbiased_hsic(x, y) / np.sqrt(_unbiased_hsic(x, x) * _unbiased_hsic(y, y))
    assert whole.result()[0, 0] == pytest.approx(unbiased, abs=1e-9)
    minibatch = cka.MinibatchCKA(1, 1)
    for start in range(0, 600, 100):
        minibatch.add([torch.from_numpy(x[start:start + 100])], [torch.from_numpy(y[start:start + 100])])
    assert minibatch.result()[0, 0] == pytest.approx(unbiased, abs=0.01)


def _unbiased_hsic(x: np.ndarray, y: np.ndarray) -> float:
    """Song et al. 2012, eq. 5: HSIC_1 of the linear kernels of x and y."""
    n = len(x)
    k, l = x @ x.T, y @ y.T
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    one = np.ones(n)
    return (np.trace(k @ l) + (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * (one @ k @ l @ one)) / (n * (n - 3))


def test_minibatch_cka_equals_torch_cka_on_the_same_batches():
    """torch-cka (Subramanian's package) computes Nguyen et al.'s minibatch CKA; ours over the
    same four batches of digits through two digits_cnn checkpoints gives the same matrix."""
    torch_cka = pytest.importorskip("torch_cka")
    from torch.utils.data import DataLoader, TensorDataset

    from deepvis.core.probe import Probe

    a, b = load_model("digits_cnn"), load_model("digits_cnn")
    with torch.no_grad():
        generator = torch.Generator().manual_seed(1)
        for parameter in b.module.parameters():
            parameter.add_(0.5 * parameter.std() * torch.randn(parameter.shape, generator=generator))
    digits = digits_dataset()
    x = torch.stack([torch.from_numpy(a.preprocessor.array(digits.image(i))) for i in range(400)])
    layers = ["relu1", "relu2", "pool", "relu3", "relu4", "fc2"]  # outputs no later in-place op touches
    reference = torch_cka.CKA(a.module, b.module, "A", "B", model1_layers=layers, model2_layers=layers)
    with pytest.warns(UserWarning):  # it warns that one loader serves both models
        reference.compare(DataLoader(TensorDataset(x), batch_size=100))
    expected = reference.export()["CKA"].numpy()
    ours = cka.MinibatchCKA(len(layers), len(layers))
    probe_a, probe_b = Probe(a.module, a.example_input()), Probe(b.module, b.example_input())
    with torch.no_grad():
        for batch in x.split(100):
            _, acts_a = probe_a.capture(batch, layers)
            _, acts_b = probe_b.capture(batch, layers)
            ours.add([acts_a[n] for n in layers], [acts_b[n] for n in layers])
    assert np.allclose(ours.result(), expected, atol=1e-4)  # torch-cka sums in float32
    assert (np.diag(ours.result()) < 1).all() and (np.diag(ours.result()) > 0.5).all()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """The bundled digits_cnn, and noisier copies of it as the earlier steps of a 'training'."""
    from deepvis.models.digits_cnn import weights_path

    folder = tmp_path_factory.mktemp("timeline")
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    state = state.get("state_dict", state)
    generator = torch.Generator().manual_seed(0)
    for step, scale in ((2, 1.0), (10, 0.3), (30, 0.0)):  # named out of lexical order on purpose
        noisy = {k: v + scale * v.std() * torch.randn(v.shape, generator=generator) if v.ndim else v
                 for k, v in state.items()}
        torch.save(noisy, folder / f"step{step}.pt")
    return folder


def test_identical_checkpoints_give_one_on_the_diagonal_and_full_agreement():
    model = load_model("digits_cnn")
    report = compare(model, load_model("digits_cnn"), digits_dataset(), limit=300)
    assert report["layers_a"] == report["layers_b"] and report["inputs"] == 300
    assert all(value == pytest.approx(1.0, abs=1e-9) for value in report["diagonal"].values())
    assert report["agreement"] == 1.0 and report["disagreeing"] == []
    assert all(change == 0 for change in report["weight_change"].values())


def test_a_timeline_is_ordered_by_step_and_ends_at_one(checkpoints):
    order = checkpoint_order(checkpoints)
    assert [p.name for p in order] == ["step2.pt", "step10.pt", "step30.pt"]
    steps = timeline(lambda path: load_model("digits_cnn", str(path)), order, digits_dataset(), limit=200)
    last = steps["timeline"][-1]["cka"]
    assert all(value == pytest.approx(1.0, abs=1e-9) for value in last.values())
    first = steps["timeline"][0]["cka"]
    assert min(first.values()) < 0.99  # the noisiest step is the least like the last
    assert steps["timeline"][0]["weight_change"] is None and steps["timeline"][1]["weight_change"]["conv1"] > 0
    assert len(steps["filters"]) == 3 and steps["filters"][0].shape == (32, 1, 3, 3)


def test_the_command_writes_strict_json_and_the_pictures(checkpoints, tmp_path):
    done = run_command(["compare", "--model", "digits_cnn", "--against", checkpoints, "--limit", "200", "--json",
                        "--out", tmp_path / "cka.png"], tmp_path)
    assert done.returncode == 0, done.stderr

    def refuse(constant):
        raise ValueError(constant)

    report = json.loads(done.stdout, parse_constant=refuse)
    assert {"layers_a", "layers_b", "cka", "diagonal", "agreement", "timeline"} <= set(report)
    assert np.asarray(report["cka"]).shape == (len(report["layers_a"]), len(report["layers_b"]))
    assert [step["checkpoint"] for step in report["timeline"]] == ["step2.pt", "step10.pt", "step30.pt"]
    assert (tmp_path / "cka.png").stat().st_size > 0 and (tmp_path / "cka-filters.png").stat().st_size > 0
    missing = run_command(["compare", "--model", "digits_cnn", "--against", tmp_path / "nope.pt"], tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr
