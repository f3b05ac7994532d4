"""Ctrl-C (issue 31): a long command stops at its next chunk, commits what is complete with a
manifest that agrees with the rows on disk, says in one line what it kept and how to resume,
and exits 130; never a success report and "interrupted" together."""

import signal
import subprocess
import sys
import time

import pytest

COUNT = 2000  # one image a batch: seconds of work, stopped well before its end


@pytest.mark.slow
def test_ctrl_c_stops_an_atlas_build_which_then_resumes(tmp_path):
    from atlasdata import write_noise_images
    from deepvis.atlas.store import Atlas

    data = tmp_path / "data"
    write_noise_images(data, COUNT, side=8)
    out = tmp_path / "atlas"
    args = [sys.executable, "-m", "deepvis", "atlas", "build", "--model", "digits_cnn", "--data", str(data),
            "--out", str(out), "--engine", "local", "--batch", "1", "--json"]
    build = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / "build.lock").exists() and time.monotonic() < deadline:
        time.sleep(0.02)  # the lock is taken once the model is loaded: the work starts now
    assert build.poll() is None, build.communicate()
    sent = time.monotonic()
    build.send_signal(signal.SIGINT)
    stdout, stderr = build.communicate(timeout=30)
    assert time.monotonic() - sent < 5
    assert build.returncode == 130, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("interrupted: ") and "run the same command again" in lines[0]
    assert stdout == ""  # no success report
    stopped = Atlas(out)
    assert 0 < len(stopped) < COUNT and stopped.manifest["counts"]["images"] == len(stopped)
    assert not (out / "build.lock").exists()
    again = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    paths = list(Atlas(out).rows()["path"])
    assert len(paths) == len(set(paths)) == COUNT
