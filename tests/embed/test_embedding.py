"""Embedding maps: digits_cnn's penultimate features of the bundled digits keep their
neighbours, new points land by their own class, features are cached by the weights, and the
CLI writes the map and its CSV."""

import csv
import threading

import numpy as np
import pytest
import torch

from deepvis.io.datasets import digits_dataset, folder_dataset, frames_dataset
from deepvis.embed.projection import knn_accuracy, project, trustworthiness
from deepvis.errors import Cancelled, DeepvisError
from deepvis.embed.features import extract_features
from deepvis.io.images import write_image


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPVIS_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def digit_features(digits):
    return extract_features(digits, digits_dataset(), use_cache=False)


@pytest.fixture(scope="module")
def digit_map(digit_features):
    return project(digit_features.vectors, "tsne")


@pytest.mark.slow
def test_penultimate_layer_map_keeps_neighbours(digit_features, digit_map):
    assert digit_features.layer == "relu4" and digit_features.vectors.shape == (1797, 128)
    knn = knn_accuracy(digit_map.coords, digit_features.labels, k=10, folds=5)
    trust = trustworthiness(digit_features.vectors, digit_map.coords, k=10)
    assert knn >= 0.95 and trust >= 0.95, (knn, trust)  # measured 0.998 and 0.996
    assert digit_map.iterations < 750  # the settle check stopped before the full schedule


@pytest.mark.slow
def test_transform_places_held_out_digits_by_their_class(digit_features):
    rng = np.random.default_rng(0)
    order = rng.permutation(len(digit_features))
    train, held = order[:1400], order[1400:]
    labels = np.array(digit_features.labels)
    fitted = project(digit_features.vectors[train], "tsne")
    placed = fitted.transform(digit_features.vectors[held])
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(10).fit(fitted.coords, labels[train])
    agreement = float((knn.predict(placed) == labels[held]).mean())
    assert agreement >= 0.90, agreement


def test_pca_map_and_missing_umap(digit_features):
    pca = project(digit_features.vectors, "pca")
    assert pca.coords.shape == (1797, 2)
    assert pca.transform(digit_features.vectors[:3]).shape == (3, 2)
    np.testing.assert_allclose(pca.transform(digit_features.vectors[:3]), pca.coords[:3], rtol=1e-4, atol=1e-4)
    try:
        import umap  # noqa: F401
    except ImportError:
        with pytest.raises(DeepvisError, match="umap-learn"):
            project(digit_features.vectors, "umap")


@pytest.mark.slow
def test_progress_streams_layouts_and_cancel_stops(digit_features):
    seen = []
    project(digit_features.vectors[:400], "tsne", progress=lambda it, total, coords: seen.append((it, coords)))
    layouts = [c for _, c in seen if c is not None]
    assert len(layouts) >= 5 and all(c.shape == (400, 2) for c in layouts)
    assert [it for it, _ in seen] == sorted(it for it, _ in seen)
    cancel = threading.Event()

    def stop_early(it, total, coords):
        if it >= 50:
            cancel.set()

    with pytest.raises(Cancelled):
        project(digit_features.vectors[:400], "tsne", progress=stop_early, cancel=cancel)


def test_features_are_cached_by_the_weights_not_the_name(digits, tmp_path):
    from deepvis.core.loading import load_model

    data = digits_dataset()
    first = extract_features(digits, data, "fc1")
    again = extract_features(digits, data, "fc1")
    assert not first.cached and again.cached
    np.testing.assert_array_equal(first.vectors, again.vectors)
    assert again.labels == first.labels and again.thumbnails.shape == (1797, 32, 32, 3)
    torch.manual_seed(0)
    other = load_model("digits_cnn", "none")  # same name and layer, other weights
    fresh = extract_features(other, data, "fc1")
    assert not fresh.cached and not np.allclose(fresh.vectors, first.vectors)


