"""ONNX files open as PyTorch modules: digits_cnn's and resnet18's exports predict as the
modules they came from and as onnxruntime does, with the same activations (1e-4) at the layers
both have under one name; the file's metadata gives mean, std and labels; an unsupported
operator, or a dynamic input size without --input-size, is one error line."""

import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from clirun import run_command
from deepvis.core.loading import load_model
from deepvis.core.probe import Probe
from deepvis.resources import sample_image

CAT = sample_image("cat")
# The legacy exporter is chosen on purpose (its node names keep the modules' scopes); its
# deprecation warnings say nothing about deepvis.
pytestmark = [pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export"),
              pytest.mark.filterwarnings("ignore:The feature will be removed:DeprecationWarning")]


def _export(model, path, **options):
    # The legacy exporter keeps PyTorch's module scopes in node names (conv1, layer1.0.relu);
    # deepvis reads names from them and from the weights' names.
    torch.onnx.export(model.module.eval(), (model.example_input(),), str(path), dynamo=False,
                      input_names=["input"], **options)
    return path


@pytest.mark.parametrize("name, layers", [("digits_cnn", ["conv1", "relu2", "fc1"]),
                                          ("resnet18", ["relu", "maxpool", "avgpool"])])
def test_an_onnx_export_predicts_as_its_module_and_as_onnxruntime(tmp_path, name, layers):
    original = load_model(name, weights="none") if name == "resnet18" else load_model(name)
    path = _export(original, tmp_path / f"{name}.onnx")
    loaded = load_model(str(path))
    assert loaded.spec.shape == original.spec.shape
    frame = np.asarray(np.random.default_rng(1).random((64, 64, 3)) * 255, np.uint8)
    x = original.input_tensor(frame)
    probe_a, probe_b = Probe(original.module, original.example_input()), Probe(loaded.module, loaded.example_input())
    with torch.inference_mode():
        out_a, acts_a = probe_a.capture(x, layers)
        out_b, acts_b = probe_b.capture(loaded.input_tensor(frame), layers)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    runtime = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    assert out_a.topk(5).indices.tolist() == out_b.topk(5).indices.tolist() == runtime.topk(5).indices.tolist()
    assert torch.allclose(out_b, runtime, atol=1e-4)
    for layer in layers:
        assert torch.allclose(acts_a[layer], acts_b[layer], atol=1e-4), layer
    assert probe_b.layer("conv1" if name == "digits_cnn" else "layer1.0.conv1").type_name == "Conv2d"


def test_metadata_gives_mean_std_and_labels_and_bad_files_are_one_line(tmp_path):
    digits = load_model("digits_cnn")
    path = _export(digits, tmp_path / "digits.onnx")
    proto = onnx.load(str(path))
    for key, value in (("deepvis.mean", "0.25"), ("deepvis.std", "0.5"),
                       ("deepvis.labels", json.dumps([f"digit {k}" for k in range(10)]))):
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(tmp_path / "described.onnx"))
    described = load_model(str(tmp_path / "described.onnx"))
    assert described.spec.mean == (0.25,) and described.spec.std == (0.5,) and described.labels[3] == "digit 3"

    # An operator the converter does not have, named in the one error line.
    node = onnx.helper.make_node("Einsum", ["input", "input"], ["out"], equation="bchw,bchw->b")
    graph = onnx.helper.make_graph([node], "g", [onnx.helper.make_tensor_value_info("input", 1, [1, 1, 8, 8])],
                                   [onnx.helper.make_tensor_value_info("out", 1, [1])])
    onnx.save(onnx.helper.make_model(graph), str(tmp_path / "einsum.onnx"))
    bad = run_command(["info", "--model", "einsum.onnx"], tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Einsum" in bad.stderr

    # A dynamic height and width: --input-size is needed, and then it runs at that size.
    _export(digits, tmp_path / "dynamic.onnx", dynamic_axes={"input": {2: "height", 3: "width"}})
    unsized = run_command(["predict", "--model", "dynamic.onnx", "--input", CAT], tmp_path)
    assert unsized.returncode == 2 and "--input-size" in unsized.stderr and len(unsized.stderr.splitlines()) == 1
    sized = run_command(["predict", "--model", "dynamic.onnx", "--input-size", "8x8", "--input", CAT, "--json"],
                        tmp_path)
    direct = run_command(["predict", "--model", "digits_cnn", "--input", CAT, "--json"], tmp_path)
    assert sized.returncode == 0, sized.stderr
    assert [p["index"] for p in json.loads(sized.stdout)["predictions"]] == \
        [p["index"] for p in json.loads(direct.stdout)["predictions"]]


@pytest.mark.parametrize("name", ["digits_fcn", "digits_ae", "digits_vit"])
def test_bundled_models_exported_to_onnx_give_their_outputs(tmp_path, name):
    """A segmenter (transposed convolutions, skip additions), an autoencoder and a transformer
    (attention as the exporter spells it out, a Mod in its shape logic, names that nest)."""
    model = load_model(name)
    loaded = load_model(str(_export(model, tmp_path / f"{name}.onnx")))
    x = model.example_input()
    with torch.inference_mode():
        expected, got = model.main_output(model.module(x)), loaded.main_output(loaded.module(x))
    assert got.shape == expected.shape and torch.allclose(got, expected, atol=1e-4)
