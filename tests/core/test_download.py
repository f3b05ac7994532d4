"""Zoo weights on demand (issue 28, torchvision part), against a server on 127.0.0.1: the file is
checked and renamed into the cache only whole, a second load makes no request, and an
unreachable source is one clear error within the timeout."""

import hashlib
import io
import time

import pytest
import torch

from deepvis.core import download
from deepvis.errors import DeepvisError
from deepvis.resources import sample_image
from weightmirror import Mirror


@pytest.fixture
def mirror(monkeypatch):
    served = Mirror()
    monkeypatch.setenv(download.MIRROR_ENV, served.url)
    yield served
    served.server.shutdown()


def _state_dict_bytes(seed: int) -> bytes:
    torch.manual_seed(seed)
    buffer = io.BytesIO()
    torch.save(torch.nn.Linear(64, 64).state_dict(), buffer)
    return buffer.getvalue()


def test_a_download_is_checked_reported_and_then_served_from_the_cache(mirror, tmp_path):
    body = _state_dict_bytes(0)
    name = f"tiny-{hashlib.sha256(body).hexdigest()[:8]}.pth"
    mirror.files[name] = body
    seen = []
    with download.progress_to(lambda *report: seen.append(report)):
        path = download.cached_or_fetched(f"https://download.example.org/models/{name}", tmp_path / "cache", "tiny")
    assert path == tmp_path / "cache" / name and path.read_bytes() == body
    assert mirror.requests == [name]  # by file name, from the mirror
    assert seen and seen[-1] == (name, len(body), len(body))
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [name]  # no temporary file left
    again = download.cached_or_fetched(f"https://download.example.org/models/{name}", tmp_path / "cache", "tiny")
    assert again == path and mirror.requests == [name]  # the cache, without a request


@pytest.mark.parametrize("case", ["wrong_hash", "interrupted"])
def test_a_wrong_or_broken_transfer_leaves_nothing_in_the_cache(mirror, tmp_path, case):
    body = _state_dict_bytes(1)
    digest = hashlib.sha256(body).hexdigest()[:8]
    name = f"tiny-{'0' * 8 if case == 'wrong_hash' else digest}.pth"
    mirror.files[name] = body
    if case == "interrupted":
        mirror.truncate.add(name)
    with pytest.raises(DeepvisError) as error:
        download.cached_or_fetched(f"https://download.example.org/{name}", tmp_path / "cache", "tiny's weights")
    message = str(error.value)
    assert "tiny's weights" in message and str(tmp_path / "cache") in message and "--weights none" in message
    assert ("not the published file" in message) == (case == "wrong_hash")
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_zoo_model_without_network_or_cache_is_one_clear_line_fast(tmp_path, monkeypatch, capsys):
    from deepvis.cli import main

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    listener = __import__("socket").socket()
    listener.bind(("127.0.0.1", 0))  # a port nothing answers on: refused at once
    port = listener.getsockname()[1]
    listener.close()
    monkeypatch.setenv(download.MIRROR_ENV, f"http://127.0.0.1:{port}")
    start = time.monotonic()
    assert main(["predict", "--model", "resnet18", "--input", str(sample_image("cat"))]) == 2
    assert time.monotonic() - start < download.TIMEOUT_S
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot download resnet18's weights")
    assert f"127.0.0.1:{port}/resnet18-f37072fd.pth" in err[0]  # the URL it tried
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in err[0] and "--weights none" in err[0]


def test_a_served_file_that_is_not_torchvisions_is_refused_for_a_zoo_model(mirror, tmp_path, monkeypatch, capsys):
    from deepvis.cli import main
    from deepvis.core.zoo import hub_checkpoint_dir

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    mirror.files["resnet18-f37072fd.pth"] = _state_dict_bytes(2)  # the right name, not the published bytes
    assert main(["predict", "--model", "resnet18", "--input", str(sample_image("cat"))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "not the published file" in err[0]
    assert mirror.requests == ["resnet18-f37072fd.pth"]
    assert not hub_checkpoint_dir().exists() or list(hub_checkpoint_dir().iterdir()) == []


def test_fetch_lists_where_weights_are_and_downloads_ahead_of_time(mirror, tmp_path, monkeypatch, capsys):
    """deepvis fetch: the list says bundled, cache or download with the size; fetching a zoo
    name goes to the library's cache; a refused file leaves the list unchanged."""
    from deepvis.cli import main
    from deepvis.core.zoo import hub_checkpoint_dir

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    assert main(["fetch", "--json"]) == 0
    import json

    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["digits_cnn"]["weights"] == "bundled" and rows["resnet18"]["weights"] == "download"
    assert rows["resnet18"]["download_mb"] == pytest.approx(44.661)
    # A copy already in torch's cache is "cache", with no request made.
    hub_checkpoint_dir().mkdir(parents=True)
    torch.save(torch.nn.Linear(2, 2).state_dict(), hub_checkpoint_dir() / "resnet18-f37072fd.pth")
    assert main(["fetch", "resnet18"]) == 0
    assert "already in the cache" in capsys.readouterr().out and mirror.requests == []
    assert main(["fetch", "digits_cnn"]) == 2  # ships with deepvis: nothing to download
    assert "nothing to download" in capsys.readouterr().err


def test_a_terminal_sees_the_download_counted(mirror, tmp_path):
    """On a terminal (a pty here) deepvis fetch shows the bar: the file's name, megabytes and
    percent, up to 100 % (then the refusal: the bytes are not torchvision's)."""
    import os
    import pty
    import subprocess
    import sys

    mirror.files["resnet18-f37072fd.pth"] = bytes(range(256)) * 12_000
    leader, follower = pty.openpty()
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch"), download.MIRROR_ENV: mirror.url}
    proc = subprocess.run([sys.executable, "-m", "deepvis", "fetch", "resnet18"], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=follower, env=env, timeout=120)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    text = shown.decode(errors="replace")
    assert proc.returncode == 2
    assert "downloading resnet18-f37072fd.pth" in text and "3.1 / 3.1 MB  100%" in text
    assert "not the published file" in text
