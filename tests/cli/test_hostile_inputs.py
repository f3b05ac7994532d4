"""Hostile input, command by command: every case exits 2 with one ``error:`` line and writes
nothing.

Each case runs the real command in this process (the GUI ones in a subprocess) on a real
model, with its outputs pointed into an empty folder that must still be empty afterwards: a
command that fails half-way must not leave a PNG behind its failed ``--npy``.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from deepvis.cli import _run
from deepvis.resources import sample_image

CAT = str(sample_image("cat"))


class Gadget:
    """A pickled object in a checkpoint: loading it would run this module's code."""


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    """A folder of broken, hostile and odd files; returns its path."""
    from deepvis.models.digits_cnn import weights_path

    d = tmp_path_factory.mktemp("hostile")
    digits = torch.load(weights_path(), map_location="cpu", weights_only=True)
    state = digits.get("state_dict", digits) if isinstance(digits, dict) else digits
    from PIL import Image

    Image.fromarray((np.random.default_rng(0).random((32, 32)) * 255).astype(np.uint8)).save(d / "digit.png")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(d / "tiny.png")
    (d / "corrupt.png").write_bytes(os.urandom(2048))
    good_png = Path(CAT).read_bytes()
    (d / "truncated.png").write_bytes(good_png[: len(good_png) // 3])
    (d / "empty.png").write_bytes(b"")
    (d / "notes.txt").write_text("not an image\n")
    (d / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (d / "bad.json").write_text("{not json")
    (d / "adir").mkdir()
    (d / "empty_dir").mkdir()
    (d / "only_corrupt").mkdir()
    for i in range(3):
        (d / "only_corrupt" / f"x{i}.png").write_bytes(os.urandom(512))
    buffer_path = d / "good.pt"
    torch.save(state, buffer_path)
    blob = buffer_path.read_bytes()
    (d / "truncated.pt").write_bytes(blob[: len(blob) // 2])
    mismatched = dict(state)
    key = next(k for k in mismatched if k.endswith("weight"))
    mismatched[key] = torch.zeros(3, 3)
    torch.save(mismatched, d / "mismatched.pt")
    torch.save({k: v.to(torch.int64) for k, v in state.items()}, d / "int64.pt")
    torch.save({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()},
               d / "nan.pt")
    torch.save({"state_dict": state, "extra": Gadget()}, d / "pickled.pt")
    (d / "corrupt.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 5\nend_header\n1 2\n")
    (d / "empty.obj").write_text("# nothing\n")
    _issue30_files(d)
    return d


def _issue30_files(d: Path) -> None:
    """Ground truths, colour tables, signals, pictures, atlases and model folders of the newer
    commands' hostile cases (issue 30)."""
    import json
    import shutil
    import wave

    from PIL import Image

    from deepvis.atlas.build import build_atlas

    np.save(d / "gt255.npy", np.full((64, 64), 255, np.int64))
    np.save(d / "gt_empty.npy", np.zeros((0, 0), np.int64))
    np.save(d / "gt_zero_width.npy", np.zeros((64, 0), np.int64))
    np.save(d / "gt_float.npy", np.zeros((64, 64), np.float32))
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(d / "scene.png")
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[:, 32:] = (0, 9, 0)
    Image.fromarray(rgb).save(d / "gt_rgb.png")
    for name, table in (("two_values", [[0, 0], [1, 1]]), ("four_values", [[0, 0, 0, 0]]), ("short", [[0, 0, 0]]),
                        ("huge_id", {"0,0,0": 2**63 + 5}), ("negative_id", {"0,0,0": -1}),
                        ("out_of_byte", [[0, 0, 300]]), ("text_colour", [["a", "b", "c"]]), ("fraction_id",
                        {"0,0,0": 1.5}), ("a_number", 7), ("empty_table", [])):
        (d / f"colours_{name}.json").write_text(json.dumps(table))
    with wave.open(str(d / "ok.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((np.sin(np.arange(4000) / 5) * 3000).astype(np.int16).tobytes())
    header = bytearray((d / "ok.wav").read_bytes())
    header[24:28] = (0).to_bytes(4, "little")  # a sample rate of 0
    (d / "rate0.wav").write_bytes(bytes(header))
    Image.new("L", (9000, 9000)).save(d / "huge.png")  # 81 M pixels, a few KB on disk
    (d / "a_file").write_text("not a folder\n")
    (d / "adir_full").mkdir()
    (d / "adir_full" / "notes.txt").write_text("a folder that is not an atlas\n")
    # An atlas of six pictures, and copies damaged one way each.
    from atlasdata import write_noise_images

    images = d / "atlas_images"
    write_noise_images(images, 6)
    good = d / "atlas_good"
    build_atlas({"source": "digits_cnn", "device": "cpu"}, images, good, engine="local")
    manifest = json.loads((good / "manifest.json").read_text())
    for name, change in (("no_layers", lambda m: m.pop("layers")), ("no_model", lambda m: m.pop("model")),
                         ("number_layers", lambda m: m.update(layers=5)),
                         ("labels_number", lambda m: m["model"].update(labels=3)),
                         ("no_root", lambda m: m.pop("dataset"))):
        copy = d / f"atlas_{name}"
        shutil.copytree(good, copy)
        m = json.loads(json.dumps(manifest))
        change(m)
        (copy / "manifest.json").write_text(json.dumps(m))
    copy = d / "atlas_list_manifest"
    shutil.copytree(good, copy)
    (copy / "manifest.json").write_text("[1, 2]")
    copy = d / "atlas_pickled_units"
    shutil.copytree(good, copy)
    with np.load(good / "units.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    np.savez(copy / "units.npz", **arrays, evil=np.array([Gadget()], dtype=object))
    copy = d / "atlas_truncated_part"
    shutil.copytree(good, copy)
    part = sorted((copy / "images").glob("part-*.parquet"))[0]
    part.write_bytes(part.read_bytes()[:200])
    copy = d / "atlas_truncated_units"
    shutil.copytree(good, copy)
    (copy / "units.npz").write_bytes((good / "units.npz").read_bytes()[:100])
    # Hugging Face folders: a tiny ViT, with text for its size, for a mean, and cut weights.
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    ok = d / "hf_ok"
    ViTForImageClassification(ViTConfig(image_size=32, patch_size=8, num_hidden_layers=1, hidden_size=16,
                                        num_attention_heads=2, intermediate_size=32, num_labels=3)).save_pretrained(ok)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(ok)
    for name in ("hf_text_size", "hf_text_mean", "hf_truncated"):
        shutil.copytree(ok, d / name)
    config = json.loads((ok / "config.json").read_text())
    (d / "hf_text_size" / "config.json").write_text(json.dumps({**config, "image_size": "big"}))
    processor = json.loads((ok / "preprocessor_config.json").read_text())
    (d / "hf_text_mean" / "preprocessor_config.json").write_text(json.dumps({**processor, "image_mean": ["a"] * 3}))
    shutil.copytree(ok, d / "hf_no_labels")
    (d / "hf_no_labels" / "config.json").write_text(json.dumps({**config, "num_labels": 0, "id2label": {},
                                                                "label2id": {}}))
    # Issue 31: a script that exits on import, a complex and a channel-less signal, a cut WAV,
    # a labels file too short.
    (d / "exits_on_import.py").write_text("import sys\nsys.exit(3)\n")
    np.save(d / "complex.npy", np.ones(512, np.complex64))
    np.save(d / "no_channels.npy", np.zeros((0, 512), np.float32))
    full = (d / "ok.wav").read_bytes()
    (d / "cut.wav").write_bytes(full[:44 + 1001])
    (d / "two_labels.txt").write_text("zero\none\n")
    weights = d / "hf_truncated" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:len(weights.read_bytes()) // 2])


M = ["--model", "digits_cnn"]
IMG = "{d}/digit.png"

# (name, argv) with {d}: the hostile folder, {o}: an empty output folder.
CASES = [
    # predict: inputs
    ("predict-missing", ["predict", *M, "--input", "{d}/missing.png"]),
    ("predict-corrupt", ["predict", *M, "--input", "{d}/corrupt.png"]),
    ("predict-truncated", ["predict", *M, "--input", "{d}/truncated.png"]),
    ("predict-empty", ["predict", *M, "--input", "{d}/empty.png"]),
    ("predict-text", ["predict", *M, "--input", "{d}/notes.txt"]),
    ("predict-folder", ["predict", *M, "--input", "{d}/adir"]),
    # predict: input spec
    ("predict-channels1-on-rgb", ["predict", "--model", "efficientnet_lite0", "--channels", "1", "--input", CAT]),
    ("predict-huge-size", ["predict", *M, "--input-size", "100000x100000", "--input", IMG]),
    ("predict-zero-size", ["predict", *M, "--input-size", "0x0", "--input", IMG]),
    ("predict-text-size", ["predict", *M, "--input-size", "abc", "--input", IMG]),
    ("predict-negative-size", ["predict", *M, "--input-size", "-5x5", "--input", IMG]),
    ("predict-nan-mean", ["predict", *M, "--mean", "nan", "--input", IMG]),
    ("predict-zero-std", ["predict", *M, "--std", "0", "--input", IMG]),
    ("predict-negative-std", ["predict", *M, "--std", "-1", "--input", IMG]),
    ("predict-two-means", ["predict", *M, "--mean", "0.5,0.5", "--input", IMG]),
    ("predict-top-0", ["predict", *M, "--top", "0", "--input", IMG]),
    ("predict-top-text", ["predict", *M, "--top", "many", "--input", IMG]),
    # predict: models and weights
    ("predict-unknown-model", ["predict", "--model", "no_such_model", "--input", IMG]),
    ("predict-truncated-model", ["predict", "--model", "{d}/truncated.pt", "--input", IMG]),
    ("predict-mismatched-weights", ["predict", *M, "--weights", "{d}/mismatched.pt", "--input", IMG]),
    ("predict-truncated-weights", ["predict", *M, "--weights", "{d}/truncated.pt", "--input", IMG]),
    ("predict-int64-weights", ["predict", *M, "--weights", "{d}/int64.pt", "--input", IMG]),
    ("predict-pickled-weights", ["predict", *M, "--weights", "{d}/pickled.pt", "--input", IMG]),
    ("predict-text-weights", ["predict", *M, "--weights", "{d}/notes.txt", "--input", IMG]),
    ("predict-missing-weights", ["predict", *M, "--weights", "{d}/missing.pt", "--input", IMG]),
    ("predict-nan-weights", ["predict", *M, "--weights", "{d}/nan.pt", "--input", IMG]),
    ("predict-missing-labels", ["predict", *M, "--labels", "{d}/missing.txt", "--input", IMG]),
    ("predict-bad-json-labels", ["predict", *M, "--labels", "{d}/bad.json", "--input", IMG]),
    ("predict-binary-labels", ["predict", *M, "--labels", "{d}/binary.bin", "--input", IMG]),
    ("predict-callable-not-a-model", ["predict", "--model", "os:getcwd", "--input", IMG]),
    ("predict-missing-package", ["predict", "--model", "no_such_pkg.mod:build", "--input", IMG]),
    ("predict-cuda-absent", ["predict", *M, "--device", "cuda", "--input", IMG]),
    ("predict-mps-absent", ["predict", *M, "--device", "mps", "--input", IMG]),
    ("info-truncated-model", ["info", "--model", "{d}/truncated.pt"]),
    ("info-zero-width", ["info", *M, "--input-size", "8x0"]),
    # activations
    ("activations-unknown-layer", ["activations", *M, "--input", IMG, "--layer", "nope", "--out", "{o}/a.png"]),
    ("activations-out-is-folder", ["activations", *M, "--input", IMG, "--layer", "conv1", "--out", "{d}/adir"]),
    ("activations-out-unwritable", ["activations", *M, "--input", IMG, "--layer", "conv1",
                                    "--out", "/proc/deepvis/a.png"]),
    ("activations-out-text", ["activations", *M, "--input", IMG, "--layer", "conv1", "--out", "{o}/a.txt"]),
    ("activations-npy-unwritable", ["activations", *M, "--input", IMG, "--layer", "conv1", "--out", "{o}/a.png",
                                    "--npy", "/proc/deepvis/a.npy"]),
    ("activations-npy-folder", ["activations", *M, "--input", IMG, "--layer", "conv1", "--out", "{o}/a.png",
                                "--npy", "{d}/adir"]),
    ("activations-bad-normalize", ["activations", *M, "--input", IMG, "--layer", "conv1", "--out", "{o}/a.png",
                                   "--normalize", "sometimes"]),
    ("activations-bad-colormap", ["activations", *M, "--input", IMG, "--layer", "conv1", "--out", "{o}/a.png",
                                  "--colormap", "rainbow"]),
    ("activations-corrupt-input", ["activations", *M, "--input", "{d}/corrupt.png", "--layer", "conv1",
                                   "--out", "{o}/a.png"]),
    ("activations-nan-weights", ["activations", *M, "--weights", "{d}/nan.pt", "--input", IMG, "--layer", "conv1",
                                 "--out", "{o}/a.png"]),
    # filters
    ("filters-unknown-layer", ["filters", *M, "--layer", "nope", "--out", "{o}/f.png"]),
    ("filters-linear-layer", ["filters", *M, "--layer", "fc1", "--out", "{o}/f.png"]),
    ("filters-out-folder", ["filters", *M, "--out", "{d}/adir"]),
    ("filters-npy-unwritable", ["filters", *M, "--out", "{o}/f.png", "--npy", "/proc/deepvis/f.npy"]),
    ("filters-max-0", ["filters", *M, "--out", "{o}/f.png", "--max-filters", "0"]),
    ("filters-bad-mode", ["filters", *M, "--out", "{o}/f.png", "--mode", "hsv"]),
    ("filters-out-text", ["filters", *M, "--out", "{o}/f.txt"]),
    # saliency
    ("saliency-bad-method", ["saliency", *M, "--input", IMG, "--method", "magic", "--out", "{o}/s.png"]),
    ("saliency-class-out-of-range", ["saliency", *M, "--input", IMG, "--method", "gradient", "--target", "99",
                                     "--out", "{o}/s.png"]),
    ("saliency-unknown-label", ["saliency", *M, "--input", IMG, "--method", "gradient", "--target", "eleven",
                                "--out", "{o}/s.png"]),
    ("saliency-unknown-unit-layer", ["saliency", *M, "--input", IMG, "--method", "gradient", "--unit", "nope:3",
                                     "--out", "{o}/s.png"]),
    ("saliency-unit-out-of-range", ["saliency", *M, "--input", IMG, "--method", "gradient", "--unit",
                                    "conv1:9999", "--out", "{o}/s.png"]),
    ("saliency-inverted-region", ["saliency", *M, "--input", IMG, "--method", "gradient", "--region",
                                  "0.5,0.5,0.2,0.2", "--out", "{o}/s.png"]),
    ("saliency-text-region", ["saliency", *M, "--input", IMG, "--method", "gradient", "--region", "a,b,c,d",
                              "--out", "{o}/s.png"]),
    ("saliency-overlay-nan", ["saliency", *M, "--input", IMG, "--method", "gradient", "--overlay", "nan",
                              "--out", "{o}/s.png"]),
    ("saliency-overlay-5", ["saliency", *M, "--input", IMG, "--method", "gradient", "--overlay", "5",
                            "--out", "{o}/s.png"]),
    ("saliency-overlay-negative", ["saliency", *M, "--input", IMG, "--method", "gradient", "--overlay", "-1",
                                   "--out", "{o}/s.png"]),
    ("saliency-samples-0", ["saliency", *M, "--input", IMG, "--method", "smoothgrad", "--samples", "0",
                            "--out", "{o}/s.png"]),
    ("saliency-gradcam-unknown-layer", ["saliency", *M, "--input", IMG, "--method", "gradcam", "--layer", "nope",
                                        "--out", "{o}/s.png"]),
    ("saliency-gradcam-linear-layer", ["saliency", *M, "--input", IMG, "--method", "gradcam", "--layer", "fc1",
                                       "--out", "{o}/s.png"]),
    ("saliency-gradcam-after-unit", ["saliency", *M, "--input", IMG, "--method", "gradcam", "--unit", "conv1:0",
                                     "--out", "{o}/s.png"]),
    ("saliency-npy-unwritable", ["saliency", *M, "--input", IMG, "--method", "gradient", "--out", "{o}/s.png",
                                 "--npy", "/proc/deepvis/s.npy"]),
    ("saliency-out-folder", ["saliency", *M, "--input", IMG, "--method", "gradient", "--out", "{d}/adir"]),
    ("saliency-missing-input", ["saliency", *M, "--input", "{d}/missing.png", "--method", "gradient",
                                "--out", "{o}/s.png"]),
    ("saliency-nan-weights", ["saliency", *M, "--weights", "{d}/nan.pt", "--input", IMG, "--method", "gradient",
                              "--out", "{o}/s.png"]),
    ("saliency-target-and-unit", ["saliency", *M, "--input", IMG, "--method", "gradient", "--target", "1",
                                  "--unit", "conv1:0", "--out", "{o}/s.png"]),
    # embed
    ("embed-missing-data", ["embed", *M, "--data", "{d}/missing", "--out", "{o}/e.png"]),
    ("embed-empty-data", ["embed", *M, "--data", "{d}/empty_dir", "--out", "{o}/e.png"]),
    ("embed-only-corrupt", ["embed", *M, "--data", "{d}/only_corrupt", "--out", "{o}/e.png"]),
    ("embed-perplexity-0", ["embed", *M, "--data", "digits", "--perplexity", "0", "--out", "{o}/e.png"]),
    ("embed-perplexity-nan", ["embed", *M, "--data", "digits", "--perplexity", "nan", "--out", "{o}/e.png"]),
    ("embed-perplexity-negative", ["embed", *M, "--data", "digits", "--perplexity", "-5", "--out", "{o}/e.png"]),
    ("embed-exaggeration-negative", ["embed", *M, "--data", "digits", "--exaggeration", "-1", "--out",
                                     "{o}/e.png"]),
    ("embed-exaggeration-nan", ["embed", *M, "--data", "digits", "--exaggeration", "nan", "--out", "{o}/e.png"]),
    ("embed-unknown-layer", ["embed", *M, "--data", "digits", "--layer", "nope", "--out", "{o}/e.png"]),
    ("embed-csv-unwritable", ["embed", *M, "--data", "digits", "--method", "pca", "--out", "{o}/e.png",
                              "--csv", "/proc/deepvis/e.csv"]),
    ("embed-csv-folder", ["embed", *M, "--data", "digits", "--method", "pca", "--out", "{o}/e.png",
                          "--csv", "{d}/adir"]),
    ("embed-out-folder", ["embed", *M, "--data", "digits", "--method", "pca", "--out", "{d}/adir"]),
    ("embed-bad-method", ["embed", *M, "--data", "digits", "--method", "mds", "--out", "{o}/e.png"]),
    ("embed-batch-0", ["embed", *M, "--data", "digits", "--batch", "0", "--out", "{o}/e.png"]),
    # dream
    ("dream-unit-out-of-range", ["dream", *M, "--input", IMG, "--layer", "conv2", "--unit", "99999",
                                 "--out", "{o}/d.png"]),
    ("dream-negative-unit", ["dream", *M, "--input", IMG, "--layer", "conv2", "--unit", "-1", "--out", "{o}/d.png"]),
    ("dream-octave-scale-nan", ["dream", *M, "--input", IMG, "--layer", "conv2", "--octave-scale", "nan",
                                "--out", "{o}/d.png"]),
    ("dream-octave-scale-below-1", ["dream", *M, "--input", IMG, "--layer", "conv2", "--octave-scale", "0.5",
                                    "--out", "{o}/d.png"]),
    ("dream-octave-scale-huge", ["dream", *M, "--input", IMG, "--layer", "conv2", "--octave-scale", "1000",
                                 "--out", "{o}/d.png"]),
    ("dream-step-size-nan", ["dream", *M, "--input", IMG, "--layer", "conv2", "--step-size", "nan",
                             "--out", "{o}/d.png"]),
    ("dream-step-size-inf", ["dream", *M, "--input", IMG, "--layer", "conv2", "--step-size", "inf",
                             "--out", "{o}/d.png"]),
    ("dream-step-size-negative", ["dream", *M, "--input", IMG, "--layer", "conv2", "--step-size", "-0.1",
                                  "--out", "{o}/d.png"]),
    ("dream-linear-layer", ["dream", *M, "--input", IMG, "--layer", "fc1", "--out", "{o}/d.png"]),
    ("dream-1x1-image", ["dream", *M, "--input", "{d}/tiny.png", "--layer", "conv2", "--out", "{o}/d.png"]),
    ("dream-nan-weights", ["dream", *M, "--weights", "{d}/nan.pt", "--input", IMG, "--layer", "conv2",
                           "--out", "{o}/d.png"]),
    ("dream-negative-smooth", ["dream", *M, "--input", IMG, "--layer", "conv2", "--smooth", "-1",
                               "--out", "{o}/d.png"]),
    ("dream-negative-jitter", ["dream", *M, "--input", IMG, "--layer", "conv2", "--jitter", "-5",
                               "--out", "{o}/d.png"]),
    ("dream-octaves-0", ["dream", *M, "--input", IMG, "--layer", "conv2", "--octaves", "0", "--out", "{o}/d.png"]),
    ("dream-unknown-layer", ["dream", *M, "--input", IMG, "--layer", "nope", "--out", "{o}/d.png"]),
    ("dream-out-unwritable", ["dream", *M, "--input", IMG, "--layer", "conv2", "--out", "/proc/deepvis/d.png"]),
    ("dream-out-folder", ["dream", *M, "--input", IMG, "--layer", "conv2", "--out", "{d}/adir"]),
    # visualize-unit
    ("visualize-size-60000", ["visualize-unit", *M, "--layer", "conv2", "--unit", "0", "--size", "60000",
                              "--out", "{o}/v.png"]),
    ("visualize-size-1", ["visualize-unit", *M, "--layer", "conv2", "--unit", "0", "--size", "1",
                          "--out", "{o}/v.png"]),
    ("visualize-unit-out-of-range", ["visualize-unit", *M, "--layer", "conv2", "--unit", "99999",
                                     "--out", "{o}/v.png"]),
    ("visualize-negative-unit", ["visualize-unit", *M, "--layer", "conv2", "--unit", "-1", "--out", "{o}/v.png"]),
    # Without --size a linear layer is visualized at the model's own 8x8; at another size it cannot run.
    ("visualize-linear-layer", ["visualize-unit", *M, "--layer", "fc1", "--unit", "0", "--size", "128", "--out",
                                "{o}/v.png"]),
    ("visualize-nan-weights", ["visualize-unit", *M, "--weights", "{d}/nan.pt", "--layer", "conv2", "--unit", "0",
                               "--steps", "4", "--out", "{o}/v.png"]),
    ("visualize-out-folder", ["visualize-unit", *M, "--layer", "conv2", "--unit", "0", "--out", "{d}/adir"]),
    ("visualize-steps-0", ["visualize-unit", *M, "--layer", "conv2", "--unit", "0", "--steps", "0",
                           "--out", "{o}/v.png"]),
    ("visualize-unit-text", ["visualize-unit", *M, "--layer", "conv2", "--unit", "some", "--out", "{o}/v.png"]),
    ("visualize-unknown-layer", ["visualize-unit", *M, "--layer", "nope", "--unit", "0", "--out", "{o}/v.png"]),
    # profile-units
    ("profile-missing-data", ["profile-units", *M, "--data", "{d}/missing", "--layer", "conv2", "--out", "{o}/p"]),
    ("profile-unknown-layer", ["profile-units", *M, "--data", "digits", "--layer", "nope", "--out", "{o}/p"]),
    ("profile-out-is-file", ["profile-units", *M, "--data", "digits", "--layer", "conv2",
                             "--out", "{d}/notes.txt"]),
    ("profile-top-0", ["profile-units", *M, "--data", "digits", "--layer", "conv2", "--top", "0", "--out", "{o}/p"]),
    ("profile-only-corrupt", ["profile-units", *M, "--data", "{d}/only_corrupt", "--layer", "conv2",
                              "--out", "{o}/p"]),
    # interpolate
    ("interpolate-one-seed", ["interpolate", "--seeds", "1", "--out", "{o}/i.png"]),
    ("interpolate-seed-overflow", ["interpolate", "--seeds", "99999999999999999999", "2", "--out", "{o}/i.png"]),
    ("interpolate-negative-seed", ["interpolate", "--seeds", "-1", "2", "--out", "{o}/i.png"]),
    ("interpolate-gif-text", ["interpolate", "--seeds", "1", "2", "--out", "{o}/i.png", "--gif", "{o}/x.txt"]),
    ("interpolate-walk-million", ["interpolate", "--seeds", "1", "2", "--out", "{o}/i.png", "--walk", "1000000"]),
    ("interpolate-unknown-generator", ["interpolate", "--generator", "no_such_gan", "--seeds", "1", "2",
                                       "--out", "{o}/i.png"]),
    ("interpolate-truncated-weights", ["interpolate", "--generator", "dcgan", "--weights", "{d}/truncated.pt",
                                       "--seeds", "1", "2", "--out", "{o}/i.png"]),
    ("interpolate-grid-1x1", ["interpolate", "--seeds", "1", "2", "--grid", "1x1", "--out", "{o}/i.png"]),
    ("interpolate-grid-text", ["interpolate", "--seeds", "1", "2", "--grid", "big", "--out", "{o}/i.png"]),
    ("interpolate-steps-0", ["interpolate", "--seeds", "1", "2", "--steps", "0", "--out", "{o}/i.png"]),
    ("interpolate-steps-million", ["interpolate", "--seeds", "1", "2", "--steps", "1000000", "--out", "{o}/i.png"]),
    ("interpolate-out-folder", ["interpolate", "--seeds", "1", "2", "--out", "{d}/adir"]),
    ("interpolate-out-unwritable", ["interpolate", "--seeds", "1", "2", "--out", "/proc/deepvis/i.png"]),
    ("interpolate-gif-unwritable", ["interpolate", "--seeds", "1", "2", "--out", "{o}/i.png",
                                    "--gif", "/proc/deepvis/i.gif"]),
    ("interpolate-directions-0", ["interpolate", "--seeds", "1", "2", "--directions", "0", "--out", "{o}/i.png"]),
    # segment3d
    ("segment3d-missing", ["segment3d", "--input", "{d}/missing.ply", "--out", "{o}/l.npy"]),
    ("segment3d-corrupt-ply", ["segment3d", "--input", "{d}/corrupt.ply", "--out", "{o}/l.npy"]),
    ("segment3d-text", ["segment3d", "--input", "{d}/notes.txt", "--out", "{o}/l.npy"]),
    ("segment3d-empty-obj", ["segment3d", "--input", "{d}/empty.obj", "--out", "{o}/l.npy"]),
    ("segment3d-out-folder", ["segment3d", "--input", "{shapes}/chair.obj", "--out", "{d}/adir"]),
    ("segment3d-out-unwritable", ["segment3d", "--input", "{shapes}/chair.obj", "--out", "/proc/deepvis/l.npy"]),
    ("segment3d-png-unwritable", ["segment3d", "--input", "{shapes}/chair.obj", "--out", "{o}/l.npy",
                                  "--png", "/proc/deepvis/l.png"]),
    ("segment3d-png-text", ["segment3d", "--input", "{shapes}/chair.obj", "--out", "{o}/l.npy",
                            "--png", "{o}/l.txt"]),
    ("segment3d-points-out-unwritable", ["segment3d", "--input", "{shapes}/chair.obj", "--out", "{o}/l.npy",
                                         "--points-out", "/proc/deepvis/p.npy"]),
    ("segment3d-points-out-folder", ["segment3d", "--input", "{shapes}/chair.obj", "--out", "{o}/l.npy",
                                     "--points-out", "{d}/adir"]),
    ("segment3d-bad-category", ["segment3d", "--input", "{shapes}/chair.obj", "--out", "{o}/l.npy",
                                "--category", "spaceship"]),
    ("segment3d-points-0", ["segment3d", "--input", "{shapes}/chair.obj", "--out", "{o}/l.npy", "--points", "0"]),
    ("segment3d-unknown-model", ["segment3d", "--model", "no_such_net", "--input", "{shapes}/chair.obj",
                                 "--out", "{o}/l.npy"]),
    ("segment3d-truncated-model", ["segment3d", "--model", "{d}/truncated.pt", "--input", "{shapes}/chair.obj",
                                   "--out", "{o}/l.npy"]),
    # segment: ground truths and colour tables (issue 30)
    *[(f"segment-colours-{name}", ["segment", "--model", "digits_fcn", "--input", "{d}/scene.png", "--gt",
                                   "{d}/gt_rgb.png", "--gt-colors", f"{{d}}/colours_{name}.json", "--out", "{o}/s.png"])
      for name in ("two_values", "four_values", "short", "huge_id", "negative_id", "out_of_byte", "text_colour",
                   "fraction_id", "a_number", "empty_table")],
    ("segment-gt-all-ignored", ["segment", "--model", "digits_fcn", "--input", "{d}/scene.png", "--gt",
                                "{d}/gt255.npy", "--out", "{o}/s.png", "--npy", "{o}/s.npy"]),
    ("segment-gt-empty", ["segment", "--model", "digits_fcn", "--input", "{d}/scene.png", "--gt", "{d}/gt_empty.npy",
                          "--out", "{o}/s.png"]),
    ("segment-gt-zero-width", ["segment", "--model", "digits_fcn", "--input", "{d}/scene.png", "--gt",
                               "{d}/gt_zero_width.npy", "--out", "{o}/s.png"]),
    ("segment-gt-float", ["segment", "--model", "digits_fcn", "--input", "{d}/scene.png", "--gt", "{d}/gt_float.npy",
                          "--out", "{o}/s.png"]),
    ("segment-gt-missing", ["segment", "--model", "digits_fcn", "--input", "{d}/scene.png", "--gt", "{d}/nope.npy",
                            "--out", "{o}/s.png"]),
    ("segment-huge-picture", ["segment", "--model", "digits_fcn", "--input", "{d}/huge.png", "--out", "{o}/s.png"]),
    ("segment-classifier", ["segment", *M, "--input", "{d}/scene.png", "--out", "{o}/s.png"]),
    ("segment-empty-folder", ["segment", "--model", "digits_fcn", "--input", "{d}/empty_dir", "--out", "{o}/s"]),
    ("segment-bad-mode", ["segment", "--model", "digits_fcn", "--input", "{d}/scene.png", "--mode", "hue",
                          "--out", "{o}/s.png"]),
    ("segment-bad-convention", ["segment", "--model", "digits_fcn", "--input", "{d}/scene.png", "--gt",
                                "{d}/gt255.npy", "--gt-convention", "coco", "--out", "{o}/s.png"]),
    # sample (issue 30)
    ("sample-not-a-pixelcnn", ["sample", *M, "--out", "{o}/s.png"]),
    ("sample-a-1d-model", ["sample", "--model", "signals_wavenet", "--out", "{o}/s.png"]),
    ("sample-size-too-much-work", ["sample", "--model", "digits_pixelcnn", "--size", "256x256", "--out", "{o}/s.png"]),
    ("sample-count-too-much-work", ["sample", "--model", "digits_pixelcnn", "--size", "64x64", "--count", "64",
                                    "--out", "{o}/s.png"]),
    ("sample-size-text", ["sample", "--model", "digits_pixelcnn", "--size", "big", "--out", "{o}/s.png"]),
    ("sample-size-zero", ["sample", "--model", "digits_pixelcnn", "--size", "0x8", "--out", "{o}/s.png"]),
    ("sample-temperature-zero", ["sample", "--model", "digits_pixelcnn", "--temperature", "0", "--out", "{o}/s.png"]),
    ("sample-temperature-nan", ["sample", "--model", "digits_pixelcnn", "--temperature", "nan", "--out", "{o}/s.png"]),
    ("sample-count-0", ["sample", "--model", "digits_pixelcnn", "--count", "0", "--out", "{o}/s.png"]),
    ("sample-out-folder", ["sample", "--model", "digits_pixelcnn", "--out", "{d}/adir"]),
    ("sample-npy-unwritable", ["sample", "--model", "digits_pixelcnn", "--out", "{o}/s.png",
                               "--npy", "/proc/deepvis/s.npy"]),
    # receptive-field (issue 30)
    ("receptive-at-outside", ["receptive-field", "--model", "digits_pixelcnn", "--at", "99,99", "--out", "{o}/r.png"]),
    ("receptive-at-text", ["receptive-field", "--model", "digits_pixelcnn", "--at", "a,b", "--out", "{o}/r.png"]),
    ("receptive-wrong-dims", ["receptive-field", "--model", "signals_wavenet", "--at", "3,3", "--out", "{o}/r.png"]),
    ("receptive-size-huge", ["receptive-field", "--model", "digits_pixelcnn", "--at", "3,3", "--size", "4000x4000",
                             "--out", "{o}/r.png"]),
    ("receptive-unknown-layer", ["receptive-field", "--model", "digits_pixelcnn", "--at", "3,3", "--layer", "nope",
                                 "--out", "{o}/r.png"]),
    # signals and sizes (issue 30)
    ("predict-wav-rate-0", ["predict", "--model", "signals_wavenet", "--input", "{d}/rate0.wav"]),
    ("predict-sample-rate-4e9", ["predict", "--model", "signals_wavenet", "--sample-rate", "4000000000",
                                 "--input", "{d}/ok.wav"]),
    ("predict-sample-rate-0", ["predict", "--model", "signals_wavenet", "--sample-rate", "0", "--input",
                               "{d}/ok.wav"]),
    ("predict-huge-picture", ["predict", *M, "--input", "{d}/huge.png"]),
    ("dream-huge-picture", ["dream", *M, "--input", "{d}/huge.png", "--layer", "conv2", "--out", "{o}/d.png"]),
    ("saliency-batch-memory", ["saliency", "--model", "digits_fcn", "--input", "{d}/scene.png", "--method",
                               "smoothgrad", "--samples", "4096", "--batch", "4096", "--out", "{o}/s.png"]),
    ("segment3d-points-200m", ["segment3d", "--input", "{shapes}/chair.obj", "--out", "{o}/l.npy",
                               "--points", "200000000"]),
    ("timm-patch-size", ["predict", "--model", "timm:vit_tiny_patch16_224", "--weights", "none", "--input-size",
                         "17x17", "--input", "{d}/scene.png"]),
    ("head-unknown", ["predict", *M, "--head", "output[3]", "--input", IMG]),
    ("min-score-above-1", ["predict", *M, "--min-score", "2", "--input", IMG]),
    ("input-kind-bad", ["predict", *M, "--input-kind", "video", "--input", IMG]),
    ("signal-layout-on-pictures", ["predict", *M, "--input-kind", "image", "--signal-layout", "bt", "--input", IMG]),
    ("detection-target-on-classifier", ["saliency", *M, "--input", IMG, "--target", "det:0", "--out", "{o}/s.png"]),
    ("detection-target-text", ["saliency", *M, "--input", IMG, "--target", "det:x", "--out", "{o}/s.png"]),
    # Hugging Face folders (issue 30)
    ("hf-text-size", ["predict", "--model", "{d}/hf_text_size", "--input", IMG]),
    ("hf-text-mean", ["predict", "--model", "{d}/hf_text_mean", "--input", IMG]),
    ("hf-truncated-weights", ["predict", "--model", "{d}/hf_truncated", "--input", IMG]),
    # atlases (issue 30)
    ("atlas-out-is-file", ["atlas", "build", *M, "--data", "{d}/atlas_images", "--out", "{d}/a_file",
                           "--engine", "local"]),
    ("atlas-out-unwritable", ["atlas", "build", *M, "--data", "{d}/atlas_images", "--out", "/proc/deepvis/atlas",
                              "--engine", "local"]),
    ("atlas-only-corrupt", ["atlas", "build", *M, "--data", "{d}/only_corrupt", "--out", "{o}/atlas",
                            "--engine", "local"]),
    ("atlas-empty-data", ["atlas", "build", *M, "--data", "{d}/empty_dir", "--out", "{o}/atlas", "--engine", "local"]),
    ("atlas-missing-data", ["atlas", "build", *M, "--data", "{d}/missing", "--out", "{o}/atlas", "--engine", "local"]),
    ("atlas-out-not-an-atlas", ["atlas", "build", *M, "--data", "{d}/atlas_images", "--out", "{d}/adir_full",
                                "--engine", "local"]),
    ("atlas-other-model", ["atlas", "build", "--model", "digits_fcn", "--data", "{d}/atlas_images",
                           "--out", "{d}/atlas_good", "--engine", "local"]),
    ("atlas-unknown-layer", ["atlas", "build", *M, "--data", "{d}/atlas_images", "--out", "{o}/atlas",
                             "--layers", "nope", "--engine", "local"]),
    ("atlas-top-0", ["atlas", "build", *M, "--data", "{d}/atlas_images", "--out", "{o}/atlas", "--top", "0"]),
    ("atlas-local-address", ["atlas", "build", *M, "--data", "{d}/atlas_images", "--out", "{o}/atlas",
                             "--engine", "local", "--address", "127.0.0.1:1"]),
    *[(f"atlas-{command}-{name}", ["atlas", command, f"{{d}}/atlas_{name}", *extra])
      for command, extra in (("map", ["--method", "pca"]), ("units", []))
      for name in ("no_layers", "no_model", "number_layers", "labels_number", "no_root", "list_manifest",
                   "pickled_units", "truncated_units")],
    ("atlas-map-truncated-part", ["atlas", "map", "{d}/atlas_truncated_part", "--method", "pca"]),
    ("atlas-build-truncated-part", ["atlas", "build", *M, "--data", "{d}/atlas_images",
                                    "--out", "{d}/atlas_truncated_part", "--engine", "local"]),
    ("atlas-build-pickled-units", ["atlas", "build", *M, "--data", "{d}/atlas_images",
                                   "--out", "{d}/atlas_pickled_units", "--engine", "local"]),
    ("atlas-map-not-an-atlas", ["atlas", "map", "{d}/adir", "--method", "pca"]),
    ("atlas-map-unknown-layer", ["atlas", "map", "{d}/atlas_good", "--layer", "nope", "--method", "pca"]),
    ("atlas-map-bad-method", ["atlas", "map", "{d}/atlas_good", "--method", "mds"]),
    ("atlas-map-perplexity-nan", ["atlas", "map", "{d}/atlas_good", "--perplexity", "nan"]),
    ("atlas-units-unknown-layer", ["atlas", "units", "{d}/atlas_good", "--layer", "nope"]),
    ("atlas-units-visualize-huge", ["atlas", "units", "{d}/atlas_good", "--visualize", "--size", "60000",
                                    "--engine", "local"]),
    ("atlas-units-visualize-tiny", ["atlas", "units", "{d}/atlas_good", "--visualize", "--size", "2",
                                    "--engine", "local"]),
    ("receptive-size-text", ["receptive-field", "--model", "digits_pixelcnn", "--at", "3,3", "--size", "big",
                             "--out", "{o}/r.png"]),
    ("receptive-out-unwritable", ["receptive-field", "--model", "digits_pixelcnn", "--at", "3,3",
                                  "--out", "/proc/deepvis/r.png"]),
    ("sample-temperature-negative", ["sample", "--model", "digits_pixelcnn", "--temperature", "-1",
                                     "--out", "{o}/s.png"]),
    ("segment3d-points-text", ["segment3d", "--input", "{shapes}/chair.obj", "--out", "{o}/l.npy", "--points", "many"]),
    ("atlas-build-batch-0", ["atlas", "build", *M, "--data", "{d}/atlas_images", "--out", "{o}/atlas", "--batch", "0"]),
    ("atlas-build-workers-0", ["atlas", "build", *M, "--data", "{d}/atlas_images", "--out", "{o}/atlas",
                               "--workers", "0"]),
    # honest exits (issue 31)
    ("model-empty", ["predict", "--model", "", "--input", IMG]),
    ("model-exits-on-import", ["predict", "--model", "{d}/exits_on_import.py:build", "--input", IMG]),
    ("labels-too-few", ["predict", *M, "--labels", "{d}/two_labels.txt", "--input", IMG]),
    ("mean-negative", ["predict", *M, "--mean", "-5", "--input", IMG]),
    ("mean-above-1", ["predict", *M, "--mean", "123.7", "--input", IMG]),
    ("hf-no-labels", ["predict", "--model", "{d}/hf_no_labels", "--input", IMG]),
    ("sample-segmentation-net", ["sample", "--model", "digits_fcn", "--out", "{o}/s.png"]),
    ("signal-complex", ["predict", "--model", "signals_wavenet", "--input", "{d}/complex.npy"]),
    ("signal-no-channels", ["predict", "--model", "signals_wavenet", "--input", "{d}/no_channels.npy"]),
    ("signal-truncated-wav", ["predict", "--model", "signals_wavenet", "--input", "{d}/cut.wav"]),
    ("receptive-size-zero", ["receptive-field", "--model", "digits_pixelcnn", "--at", "1,1", "--size", "0x0",
                             "--out", "{o}/r.png"]),
    ("filters-nan-weights", ["filters", *M, "--weights", "{d}/nan.pt", "--out", "{o}/f.png"]),
    ("info-nan-weights", ["info", *M, "--weights", "{d}/nan.pt"]),
    # the one rule for option values: outside the domain each help states (issue 31)
    ("predict-init-seed-negative", ["predict", *M, "--input", IMG, "--init-seed", "-1"]),
    ("gui-camera-negative", ["gui", *M, "--camera", "-1"]),
    ("interpolate-steps-1", ["interpolate", "--seeds", "1", "2", "--steps", "1", "--out", "{o}/i.png"]),
    ("dream-unit-negative", ["dream", *M, "--input", IMG, "--layer", "conv2", "--unit", "-1", "--out", "{o}/d.png"]),
    ("embed-exaggeration-0", ["embed", *M, "--data", "digits", "--exaggeration", "0", "--out", "{o}/e.png"]),
    ("atlas-map-perplexity-2000", ["atlas", "map", "{d}/atlas_good", "--perplexity", "2000"]),
    ("predict-top-0-cut-wav", ["predict", "--model", "signals_wavenet", "--input", "{d}/cut.wav",
                              "--top", "0"]),
    # doctor and compare (issue 33)
    ("doctor-missing-data", ["doctor", *M, "--data", "{d}/missing", "--json"]),
    ("doctor-limit-0", ["doctor", *M, "--limit", "0"]),
    ("doctor-out-not-html", ["doctor", *M, "--limit", "5", "--out", "{o}/report.png"]),
    ("doctor-only-corrupt", ["doctor", *M, "--data", "{d}/only_corrupt"]),
    ("doctor-signal-model", ["doctor", "--model", "signals_wavenet", "--data", "digits"]),
    ("doctor-user-model-without-data", ["doctor", "--model", "testnets:SqrtOfConv", "--input-size", "8x8"]),
    ("compare-missing-against", ["compare", *M, "--against", "{d}/missing.pt"]),
    ("compare-against-truncated", ["compare", *M, "--against", "{d}/truncated.pt", "--limit", "5"]),
    ("compare-against-empty-folder", ["compare", *M, "--against", "{d}/only_corrupt", "--limit", "5"]),
    ("compare-out-text", ["compare", *M, "--against", "{d}/truncated.pt", "--out", "{o}/cka.txt"]),
    # match (issue 34)
    ("match-no-second-input", ["match", *M, "--input", IMG]),
    ("match-point-outside", ["match", *M, "--input", IMG, "--input2", IMG, "--at", "500,3", "--out", "{o}/m.png"]),
    ("match-point-not-yx", ["match", *M, "--input", IMG, "--input2", IMG, "--at", "3"]),
    ("match-layer-without-grid", ["match", *M, "--input", IMG, "--input2", IMG, "--layer", "fc1"]),
    ("match-eval-missing", ["match", *M, "--eval", "{d}/missing"]),
    ("match-eval-not-sequences", ["match", *M, "--eval", "{d}/only_corrupt"]),
    ("match-baseline-without-eval", ["match", *M, "--input", IMG, "--input2", IMG, "--baseline", "sift"]),
    ("match-out-text", ["match", *M, "--input", IMG, "--input2", IMG, "--out", "{o}/m.txt"]),
    # argument parsing: no abbreviations (issue 30)
    ("abbreviated-option", ["predict", *M, "--inp", IMG]),
    ("abbreviation-of-another", ["info", *M, "--input", IMG]),
    ("abbreviated-top", ["predict", *M, "--input", IMG, "--to", "3"]),
    # bench and usage
    ("bench-unknown", ["bench", "nosuch", *M]),
    ("bench-live-frames-0", ["bench", "live", *M, "--frames", "0"]),
    ("bench-live-bad-saliency", ["bench", "live", *M, "--saliency", "magic"]),
    ("bench-embed-missing-input", ["bench", "embed", "--input", "{d}/missing"]),
    ("bench-seconds-nan", ["bench", "gui-live", *M, "--seconds", "nan"]),
    ("unknown-command", ["paint"]),
    ("unknown-option", ["predict", *M, "--input", IMG, "--colour", "red"]),
    ("missing-required", ["activations", *M, "--input", IMG]),
]


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("name,argv", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_exits_2_with_one_line_and_writes_nothing(name, argv, bad, tmp_path, capsys, monkeypatch):
    from deepvis.resources import RESOURCES_DIR

    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(out)
    before = _files(bad)
    args = [a.format(d=bad, o=out, shapes=RESOURCES_DIR / "shapes") for a in argv]
    try:
        code = _run(args)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2, f"exit {code}: {captured.err[-800:]}"
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err[-800:]
    assert "internal error" not in lines[0]
    assert _files(out) == set(), f"left behind: {_files(out)}"
    assert _files(bad) == before, f"wrote into the input folder: {_files(bad) - before}"


def test_the_battery_is_broad():
    commands = {argv[0] for _, argv in CASES}
    assert len(CASES) >= 250 and len({name for name, _ in CASES}) == len(CASES)
    assert {"predict", "info", "activations", "filters", "saliency", "embed", "dream", "visualize-unit",
            "profile-units", "interpolate", "segment3d", "bench", "segment", "sample", "receptive-field",
            "atlas"} <= commands


GUI_CASES = [
    ("gui-bad-saliency", ["gui", *M, "--saliency", "magic"]),
    ("gui-bad-tab", ["gui", *M, "--tab", "Nope"]),
    ("gui-missing-camera", ["gui", *M, "--camera", "99", "--screenshot", "{o}/s.png"]),
    ("gui-missing-input", ["gui", *M, "--input", "{d}/missing.png", "--screenshot", "{o}/s.png"]),
    ("gui-corrupt-input", ["gui", *M, "--input", "{d}/corrupt.png", "--screenshot", "{o}/s.png"]),
    ("gui-screenshot-unwritable", ["gui", *M, "--input", CAT, "--screenshot", "/proc/deepvis/s.png"]),
    ("gui-screenshot-text", ["gui", *M, "--input", CAT, "--screenshot", "{o}/s.txt"]),
]


@pytest.fixture(scope="module")
def gui_runs(bad, tmp_path_factory):
    """Every GUI case in a process of its own, three at a time: each pays Qt's and torch's
    imports, and they wait on those more than on the cores. -> {name: (process, output folder)}."""
    from concurrent.futures import ThreadPoolExecutor

    def start(case):
        name, argv = case
        root = tmp_path_factory.mktemp(name)
        out = root / "out"
        out.mkdir()
        env = dict(os.environ, XDG_CONFIG_HOME=str(root / "config"))
        args = [a.format(d=bad, o=out) for a in argv]
        return name, (subprocess.run([sys.executable, "-m", "deepvis", *args], capture_output=True, text=True,
                                     timeout=120, cwd=out, env=env), out)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(pool.map(start, GUI_CASES))


@pytest.mark.slow
@pytest.mark.parametrize("name", [c[0] for c in GUI_CASES])
def test_hostile_gui_start_exits_2_soon(name, gui_runs):
    proc, out = gui_runs[name]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-1500:]
    assert _files(out) == set()


def test_file_names_that_are_not_utf8_work_end_to_end(tmp_path, capsys):
    """Linux file names are bytes; a folder with a Latin-1 name in it is a dataset like any other."""
    import shutil

    from deepvis.resources import sample_images

    data = tmp_path / "data"
    data.mkdir()
    odd = os.fsdecode(b"caf\xe9.png")
    for i, image in enumerate(sample_images()[:3]):
        shutil.copy(image, data / (odd if i == 0 else f"ok{i}{Path(image).suffix}"))
    out = tmp_path / os.fsdecode(b"out\xe9.png")
    table = tmp_path / "map.csv"
    assert _run(["embed", *M, "--data", str(data), "--method", "pca", "--out", str(out), "--csv", str(table)]) == 0
    assert out.is_file()
    rows = table.read_bytes().splitlines()
    assert len(rows) == 4 and any(b"caf\xe9.png" in row for row in rows)
    assert "3 points" in capsys.readouterr().out
