"""`deepvis match` on its default model, the bundled self-supervised descriptor: a listed zoo
model whose output is read as descriptors (not 64 classes); a point of the bundled photo is
found within 4 px of where the homography of its random view puts it; a model of the user's
is declared a descriptor with --task descriptor, and a classifier cannot be."""

import json

import numpy as np

from clirun import run_command
from deepvis.io.images import read_image, write_image
from deepvis.matching.hpatches import warp
from deepvis.matching.pair import random_view, working_picture
from deepvis.resources import sample_image


def test_models_lists_the_descriptor_and_predict_reads_it_as_one(tmp_path):
    listed = run_command(["models", "--json"], tmp_path)
    entry = next(row for row in json.loads(listed.stdout) if row["name"] == "ssl_descriptor")
    assert entry["task"] == "descriptor"
    done = run_command(["predict", "--model", "ssl_descriptor", "--input", sample_image("cat"), "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["kind"] == "descriptor" and "predictions" not in result  # not 64 classes
    assert result["descriptor"]["channels"] == 64 and result["descriptor"]["grid"] == [32, 32]  # stride 4 of 128
    assert abs(result["descriptor"]["mean_length"] - 1) < 1e-5  # unit length per cell
    text = run_command(["predict", "--model", "ssl_descriptor", "--input", sample_image("cat")], tmp_path).stdout
    assert text.startswith("64-d descriptor per cell of a 32x32 grid")


def test_match_defaults_to_the_descriptor_and_finds_the_point(tmp_path):
    a = working_picture(read_image(sample_image("cat")))
    b, h = random_view(a, seed=3)
    write_image(tmp_path / "a.png", a)
    write_image(tmp_path / "b.png", b)
    points = [(150, 110), (200, 130), (120, 160)]  # (x, y) on the cat's face
    done = run_command(["match", "--input", "a.png", "--input2", "b.png", *sum((["--at", f"{y},{x}"] for x, y in
                                                                               points), []), "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["model"] == "ssl_descriptor" and result["layer"] == "output"
    truth = warp(h, np.array(points, np.float64))
    for row, (tx, ty) in zip(result["matches"], truth):
        by, bx = row["best"]
        assert np.hypot(bx - tx, by - ty) <= 4, (row, (tx, ty))


def test_task_descriptor_is_declared_for_a_users_model_and_refused_for_a_classifier(tmp_path):
    spec = ["--model", "deepvis.models.ssl_descriptor:SSLDescriptor", "--weights", "none", "--input-size", "64x64"]
    plain = json.loads(run_command(["info", *spec, "--json"], tmp_path).stdout)
    assert plain["task"] == "segmentation"  # a (B, 64, H, W) output read by its shape alone
    declared = run_command(["info", *spec, "--task", "descriptor", "--json"], tmp_path)
    assert declared.returncode == 0, declared.stderr
    assert json.loads(declared.stdout)["task"] == "descriptor"
    refused = run_command(["info", "--model", "digits_cnn", "--task", "descriptor"], tmp_path)
    assert refused.returncode == 2 and refused.stderr.startswith("error: --task descriptor needs an output of shape")
