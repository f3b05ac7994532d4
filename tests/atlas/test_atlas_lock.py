"""One writer per atlas (issue 30): a build into a folder another build holds is refused at
once, naming the holder; a lock whose heartbeat stopped, or whose process on this host is
gone, is taken over; two builds started together leave one atlas without duplicated rows."""

import json
import os
import socket
import threading
import time

import pytest

from deepvis.atlas import lock as atlas_lock
from deepvis.atlas.build import build_atlas, check_ray_address
from deepvis.atlas.store import Atlas
from deepvis.errors import DeepvisError

from atlasdata import write_noise_images

OPTIONS = {"source": "digits_cnn", "device": "cpu"}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("lockimages")
    write_noise_images(root, 24)
    return root


def _hold(folder, host, pid, age_s=0.0):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / atlas_lock.LOCK).write_text(json.dumps({"host": host, "pid": pid, "heartbeat": time.time() - age_s}))


def test_a_build_in_progress_elsewhere_is_refused_at_once(images, tmp_path):
    out = tmp_path / "atlas"
    _hold(out, "gpu-node-7", 4242)
    start = time.perf_counter()
    with pytest.raises(DeepvisError, match="being built by a build on gpu-node-7 \\(process 4242"):
        build_atlas(OPTIONS, images, out, engine="local")
    assert time.perf_counter() - start < 10
    assert sorted(p.name for p in out.iterdir()) == [atlas_lock.LOCK]  # nothing of ours written
    assert json.loads((out / atlas_lock.LOCK).read_text())["host"] == "gpu-node-7"  # and theirs kept


def test_stale_locks_are_taken_over(images, tmp_path):
    out = tmp_path / "atlas"
    _hold(out, "gpu-node-7", 4242, age_s=atlas_lock.STALE_S + 5)  # its heartbeat stopped
    assert build_atlas(OPTIONS, images, out, engine="local")["added"] == 24
    assert not (out / atlas_lock.LOCK).exists()  # released at the end
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    _hold(out, socket.gethostname(), dead)  # fresh heartbeat, but its process here is gone
    assert build_atlas(OPTIONS, images, out, engine="local")["added"] == 0


def test_a_second_build_during_the_first_is_refused_and_no_row_doubles(images, tmp_path):
    """The first build is paused half-way (its progress callback, lock held, a part committed)
    while the second starts: the second is refused at once; the first finishes alone."""
    out = tmp_path / "atlas"
    inside, second_done, results = threading.Event(), threading.Event(), {}

    def first_progress(done, total):
        if not inside.is_set():
            inside.set()
            second_done.wait(30)

    def first():
        results["first"] = build_atlas(OPTIONS, images, out, engine="local", batch=4, part_rows=8,
                                       progress=first_progress)

    thread = threading.Thread(target=first)
    thread.start()
    assert inside.wait(30)
    try:
        with pytest.raises(DeepvisError, match="is being built by a build on .* \\(process"):
            build_atlas(OPTIONS, images, out, engine="local")
    finally:
        second_done.set()
        thread.join()
    assert results["first"]["added"] == 24
    paths = list(Atlas(out).rows()["path"])
    assert len(paths) == len(set(paths)) == 24


def test_an_address_with_nothing_listening_fails_within_seconds():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    with pytest.raises(DeepvisError, match=f"no Ray cluster at 127.0.0.1:{port}"):
        check_ray_address(f"127.0.0.1:{port}")
    assert time.perf_counter() - start < 10
