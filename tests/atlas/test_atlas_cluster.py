"""An atlas on a `ray start` cluster, in the order a user meets it (issue 32), every step a
process of its own on a fresh HOME: a local build first (Ray turns token authentication on
and writes ~/.ray/auth_token), then `ray start --head` (which finds that token and requires
it), then `--address`: the same rows as the local atlas. Refusals are one line, soon: the
user's explicit RAY_AUTH_MODE=disabled, and a HOME without the token."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepvis.atlas.store import Atlas

from atlasdata import by_path, write_noise_images

# Ray starts and processes: out of the README's run (-m long), about 40 s and 15 s here.
pytestmark = [pytest.mark.slow, pytest.mark.long]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _deepvis(args, env, cwd):
    return subprocess.run([sys.executable, "-m", "deepvis", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def _error_line(done) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-2000:]
    return lines[0]


def test_a_cluster_started_after_a_local_build_takes_its_token_and_builds_the_same_atlas(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    # Nothing of this test process's own Ray (an earlier in-process build sets RAY_AUTH_MODE).
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    env.update(HOME=str(home), PYTHONPATH=os.pathsep.join(sys.path))
    data = tmp_path / "data"
    write_noise_images(data, 12)
    build = ["atlas", "build", "--model", "digits_cnn", "--data", data, "--json"]

    local = _deepvis([*build, "--out", tmp_path / "A", "--engine", "ray"], env, tmp_path)
    assert local.returncode == 0, local.stderr[-2000:]
    assert (home / ".ray" / "auth_token").is_file()

    ray_cli = Path(sys.executable).with_name("ray")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    start = subprocess.run([str(ray_cli), "start", "--head", f"--port={port}", "--num-cpus=2",
                            "--include-dashboard=false", "--disable-usage-stats"],
                           capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert start.returncode == 0, start.stderr[-2000:]
    try:
        opted_out = _deepvis([*build, "--out", tmp_path / "C", "--address", address], {**env, "RAY_AUTH_MODE":
                                                                                        "disabled"}, tmp_path)
        line = _error_line(opted_out)
        assert "requires a token" in line and "RAY_AUTH_MODE=disabled" in line and "InvalidAuthToken" not in line
        assert not (tmp_path / "C").exists()

        elsewhere = tmp_path / "another_home"  # a machine that never had the token
        elsewhere.mkdir()
        tokenless = _deepvis([*build, "--out", tmp_path / "C", "--address", address], {**env, "HOME": str(elsewhere)},
                             tmp_path)
        line = _error_line(tokenless)
        assert "requires a token and none was found" in line and "~/.ray/auth_token" in line
        assert not (tmp_path / "C").exists()

        cluster = _deepvis([*build, "--out", tmp_path / "B", "--address", address], env, tmp_path)
        assert cluster.returncode == 0, cluster.stderr[-2000:]
        result = json.loads(cluster.stdout)
        assert result["engine"] == "ray" and result["cluster_cpus"] == 2 and result["added"] == 12
    finally:
        subprocess.run([str(ray_cli), "stop", "--force"], capture_output=True, timeout=120, env=env)
    a, b = Atlas(tmp_path / "A"), Atlas(tmp_path / "B")
    ids = sorted(a.rows()["path"])
    assert sorted(b.rows()["path"]) == ids and b.manifest["builds"][0]["address"] == address
    assert np.abs(by_path(a, a.features("relu4"), ids) - by_path(b, b.features("relu4"), ids)).max() < 1e-5
