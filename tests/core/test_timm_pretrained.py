"""timm:NAME without --weights means timm's trained weights, as pretrained=True does (issue 28):
from a pre-filled Hugging Face cache with no network, and one clear line when neither the
cache nor the hub has them. Each case runs the CLI in a fresh process: huggingface_hub reads
HF_HOME when it is imported."""

import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

timm = pytest.importorskip("timm")
pytest.importorskip("safetensors")

from deepvis.resources import sample_image  # noqa: E402

REPO = "models--timm--test_vit.r160_in1k"  # timm's pretrained_cfg for test_vit: timm/test_vit.r160_in1k


def _deepvis(args, **env):
    return subprocess.run([sys.executable, "-m", "deepvis", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})


def _closed_port() -> int:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    return port


def test_the_trained_weights_come_from_a_prefilled_cache_without_network(tmp_path):
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(3)
    state = {k: v.contiguous() for k, v in timm.create_model("test_vit", pretrained=False).state_dict().items()}
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = tmp_path / "hf" / "hub" / REPO / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (tmp_path / "hf" / "hub" / REPO / "refs").mkdir()
    (tmp_path / "hf" / "hub" / REPO / "refs" / "main").write_text(commit)
    save_file(state, str(snapshot / "model.safetensors"))
    save_file(state, str(tmp_path / "mine.safetensors"))
    cat = sample_image("cat")
    # The hub's address answers nothing: only the cache can give the weights.
    cached = _deepvis(["predict", "--model", "timm:test_vit", "--input", cat, "--npy", tmp_path / "cached.npy"],
                      HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}")
    assert cached.returncode == 0, cached.stderr
    from deepvis.core.loading import load_model
    from deepvis.io.images import read_image

    mine = load_model("timm:test_vit", str(tmp_path / "mine.safetensors"), device="cpu")  # the same file, given
    with torch.inference_mode():
        expected = mine.module(mine.input_tensor(read_image(cat)))[0].numpy()
    np.testing.assert_allclose(np.load(tmp_path / "cached.npy"), expected, rtol=1e-5, atol=1e-6)
    # deepvis fetch finds it there and asks nothing of the (unreachable) hub.
    fetched = _deepvis(["fetch", "timm:test_vit"], HF_HOME=str(tmp_path / "hf"),
                       HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}")
    assert fetched.returncode == 0 and "timm:test_vit: already in the cache" in fetched.stdout, fetched.stderr


@pytest.mark.parametrize("offline", ["HF_HUB_OFFLINE", "unreachable hub"])
def test_neither_cache_nor_hub_is_one_clear_line_soon(tmp_path, offline):
    env = {"HF_HOME": str(tmp_path / "empty")}
    env.update({"HF_HUB_OFFLINE": "1"} if offline == "HF_HUB_OFFLINE" else
               {"HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"})
    start = time.monotonic()
    result = _deepvis(["predict", "--model", "timm:test_vit", "--input", sample_image("cat")], **env)
    assert time.monotonic() - start < 20  # the process's start included; the weights' part is bounded by 5 s
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "neither in the Hugging Face cache" in lines[0] and str(tmp_path / "empty") in lines[0]
    assert "--weights none" in lines[0]
