"""timm:NAME without --weights means timm's trained weights, as pretrained=True does (issue 28):
downloaded from a hub (here a server on 127.0.0.1 answering as the Hugging Face hub does) into
the Hugging Face cache, from that cache afterwards, and one clear line when neither the cache
nor the hub has them. huggingface_hub reads HF_HOME and HF_ENDPOINT once, on import, into its
``constants``; the tests set those."""

import hashlib
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

timm = pytest.importorskip("timm")
pytest.importorskip("safetensors")
from huggingface_hub import constants  # noqa: E402

from deepvis.core.loading import load_model  # noqa: E402
from deepvis.errors import DeepvisError  # noqa: E402
from deepvis.io.images import read_image  # noqa: E402
from deepvis.resources import sample_image  # noqa: E402

REPO = "timm/test_vit.r160_in1k"  # timm's pretrained_cfg for test_vit


class Hub:
    """``REPO``'s model.safetensors the way the hub serves a file: a HEAD with the commit and
    the ETag (its SHA-256), then the GET; any other file is not there."""

    def __init__(self, body: bytes):
        self.requests: list[tuple[str, str]] = []
        hub = self
        digest = hashlib.sha256(body).hexdigest()

        class Handler(BaseHTTPRequestHandler):
            def _headers(self) -> bool:
                hub.requests.append((self.command, self.path))
                if self.path != f"/{REPO}/resolve/main/model.safetensors":
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return False
                self.send_response(200)
                for key, value in (("X-Repo-Commit", "0" * 40), ("ETag", f'"{digest}"'),
                                   ("Content-Length", str(len(body)))):
                    self.send_header(key, value)
                self.end_headers()
                return True

            def do_HEAD(self):
                self._headers()

            def do_GET(self):
                if self._headers():
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def gets(self) -> int:
        return sum(1 for method, path in self.requests if method == "GET" and path.endswith(".safetensors"))


def _endpoint(monkeypatch, url: str) -> None:
    """HF_ENDPOINT as huggingface_hub reads it on import: the endpoint and its file-URL template."""
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")


def _closed_port() -> int:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    return port


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return tmp_path / "hf" / "hub"


def _logits(model, image):
    import torch

    with torch.inference_mode():
        return model.module(model.input_tensor(image))[0].numpy()


def test_trained_weights_are_downloaded_once_into_the_cache_then_used_from_it(hf_cache, tmp_path, monkeypatch,
                                                                              capsys):
    import torch
    from safetensors.torch import save_file

    from deepvis.cli import main

    torch.manual_seed(3)
    state = {k: v.contiguous() for k, v in timm.create_model("test_vit", pretrained=False).state_dict().items()}
    save_file(state, str(tmp_path / "mine.safetensors"))
    hub = Hub((tmp_path / "mine.safetensors").read_bytes())
    _endpoint(monkeypatch, hub.url)
    cat = read_image(sample_image("cat"))
    mine = load_model("timm:test_vit", str(tmp_path / "mine.safetensors"), device="cpu")  # the same file, given

    model = load_model("timm:test_vit", device="cpu")
    assert model.weights_from == "timm's trained" and hub.gets() == 1
    assert any(hf_cache.rglob("model.safetensors"))
    np.testing.assert_allclose(_logits(model, cat), _logits(mine, cat), rtol=1e-5, atol=1e-6)
    load_model("timm:test_vit", device="cpu")
    assert hub.gets() == 1  # the second load reads the cache: nothing downloaded again
    # Then with the hub gone: the cache alone, and deepvis fetch says it is there.
    _endpoint(monkeypatch, f"http://127.0.0.1:{_closed_port()}")
    again = load_model("timm:test_vit", device="cpu")
    np.testing.assert_allclose(_logits(again, cat), _logits(mine, cat), rtol=1e-5, atol=1e-6)
    assert main(["fetch", "timm:test_vit"]) == 0
    assert "timm:test_vit: already in the cache" in capsys.readouterr().out
    hub.server.shutdown()


@pytest.mark.parametrize("offline", ["HF_HUB_OFFLINE", "unreachable hub"])
def test_neither_cache_nor_hub_is_one_clear_line_soon(hf_cache, monkeypatch, offline):
    if offline == "HF_HUB_OFFLINE":
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    else:
        _endpoint(monkeypatch, f"http://127.0.0.1:{_closed_port()}")
    start = time.monotonic()
    with pytest.raises(DeepvisError) as error:
        load_model("timm:test_vit", device="cpu")
    assert time.monotonic() - start < 10
    message = str(error.value)
    assert "\n" not in message and "neither in the Hugging Face cache" in message and str(hf_cache) in message
    assert "--weights none" in message
    assert constants.HF_HUB_OFFLINE == (offline == "HF_HUB_OFFLINE")  # restored after the unreachable case
