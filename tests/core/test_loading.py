"""Model loading (deepvis.core.loading.load_model): every model-source form, checkpoint forms, input
specs, labels and bad inputs, checked numerically against reference torchvision networks.

No downloads: torchvision networks are built with ``weights=None`` and seeded, saved in the
forms found in the wild, and every loaded model's output is compared with the reference's on
the same input.
"""

import json
import os
import pathlib
import sys

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from deepvis.errors import DeepvisError
from deepvis.core.inputspec import IMAGENET_MEAN, parse_floats, parse_size
from deepvis.core.labels import read_labels
from deepvis.core.loading import load_model
from deepvis.core.predictions import summarize
from deepvis.core.probe import OUTPUT, Probe

SIZE = (64, 64)
CAT_CLASSES = {"Egyptian cat", "tabby", "tiger cat"}
RESNET18_FILE = "resnet18-f37072fd.pth"  # torchvision's ResNet18_Weights.IMAGENET1K_V1

# TorchScript still works in the torch versions we support; its deprecation notices are noise here.
pytestmark = pytest.mark.filterwarnings("ignore:.torch.jit:FutureWarning")


def _build(name, seed=0, **kwargs):
    torch.manual_seed(seed)
    return torchvision.models.get_model(name, weights=None, **kwargs).eval()


def _out(module, x):
    with torch.inference_mode():
        return module(x)


def _error(fn, *needles) -> str:
    """Run ``fn``; it must raise DeepvisError with a one-line message containing every needle."""
    with pytest.raises(DeepvisError) as info:
        fn()
    message = str(info.value)
    assert message and "\n" not in message
    assert "Traceback" not in message
    for needle in needles:
        assert needle.lower() in message.lower(), f"{needle!r} not in {message!r}"
    return message


@pytest.fixture(scope="module")
def ref():
    """A seeded random resnet18 and the input/output it is compared on."""
    model = _build("resnet18", seed=0)
    torch.manual_seed(123)
    x = torch.randn(2, 3, *SIZE)
    return model, x, _out(model, x)


