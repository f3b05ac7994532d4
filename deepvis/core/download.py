"""Trained weights fetched where their library keeps them (issue 28, torchvision part).

A file already in the cache is used with no network at all. Otherwise it is downloaded into
the cache folder under a temporary name, its SHA-256 checked against the prefix its library
put in the file name (torchvision's ``resnet18-f37072fd.pth``), and renamed into place only
then: an interrupted or corrupted transfer leaves nothing behind. Every network wait is
bounded (``TIMEOUT_S``), so an offline machine gets one clear line instead of a hang.

``DEEPVIS_WEIGHTS_MIRROR`` (a base URL) sends every download there instead, by file name: a
local mirror for machines without the internet, and what the tests serve from 127.0.0.1.
"""

import contextlib
import hashlib
import http.client
import os
import re
import socket
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from deepvis.errors import DeepvisError

MIRROR_ENV = "DEEPVIS_WEIGHTS_MIRROR"
TIMEOUT_S = 5.0  # seconds one connection or read may wait: an offline machine hears within 10 s
CHUNK = 1 << 20
HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,64})\.")  # torch.hub's convention

_progress = None  # the current sink: progress(name, done_bytes, total_bytes or 0)


@contextlib.contextmanager
def progress_to(sink):
    """Report downloads made inside the block to ``sink(name, done, total)`` (the terminal's
    bar, the window's status line)."""
    global _progress
    before, _progress = _progress, sink
    try:
        yield
    finally:
        _progress = before


def source_url(url: str) -> str:
    """``url``, or the same file name under the mirror when ``DEEPVIS_WEIGHTS_MIRROR`` is set."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    return f"{mirror.rstrip('/')}/{url.rsplit('/', 1)[-1]}" if mirror else url


def cached_or_fetched(url: str, folder: Path, what: str) -> Path:
    """The file ``url`` names, from ``folder`` if it is there, else downloaded into it."""
    name = url.rsplit("/", 1)[-1]
    target = Path(folder) / name
    if target.is_file():
        return target
    match = HASH_IN_NAME.search(name)
    return download(source_url(url), target, match.group(1) if match else None, what)


def download(url: str, target: Path, hash_prefix: str | None, what: str) -> Path:
    """``url`` into ``target`` through a temporary file in its folder, checked and renamed."""
    how = (f"place {target.name} in {target.parent} by hand (from {url}), or pass --weights FILE, or "
           f"--weights none for random weights")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DeepvisError(f"cannot create the weights cache {target.parent}: {exc.strerror or exc}") from None
    handle, partial = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while True:
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if _progress is not None:
                    _progress(target.name, done, total)
            if total and done != total:
                raise DeepvisError(f"the download of {what} stopped at {done:,} of {total:,} bytes; {how}")
        if hash_prefix and not digest.hexdigest().startswith(hash_prefix):
            raise DeepvisError(f"the download of {what} is not the published file (SHA-256 {digest.hexdigest()[:12]}..., "
                               f"expected {hash_prefix}...); nothing was kept; {how}")
        os.replace(partial, target)
        return target
    except (urllib.error.URLError, http.client.HTTPException, socket.timeout, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DeepvisError(f"cannot download {what}: {reason} (from {url}, none in {target.parent}); {how}") from None
    except OSError as exc:
        raise DeepvisError(f"cannot write {what} to {target.parent}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(partial)
