import subprocess
import sys
import threading
import time

import pytest

from deepvis.live.computethread import ComputeThread


def test_shutdown_finishes_the_running_task_drops_the_queue_and_restarts_on_demand():
    worker = ComputeThread(name="test-compute")
    started = threading.Event()

    def slow():
        started.set()
        time.sleep(0.3)
        return "done"

    running = worker.submit(slow)
    assert started.wait(5)
    queued = worker.submit(lambda: "never")
    assert worker.shutdown(timeout=5)
    assert running.result(timeout=0) == "done"
    assert queued.cancelled()
    assert worker.call(lambda: 41 + 1) == 42  # a fresh thread serves later work
    assert worker.shutdown(timeout=5)


def test_shutdown_reports_a_task_that_does_not_finish_in_time():
    worker = ComputeThread(name="test-compute")
    release = threading.Event()
    worker.submit(release.wait, 10)
    time.sleep(0.05)
    assert not worker.shutdown(timeout=0.2)
    release.set()
    assert worker.shutdown(timeout=5)


EXIT_WHILE_BUSY = """
import sys, threading, torch
from deepvis import cli
from deepvis.live.computethread import compute_thread
busy = threading.Event()
def work():
    busy.set()
    x = torch.randn(256, 256)
    for _ in range(int(sys.argv[1])):
        x = (x @ x).clamp_(-1, 1)
compute_thread().submit(work)
busy.wait()
cli._end_compute_thread(3)
raise SystemExit(3)
"""


@pytest.mark.slow
@pytest.mark.parametrize("matmuls", [300, 10**6])  # ends within the grace time; never ends
def test_the_cli_exits_with_its_code_while_the_compute_thread_is_inside_torch(matmuls):
    # Without the shutdown, every such exit aborted ("terminate called without an active
    # exception", exit -6), as a GUI CLI test did in CI.
    proc = subprocess.run([sys.executable, "-c", EXIT_WHILE_BUSY, str(matmuls)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert "terminate called" not in proc.stderr
