"""The one thread that runs torch work in a deepvis process.

Why one: PyTorch's CPU kernels run in OpenMP (libgomp) thread teams, and libgomp keeps a
team per thread that ever started one. As soon as more teams' threads exist than there are
cores, libgomp stops letting idle workers spin and puts them to sleep after every parallel
region; each of the hundreds of small ops in a forward pass then pays a wake-up. Measured
here (2 cores, EfficientNet-Lite0): 21 ms per forward when one thread does all torch work,
40-50 ms when a worker thread runs it after the main thread has run any op. So model
loading, probing, live frames and background jobs all run on this thread, and the GUI and
CLI threads only submit work and receive numpy results.

Work comes in two kinds: *tasks* (``submit``/``call``), run in order, and *idle steps*
(``add_idle``): callables such as a live pipeline's "process the newest frame" that run
whenever no task is queued, and return whether they did anything.
"""

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

from deepvis.errors import Cancelled, DeepvisError
from deepvis.live.allocator import keep_freed_memory

IDLE_WAIT_S = 0.05


class ComputeThread:
    def __init__(self, name: str = "deepvis-compute"):
        self._name = name
        self._cond = threading.Condition()
        self._tasks: deque[tuple[Future, Callable, tuple, dict]] = deque()
        self._idle: list[Callable[[], bool]] = []
        self._thread: threading.Thread | None = None
        self._wakeups = 0
        self._breathing = False
        self._stopping = False

    def _ensure_started(self) -> None:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()

    def is_current(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, fn: Callable, *args, **kwargs) -> Future:
        """Queue ``fn(*args, **kwargs)``; the future holds its result or exception."""
        future: Future = Future()
        with self._cond:
            self._tasks.append((future, fn, args, kwargs))
            self._cond.notify_all()
        self._ensure_started()
        return future

    def call(self, fn: Callable, *args, **kwargs):
        """Run ``fn`` on the compute thread and wait for it (inline when already there)."""
        if self.is_current():
            return fn(*args, **kwargs)
        return self.submit(fn, *args, **kwargs).result()

    def add_idle(self, step: Callable[[], bool]) -> None:
        with self._cond:
            self._idle.append(step)
            self._cond.notify_all()
        self._ensure_started()

    def remove_idle(self, step: Callable[[], bool]) -> None:
        with self._cond:
            if step in self._idle:
                self._idle.remove(step)

    def breathe(self) -> None:
        """Called from a long task on this thread (an embedding, a dream) between its chunks:
        the idle steps (the live view) take one turn, so the window keeps moving."""
        if not self.is_current() or self._breathing:
            return
        self._breathing = True
        try:
            for step in list(self._idle):
                try:
                    step()
                except Exception:
                    logging.getLogger(__name__).exception("idle step %r failed while breathing", step)
        finally:
            self._breathing = False

    def wake(self) -> None:
        """Tell the thread that an idle step may have work (a new frame arrived)."""
        with self._cond:
            self._wakeups += 1
            self._cond.notify_all()

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Finish the running task, drop queued ones and end the thread; whether it ended in time.

        A process must not exit while this thread is inside torch: Python ends daemon threads
        at exit by unwinding them from wherever they hold the GIL next, and unwinding through
        torch's C++ aborts the process ("terminate called without an active exception")."""
        with self._cond:
            self._stopping = True
            dropped, self._tasks = list(self._tasks), deque()
            self._idle.clear()
            self._cond.notify_all()
            thread = self._thread
        for future, *_ in dropped:
            future.cancel()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                return False
        with self._cond:
            self._stopping = False  # a later submit starts a fresh thread
            if self._thread is thread:
                self._thread = None
            racing = bool(self._tasks)  # submitted while it stopped
        if racing:
            self._ensure_started()
        return True

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                task = self._tasks.popleft() if self._tasks else None
                idle = list(self._idle)
                wakeups = self._wakeups
            if task is not None:
                future, fn, args, kwargs = task
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args, **kwargs))
                    except BaseException as exc:  # delivered to whoever waits on the future
                        future.set_exception(exc)
                continue
            did_work = False
            for step in idle:
                try:
                    did_work = step() or did_work
                except Exception:  # a broken step must not take the thread (and every view) down
                    self.remove_idle(step)
                    logging.getLogger(__name__).exception("idle step %r failed and was removed", step)
            if not did_work:
                with self._cond:
                    if not self._tasks and self._wakeups == wakeups:
                        self._cond.wait(IDLE_WAIT_S)


def outcome(future: Future) -> tuple[object, str]:
    """A finished job's result and what went wrong, for views that report it in one line:
    ``(result, "")`` on success, ``(None, "")`` when cancelled, ``(None, message)`` for a
    user error, and for a bug its type and text (the view keeps what it shows)."""
    if future.cancelled():  # dropped from the queue (the window closed before it ran)
        return None, ""
    try:
        return future.result(), ""
    except Cancelled:
        return None, ""
    except DeepvisError as exc:
        return None, str(exc)
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"


_instance: ComputeThread | None = None
_instance_lock = threading.Lock()


def compute_thread() -> ComputeThread:
    """The process-wide compute thread."""
    global _instance
    with _instance_lock:
        if _instance is None:
            # The live views allocate and free the same frames' worth of memory again and again.
            keep_freed_memory()
            _instance = ComputeThread()
        return _instance
