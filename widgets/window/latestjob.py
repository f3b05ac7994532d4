"""One job at a time on the compute thread, the newest request next.

Views that follow something fast (live frames, a drag) must not queue work faster than the
compute thread does it: while a job runs, a new request is only remembered, and when the job
ends the view is asked once to make its newest request (``again``), which reads the state as it
is then. Results come back on the GUI thread through a queued signal.
"""

from PySide6.QtCore import QObject, Signal

from deepvis.live.computethread import compute_thread, outcome


class LatestJob(QObject):
    _finished = Signal(object, str)  # result or None, error ("" when cancelled)

    def __init__(self, on_done, again, parent=None):
        """``on_done(result, error)`` gets each job's outcome; ``again()`` is called after it when
        a request came meanwhile."""
        super().__init__(parent)
        self.on_done, self.again = on_done, again
        self.busy = False
        self.waiting = False  # a request came while busy
        self._finished.connect(self._done)

    def request(self, make) -> None:
        """``make()`` gives the job to run now (a callable, or None for nothing to do) and is
        called only when no job runs; while one does, the request is remembered instead."""
        if self.busy:
            self.waiting = True
            return
        self.waiting = False
        job = make()
        if job is None:
            return
        self.busy = True
        future = compute_thread().submit(job)
        future.add_done_callback(lambda f: self._finished.emit(*outcome(f)))

    def _done(self, value, error: str) -> None:
        self.busy = False
        self.on_done(value, error)  # sees ``waiting``: whether a newer request is to follow
        if self.waiting:
            self.waiting = False
            self.again()