@pytest.fixture(scope="module")
def ref_file(ref, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "resnet18_plain.pth"
    torch.save(ref[0].state_dict(), path)
    return path


def _assert_matches(loaded, ref):
    model, x, expected = ref
    assert not loaded.module.training
    got = _out(loaded.module, x)
    assert got.shape == expected.shape == (2, 1000)
    assert torch.allclose(got, expected, atol=1e-6), float((got - expected).abs().max())


# --- zoo names with their default weights ---------------------------------------------------

def test_efficientnet_lite0_default_weights_see_the_cat(lite0, cat_image):
    assert lite0.name == "efficientnet_lite0" and not lite0.scripted
    assert pathlib.Path(lite0.weights).is_file()
    assert lite0.spec.shape == (3, 224, 224)
    assert len(lite0.labels) == 1000 and lite0.labels[285] == "Egyptian cat"
    assert lite0.task == "classification"
    summary = summarize(_out(lite0.module, lite0.input_tensor(cat_image)), lite0.labels, k=5)
    print("efficientnet_lite0 on the cat:", summary.text)
    assert summary.predictions[0].label in CAT_CLASSES
    # Three cat classes share most of the mass: the weights are really loaded (random gives ~0.1%).
    assert sum(p.score for p in summary.predictions if p.label in CAT_CLASSES) > 0.5
    scores = [p.score for p in summary.predictions]
    assert scores == sorted(scores, reverse=True) and sum(scores) <= 1.0 + 1e-6


def test_digits_cnn_default_weights_match_the_recipe_and_classify(digits):
    from deepvis.models import digits_cnn

    assert digits.spec.shape == (1, 8, 8) and digits.spec.mean == (0.0,) and digits.spec.std == (1.0,)
    assert digits.labels == [str(i) for i in range(10)]
    _, X_test, _, y_test = digits_cnn.load_split()
    x = torch.from_numpy(X_test[:100])
    got = _out(digits.module, x)
    expected = _out(digits_cnn.load_pretrained(), x)
    assert torch.allclose(got, expected, atol=1e-6)
    accuracy = (got.argmax(1).numpy() == y_test[:100]).mean()
    assert accuracy >= 0.9


# --- zoo name + --weights in every checkpoint form ------------------------------------------

def _lightning(sd):
    first = next(iter(sd.values()))
    return {
        "state_dict": {f"model.{k}": v for k, v in sd.items()},
        "epoch": 3, "global_step": 120, "pytorch-lightning_version": "2.1.0",
        "optimizer_states": [{"state": {0: {"momentum_buffer": torch.zeros_like(first)}},
                              "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0]}]}],
        "lr_schedulers": [], "hyper_parameters": {"lr": 0.1, "classes": 1000},
    }


CHECKPOINT_FORMS = {
    "torchvision_pth": lambda sd: sd,
    "lightning": _lightning,
    "dataparallel": lambda sd: {f"module.{k}": v for k, v in sd.items()},
    "net_prefix": lambda sd: {f"net.{k}": v for k, v in sd.items()},
    "model_state_dict": lambda sd: {"model_state_dict": sd, "epoch": 7, "loss": 0.25,
                                    "optimizer_state_dict": {"state": {}, "param_groups": []}},
    "legacy_serialization": lambda sd: sd,  # torch < 1.6 files: not a zip archive
}


@pytest.mark.parametrize("form", list(CHECKPOINT_FORMS))
def test_zoo_name_with_weights_file_in_each_checkpoint_form(form, ref, tmp_path):
    path = tmp_path / f"{form}.pth"
    torch.save(CHECKPOINT_FORMS[form](ref[0].state_dict()), path,
               _use_new_zipfile_serialization=form != "legacy_serialization")
    # A different seed before loading: only the file can make the outputs agree.
    torch.manual_seed(99)
    loaded = load_model("resnet18", str(path), device="cpu", input_size=SIZE)
    assert loaded.weights == str(path) and loaded.name == "resnet18"
    assert len(loaded.labels) == 1000  # torchvision's ImageNet categories come from metadata
    _assert_matches(loaded, ref)


def test_zoo_name_with_weights_none_is_random_init(ref):
    torch.manual_seed(99)  # the caller's random state does not matter: --init-seed does
    loaded = load_model("resnet18", "none", device="cpu", input_size=SIZE, init_seed=7)
    assert loaded.weights.startswith("none")
    assert loaded.spec.shape == (3, *SIZE)
    got = _out(loaded.module, ref[1])
    assert got.shape == ref[2].shape
    assert not torch.allclose(got, ref[2], atol=1e-3)
    # Same seed, same random init: "none" really means torchvision's initialisation, nothing loaded.
    state = torch.random.get_rng_state()
    again = load_model("resnet18", "NONE", device="cpu", input_size=SIZE, init_seed=7)
    assert torch.equal(_out(again.module, ref[1]), got)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's random state left as it was
    # The default seed, 0, is torchvision's initialisation under torch.manual_seed(0): the reference.
    default = load_model("resnet18", "none", device="cpu", input_size=SIZE)
    torch.testing.assert_close(_out(default.module, ref[1]), ref[2], rtol=1e-5, atol=1e-5)


def test_zoo_weights_missing_from_hub_cache_then_found_there(ref, tmp_path, monkeypatch):
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # in case something called torch.hub.set_dir
    assert pathlib.Path(torch.hub.get_dir()) == home / "hub"

    message = _error(lambda: load_model("resnet18", device="cpu", input_size=SIZE), RESNET18_FILE, "--weights")
    assert str(home / "hub" / "checkpoints") in message

    cache = home / "hub" / "checkpoints"
    cache.mkdir(parents=True, exist_ok=True)  # the failed download made the folder, and left it empty
    assert list(cache.iterdir()) == []
    torch.save(ref[0].state_dict(), cache / RESNET18_FILE)
    loaded = load_model("resnet18", device="cpu", input_size=SIZE)
    assert loaded.weights == str(cache / RESNET18_FILE)
    assert loaded.weights_from == "torch's cache" and loaded.weights_words == "weights from torch's cache"
    _assert_matches(loaded, ref)


def test_fine_tuned_head_rebuilds_for_its_class_count(tmp_path):
    model = _build("resnet18", seed=1)
    model.fc = nn.Linear(512, 5)
    path = tmp_path / "finetuned.pth"
    torch.save({"state_dict": model.state_dict(), "epoch": 12}, path)
    loaded = load_model("resnet18", str(path), device="cpu", input_size=SIZE)
    assert loaded.labels is None  # ImageNet's 1000 names do not describe 5 classes
    assert loaded.task == "classification"
    torch.manual_seed(5)
    x = torch.randn(1, 3, *SIZE)
    got = _out(loaded.module, x)
    assert got.shape == (1, 5)
    assert torch.allclose(got, _out(model.eval(), x), atol=1e-6)
    summary = summarize(got, loaded.labels, k=3)
    assert [p.label for p in summary.predictions] == [f"class {p.index}" for p in summary.predictions]
    assert summary.predictions[0].index == int(got.argmax())


# --- TorchScript ------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["trace", "script"])
def test_torchscript_resnet18(how, ref, tmp_path):
    model, x, expected = ref
    scripted = torch.jit.trace(model, x[:1]) if how == "trace" else torch.jit.script(model)
    path = tmp_path / f"resnet18_{how}.pt"
    scripted.save(str(path))
    loaded = load_model(str(path), device="cpu", input_size=SIZE)
    assert loaded.scripted and loaded.name == path.name
    assert loaded.spec.channels == 3 and loaded.spec.size == SIZE
    assert loaded.labels is not None and loaded.labels[0] == "tench"  # 1,000 outputs: ImageNet assumed
    _assert_matches(loaded, ref)

    probe = Probe(loaded.module, loaded.example_input())
    assert probe.names() == [OUTPUT]
    assert probe.layers[0].shape == (1000,)
    assert probe.unavailable_reason and "TorchScript" in probe.unavailable_reason
    _error(lambda: probe.layer("layer1"), "layer1", "TorchScript")
    out, captured = probe.capture(x, [OUTPUT])
    assert torch.allclose(captured[OUTPUT], expected, atol=1e-6)


def test_scripted_sequential_exposes_its_children(tmp_path):
    torch.manual_seed(4)
    seq = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 4, 3, stride=2),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
    path = tmp_path / "seq.pt"
    torch.jit.script(seq).save(str(path))
    loaded = load_model(str(path), device="cpu", input_size=(20, 30))
    assert loaded.scripted and loaded.spec.shape == (3, 20, 30)
    probe = Probe(loaded.module, loaded.example_input())
    assert probe.unavailable_reason is None
    assert probe.names() == ["0", "1", "2", "3", "4", "5", OUTPUT]
    shapes = {layer.name: layer.shape for layer in probe.layers}
    assert shapes["1"] == (6, 20, 30) and shapes["2"] == (4, 9, 14) and shapes[OUTPUT] == (3,)

    torch.manual_seed(6)
    x = torch.randn(2, 3, 20, 30)
    with torch.inference_mode():
        out, captured = probe.capture(x, ["1", "2", OUTPUT])
        by_hand_1 = seq[1](seq[0](x))
        by_hand_2 = seq[2](by_hand_1)
        expected = seq(x)
    assert torch.allclose(captured["1"], by_hand_1, atol=1e-6)
    assert captured["1"].min() >= 0  # after the ReLU
    assert torch.allclose(captured["2"], by_hand_2, atol=1e-6)
    assert torch.allclose(out, expected, atol=1e-6) and torch.allclose(captured[OUTPUT], expected, atol=1e-6)


# --- package.module:callable factories --------------------------------------------------------

FACTORY_MODULE = "dvt_mynets"
FACTORY_SOURCE = '''
import torch
import torchvision
from torch import nn


def make():
    return torchvision.models.resnet18(weights=None)


class GrayNet(nn.Module):
    """1-channel CNN with global pooling: any input size works."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 4, 3, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.conv2(self.relu1(self.conv1(x))))))


def gray():
    torch.manual_seed(3)
    return GrayNet()


nets = type("Nets", (), {"gray": staticmethod(gray)})


def boom():
    raise RuntimeError("factory exploded")


def not_a_module():
    return 42
'''


@pytest.fixture
def factory_file(tmp_path, monkeypatch):
    path = tmp_path / f"{FACTORY_MODULE}.py"
    path.write_text(FACTORY_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(FACTORY_MODULE, None)
    yield path
    sys.modules.pop(FACTORY_MODULE, None)


def test_factory_by_module_and_by_file_path_with_weights(factory_file, ref, ref_file):
    for source in (f"{FACTORY_MODULE}:make", f"{factory_file.resolve()}:make"):
        torch.manual_seed(11)
        loaded = load_model(source, str(ref_file), device="cpu", input_size=SIZE)
        assert not loaded.scripted and len(loaded.labels) == 1000  # ImageNet names assumed, with a note
        assert loaded.weights == str(ref_file) and loaded.name == source
        assert not any("input size" in note for note in loaded.notes)
        assert any("ImageNet" in note for note in loaded.notes)  # normalization was assumed
        assert loaded.spec.mean == IMAGENET_MEAN
        _assert_matches(loaded, ref)


def test_factory_without_weights_returns_the_model_as_built(factory_file, ref):
    # The factory draws from torch's generator: seeding as the reference did gives its weights.
    torch.manual_seed(0)
    loaded = load_model(f"{factory_file}:make", device="cpu", input_size=SIZE)
    assert loaded.weights == "as built"
    _assert_matches(loaded, ref)


def test_factory_attribute_path(factory_file):
    loaded = load_model(f"{FACTORY_MODULE}:nets.gray", device="cpu", input_size=(40, 60))
    assert loaded.spec.channels == 1
    assert _out(loaded.module, loaded.example_input()).shape == (1, 3)


# --- input spec inference and overrides -------------------------------------------------------

def test_grayscale_non_square_model_spec_and_preprocessing(factory_file):
    loaded = load_model(f"{FACTORY_MODULE}:gray", device="cpu", input_size=(40, 60))
    spec = loaded.spec
    assert spec.shape == (1, 40, 60)
    assert spec.mean == (0.0,) and spec.std == (1.0,) and spec.fit == "crop"
    assert not any("input size" in note for note in loaded.notes)
    assert any("normalization" in note and "[0, 1]" in note for note in loaded.notes)

    # A uniform RGB frame becomes one gray level: 0.299*200 + 0.587*100 + 0.114*50 = 124.2.
    frame = np.empty((90, 100, 3), np.uint8)
    frame[:] = (200, 100, 50)
    x = loaded.input_tensor(frame)
    assert x.shape == (1, 1, 40, 60) and x.dtype == torch.float32
    assert torch.allclose(x, torch.full_like(x, 124 / 255), atol=1.01 / 255)

    reference = __import__(FACTORY_MODULE).gray().eval()
    assert torch.allclose(_out(loaded.module, x), _out(reference, x), atol=1e-6)
    # Any non-square RGB frame runs, cropped to 2:3 and turned to gray.
    rng = np.random.default_rng(0)
    out = _out(loaded.module, loaded.input_tensor(rng.integers(0, 256, (97, 203, 3), dtype=np.uint8)))
    assert out.shape == (1, 3) and torch.isfinite(out).all()


def test_notes_record_the_assumptions(factory_file):
    loaded = load_model(f"{FACTORY_MODULE}:gray", device="cpu")
    assert loaded.spec.size == (224, 224)
    notes = " | ".join(loaded.notes)
    assert "input size" in notes and "224x224" in notes and "--input-size" in notes
    assert "normalization" in notes and "--mean" in notes
    # Everything stated: nothing assumed.
    stated = load_model(f"{FACTORY_MODULE}:gray", device="cpu", input_size=(40, 60), mean=(0.5,), std=(0.25,))
    assert stated.notes == []


def test_overrides_are_applied(factory_file):
    loaded = load_model(f"{FACTORY_MODULE}:gray", device="cpu", input_size=(48, 32), mean=(0.5,),
                        std=(0.25,), fit="stretch")
    assert loaded.spec.shape == (1, 48, 32)
    assert loaded.spec.mean == (0.5,) and loaded.spec.std == (0.25,) and loaded.spec.fit == "stretch"
    frame = np.full((10, 10, 3), 255, np.uint8)
    x = loaded.input_tensor(frame)
    assert x.shape == (1, 1, 48, 32)  # stretched, not cropped
    assert torch.allclose(x, torch.full_like(x, (1.0 - 0.5) / 0.25), atol=1e-5)

    zoo = load_model("resnet18", "none", device="cpu", input_size=(64, 80), mean=(0.5, 0.4, 0.3),
                     std=(0.2, 0.2, 0.2))
    assert zoo.spec.shape == (3, 64, 80)
    assert zoo.spec.mean == (0.5, 0.4, 0.3) and zoo.spec.std == (0.2, 0.2, 0.2)
    assert _out(zoo.module, zoo.input_tensor(frame)).shape == (1, 1000)

    # A channel count the first convolution cannot take is refused, not fed to every frame.
    _error(lambda: load_model("resnet18", "none", device="cpu", input_size=(64, 64), channels=1),
           "--channels 1", "3 channels")
    one = load_model(f"{FACTORY_MODULE}:gray", device="cpu", channels=1)
    assert one.spec.channels == 1

    # The CLI spelling of the same overrides.
    assert parse_floats("0.5,0.4,0.3", "mean") == (0.5, 0.4, 0.3)
    _error(lambda: load_model("resnet18", "none", device="cpu", mean=(0.5, 0.5)), "mean", "2 values", "3 channels")
    _error(lambda: load_model("resnet18", "none", device="cpu", std=(0.0,)), "std")


def test_parse_size_and_floats():
    assert parse_size("224") == (224, 224)
    assert parse_size("240x320") == (240, 320)
    assert parse_size("240X320") == (240, 320)
    assert parse_floats("0.5", "mean") == (0.5,)
    assert parse_floats(" 0.485, 0.456 ,0.406", "mean") == (0.485, 0.456, 0.406)
    for bad in ("abc", "", "0x10", "10x0", "-5", "1x2x3", "12xq", "x"):
        _error(lambda bad=bad: parse_size(bad), "bad input size")
    for bad in ("a,b", "0.5;0.4", "nope"):
        _error(lambda bad=bad: parse_floats(bad, "std"), "bad std")


# --- full pickled models ----------------------------------------------------------------------

def test_pickled_full_model_needs_trust_pickle(ref, tmp_path):
    path = tmp_path / "full_model.pt"
    torch.save(ref[0], path)
    _error(lambda: load_model(str(path), device="cpu", input_size=SIZE), "--trust-pickle", path.name)
    loaded = load_model(str(path), device="cpu", trust_pickle=True, input_size=SIZE)
    assert not loaded.scripted and loaded.name == path.name
    _assert_matches(loaded, ref)

    wrapped = tmp_path / "wrapped.pt"
    torch.save({"model": ref[0], "epoch": 1}, wrapped)
    _assert_matches(load_model(str(wrapped), device="cpu", trust_pickle=True, input_size=SIZE), ref)


def test_state_dict_as_model_source_asks_for_an_architecture(ref_file):
    _error(lambda: load_model(str(ref_file), device="cpu"), "architecture", "--weights", "--model")


# --- dict outputs (segmentation) --------------------------------------------------------------

def test_segmentation_model_with_dict_output():
    torch.manual_seed(0)
    loaded = load_model("lraspp_mobilenet_v3_large", "none", device="cpu", input_size=SIZE)
    assert loaded.task == "segmentation"
    assert loaded.labels[0] == "__background__" and len(loaded.labels) == 21
    probe = Probe(loaded.module, loaded.example_input())
    names = probe.names()
    for name in ("backbone[low]", "backbone[high]", "output[out]"):
        assert name in names
    assert probe.layer("output[out]").shape == (21, *SIZE)
    assert probe.layer("backbone[high]").shape[0] == 960

    torch.manual_seed(1)
    x = torch.randn(1, 3, *SIZE)
    with torch.inference_mode():
        out, captured = probe.capture(x, ["output[out]", "backbone[high]"])
        direct = loaded.module(x)
    assert isinstance(out, dict) and torch.allclose(captured["output[out]"], direct["out"], atol=1e-5)
    assert captured["backbone[high]"].shape == (1, *probe.layer("backbone[high]").shape)

    summary = summarize(out, loaded.labels, k=5)
    assert summary.kind == "segmentation" and "of pixels" in summary.text
    shares = [p.score for p in summary.predictions]
    assert shares and all(s > 0 for s in shares) and sum(shares) <= 1.0 + 1e-6
    classes = out["out"][0].argmax(0)
    top = summary.predictions[0]
    assert top.score == pytest.approx(float((classes == top.index).float().mean()))
    assert top.label == loaded.labels[top.index]


# --- labels -----------------------------------------------------------------------------------

def test_labels_text_and_json(tmp_path):
    text = tmp_path / "labels.txt"
    text.write_text("zero\n one \ntwo\n\n\n")
    assert read_labels(text) == ["zero", "one", "two"]

    as_list = tmp_path / "labels.json"
    as_list.write_text(json.dumps(["cat", "dog", 3]))
    assert read_labels(as_list) == ["cat", "dog", "3"]

    imagenet_style = tmp_path / "imagenet_class_index.json"
    imagenet_style.write_text(json.dumps({"0": ["n01440764", "tench"], "1": ["n01443537", "goldfish"],
                                          "3": ["n01491361", "tiger shark"]}))
    assert read_labels(imagenet_style) == ["tench", "goldfish", "class 2", "tiger shark"]

    bad = tmp_path / "bad.json"
    bad.write_text('{"0": "cat", "1": ')
    _error(lambda: read_labels(bad), "not valid JSON", bad.name)
    keys = tmp_path / "keys.json"
    keys.write_text('{"cat": 0}')
    _error(lambda: read_labels(keys), "class indices")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    _error(lambda: read_labels(empty), "empty")
    _error(lambda: read_labels(tmp_path / "missing.txt"), "does not exist")


def test_labels_file_overrides_model_labels(tmp_path, factory_file):
    names = [f"digit {i}" for i in range(10)]
    path = tmp_path / "names.txt"
    path.write_text("\n".join(names))
    loaded = load_model("digits_cnn", device="cpu", labels=str(path))
    assert loaded.labels == names
    out = _out(loaded.module, torch.zeros(1, 1, 8, 8))
    assert summarize(out, loaded.labels).predictions[0].label == names[int(out.argmax())]

    # A labels file must name as many classes as the output has (issue 31): both counts said.
    with pytest.raises(DeepvisError, match="names 10 classes, but .*gray's output has 3"):
        load_model(f"{FACTORY_MODULE}:gray", device="cpu", input_size=(40, 60), labels=str(path))
    three = tmp_path / "three.txt"
    three.write_text("a\nb\nc\n")
    custom = load_model(f"{FACTORY_MODULE}:gray", device="cpu", input_size=(40, 60), labels=str(three))
    assert custom.labels == ["a", "b", "c"]


# --- bad inputs -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bad_files(ref, tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    sd = ref[0].state_dict()
    files = {}

    good = d / "good.pth"
    torch.save(sd, good)
    data = good.read_bytes()
    files["truncated"] = d / "truncated.pth"
    files["truncated"].write_bytes(data[: len(data) // 2])

    scripted = d / "scripted.pt"
    torch.jit.trace(ref[0], ref[1][:1]).save(str(scripted))
    data = scripted.read_bytes()
    files["truncated_torchscript"] = d / "truncated_torchscript.pt"
    files["truncated_torchscript"].write_bytes(data[: len(data) // 2])

    files["empty"] = d / "empty.pt"
    files["empty"].write_bytes(b"")
    files["text"] = d / "notes.pt"
    files["text"].write_text("epoch 3: loss 0.25\nthis is not a checkpoint\n")
    files["garbage"] = d / "garbage.pth"
    files["garbage"].write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())

    keyed = dict(sd)
    del keyed["layer2.0.bn1.running_mean"]
    keyed["extra_head.weight"] = torch.zeros(3)
    files["keys"] = d / "keys.pth"
    torch.save(keyed, files["keys"])

    misshapen = dict(sd)
    misshapen["layer1.0.conv1.weight"] = torch.zeros(32, 64, 3, 3)
    files["misshapen"] = d / "misshapen.pth"
    torch.save(misshapen, files["misshapen"])

    files["list"] = d / "list.pth"
    torch.save([1, 2, 3], files["list"])
    files["no_weights"] = d / "no_weights.pth"
    torch.save({"epoch": 3, "lr": 0.1}, files["no_weights"])
    files["good"] = good
    return files


@pytest.mark.parametrize("kind", ["truncated", "empty", "text", "garbage"])
@pytest.mark.parametrize("role", ["weights", "model"])
def test_unreadable_checkpoints(kind, role, bad_files):
    path = str(bad_files[kind])
    if role == "weights":
        message = _error(lambda: load_model("resnet18", path, device="cpu", input_size=SIZE), bad_files[kind].name)
    else:
        message = _error(lambda: load_model(path, device="cpu", input_size=SIZE), bad_files[kind].name)
    expected = {"truncated": "truncated", "empty": "empty", "text": "not a PyTorch checkpoint",
                "garbage": "not a PyTorch checkpoint"}[kind]
    assert expected.lower() in message.lower()


def test_truncated_torchscript_archive(bad_files):
    _error(lambda: load_model(str(bad_files["truncated_torchscript"]), device="cpu"), "truncated")


def test_checkpoint_of_another_architecture(bad_files):
    message = _error(lambda: load_model("squeezenet1_1", str(bad_files["good"]), device="cpu", input_size=SIZE),
                     "does not fit", "missing keys", "features.0.weight", "unexpected keys", "conv1.weight")
    assert "more" in message  # long key lists are shortened to keep one readable line
    assert len(message) < 1000


def test_checkpoint_with_missing_and_unexpected_keys(bad_files):
    _error(lambda: load_model("resnet18", str(bad_files["keys"]), device="cpu", input_size=SIZE),
           "missing keys [layer2.0.bn1.running_mean]", "unexpected keys [extra_head.weight]")


def test_shape_mismatch_outside_the_head(bad_files):
    message = _error(lambda: load_model("resnet18", str(bad_files["misshapen"]), device="cpu", input_size=SIZE),
                     "shape mismatch", "layer1.0.conv1.weight (32, 64, 3, 3) vs (64, 64, 3, 3)")
    # The head in the file fits: it must not be blamed (nor the model rebuilt for 32 classes).
    assert "fc." not in message


def test_checkpoints_without_weights(bad_files):
    _error(lambda: load_model("resnet18", str(bad_files["list"]), device="cpu"), "list", "not weights")
    _error(lambda: load_model("resnet18", str(bad_files["no_weights"]), device="cpu"), "no weights", "epoch")


def test_missing_weights_file_and_folder(tmp_path):
    _error(lambda: load_model("resnet18", str(tmp_path / "nope.pth"), device="cpu"), "does not exist")
    _error(lambda: load_model("resnet18", str(tmp_path), device="cpu"), "folder")


def test_unknown_model_name_suggests_zoo_names():
    message = _error(lambda: load_model("resnt18", device="cpu"), "unknown model", "'resnt18'", "did you mean",
                     "resnet18")
    assert message.index("resnet18") < message.index("use a zoo name")
    _error(lambda: load_model("squeezenet11", device="cpu"), "squeezenet1_1")
    # Zoo names are matched case- and dash-insensitively.
    assert load_model("Digits-CNN", device="cpu").name == "digits_cnn"


@pytest.mark.parametrize("attr, needles", [
    ("boom", ["calling", "RuntimeError", "factory exploded"]),
    ("not_a_module", ["returned a int", "not a torch.nn.Module"]),
    ("no_such_attr", ["has no attribute", "no_such_attr"]),
])
def test_bad_factories(attr, needles, factory_file):
    _error(lambda: load_model(f"{FACTORY_MODULE}:{attr}", device="cpu"), *needles)
    _error(lambda: load_model(f"{factory_file}:{attr}", device="cpu"), *needles)


def test_factory_modules_that_do_not_exist_or_fail_to_import(tmp_path, monkeypatch):
    _error(lambda: load_model("dvt_no_such_package.nets:make", device="cpu"), "cannot import",
           "dvt_no_such_package")
    _error(lambda: load_model(f"{tmp_path / 'nowhere.py'}:make", device="cpu"), "nowhere.py", "does not exist")
    broken = tmp_path / "dvt_broken_nets.py"
    broken.write_text("import torch\nraise ValueError('half-written module')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        _error(lambda: load_model("dvt_broken_nets:make", device="cpu"), "importing", "ValueError",
               "half-written module")
        _error(lambda: load_model(f"{broken}:make", device="cpu"), "ValueError", "half-written module")
    finally:
        sys.modules.pop("dvt_broken_nets", None)


# --- unsafe pickles ---------------------------------------------------------------------------

class _TouchWithOsSystem:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class _TouchWithPathlib:
    def __init__(self, marker):
        self.marker = pathlib.Path(marker)

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


@pytest.mark.parametrize("payload", [_TouchWithOsSystem, _TouchWithPathlib])
@pytest.mark.parametrize("layout", ["beside_state_dict", "inside_state_dict"])
def test_unsafe_pickle_is_refused_before_it_runs(payload, layout, ref, tmp_path):
    marker = tmp_path / "pwned"
    sd = ref[0].state_dict()
    if layout == "beside_state_dict":
        obj = {"state_dict": sd, "epoch": 3, "hyper_parameters": payload(marker)}
    else:
        obj = dict(sd)
        obj["_extra_state"] = payload(marker)
    path = tmp_path / "evil.pth"
    torch.save(obj, path)
    assert not marker.exists()

    _error(lambda: load_model("resnet18", str(path), device="cpu", input_size=SIZE), "--trust-pickle",
           "pickled Python objects")
    assert not marker.exists()
    _error(lambda: load_model(str(path), device="cpu", input_size=SIZE), "--trust-pickle")
    assert not marker.exists()

    if layout == "beside_state_dict":
        # Proof that the payload is live: trusting the file runs it (and the weights still load).
        loaded = load_model("resnet18", str(path), device="cpu", trust_pickle=True, input_size=SIZE)
        assert marker.exists()
        _assert_matches(loaded, ref)
