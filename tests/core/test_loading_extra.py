"""Regressions found in review: bad input that once escaped as internal errors."""

import io
from contextlib import redirect_stderr

import pytest
import torch
from torch import nn

from deepvis.core.checkpoint import is_torchscript
from deepvis.cli import main
from deepvis.errors import DeepvisError
from deepvis.core.labels import read_labels
from deepvis.core.loading import load_model
from deepvis.live.pipeline import LivePipeline, LiveSettings
from deepvis.core.probe import Probe
from deepvis.resources import sample_image
from deepvis.io.sources import PatternSource


def test_scripted_model_that_fails_on_the_assumed_input_is_a_clear_error(tmp_path):
    path = tmp_path / "fixed.pt"
    # Works only on 8x8 inputs: the assumed 224x224 makes the Linear layer fail.
    torch.jit.script(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(128, 3))).save(str(path))
    with pytest.raises(DeepvisError, match="--input-size"):  # its dry run at load says so (issue 30)
        load_model(str(path))
    ok = load_model(str(path), input_size=(8, 8))
    assert Probe(ok.module, ok.example_input()).layer("2").shape == (3,)


CAT = str(sample_image("cat"))


@pytest.mark.parametrize("argv", [["predict", "--top", "0", "--input", CAT],
                                  ["bench", "live", "--frames", "0", "--input", CAT],
                                  ["filters", "--max-filters", "-1", "--out", "never.png"],
                                  ["predict", "--std", "nan", "--input", CAT]])
def test_nonsense_numbers_are_usage_errors(argv, capsys):
    err = io.StringIO()
    with redirect_stderr(err):
        try:
            code = main([*argv, "--model", "digits_cnn"])
        except SystemExit as exc:  # argparse's own exit
            code = exc.code
    assert code == 2
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "unrecognized" not in lines[0]  # refused for the number, not for a wrong option


@pytest.mark.parametrize("text", ["{}", "[]", '{"0": []}'])
def test_empty_label_files(tmp_path, text):
    path = tmp_path / "labels.json"
    path.write_text(text)
    if text == '{"0": []}':
        assert read_labels(path) == ["[]"]
    else:
        with pytest.raises(DeepvisError, match="empty"):
            read_labels(path)


def test_a_plain_checkpoint_named_code_is_not_torchscript(tmp_path):
    plain = tmp_path / "code.pt"
    torch.save({"w": torch.zeros(2)}, plain)
    assert not is_torchscript(plain)
    scripted = tmp_path / "code2.pt"
    torch.jit.script(nn.ReLU()).save(str(scripted))
    assert is_torchscript(scripted)


def test_switching_away_from_a_paced_source_reports_nothing():
    from deepvis.core.inputspec import InputSpec
    from deepvis.core.loading import LoadedModel

    model = LoadedModel(nn.Sequential(nn.Conv2d(3, 2, 3)).eval(), InputSpec(3, 16, 16), None, "tiny",
                        torch.device("cpu"))
    errors = []
    first = PatternSource(32, 24, fps=50)
    with LivePipeline(model, first, LiveSettings(grid_layer="0"), on_error=errors.append,
                      owns_source=False) as pipeline:
        pipeline.wait_for_results(3)
        for _ in range(5):
            second = PatternSource(32, 24, fps=50)
            pipeline.set_source(second, owns_source=False)
            first.close()  # the GUI closes the old source right after switching
            first = second
            pipeline.wait_for_results(pipeline.published + 2)
    first.close()
    assert not [e for e in errors if "closed" in e], errors


def test_a_1000_output_classifier_without_labels_gets_the_imagenet_names(tmp_path):
    """A user's TorchScript ImageNet net carries no class names; 1,000 outputs are taken for
    ImageNet's (with a note), any other count keeps plain indices."""
    import torchvision

    from deepvis.core.zoo import imagenet_labels

    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None, num_classes=1000).eval()
    torch.jit.script(net).save(str(tmp_path / "imagenet.pt"))
    model = load_model(str(tmp_path / "imagenet.pt"), device="cpu", input_size=(64, 64))
    assert model.labels == imagenet_labels() and len(model.labels) == 1000
    assert model.labels[0] == "tench" and any("ImageNet class names assumed" in n for n in model.notes)

    small = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    torch.jit.script(small).save(str(tmp_path / "ten.pt"))
    model = load_model(str(tmp_path / "ten.pt"), device="cpu", input_size=(64, 64))
    assert model.labels is None and not any("class names assumed" in n for n in model.notes)

    (tmp_path / "mine.txt").write_text("\n".join(f"thing {k}" for k in range(1000)))
    model = load_model(str(tmp_path / "imagenet.pt"), device="cpu", input_size=(64, 64),
                       labels=str(tmp_path / "mine.txt"))
    assert model.labels[0] == "thing 0" and not any("class names assumed" in n for n in model.notes)
