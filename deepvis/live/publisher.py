"""What every live source shares: publishing numbered results, the frame rate, errors, waiting.

The camera pipeline and the signal player compute on the same compute thread and hand their
results the same way: each result is stamped with its number and the smoothed rate, kept as
the latest, and passed to ``on_result``; an error is reported once until a result clears it.
"""

import threading
import time
from dataclasses import replace
from typing import Any, Callable


class ResultPublisher:
    def __init__(self, on_result: Callable[[Any], None] | None, on_error: Callable[[str], None] | None):
        self.on_result = on_result
        self.on_error = on_error
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._started = False
        self._latest = None
        self._published = 0
        self._fps = 0.0
        self._last_publish: float | None = None
        self._last_error: str | None = None

    def start(self):
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._started and not self._stop.is_set()

    def latest(self):
        return self._latest

    @property
    def published(self) -> int:
        return self._published

    def wait_for_results(self, count: int, timeout: float = 30.0):
        """Block until ``count`` results have been published in total (for scripts and tests)."""
        if not self.running:
            raise RuntimeError(f"the {type(self).__name__} is not running: call start() first")
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._published < count:
                left = deadline - time.monotonic()
                if left <= 0 or not self.running:
                    raise TimeoutError(f"only {self._published} of {count} results after {timeout:g} s"
                                       + (f"; last error: {self._last_error}" if self._last_error else ""))
                self._cond.wait(min(left, 0.1))
            return self._latest

    def _signal_stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def _report(self, message: str) -> None:
        if message != self._last_error:
            self._last_error = message
            if self.on_error is not None:
                self.on_error(message)

    def _publish(self, result, count: bool = True) -> None:
        """``result`` is a dataclass with ``index`` and ``fps``. ``count=False``: a result re-sent
        with something finished later (a heavy saliency map), which is not a new frame."""
        now = time.perf_counter()
        if count:
            if self._last_publish is not None:
                instant = 1.0 / max(now - self._last_publish, 1e-6)
                self._fps = instant if self._fps == 0 else 0.8 * self._fps + 0.2 * instant
            self._last_publish = now
        with self._cond:
            self._published += 1
            result = replace(result, index=self._published, fps=self._fps)
            self._latest = result
            self._last_error = None
            self._cond.notify_all()
        if self.on_result is not None:
            self.on_result(result)