def test_spatial_layers_are_pooled_or_flattened(digits):
    data = frames_dataset([digits_dataset().image(i) for i in range(20)])
    avg = extract_features(digits, data, "conv2", use_cache=False)
    flat = extract_features(digits, data, "conv2", pooling="flatten", use_cache=False)
    x = torch.from_numpy(np.stack([digits.preprocessor.array(data.image(i)) for i in range(20)]))
    with torch.inference_mode():
        conv2 = digits.module.conv2(digits.module.relu1(digits.module.conv1(x)))
    np.testing.assert_allclose(avg.vectors, conv2.mean((2, 3)).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(flat.vectors, conv2.flatten(1).numpy(), rtol=1e-5, atol=1e-5)


def test_folder_labels_corrupt_files_and_cancel(digits, tmp_path):
    root = tmp_path / "shapes"
    rng = np.random.default_rng(0)
    for label in ("bright", "dark"):
        for i in range(6):
            value = 220 if label == "bright" else 30
            write_image(root / label / f"{i}.png", np.clip(rng.normal(value, 10, (8, 8, 3)), 0, 255).astype(np.uint8))
    write_image(root / "loose.png", np.zeros((8, 8, 3), np.uint8))
    (root / "dark" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n nope")
    data = folder_dataset(root)
    assert len(data) == 14 and data.labels.count("bright") == 6 and data.labels.count(None) == 1
    features = extract_features(digits, data, use_cache=False)
    assert len(features) == 13 and len(features.skipped) == 1 and "broken.png" in features.skipped[0]
    assert features.paths[0].endswith(".png")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        extract_features(digits, data, use_cache=False, cancel=cancel)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DeepvisError, match="no images"):
        folder_dataset(empty)


@pytest.mark.slow
def test_embed_command_writes_png_and_csv(tmp_path, capsys):
    from deepvis.cli import main
    from deepvis.io.images import read_image

    out, table = tmp_path / "map.png", tmp_path / "map.csv"
    code = main(["embed", "--model", "digits_cnn", "--data", "digits", "--out", str(out), "--csv", str(table)])
    assert code == 0, capsys.readouterr().err
    message = capsys.readouterr().out
    assert "relu4" in message and "10-NN accuracy" in message
    assert 1200 < read_image(out).shape[0] < 1300  # the 1200-px map under its title row
    # --plain: the map alone, the very pixels under the figure's title (PCA: the same map twice, fast).
    quick = ["embed", "--model", "digits_cnn", "--data", "digits", "--method", "pca", "--points", "--out"]
    assert main([*quick, str(tmp_path / "figure.png")]) == 0 and main([*quick, str(out), "--plain"]) == 0
    plain, figure = read_image(out), read_image(tmp_path / "figure.png")
    assert plain.shape[0] == 1200
    np.testing.assert_array_equal(figure[-1200:, :plain.shape[1]], plain)
    with open(table) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["x", "y", "label", "path"] and len(rows) == 1798
    assert {r[2] for r in rows[1:]} == {str(d) for d in range(10)} and all(r[3] == "" for r in rows[1:])
    code = main(["embed", "--model", "digits_cnn", "--data", str(tmp_path / "nowhere"), "--out", str(out)])
    assert code == 2 and "not a folder" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_embed_reports_both_paths(digits):
    from deepvis.bench.engine import bench_embed

    result = bench_embed(digits, frames=1000)
    assert result["n"] == 1000 and result["layer"] == "relu4"
    for key in ("ours_s", "sklearn_s", "speedup", "ours_knn", "sklearn_knn", "ours_trust", "sklearn_trust"):
        assert result[key] is not None and result[key] > 0
    assert result["speedup"] == pytest.approx(result["sklearn_s"] / result["ours_s"], rel=0.02)
    assert abs(result["ours_knn"] - result["sklearn_knn"]) < 0.02


def test_features_carry_the_predicted_class(digits, digit_features):
    labels = np.array(digit_features.labels)
    predicted = np.array(digit_features.predictions)
    assert predicted.shape == labels.shape and (predicted == labels).mean() > 0.97
    with torch.inference_mode():
        x = torch.from_numpy(np.stack([digits.preprocessor.array(digits_dataset().image(i)) for i in range(50)]))
        top = digits.module(x).argmax(1).numpy()
    assert [digits.labels[t] for t in top] == list(predicted[:50])


def test_knn_uses_no_more_neighbours_than_the_smallest_class_has_in_a_training_fold():
    from sklearn.model_selection import StratifiedKFold

    from deepvis.embed.projection import knn_k, knn_words

    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]])  # four far-apart clusters of six
    coords = np.concatenate([c + rng.normal(0, 0.3, (6, 2)) for c in centres])
    labels = [str(i) for i in range(4) for _ in range(6)]
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0).split(coords, labels)
    smallest = min(np.unique(np.array(labels)[train], return_counts=True)[1].min() for train, _ in folds)
    assert knn_k(labels) == smallest == 4
    assert knn_accuracy(coords, labels) == 1.0  # at k = 10 the other clusters outvoted each point: 0.51
    assert knn_words(1.0, 4).startswith("4-NN accuracy 1.000 (k lowered from 10")
    assert knn_k([str(i % 10) for i in range(1797)]) == 10 and knn_words(0.998, 10) == "10-NN accuracy 0.998"


def test_a_small_maps_lowered_perplexity_is_said():
    vectors = np.random.default_rng(1).normal(size=(24, 16)).astype(np.float32)
    small = project(vectors, "tsne", perplexity=30)
    assert small.params["perplexity"] == pytest.approx(23 / 3)
    assert small.note(30) == "perplexity 30 lowered to 7.67 for 24 points (at most (n - 1) / 3)"
    assert small.note(5) == "" and project(vectors, "pca").note(30) == ""
