"""Zoo weights downloaded from the window (issue 28): the busy line counts the download, and a
file that is not the published one is refused while the running model keeps running."""

import pytest

pytest.importorskip("PySide6")
import torch  # noqa: E402

from deepvis.core import download  # noqa: E402
from deepvis.core.zoo import hub_checkpoint_dir  # noqa: E402
from test_gui import WAIT_MS, open_window, private_settings  # noqa: E402,F401
from weightmirror import Mirror  # noqa: E402


def test_a_download_shows_its_progress_and_a_refused_file_keeps_the_running_model(qtbot, open_window, tmp_path,
                                                                                    monkeypatch):
    mirror = Mirror()
    monkeypatch.setenv(download.MIRROR_ENV, mirror.url)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    mirror.files["resnet18-f37072fd.pth"] = bytes(range(256)) * 12_000  # 3 MB, not torchvision's file
    w = open_window(model="digits_cnn", autostart=False)
    busy, messages = [], []
    w.session.busy.connect(busy.append)
    w.session.message.connect(messages.append)
    w.session.load_model("resnet18")
    qtbot.waitUntil(lambda: any("not the published file" in m for m in messages), timeout=WAIT_MS)
    shown = [t for t in busy if t.startswith("downloading resnet18-f37072fd.pth: ")]
    assert len(shown) >= 3 and shown[-1].endswith("(100 %)")  # counted as it came, to the end
    assert busy[-1] == ""  # and the line cleared
    assert w.session.state.model.name == "digits_cnn"
    assert list(hub_checkpoint_dir().iterdir()) == []  # nothing kept
    mirror.server.shutdown()
