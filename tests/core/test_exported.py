"""torch.export archives (.pt2) open as modules: digits_cnn's and resnet18's exports give the
same top-5 and the same activations (1e-4) as the modules they came from, with the layer names
and types of those modules; saliency has gradients; the graph is the module's; a truncated
archive is one error line; an archive holding a Python object is refused without
--trust-pickle, and nothing of it runs."""

import json
import pickle
import zipfile

import numpy as np
import pytest
import torch

from clirun import run_command
from deepvis.core.loading import load_model
from deepvis.core.probe import Probe
from deepvis.graph.record import record_graph
from deepvis.resources import sample_image

CAT = sample_image("cat")


def _export(model, path):
    program = torch.export.export(model.module.eval(), (model.example_input(),))
    torch.export.save(program, str(path))
    return path


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pt2")
    digits = load_model("digits_cnn")
    resnet = load_model("resnet18", weights="none")  # seeded random weights: no download
    return {"digits_cnn": (digits, _export(digits, folder / "digits_cnn.pt2")),
            "resnet18": (resnet, _export(resnet, folder / "resnet18.pt2"))}


@pytest.mark.parametrize("name, layers", [("digits_cnn", ["conv2", "relu3", "fc1"]),
                                          ("resnet18", ["layer1.0.conv1", "layer2.1.relu#1", "avgpool"])])
def test_an_export_predicts_and_activates_as_its_module(exports, name, layers):
    original, path = exports[name]
    loaded = load_model(str(path))
    assert loaded.spec.shape == original.spec.shape  # the exported input, not an assumed 224x224
    frame = np.asarray(np.random.default_rng(0).random((64, 64, 3)) * 255, np.uint8)
    x = original.input_tensor(frame)
    probes = Probe(original.module, original.example_input()), Probe(loaded.module, loaded.example_input())
    a, b = probes[0].layers, probes[1].layers
    assert [(l.name, l.type_name, l.shape) for l in a[:-1]] == [(l.name, l.type_name, l.shape) for l in b[:-1]]
    assert (b[-1].name, b[-1].type_name, b[-1].shape) == ("output", "ExportedProgram", a[-1].shape)
    with torch.inference_mode():
        out_a, acts_a = probes[0].capture(x, layers)
        out_b, acts_b = probes[1].capture(loaded.input_tensor(frame), layers)
    assert out_a.topk(5).indices.tolist() == out_b.topk(5).indices.tolist()
    for layer in layers:
        assert torch.allclose(acts_a[layer], acts_b[layer], atol=1e-4), layer
    # Gradients flow (saliency), and the graph is the module's own.
    xg = loaded.input_tensor(frame).requires_grad_(True)
    loaded.module(xg)[0].max().backward()
    assert xg.grad is not None and xg.grad.abs().sum() > 0
    graph_a = record_graph(original.module, original.example_input())
    graph_b = record_graph(loaded.module, loaded.example_input())
    modules = [(n.name, n.type) for n in graph_a.nodes if n.op == "module"]
    assert modules == [(n.name, n.type) for n in graph_b.nodes if n.op == "module"]


def test_predict_on_an_export_and_bad_archives(exports, tmp_path):
    _, path = exports["digits_cnn"]
    done = run_command(["predict", "--model", path, "--input", CAT, "--json"], tmp_path)
    direct = run_command(["predict", "--model", "digits_cnn", "--input", CAT, "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    ours, theirs = json.loads(done.stdout)["predictions"], json.loads(direct.stdout)["predictions"]
    assert [p["index"] for p in ours] == [p["index"] for p in theirs]

    truncated = tmp_path / "truncated.pt2"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    bad = run_command(["predict", "--model", truncated, "--input", CAT], tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and len(bad.stderr.splitlines()) == 1

    # An archive whose sample inputs are a pickle that would run code when loaded.
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "evil.pt2"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(evil, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.endswith("sample_inputs/model.pt"):
                data = pickle.dumps(Payload())
            target.writestr(item, data)
    refused = run_command(["predict", "--model", evil, "--input", CAT], tmp_path)
    assert refused.returncode == 2 and "--trust-pickle" in refused.stderr and "sample_inputs" in refused.stderr
    assert not marker.exists()
