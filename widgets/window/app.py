"""Starting the desktop app (``deepvis`` / ``deepvis gui``)."""

import os
import signal
import sys
import threading

from deepvis.errors import DeepvisError


def check_display() -> None:
    """Qt aborts the process without a display; say what to do instead."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                                                  or os.environ.get("QT_QPA_PLATFORM")):
        raise DeepvisError("no display to open the window on: run it in a desktop session, under xvfb-run, "
                           "or use the headless commands (deepvis --help)")


def collect_garbage_on_gui_thread(interval_s: float = 0.5):
    """Python's cycle collector runs on whichever thread allocates when a threshold is crossed.
    On the compute thread it would finalize Qt objects (pyqtgraph items, closed views) off the
    GUI thread, which crashes Qt (seen in the GUI tests as a segfault inside a model load).
    pyqtgraph's collector turns automatic collection off and collects on a GUI-thread timer."""
    from pyqtgraph.util.garbage_collector import GarbageCollector

    return GarbageCollector(interval=interval_s)


def run_gui(model=None, weights=None, input_spec=None, tab=None, model_options=None, screenshot=None,
            after_frames=1, restore=True, saliency=None, atlas=None) -> int:
    check_display()
    from deepvis.widgets.window import qtenv  # noqa: F401  (binding and pyqtgraph options first)
    from PySide6.QtWidgets import QApplication

    from deepvis.widgets.window.mainwindow import MainWindow
    from deepvis.widgets.window.theme import apply_dark_theme
    from deepvis.widgets.window.views import registered_views

    # A typo in the command line is an error before any window opens, not a message in it.
    titles = [cls.title for cls in registered_views()]
    if tab is not None and tab.lower() not in [t.lower() for t in titles]:
        raise DeepvisError(f"no tab named {tab!r}: tabs are {', '.join(titles)}")
    if atlas is not None:
        from pathlib import Path

        from deepvis.atlas.store import MANIFEST

        if not (Path(atlas) / MANIFEST).is_file():
            raise DeepvisError(f"{atlas} is not an atlas (no {MANIFEST}): build one with deepvis atlas build")
    if saliency is not None:
        from deepvis.attribution.saliency import METHODS

        if saliency not in METHODS:
            raise DeepvisError(f"unknown saliency method {saliency!r}: expected one of {', '.join(METHODS)}")

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("deepvis")
    apply_dark_theme(app)
    collector = collect_garbage_on_gui_thread()  # noqa: F841  (kept alive while the app runs)
    window = MainWindow(model=model, weights=weights, input_spec=input_spec, tab=tab, model_options=model_options,
                        screenshot=screenshot, after_frames=after_frames, restore=restore, saliency=saliency,
                        atlas=atlas)
    window.show()
    interrupted = _close_on_interrupt(window)
    try:
        code = app.exec()
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    window.close()
    if code and window.failure:
        raise DeepvisError(window.failure)
    if interrupted.is_set():
        raise KeyboardInterrupt  # the command line says "interrupted", exit 130
    return code


def _close_on_interrupt(window) -> threading.Event:
    """Ctrl-C in the terminal closes the window the way its close button does (work stopped,
    settings kept). Python's own handler raised KeyboardInterrupt inside whatever slot ran next:
    a traceback on the terminal, and the window went on. A second Ctrl-C exits at once. The
    handler runs when Python next runs on the GUI thread: the garbage collector's timer sees to
    that every half second."""
    from PySide6.QtCore import QTimer

    interrupted = threading.Event()

    def handle(signum, frame):
        if interrupted.is_set():
            print("interrupted again: stopped at once", file=sys.stderr)
            os._exit(130)
        interrupted.set()
        QTimer.singleShot(0, window.close)

    signal.signal(signal.SIGINT, handle)
    return interrupted
