"""One writer per atlas: a lock file in the atlas folder, seen by builders on every host.

Two builds into one folder interleave their parts and their unit profiles (two runs a few
seconds apart left 8 duplicated rows in 20,000), so a build takes ``ATLAS/build.lock`` first:
created exclusively (``O_EXCL``, which shared file systems honour), holding the builder's host
name, process id and a heartbeat it rewrites every ``HEARTBEAT_S``. A second build is refused
at once with who holds the lock. A lock is stale, and taken over, when its heartbeat is older
than ``STALE_S`` (a builder killed on another host), or when its holder is on this host and
its process is gone (killed here; no need to wait).
"""

import json
import os
import socket
import threading
import time
from pathlib import Path

from deepvis.errors import DeepvisError

LOCK = "build.lock"
HEARTBEAT_S = 10.0
STALE_S = 60.0  # six missed heartbeats


class AtlasLock:
    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK
        self.host, self.pid = socket.gethostname(), os.getpid()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __enter__(self) -> "AtlasLock":
        self.acquire()
        return self

    def __exit__(self, *_exc) -> None:
        self.release()

    def acquire(self) -> None:
        for _ in range(3):  # a stale lock is removed once, then taken like a free one
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileNotFoundError:  # the folder went between its making and now (a check's cleanup)
                self.path.parent.mkdir(parents=True, exist_ok=True)
                continue
            except FileExistsError:
                holder = read_lock(self.path)
                if holder is None or not self._stale(holder):
                    raise DeepvisError(self._refusal(holder)) from None
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(self._record()))
            self._beat = threading.Thread(target=self._heartbeat, name="deepvis-atlas-lock", daemon=True)
            self._beat.start()
            return
        raise DeepvisError(self._refusal(read_lock(self.path)))

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        holder = read_lock(self.path)
        if holder is not None and holder.get("host") == self.host and holder.get("pid") == self.pid:
            self.path.unlink(missing_ok=True)

    def _record(self) -> dict:
        now = time.time()
        return {"host": self.host, "pid": self.pid, "heartbeat": now}

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            tmp = self.path.with_name(f"{LOCK}.{self.host}.{self.pid}.tmp")
            try:
                tmp.write_text(json.dumps(self._record()))
                os.replace(tmp, self.path)
            except OSError:
                pass  # the next beat tries again; a lock not refreshed for STALE_S is taken over

    def _stale(self, holder: dict) -> bool:
        beat = holder.get("heartbeat")
        if not isinstance(beat, (int, float)) or time.time() - beat > STALE_S:
            return True
        if holder.get("host") == self.host and isinstance(holder.get("pid"), int):
            return not _alive(holder["pid"])
        return False

    def _refusal(self, holder: dict | None) -> str:
        who = "another build" if holder is None else (
            f"a build on {holder.get('host')} (process {holder.get('pid')}, heartbeat "
            f"{max(0.0, time.time() - float(holder.get('heartbeat', 0))):.0f} s ago)")
        return (f"{self.path.parent} is being built by {who}: one build at a time writes an atlas; wait for it, or "
                f"remove {self.path} if that build is gone (a lock not refreshed for {STALE_S:.0f} s is taken over)")


def read_lock(path: Path) -> dict | None:
    try:
        holder = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
