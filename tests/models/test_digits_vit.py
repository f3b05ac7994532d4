"""The digits ViT: committed weights, the generated mosaics, the architecture's names, and
loading through the zoo. No training here: the recipe takes minutes (python -m deepvis.models.digits_vit).

Quality is judged on fresh mosaics built only from the held-out quarter of
``digits_cnn.load_split`` (no training mosaic uses those digits).
"""

import numpy as np
import pytest
import torch
from torch import nn

from deepvis.models import digits_cnn, digits_fcn, digits_vit as dv

FRESH_SEED = 2024  # test-split mosaics that neither training nor the recipe's own report used
MAX_WEIGHTS_BYTES = 1_500_000
# Measured on the committed weights: exact-set accuracy 0.938, per-label accuracy 0.992 on
# these 500 mosaics (0.939 and 0.993 on the recipe's own 1,000); the bars leave room for a
# retrain on another machine.
MIN_EXACT_SET = 0.85
MIN_PER_LABEL = 0.975


@pytest.fixture(autouse=True)
def one_thread():
    # On a busy two-core machine two threads ran small models many times slower than one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pretrained():
    return dv.load_pretrained()


def test_committed_weights_are_a_small_float32_state_dict(pretrained):
    path = dv.weights_path()
    assert path.name == "digits_vit.pt"
    assert path.stat().st_size <= MAX_WEIGHTS_BYTES
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert all(t.dtype == torch.float32 for t in state.values())
    assert not pretrained.training


def test_committed_weights_name_the_digits_of_held_out_mosaics(pretrained):
    X, Y, _ = dv.make_mosaics(500, FRESH_SEED, "test")
    scores = dv.evaluate(pretrained, X, Y)
    print(f"held-out exact-set accuracy {scores['exact_set']:.4f}, per-label accuracy {scores['per_label']:.4f} "
          f"on 500 fresh test mosaics")
    # evaluate's bookkeeping, by hand: sigmoid > 0.5 against the multi-hot targets.
    with torch.no_grad():
        decided = torch.sigmoid(pretrained(torch.from_numpy(X))).numpy() > 0.5
    right = decided == (Y == 1)
    assert scores["exact_set"] == pytest.approx(right.all(axis=1).mean())
    assert scores["per_label"] == pytest.approx(right.mean())
    assert scores["exact_set"] >= MIN_EXACT_SET
    assert scores["per_label"] >= MIN_PER_LABEL
    # Saying "absent" to everything scores ~0.7 per label and 0 exact sets: no digit left behind.
    recall = (decided & (Y == 1)).sum(axis=0) / (Y == 1).sum(axis=0)
    assert recall.min() >= 0.85, recall  # measured: 0.944 at the least (digit 1)


def test_mosaics_are_deterministic_and_labels_follow_the_layout():
    X, Y, layout = dv.make_mosaics(300, seed=7, split="test")
    assert X.shape == (300, 1, 32, 32) and X.dtype == np.float32
    assert Y.shape == (300, 10) and Y.dtype == np.float32
    assert layout.shape == (300, 4) and layout.dtype == np.int64
    assert 0.0 <= X.min() and X.max() <= 1.0
    assert set(np.unique(Y).tolist()) == {0.0, 1.0}
    assert layout.min() >= -1 and layout.max() <= 9
    assert (layout >= 0).any(axis=1).all()  # never an empty mosaic
    empty_share = (layout == -1).mean()
    assert 0.15 < empty_share < 0.35  # about EMPTY_PROB
    for i in range(300):
        assert set(np.flatnonzero(Y[i]).tolist()) == set(layout[i][layout[i] >= 0].tolist())
        for q in range(4):
            r, c = divmod(q, 2)
            tile = X[i, 0, 16 * r : 16 * r + 16, 16 * c : 16 * c + 16]
            assert (tile.max() > 0.3) == (layout[i, q] >= 0), (i, q)  # ink exactly where a digit is

    X2, Y2, layout2 = dv.make_mosaics(300, seed=7, split="test")
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(Y, Y2)
    np.testing.assert_array_equal(layout, layout2)
    X_train, _, _ = dv.make_mosaics(300, seed=7, split="train")
    X_other, _, _ = dv.make_mosaics(300, seed=8, split="test")
    assert not np.allclose(X, X_train) and not np.allclose(X, X_other)
    with pytest.raises(ValueError, match="split"):
        dv.make_mosaics(3, seed=0, split="validation")


def test_mosaic_tiles_are_the_digits_of_their_split_only():
    X_train, X_test, y_train, y_test = digits_cnn.load_split()

    def tiles(split):
        X, _, layout = dv.make_mosaics(200, seed=3, split=split)
        quads = X[:, 0].reshape(200, 2, 16, 2, 16).transpose(0, 1, 3, 2, 4).reshape(200, 4, 16, 16)
        return quads[layout >= 0], layout[layout >= 0]

    for split, (digits, labels), (other, _) in (("train", (X_train, y_train), (X_test, y_test)),
                                                ("test", (X_test, y_test), (X_train, y_train))):
        own = {t.tobytes(): d for t, d in zip(digits_fcn.upscale(digits, 2)[:, 0], labels)}
        foreign = {t.tobytes() for t in digits_fcn.upscale(other, 2)[:, 0]} - set(own)
        for tile, label in zip(*tiles(split)):
            assert own.get(tile.tobytes()) == label, split  # one of this split's digits, with its label
            assert tile.tobytes() not in foreign, split


