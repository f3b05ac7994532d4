"""The digits CNN: committed weights, layer shapes, and that the recipe really learns."""

import torch

from deepvis.models import digits_cnn


def test_committed_weights_score_on_held_out_split():
    state = torch.load(digits_cnn.weights_path(), map_location="cpu", weights_only=True)
    assert all(t.dtype == torch.float32 for t in state.values())

    model = digits_cnn.load_pretrained()
    assert not model.training
    _, X_test, _, y_test = digits_cnn.load_split()
    accuracy = digits_cnn.evaluate(model, X_test, y_test)
    print(f"held-out accuracy of committed weights: {accuracy:.4f} on {len(y_test)} digits")
    assert accuracy >= 0.97


def test_split_is_normalised_and_disjoint():
    X_train, X_test, y_train, y_test = digits_cnn.load_split()
    assert X_train.dtype == X_test.dtype == "float32"
    assert y_train.dtype == y_test.dtype == "int64"
    assert X_train.shape[1:] == X_test.shape[1:] == (1, *digits_cnn.INPUT_SIZE)
    assert len(X_train) + len(X_test) == 1797 and len(y_test) == len(X_test)
    assert 0.0 <= X_train.min() and X_train.max() <= 1.0


def test_output_and_penultimate_shapes():
    model = digits_cnn.DigitsCNN().eval()
    features = {}
    model.fc1.register_forward_hook(lambda m, i, o: features.setdefault("fc1", o))
    with torch.no_grad():
        logits = model(torch.rand(5, 1, *digits_cnn.INPUT_SIZE))
    assert logits.shape == (5, len(digits_cnn.LABELS)) == (5, 10)
    assert features["fc1"].shape == (5, 128)
    names = dict(model.named_modules())
    for name in ("conv1", "relu1", "conv2", "relu2", "pool", "conv3", "relu3", "flatten", "fc1", "relu4", "dropout", "fc2"):
        assert name in names
    assert all(not m.inplace for m in model.modules() if isinstance(m, torch.nn.ReLU))


def test_two_epochs_from_scratch_learn():
    losses = []
    model = digits_cnn.train(epochs=2, seed=0, progress=lambda epoch, loss: losses.append(loss))
    _, X_test, _, y_test = digits_cnn.load_split()
    accuracy = digits_cnn.evaluate(model, X_test, y_test)
    print(f"held-out accuracy after 2 epochs: {accuracy:.4f}")
    assert len(losses) == 2 and losses[1] < losses[0]
    assert accuracy > 0.6  # chance is 0.1
