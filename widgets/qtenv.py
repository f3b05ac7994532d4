"""Qt set-up that must happen before any view module imports pyqtgraph or vispy."""

import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import PySide6  # noqa: E402,F401  (pyqtgraph and vispy pick the binding that is already imported)
import pyqtgraph as pg  # noqa: E402

# Row-major float32 images with explicit levels are pyqtgraph's fast path.
pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, background="#1e1f22", foreground="#d0d0d0")