def test_architecture_names_and_shapes():
    model = dv.DigitsViT().eval()
    names = dict(model.named_modules())
    assert isinstance(model.patch_embed, nn.Conv2d)
    assert model.patch_embed.kernel_size == model.patch_embed.stride == (4, 4)
    assert model.cls_token.shape == (1, 1, model.dim)
    assert model.pos_embed.shape == (1, 65, model.dim)
    assert isinstance(model.blocks, nn.ModuleList) and len(model.blocks) == 4
    for i in range(4):
        assert isinstance(names[f"blocks.{i}.norm1"], nn.LayerNorm)
        assert isinstance(names[f"blocks.{i}.attn"], nn.MultiheadAttention)
        assert names[f"blocks.{i}.attn"].batch_first
        assert isinstance(names[f"blocks.{i}.norm2"], nn.LayerNorm)
        assert [type(m) for m in names[f"blocks.{i}.mlp"]] == [nn.Linear, nn.GELU, nn.Linear]
    assert isinstance(model.norm, nn.LayerNorm) and model.head.out_features == len(dv.LABELS) == 10
    assert sum(p.numel() for p in model.parameters()) < 350_000

    tokens = {}
    model.blocks[3].norm1.register_forward_hook(lambda m, i, o: tokens.setdefault("norm1", o))
    with torch.no_grad():
        logits = model(torch.rand(3, 1, 32, 32))
    assert logits.shape == (3, 10)
    assert tokens["norm1"].shape == (3, 65, model.dim)  # CLS, then the 8x8 patch grid
    with pytest.raises(ValueError, match="32, 32"):
        model(torch.rand(2, 1, 28, 28))


def test_attention_can_be_captured(pretrained):
    from deepvis.attribution.attention import explicit_attention

    X, _, _ = dv.make_mosaics(2, seed=0, split="test")
    with explicit_attention(pretrained) as records, torch.no_grad():
        pretrained(torch.from_numpy(X))
    assert [path for path, _ in records] == [f"blocks.{i}.attn" for i in range(4)]
    for _, probs in records:
        assert probs.shape == (2, 4, 65, 65)
        torch.testing.assert_close(probs.sum(dim=-1), torch.ones(2, 4, 65))


def test_loads_through_the_zoo_and_predicts_as_load_pretrained(pretrained):
    from deepvis.core.loading import load_model
    from deepvis.core.zoo import get_entry

    entry = get_entry("digits_vit")
    assert entry.task == "classification"
    assert entry.labels() == [str(d) for d in range(10)]
    assert entry.spec.shape == (1, 32, 32) and entry.spec.mean == (0.0,) and entry.spec.std == (1.0,)
    loaded = load_model("digits_vit", device="cpu")
    assert isinstance(loaded.module, dv.DigitsViT) and not loaded.module.training
    assert loaded.labels == dv.LABELS and loaded.task == "classification"
    X, _, _ = dv.make_mosaics(20, seed=5, split="test")
    with torch.no_grad():
        torch.testing.assert_close(loaded.module(torch.from_numpy(X)), pretrained(torch.from_numpy(X)))


def test_predictions_are_per_digit_yes_no_not_one_softmax(pretrained):
    from deepvis.core.loading import load_model
    from deepvis.core.predictions import summarize

    loaded = load_model("digits_vit", device="cpu")
    assert loaded.multilabel and not load_model("digits_cnn", device="cpu").multilabel
    X, Y, _ = dv.make_mosaics(50, seed=11, split="test")
    exact = 0
    for x, y in zip(X, Y):
        with torch.no_grad():
            logits = loaded.module(torch.from_numpy(x)[None])
        summary = summarize(logits, loaded.labels, 10, loaded.task, loaded.multilabel)
        scores = {row.index: row.score for row in summary.predictions}
        np.testing.assert_allclose([scores[d] for d in range(10)], torch.sigmoid(logits[0]).numpy(), rtol=1e-6)
        present = {d for d, p in scores.items() if p >= 0.5}
        named = {part.split()[0] for part in summary.text.split(", ")} if present else set()
        assert named == {str(d) for d in present}, summary.text
        exact += present == set(np.flatnonzero(y).tolist())
    # Softmax would name one digit per mosaic; most mosaics hold two to four.
    assert exact >= 40, exact


def test_token_labels_name_the_digit_of_each_patch_quadrant():
    X, _, layout = dv.make_mosaics(40, seed=9, split="test")
    labels = dv.token_labels(layout)
    assert labels.shape == (40, dv.GRID * dv.GRID, 10)
    for i in range(40):
        for patch in range(dv.GRID * dv.GRID):
            row, col = divmod(patch, dv.GRID)
            # The patch's pixels lie in one quadrant; its ink (if any) is that quadrant's digit.
            q = 2 * (row * dv.PATCH // dv.QUADRANT) + col * dv.PATCH // dv.QUADRANT
            expected = np.zeros(10, np.float32)
            if layout[i, q] >= 0:
                expected[layout[i, q]] = 1
            np.testing.assert_array_equal(labels[i, patch], expected)


def test_token_labelled_training_output_starts_with_the_models_own_logits(pretrained):
    wrapped = dv.TokenLabelled(pretrained).eval()
    X, _, _ = dv.make_mosaics(6, seed=4, split="test")
    x = torch.from_numpy(X)
    seen = {}
    handle = pretrained.blocks[-1].norm1.register_forward_hook(lambda m, i, o: seen.setdefault("tokens", o))
    with torch.no_grad():
        out = wrapped(x).view(6, 1 + dv.GRID * dv.GRID, 10)
        logits = pretrained(x)
    handle.remove()
    torch.testing.assert_close(out[:, 0], logits)
    # The token head reads the patch tokens where Grad-CAM's default layer does.
    torch.testing.assert_close(out[:, 1:], wrapped.token_head(seen["tokens"][:, 1:]))
